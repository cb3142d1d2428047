"""Grade a whole class: ``autodiff-course grade <assignment>``.

Plain ``nbgrader autograde`` trusts the submitted notebook and the kernel's
word; this command does not (docs/grading-integrity.md has the threat model,
docs/architecture.md the flow). Two phases, under a lock:

**Phase 1, on a Dask cluster** (``cluster.py``: an embedded
``LocalCluster``, one single-threaded worker process per core, or an existing
cluster with ``--scheduler``). This machine reads the templates and each
submission, skips those whose fingerprint is unchanged, and sends the rest
as tasks (``submission.grade_files``: templates and files in, graded
notebooks and ``Outcome`` out; one sandboxed kernel per submission). Each
result is published into ``autograde-input/<student>/<assignment>/`` as it
arrives, atomically, so an interrupted run resumes. A worker that dies has
its tasks re-run elsewhere; a submission that killed its workers
repeatedly is recorded as a fault.

**Phase 2, one writer at a time** (the gradebook is SQLite): ``nbgrader
autograde`` reads the phase-1 notebooks with execution switched off
(``record.py``) and records scores, autograded copies and everything feedback
needs, in batches while phase 1 goes on (``Recording``), the last one after
it. Then the gradebook is checked to hold every submission with the score
phase 1 computed, and a report is written to ``grading-reports/<assignment>/``.
"""

from __future__ import annotations

import csv
import fcntl
import json
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from ..jupyter import NbgraderLater
from . import sandbox
from .record import INPUT_DIR, PHASE_VARIABLE
from .submission import (CELL_TIMEOUT, RECORD_FILE, cached_outcome, fingerprint, grade_files,
                         package_digest, publish, read_submission)
from .template import templates

REPORT_DIR = "grading-reports"
LOCK_FILE = ".autograde.lock"


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


def progress(total, desc, initial=0):
    """A progress bar with counts and time left on a terminal, silent elsewhere."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="submission", disable=None,
                file=sys.stderr, dynamic_ncols=True)


def recorder(course, assignment):
    """Phase 2's ``nbgrader autograde``, its interpreter started (nbgrader
    loaded) to run later (``record_in_gradebook``, by ``Recording``)."""
    return NbgraderLater(course, "autograde", assignment, "--force",
                         env={PHASE_VARIABLE: "record"})


def record_in_gradebook(started, exclude=()):
    """Phase 2: nbgrader autograde on the phase-1 notebooks, execution off
    (``started``: a ``recorder``), of every student but those in ``exclude``."""
    more = [f"--CourseDirectory.student_id_exclude={','.join(sorted(exclude))}"] \
        if exclude else []
    return started.run(check=False, more=more)


BATCH = 50  # submissions enough for a batch of phase 2 whatever phase 1 has left


class Recording:
    """Phase 2 in batches while phase 1 goes on, one nbgrader writer at a time
    (the gradebook is one SQLite file), so that what is left after the last
    submission is graded is a small batch rather than the whole class.

    When no batch runs, one starts with the submissions published and not
    yet recorded once they are ``BATCH`` or more: a cluster grades faster
    than one writer records (about 0.2 s a submission). Not sooner, and not
    for a small class: on a machine whose cores all run kernels a batch only
    takes a core from them, and each batch costs a start of nbgrader (about
    a second of a core; measured on 2 cores, recording 16 submissions while
    the last ones ran made the whole no shorter). ``finish`` records
    everything else, or the whole class if a batch failed; the next batch's
    nbgrader is loaded ahead (``load``). The gradebook is the same as after
    one run over the class (the class tests compare the exported CSV)."""

    def __init__(self, course, assignment, to_grade):
        self.course, self.assignment, self.to_grade = Path(course), assignment, to_grade
        self.published, self.recorded, self.failed = set(), set(), False
        self.later = self.batch = None

    def load(self):
        """Start the next batch's interpreter (nbgrader loads meanwhile)."""
        if self.later is None:
            self.later = recorder(self.course, self.assignment)

    def _start(self, exclude):
        self.load()
        later, self.later, box = self.later, None, {}
        thread = threading.Thread(
            target=lambda: box.update(proc=record_in_gradebook(later, exclude)),
            name="autodiff-course phase 2", daemon=True)
        thread.start()
        return thread, box

    def _reap(self, wait):
        """Whether no batch is running (after waiting for it, with ``wait``)."""
        if self.batch is None:
            return True
        (thread, box), students = self.batch
        if wait:
            thread.join()
        if thread.is_alive():
            return False
        self.batch = None
        proc = box.get("proc")
        if proc is not None and proc.returncode == 0:
            self.recorded |= students
        else:
            self.failed = True
        return True

    def add(self, student):
        """``student``'s result is published (one of ``to_grade``): start a
        batch if one is due (see the class)."""
        self.published.add(student)
        left = self.to_grade - len(self.published)
        if not self._reap(wait=False) or self.failed or not left:
            return
        new = self.published - self.recorded
        if len(new) >= BATCH:
            everyone = {p.parent.name for p in
                        (self.course / INPUT_DIR).glob(f"*/{self.assignment}")}
            self.batch = self._start(everyone - new), new

    def finish(self):
        """Record what no batch recorded (everything, if a batch failed);
        returns the last batch's CompletedProcess."""
        self._reap(wait=True)
        thread, box = self._start(set() if self.failed else self.recorded)
        thread.join()
        return box.get("proc")

    def close(self):
        """Wait for a running batch; end an unused interpreter."""
        self._reap(wait=True)
        if self.later is not None:
            self.later.cancel()
            self.later = None


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


def recorded(course, assignment, outcomes):
    """Whether phase 2 has nothing to do: every submission (none graded anew)
    has its phase-1 score in the gradebook and an autograded copy of each
    phase-1 notebook written after it."""
    course = Path(course)
    for o in outcomes:
        for graded in (course / INPUT_DIR / o.student / assignment).glob("*.ipynb"):
            copy = course / "autograded" / o.student / assignment / graded.name
            if not copy.is_file() or copy.stat().st_mtime < graded.stat().st_mtime:
                return False
    return not check_gradebook(outcomes, gradebook_scores(course, assignment), None)


def check_gradebook(outcomes, recorded, proc):
    """Every submission has a row with the score phase 1 computed (``proc``:
    phase 2's nbgrader, None if it did not run)."""
    problems = []
    for o in outcomes:
        got = recorded.get(o.student)
        if got is None:
            problems.append(f"{o.student}: no row in the gradebook after nbgrader autograde")
        elif abs(got[0] - o.score) > 1e-9:
            problems.append(f"{o.student}: gradebook says {got[0]}, the grader {o.score}")
    if problems and proc is not None and proc.returncode != 0:
        problems.append("nbgrader autograde failed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
    return problems


def killed_reason(exc):
    return ("grading this submission killed the worker processes that ran it, more than "
            "the cluster allows (distributed.scheduler.allowed-failures, or twice its grading "
            "process; for example it ran the worker out of memory): recorded as a fault, not "
            f"retried ({str(exc).split('. ')[0]})")


def longest_first(todo, course, assignment):
    """``todo`` with the submissions that take longest first (their time in
    an earlier run, else their size), so that no worker is left with a long
    one at the end while the others wait."""
    def expected(student):
        record = Path(course) / INPUT_DIR / student / assignment / RECORD_FILE
        try:
            seconds = json.loads(record.read_text())["outcome"]["seconds"]
        except (OSError, ValueError, KeyError, TypeError):
            seconds = 0.0
        return seconds, sum(len(data) for data in todo[student][0].values())

    return {s: todo[s] for s in sorted(todo, key=expected, reverse=True)}


def run_phase1(client, assignment, tmpl, todo, sandbox_mode, cell_timeout, done, bar,
               task=None, workers=1, tail=None):
    """Send ``todo`` ({student: (files, key)}) to the cluster as ``task``
    (``submission.grade_files``) and call ``done(student, notebooks, outcome,
    key)`` for each result as it arrives. A submission whose task killed its
    workers too often gets a fault outcome, computed here without running
    anything. Returns {student: error} for tasks that raised (after a retry).
    ``tail()`` is called once fewer submissions are left than ``workers``
    (one of them is idle)."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    from .cluster import GradingProcessDied, grade_task

    task = task or grade_task
    # The templates travel inside every task rather than being scattered once:
    # data scattered to a worker that dies is lost for good (the scheduler
    # cancels every task depending on it), a task's own arguments are not.
    run = uuid.uuid4().hex[:8]
    futures = {}
    for rank, (student, (files, key)) in enumerate(todo.items()):
        future = client.submit(task, tmpl, files, student, sandbox_mode, cell_timeout,
                               key=f"grade-{assignment}-{student}-{run}", retries=1,
                               priority=len(todo) - rank)  # in the order of ``todo``
        futures[future] = student
    errors, left = {}, len(futures)
    if tail is not None and left < workers:
        tail()
    for future in as_completed(futures, loop=client.loop):
        left -= 1
        if tail is not None and left == workers - 1:
            tail()
        student = futures[future]
        files, key = todo[student]
        try:
            notebooks, outcome = future.result()
        except (KilledWorker, GradingProcessDied) as exc:
            # runs nothing: every test fails with the reason
            notebooks, outcome = grade_files(tmpl, files, student, sandbox_mode, cell_timeout,
                                             fault=killed_reason(exc))
        except Exception as exc:  # noqa: BLE001  (a grader bug: stop before phase 2)
            errors[student] = f"{type(exc).__name__}: {str(exc)[:500]}"
            bar.update()
            continue
        finally:
            future.release()
        done(student, notebooks, outcome, key)
        bar.update()
    return errors


def grade(course, assignment, jobs=None, use_sandbox=True, force=False, log=print,
          cell_timeout=CELL_TIMEOUT, scheduler=None):
    """Grade every collected submission of ``assignment``; returns the outcomes.

    ``use_sandbox``: "bwrap" (True), "container" or "none" (False), see
    ``sandbox.py``; ``scheduler``: the address of an existing Dask scheduler
    (or a ``distributed.Client`` on one), or None for an embedded cluster of
    ``jobs`` workers (default: one per core).
    """
    course = Path(course).resolve()
    sandbox_mode = sandbox.mode(use_sandbox)
    if sandbox_mode == "bwrap" and not scheduler:
        why = sandbox.available()
        if why:
            raise RuntimeError(f"cannot sandbox student code: {why}. Install it; inside a "
                               "container whose seccomp profile blocks bubblewrap pass "
                               "--sandbox=container if the container is the isolation "
                               "boundary (docs/distributed-grading.md), or --no-sandbox only "
                               "for trusted submissions.")
    if not any((course / "release" / assignment).glob("*.ipynb")):
        raise RuntimeError(f"{assignment} is not built yet (no release/{assignment}/): run "
                           f"`autodiff-course build {assignment}` first")
    students = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}")
                      if p.is_dir())
    if not students:
        raise RuntimeError(f"no submissions of {assignment} in {course / 'submitted'}: collect "
                           f"them first (`nbgrader collect {assignment}`)")
    from .cluster import Session, check_workers

    (course / INPUT_DIR).mkdir(exist_ok=True)
    with _lock(course), Session(scheduler, jobs) as session:
        started = time.monotonic()
        if scheduler:
            session.start()  # reach it (and warm its workers) while the class is read
        tmpl = templates(course, assignment)
        outcomes, todo = {}, {}
        for student in students:
            files = read_submission(course / "submitted" / student / assignment)
            key = fingerprint(files, tmpl, cell_timeout, sandbox_mode)
            out_dir = course / INPUT_DIR / student / assignment
            if not force and (done := cached_outcome(out_dir, key)) is not None:
                outcomes[student] = done
            else:
                todo[student] = (files, key)
                session.start()  # the embedded cluster starts with the first to grade

        where, errors = "no worker needed", {}
        recording = Recording(course, assignment, len(todo))

        def finished(student, notebooks, outcome, key):
            publish(course, student, assignment, notebooks, outcome, todo[student][0], key)
            outcomes[student] = outcome
            recording.add(student)

        try:
            if todo or scheduler:
                client = session.client()
                workers = check_workers(client, sandbox_mode, package_digest())
                where = f"{workers} worker(s) at {client.scheduler.address}" \
                    if scheduler else f"{workers} local worker(s)"
                if todo:
                    with progress(len(students), f"grading {assignment}", len(outcomes)) as bar:
                        # a worker is idle at the end: the last batch's nbgrader loads
                        errors = run_phase1(client, assignment, tmpl,
                                            longest_first(todo, course, assignment),
                                            sandbox_mode, cell_timeout, finished, bar,
                                            workers=workers, tail=recording.load)
            # the workers stop while phase 2 runs (leaving the with block waits for them)
            session.close_in_background()
            if errors:
                raise RuntimeError(
                    "the grader failed on some submissions (their results are not recorded; "
                    "the others are, and a re-run resumes from them):\n" +
                    "\n".join(f"  {s}: {e}" for s, e in sorted(errors.items())))
            phase1 = time.monotonic() - started
            outcomes = [outcomes[s] for s in students]
            proc = None if not todo and recorded(course, assignment, outcomes) else \
                recording.finish()
        finally:
            recording.close()
        if proc is None:
            log("phase 2 not needed: the gradebook and autograded/ already hold every "
                "submission as graded")
        problems = check_gradebook(outcomes, gradebook_scores(course, assignment), proc)
        write_report(course, assignment, outcomes, problems)
        log(f"graded {len(outcomes)} submission(s) of {assignment} on {where}: phase 1 "
            f"{phase1:.1f} s ({sum(o.cached for o in outcomes)} unchanged), total "
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
