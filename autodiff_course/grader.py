"""Grade a whole class: ``autodiff-course grade <assignment>``.

Plain ``nbgrader autograde`` trusts the submitted notebook and the kernel's
word; this command does not (docs/grading-integrity.md has the threat model).
It works in two phases.

**Phase 1, in parallel (one sandboxed kernel per core).** For every collected
submission (``course/submitted/<student>/<assignment>/``):

1. find each notebook of the assignment, also under another name (matched by
   its grade ids); read it whatever its nbformat version; record a reason if
   it is missing or unreadable;
2. rebuild it from the instructor's version: every cell comes from the
   release notebook (tests with their hidden part from the source notebook)
   except the answer cells, which are the student's; cells the student added
   are dropped and counted;
3. screen each answer cell (``integrity.screen``): a cell that breaks the
   rules is replaced by a stub that fails, and the reason is recorded;
4. arm the guard before any student code and end each test cell with the
   guard's check and a random completion token;
5. run it in the sandbox (``sandbox.py``) with a time limit per cell, a
   memory cap and an output cap; a kernel that dies, a cell that runs over
   its time (even if it ignores SIGINT) or a flood of output stops the run:
   the cells before keep their results, the rest fail with the reason;
6. decide each test: it passes only if it raised nothing and printed its
   completion token.

The result is written to ``course/autograde-input/<student>/<assignment>/``
(atomically, with a fingerprint of its inputs, so a re-run skips work that
is done and an interrupted run resumes).

**Phase 2, serial (one writer for the SQLite gradebook).** ``nbgrader
autograde`` reads the phase-1 notebooks with execution switched off (see
``nbgrader_config.py``) and records scores, autograded copies and everything
feedback needs. The command then checks that the gradebook holds every
submission with the score phase 1 computed, and writes a report
(``course/grading-reports/<assignment>/``) of what each submission did.
"""

from __future__ import annotations

import copy
import csv
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import sandbox
from .integrity import Policy, screen

# Workers are started fresh, not forked: forking a process that runs threads
# (a test runner, ZeroMQ) can leave the child waiting on a lock forever.
_SPAWN = multiprocessing.get_context("spawn")

GRADER_VERSION = "1"
INPUT_DIR = "autograde-input"
REPORT_DIR = "grading-reports"
CELL_TIMEOUT = 60  # seconds per cell
RUN_BUDGET = 600  # seconds per submission in all
CELL_OUTPUT_LIMIT = 256 * 1024  # bytes of output kept per cell
TOTAL_OUTPUT_LIMIT = 16 * 1024 ** 2  # bytes of output before the run is stopped
GUARD = "__import__('autodiff_course.guard', fromlist=['guard'])"
PASS_PREFIX = "AUTODIFF-GRADER PASS"


@dataclass
class Outcome:
    """What phase 1 found for one student's submission of one assignment."""

    student: str
    score: float = 0.0
    max_score: float = 0.0
    tests: dict = field(default_factory=dict)  # grade_id -> [points earned, points]
    reasons: list = field(default_factory=list)  # faults, missing or renamed notebooks
    violations: list = field(default_factory=list)  # answer cells not run, and why
    dropped_cells: int = 0
    seconds: float = 0.0
    cached: bool = False


# ------------------------------------------------------------ templates


def _is(cell, key):
    return bool(cell.metadata.get("nbgrader", {}).get(key))


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def templates(course, assignment):
    """notebook name -> (release notebook, {test grade_id: source with hidden tests},
    {answer grade_id: Policy})."""
    course = Path(course)
    result = {}
    for release in sorted((course / "release" / assignment).glob("*.ipynb")):
        source = nbformat.read(course / "source" / assignment / release.name, as_version=4)
        tests = {_grade_id(c): c.source for c in source.cells if _is(c, "grade") and
                 c.cell_type == "code"}
        policies = {_grade_id(c): Policy.from_metadata(c.metadata.get("autodiff"))
                    for c in source.cells if _is(c, "solution")}
        result[release.name] = (nbformat.read(release, as_version=4), tests, policies)
    if not result:
        raise FileNotFoundError(f"no release notebooks for {assignment!r}: run "
                                "`autodiff-course build` first")
    return result


# ------------------------------------------------------- the submission


def _read(path):
    """A notebook in nbformat 4 whatever version it was saved in, or the reason not."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001  (any failure is a reason to record)
        return None, f"{path.name} could not be read as a notebook ({type(exc).__name__}: " \
                     f"{str(exc)[:200]})"
    if not isinstance(nb.get("cells"), list):
        return None, f"{path.name} is not a notebook (no cells)"
    return nb, None


def find_notebooks(folder, expected):
    """Match the files of a submission folder to the expected notebook names.

    Returns ``{name: (notebook or None, [reasons])}``. A notebook saved under
    another name is found by its grade ids.
    """
    folder = Path(folder)
    found = {name: (None, []) for name in expected}
    present = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    unclaimed = []
    for path in present:
        if path.name in expected:
            nb, problem = _read(path)
            found[path.name] = (nb, [problem] if problem else [])
        else:
            unclaimed.append(path)
    for name, (nb, reasons) in found.items():
        if nb is not None or reasons:
            continue
        wanted = {_grade_id(c) for c in expected[name][0].cells if _grade_id(c)}
        best, best_overlap = None, 0
        for path in unclaimed:
            other, problem = _read(path)
            if other is None:
                continue
            overlap = len(wanted & {_grade_id(c) for c in other.cells if _grade_id(c)})
            if overlap > best_overlap:
                best, best_overlap = (path, other), overlap
        if best:
            unclaimed.remove(best[0])
            found[name] = (best[1], [f"{name} was submitted as {best[0].name}; graded as {name}"])
        else:
            found[name] = (None, [f"{name} is missing from the submission"])
    return found


def rebuild(template, tests, policies, student_nb, token):
    """The notebook to run: the instructor's cells, the student's answers.

    Returns ``(notebook, violations, dropped_cells)``.
    """
    answers, dropped, duplicates = {}, 0, []
    known = {_grade_id(c) for c in template.cells if _grade_id(c)}
    for cell in (student_nb.cells if student_nb is not None else []):
        gid = _grade_id(cell)
        if gid in answers:
            duplicates.append(gid)
        elif gid in known:
            answers[gid] = cell
        else:
            dropped += 1
    nb = copy.deepcopy(template)
    violations = [f"{gid}: the notebook had this cell twice; the first copy was graded"
                  for gid in duplicates]
    for cell in nb.cells:
        gid = _grade_id(cell)
        if _is(cell, "solution") and cell.cell_type == "code":
            mine = answers.get(gid)
            if mine is not None and mine.cell_type == "code":
                cell.source = mine.source if isinstance(mine.source, str) else "".join(mine.source)
            found = screen(cell.source, policies.get(gid))
            if found:
                reasons = "; ".join(str(v) for v in found[:5])
                violations.append(f"{gid}: not run: {reasons}")
                cell.source = (f"raise RuntimeError({('The autograder did not run this answer: ' + reasons)!r})")
        elif _is(cell, "solution"):  # a written answer (markdown): keep the student's text
            mine = answers.get(gid)
            if mine is not None and mine.cell_type == cell.cell_type:
                cell.source = mine.source
        elif _is(cell, "grade") and cell.cell_type == "code":
            cell.source = (f"{GUARD}.check_clean()\n{tests.get(gid, cell.source)}\n"
                           f"{GUARD}.check({gid!r}, {token!r})")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    arm = nbformat.v4.new_code_cell(f"{GUARD}.arm()  # added by the autograder")
    arm.metadata["autodiff_grader"] = True
    nb.cells.insert(0, arm)
    return nb, violations, dropped


# ------------------------------------------------------------ execution


class _OutputFlood(RuntimeError):
    pass


def _client_class():
    from nbclient import NotebookClient

    class GuardedClient(NotebookClient):
        """nbclient with a cap on the output a cell (and a run) may produce."""

        total = 0

        def output(self, outs, msg, display_id, cell_index):
            size = len(json.dumps(msg.get("content", {}), default=str))
            self.total += size
            if self.total > TOTAL_OUTPUT_LIMIT:
                raise _OutputFlood(f"the notebook produced more than "
                                   f"{TOTAL_OUTPUT_LIMIT // 1024 ** 2} MB of output")
            kept = sum(len(json.dumps(o, default=str)) for o in outs)
            if kept + size > CELL_OUTPUT_LIMIT:
                if not any(o.get("name") == "autodiff-truncated" for o in outs):
                    outs.append(nbformat.v4.new_output(
                        "stream", name="stdout",
                        text=f"\n[output truncated by the autograder after "
                             f"{CELL_OUTPUT_LIMIT // 1024} KB]\n"))
                    outs[-1]["name"] = "stdout"
                return None
            return super().output(outs, msg, display_id, cell_index)

    return GuardedClient


def _error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def execute(nb, scratch, use_sandbox=True, cell_timeout=CELL_TIMEOUT, budget=RUN_BUDGET):
    """Run ``nb`` in place, cell by cell, in a sandboxed kernel. Returns the
    fault that stopped the run, or None."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    km = sandbox.SandboxKernelManager(scratch, sandbox=use_sandbox)
    client = _client_class()(nb, km=km, timeout=cell_timeout, allow_errors=True,
                             interrupt_on_timeout=False, kernel_name="python3",
                             resources={"metadata": {"path": str(scratch)}},
                             startup_timeout=60)
    fault, started = None, time.monotonic()
    try:
        with client.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if time.monotonic() - started > budget:
                    fault = f"the notebook ran for more than {budget} s in all"
                elif fault is None:
                    try:
                        client.execute_cell(cell, index)
                        continue
                    except CellTimeoutError:
                        fault = f"a cell ran for more than {cell_timeout} s (stopped)"
                    except DeadKernelError:
                        fault = "the kernel died (for example os._exit, a crash, or the " \
                                "memory limit)"
                    except _OutputFlood as exc:
                        fault = str(exc)
                    cell.outputs.append(_error_output("GraderFault", fault))
                    break
    except (RuntimeError, TimeoutError) as exc:
        fault = fault or f"the kernel could not run the notebook ({type(exc).__name__}: {exc})"
    finally:
        _stop(km)
    if fault:
        stop = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                     and any(o.get("ename") == "GraderFault" for o in c.get("outputs", []))),
                    -1)
        for cell in nb.cells[stop + 1:]:
            if cell.cell_type == "code" and not cell.outputs:
                cell.outputs.append(_error_output("GraderFault", f"not run: {fault}"))
    return fault


def _stop(km):
    """Kill the sandboxed kernel whatever state it is in."""
    from jupyter_core.utils import run_sync

    for step, kwargs in ((km.shutdown_kernel, {"now": True}), (km.cleanup_resources, {})):
        try:
            run_sync(step)(**kwargs)
        except Exception:  # noqa: BLE001  (already dead or never started)
            pass


def decide(nb, token):
    """Score each test cell; strip the completion lines; fail tests without one."""
    tests = {}
    for cell in nb.cells:
        if not (_is(cell, "grade") and cell.cell_type == "code"):
            continue
        gid = _grade_id(cell)
        line = f"{PASS_PREFIX} {gid} {token}"
        completed = False
        for out in cell.outputs:
            if out.get("output_type") == "stream" and line in out.get("text", ""):
                completed = True
                out["text"] = out["text"].replace(f"\n{line}\n", "").replace(line, "")
        cell.outputs = [o for o in cell.outputs
                        if not (o.get("output_type") == "stream" and not o.get("text"))]
        errored = any(o.get("output_type") == "error" for o in cell.outputs)
        points = float(cell.metadata.nbgrader.get("points", 0))
        if not completed and not errored:
            cell.outputs.append(_error_output(
                "GraderVerdict", "this test did not run to its end (its completion check "
                "is missing): the test machinery was bypassed or its output suppressed"))
            errored = True
        tests[gid] = [0.0 if errored else points, points]
    return tests


# ------------------------------------------------------------- phase 1


def _fingerprint(sub_dir, assignment_templates, cell_timeout):
    h = hashlib.sha256(f"{GRADER_VERSION} {cell_timeout} {sandbox.MEMORY_LIMIT}".encode())
    for module in ("grader.py", "guard.py", "integrity.py", "sandbox.py"):  # the rules
        h.update((Path(__file__).parent / module).read_bytes())
    for path in sorted(Path(sub_dir).rglob("*")) if Path(sub_dir).exists() else []:
        if path.is_file():
            h.update(str(path.relative_to(sub_dir)).encode())
            h.update(path.read_bytes())
    for name, (template, tests, policies) in sorted(assignment_templates.items()):
        h.update(name.encode())
        h.update(nbformat.writes(template).encode())
        h.update(json.dumps(tests, sort_keys=True).encode())
        h.update(json.dumps({k: v.to_metadata() for k, v in policies.items()},
                            sort_keys=True).encode())
    return h.hexdigest()


def grade_submission(course, assignment, student, use_sandbox=True, force=False,
                     cell_timeout=CELL_TIMEOUT):
    """Phase 1 for one student; writes ``autograde-input/<student>/<assignment>/``."""
    course = Path(course)
    started = time.monotonic()
    tmpl = templates(course, assignment)
    sub_dir = course / "submitted" / student / assignment
    out_dir = course / INPUT_DIR / student / assignment
    key = _fingerprint(sub_dir, tmpl, cell_timeout)
    record = out_dir / ".autodiff-grading.json"
    if not force and record.exists():
        saved = json.loads(record.read_text())
        if saved.get("key") == key:
            return Outcome(**{**saved["outcome"], "cached": True})

    outcome = Outcome(student)
    found = find_notebooks(sub_dir, tmpl)
    work = Path(tempfile.mkdtemp(prefix=f".{student}-", dir=course / INPUT_DIR))
    try:
        for name, (template, tests, policies) in tmpl.items():
            student_nb, reasons = found[name]
            outcome.reasons += reasons
            token = secrets.token_hex(16)
            nb, violations, dropped = rebuild(template, tests, policies, student_nb, token)
            outcome.violations += [f"{name}: {v}" for v in violations]
            outcome.dropped_cells += dropped
            if student_nb is None:  # nothing to run: every test fails with the reason
                reason = "; ".join(reasons) or "no notebook"
                for cell in nb.cells:
                    if cell.cell_type == "code":
                        cell.outputs = [_error_output("GraderFault", f"not run: {reason}")]
                results = decide(nb, token)
            else:
                scratch = Path(tempfile.mkdtemp(prefix="autodiff-grade-"))
                try:
                    for extra in sub_dir.iterdir():  # data files that came with it
                        if extra.is_file() and extra.suffix != ".ipynb":
                            shutil.copy2(extra, scratch / extra.name)
                    fault = execute(nb, scratch, use_sandbox, cell_timeout)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
                if fault:
                    outcome.reasons.append(f"{name}: {fault}")
                results = decide(nb, token)
            nb.cells = [c for c in nb.cells if not c.metadata.get("autodiff_grader")]
            for cell in nb.cells:  # the test sources nbgrader expects (it restores them)
                if _is(cell, "grade") and cell.cell_type == "code":
                    cell.source = tests.get(_grade_id(cell), cell.source)
            nbformat.write(nb, work / name)
            for gid, pair in results.items():
                outcome.tests[f"{name}:{gid}"] = pair
        outcome.score = sum(p for p, _ in outcome.tests.values())
        outcome.max_score = sum(m for _, m in outcome.tests.values())
        outcome.seconds = round(time.monotonic() - started, 2)
        stamp = sub_dir / "timestamp.txt"
        if stamp.exists():
            shutil.copy2(stamp, work / "timestamp.txt")
        (work / ".autodiff-grading.json").write_text(
            json.dumps({"key": key, "outcome": asdict(outcome)}, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, out_dir)  # atomic: a half-graded folder never looks done
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return outcome


def _phase1(args):
    return grade_submission(*args)


# ------------------------------------------------------------- phase 2


def record_in_gradebook(course, assignment):
    """Phase 2: nbgrader autograde on the phase-1 notebooks, execution off."""
    from .build import nbgrader

    return nbgrader(course, "autograde", assignment, "--force",
                    env={"AUTODIFF_COURSE_PHASE": "record"}, check=False)


def gradebook_scores(course, assignment):
    from nbgrader.api import Gradebook, MissingEntry

    scores = {}
    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}",
                   course_id="autodiff-course") as gb:
        for student in gb.students:
            try:
                sub = gb.find_submission(assignment, student.id)
            except MissingEntry:
                continue
            scores[student.id] = (sub.score, sub.max_score)
    return scores


@contextmanager
def _lock(course):
    path = Path(course) / ".autograde.lock"
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another grading run holds {path}; wait for it to end") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def grade(course, assignment, jobs=2, use_sandbox=True, force=False, log=print,
          cell_timeout=CELL_TIMEOUT):
    """Grade every collected submission of ``assignment``; returns the outcomes."""
    course = Path(course).resolve()
    if use_sandbox:
        why = sandbox.available()
        if why:
            raise RuntimeError(f"cannot sandbox student code: {why}. Install it, or pass "
                               "--no-sandbox only for trusted submissions.")
    students = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}")
                      if p.is_dir())
    (course / INPUT_DIR).mkdir(exist_ok=True)
    with _lock(course):
        started = time.monotonic()
        with ProcessPoolExecutor(max_workers=jobs, mp_context=_SPAWN) as pool:
            outcomes = list(pool.map(_phase1, [(course, assignment, s, use_sandbox, force,
                                                cell_timeout) for s in students]))
        phase1 = time.monotonic() - started
        proc = record_in_gradebook(course, assignment)
        recorded = gradebook_scores(course, assignment)
        problems = []
        for o in outcomes:
            got = recorded.get(o.student)
            if got is None:
                problems.append(f"{o.student}: no row in the gradebook after nbgrader autograde")
            elif abs(got[0] - o.score) > 1e-9:
                problems.append(f"{o.student}: gradebook says {got[0]}, the grader {o.score}")
        if problems and proc.returncode != 0:
            problems.append("nbgrader autograde failed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
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
        w.writerow(["student", "score", "max_score", "reasons", "violations", "dropped_cells"])
        for o in outcomes:
            w.writerow([o.student, o.score, o.max_score, " | ".join(o.reasons),
                        " | ".join(o.violations), o.dropped_cells])


# ----------------------------------- nbgrader preprocessors for phase 2


def record_preprocessors():
    """nbgrader's autograde pipeline with execution replaced by the phase-1 outputs."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, Preprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata,
                                        DeduplicateIds, LimitOutput, OverwriteCells,
                                        OverwriteKernelspec, SaveAutoGrades)

    class KeepOutputs(Preprocessor):
        """Phase 1 already ran the notebook in the sandbox."""

    sanitize = [DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]
    autograde = [KeepOutputs, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
                 AssignLatePenalties, CheckCellMetadata]
    return sanitize, autograde

