"""Grading a class with ``autodiff-course grade``; see ``docs/architecture.md``.

``grade.py`` grades a class (lock, pool, phase 2, gradebook check, report);
``submission.py`` one submission; ``template.py`` what the instructor's
notebooks say; ``integrity.py`` the static screen; ``guard.py`` the runtime
guard inside the kernel; ``verdict.py`` the pass/fail decision; ``sandbox.py``
the bubblewrap command line; ``record.py`` what ``nbgrader_config.py`` needs
for phase 2. This file imports nothing: the guard and the nbgrader config
import single modules of the package.
"""
