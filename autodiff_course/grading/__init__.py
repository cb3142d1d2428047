"""Grading a class with ``autodiff-course grade``; see ``docs/architecture.md``.

``grade.py`` grades a class (lock, Dask, phase 2, gradebook check, report);
``submission.py`` one submission; ``template.py`` what the instructor's
notebooks say; ``integrity.py`` the static screen (early feedback, and the
exercises' policies); ``sandbox.py`` the student's kernel's sandbox;
``judge.py`` the trusted side that runs every test, ``channel.py`` its
requests to the kernel and ``remote.py`` its proxies of the student's
objects; ``agent.py`` its agent inside the student's kernel; ``wire.py`` the
data that crosses between them;
``verdict.py`` the pass/fail decision; ``record.py`` what
``nbgrader_config.py`` needs for phase 2. This file imports nothing: the
agent and the nbgrader config import single modules of the package.
"""
