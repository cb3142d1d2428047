"""Grade a whole class: ``autodiff-course grade <assignment>``.

Plain ``nbgrader autograde`` trusts the submitted notebook and the kernel's
word; this command does not (docs/grading-integrity.md has the threat model,
docs/architecture.md the flow). Two phases, under a lock:

**Phase 1, in parallel** (one sandboxed kernel per worker process): each
collected submission goes through ``submission.grade_submission``, which
writes ``autograde-input/<student>/<assignment>/`` atomically with a
fingerprint of its inputs (re-runs skip finished work).

**Phase 2, serial** (one writer for the SQLite gradebook): ``nbgrader
autograde`` reads the phase-1 notebooks with execution switched off
(``record.py``) and records scores, autograded copies and everything feedback
needs. Then the gradebook is checked to hold every submission with the score
phase 1 computed, and a report is written to ``grading-reports/<assignment>/``.
"""

from __future__ import annotations

import csv
import fcntl
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from ..jupyter import nbgrader
from . import sandbox
from .record import INPUT_DIR, PHASE_VARIABLE
from .submission import CELL_TIMEOUT, grade_submission

REPORT_DIR = "grading-reports"
LOCK_FILE = ".autograde.lock"

# Workers are started fresh, not forked: forking a process that runs threads
# (a test runner, ZeroMQ) can leave the child waiting on a lock forever.
_SPAWN = multiprocessing.get_context("spawn")


@contextmanager
def _lock(course):
    path = Path(course) / LOCK_FILE
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another grading run holds {path}; wait for it to end") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _phase1(args):
    return grade_submission(*args)


def record_in_gradebook(course, assignment):
    """Phase 2: nbgrader autograde on the phase-1 notebooks, execution off."""
    return nbgrader(course, "autograde", assignment, "--force",
                    env={PHASE_VARIABLE: "record"}, check=False)


def gradebook_scores(course, assignment):
    """student -> the autograded part of their score in the gradebook (manual
    grades of written answers, or of tests overridden in the formgrader, are
    the instructor's and not compared with phase 1)."""
    from nbgrader.api import Gradebook, MissingEntry

    scores = {}
    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}",
                   course_id="autodiff-course") as gb:
        for student in gb.students:
            try:
                sub = gb.find_submission(assignment, student.id)
            except MissingEntry:
                continue
            scores[student.id] = (sum(g.auto_score or 0.0 for nb in sub.notebooks
                                      for g in nb.grades if g.auto_score is not None),
                                  sub.max_score)
    return scores


def check_gradebook(outcomes, recorded, proc):
    """Every submission has a row with the score phase 1 computed."""
    problems = []
    for o in outcomes:
        got = recorded.get(o.student)
        if got is None:
            problems.append(f"{o.student}: no row in the gradebook after nbgrader autograde")
        elif abs(got[0] - o.score) > 1e-9:
            problems.append(f"{o.student}: gradebook says {got[0]}, the grader {o.score}")
    if problems and proc.returncode != 0:
        problems.append("nbgrader autograde failed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
    return problems


def grade(course, assignment, jobs=2, use_sandbox=True, force=False, log=print,
          cell_timeout=CELL_TIMEOUT):
    """Grade every collected submission of ``assignment``; returns the outcomes."""
    course = Path(course).resolve()
    if use_sandbox:
        why = sandbox.available()
        if why:
            raise RuntimeError(f"cannot sandbox student code: {why}. Install it, or pass "
                               "--no-sandbox only for trusted submissions.")
    if not any((course / "release" / assignment).glob("*.ipynb")):
        raise RuntimeError(f"{assignment} is not built yet (no release/{assignment}/): run "
                           f"`autodiff-course build {assignment}` first")
    students = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}")
                      if p.is_dir())
    if not students:
        raise RuntimeError(f"no submissions of {assignment} in {course / 'submitted'}: collect "
                           f"them first (`nbgrader collect {assignment}`)")
    (course / INPUT_DIR).mkdir(exist_ok=True)
    with _lock(course):
        started = time.monotonic()
        with ProcessPoolExecutor(max_workers=jobs, mp_context=_SPAWN) as pool:
            outcomes = list(pool.map(_phase1, [(course, assignment, s, use_sandbox, force,
                                                cell_timeout) for s in students]))
        phase1 = time.monotonic() - started
        proc = record_in_gradebook(course, assignment)
        problems = check_gradebook(outcomes, gradebook_scores(course, assignment), proc)
        write_report(course, assignment, outcomes, problems)
        log(f"graded {len(outcomes)} submission(s) of {assignment}: phase 1 {phase1:.1f} s "
            f"({sum(o.cached for o in outcomes)} unchanged), total "
            f"{time.monotonic() - started:.1f} s")
        for o in outcomes:
            notes = o.reasons + o.violations + (
                [f"{o.dropped_cells} added cell(s) not run"] if o.dropped_cells else [])
            log(f"  {o.student:20s} {o.score:g}/{o.max_score:g}" +
                (f"   {'; '.join(notes)[:300]}" if notes else ""))
        if problems:
            raise RuntimeError("grading finished with problems:\n" + "\n".join(problems))
    return outcomes


def write_report(course, assignment, outcomes, problems):
    folder = Path(course) / REPORT_DIR / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(
        {"assignment": assignment, "problems": problems,
         "submissions": [asdict(o) for o in outcomes]}, indent=1))
    with open(folder / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "score", "max_score", "failed_tests", "reasons", "violations",
                    "dropped_cells"])
        for o in outcomes:
            failed = [f"{test.split(':', 1)[1]}: {why}" for test, why in o.explanations.items()]
            w.writerow([o.student, o.score, o.max_score, " | ".join(failed),
                        " | ".join(o.reasons), " | ".join(o.violations), o.dropped_cells])
