"""Phase 1 for one submission: ``grade_submission``.

The steps, each one call below (``grade_submission`` reads as this list):

1. ``find_notebooks``: each notebook of the assignment in the submission
   folder, also under another name (matched by its grade ids), whatever its
   nbformat version; a reason is recorded if it is missing or unreadable;
2. ``rebuild``: every cell from the instructor's release notebook (tests
   with their hidden part from the source notebook) except the answer cells,
   which are the student's; cells the student added are dropped and counted;
3. ``screen_answers``: each answer cell is screened (``integrity.screen``);
   one that breaks the rules is replaced by a stub that fails, with the reason;
4. ``instrument``: the guard is armed in a first cell before any student
   code, and each test cell ends with the guard's check and a random token;
5. ``execute``: the notebook runs in the sandbox with a time limit per cell,
   a memory cap and output caps; a fault stops the run, the cells before it
   keep their results and the rest fail with the reason;
6. ``verdict.decide``: a test passes only if it raised nothing and printed
   its completion line;
7. ``strip_grader_cells``: the guard's cell is removed again;
8. ``restore_test_sources``: the test cells get back the sources nbgrader
   expects (their checksums are recorded at generate_assignment);
9. ``publish``: the notebooks, the submission's ``timestamp.txt`` and the
   outcome with a fingerprint of every input go to
   ``autograde-input/<student>/<assignment>/`` in one atomic rename, so a
   re-run skips work that is done and an interrupted run resumes.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from ..jupyter import (CellTimeoutError, DeadKernelError, NotebookRunner, OutputFlood,
                       grade_id, is_solution, is_test, kernel_alive, kernel_manager,
                       launch_kernel, stop_kernel)
from . import language, sandbox
from .integrity import screen
from .record import INPUT_DIR
from .template import templates
from .verdict import decide, error_name, error_output, explanation

GRADER_VERSION = "1"
CELL_TIMEOUT = 60  # seconds per cell
RUN_BUDGET = 600  # seconds per submission in all
CELL_OUTPUT_LIMIT = 256 * 1024  # bytes of output kept per cell
TOTAL_OUTPUT_LIMIT = 16 * 1024 ** 2  # bytes of output before the run is stopped
GUARD = "__import__('autodiff_course.grading.guard', fromlist=['guard'])"
RECORD_FILE = ".autodiff-grading.json"
# files of submitted/ that nbgrader needs later: the submission time, and the
# secret that release_feedback/fetch_feedback use to name the feedback
CARRIED_FILES = ("timestamp.txt", "submission_secret.txt")


@dataclass
class Outcome:
    """What phase 1 found for one student's submission of one assignment."""

    student: str
    score: float = 0.0
    max_score: float = 0.0
    tests: dict = field(default_factory=dict)  # "notebook:grade_id" -> [earned, points]
    explanations: dict = field(default_factory=dict)  # failed test -> why, in one line
    errors: dict = field(default_factory=dict)  # failed test -> the error's type (ename)
    reasons: list = field(default_factory=list)  # faults, missing or renamed notebooks
    violations: list = field(default_factory=list)  # answer cells not run, and why
    dropped_cells: int = 0
    seconds: float = 0.0
    cached: bool = False


# ------------------------------------------------------- 1. find


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
    """Match the files of a submission folder to the expected notebooks
    (``{name: Template}``). Returns ``{name: (notebook or None, [reasons])}``.
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
        wanted = {grade_id(c) for c in expected[name].release.cells if grade_id(c)}
        best, best_overlap = None, 0
        for path in unclaimed:
            other, problem = _read(path)
            if other is None:
                continue
            overlap = len(wanted & {grade_id(c) for c in other.cells if grade_id(c)})
            if overlap > best_overlap:
                best, best_overlap = (path, other), overlap
        if best:
            unclaimed.remove(best[0])
            found[name] = (best[1], [f"{name} was submitted as {best[0].name}; graded as {name}"])
        else:
            found[name] = (None, [f"{name} is missing from the submission"])
    return found


# ---------------------------------------------------- 2.-4. rebuild


def rebuild(template, student_nb):
    """The notebook to run: the instructor's cells, the student's answers.

    Returns ``(notebook, violations, dropped_cells)``.
    """
    answers, dropped, duplicates = {}, 0, []
    known = {grade_id(c) for c in template.release.cells if grade_id(c)}
    for cell in (student_nb.cells if student_nb is not None else []):
        gid = grade_id(cell)
        if gid in answers:
            duplicates.append(gid)
        elif gid in known:
            answers[gid] = cell
        else:
            dropped += 1
    nb = copy.deepcopy(template.release)
    violations = [f"{gid}: the notebook had this cell twice; the first copy was graded"
                  for gid in duplicates]
    for cell in nb.cells:
        mine = answers.get(grade_id(cell))
        if is_solution(cell) and mine is not None and mine.cell_type == cell.cell_type:
            cell.source = mine.source if isinstance(mine.source, str) else "".join(mine.source)
        elif is_test(cell):
            cell.source = template.tests.get(grade_id(cell), cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb, violations, dropped


def screen_answers(nb, policies):
    """Replace each code answer that breaks the rules by a failing stub;
    returns the violations."""
    violations = []
    for cell in nb.cells:
        if not (is_solution(cell) and cell.cell_type == "code"):
            continue
        gid = grade_id(cell)
        found = screen(cell.source, policies.get(gid))
        if found:
            reasons = "; ".join(str(v) for v in found[:5])
            violations.append(f"{gid}: not run: {reasons}")
            message = "The autograder did not run this answer: " + reasons
            cell.source = f"raise RuntimeError({message!r})"
    return violations


def instrument(nb, token):
    """Arm the guard before any student code; end each test with its check."""
    for cell in nb.cells:
        if is_test(cell):
            gid = grade_id(cell)
            cell.source = (f"{GUARD}.check_clean()\n{cell.source}\n"
                           f"{GUARD}.check({gid!r}, {token!r})")
    arm = nbformat.v4.new_code_cell(f"{GUARD}.arm()  # added by the autograder")
    arm.metadata["autodiff_grader"] = True
    nb.cells.insert(0, arm)


# ---------------------------------------------------------- 5. run


def execute(nb, scratch, use_sandbox=True, cell_timeout=CELL_TIMEOUT, budget=RUN_BUDGET,
            km=None, ready=None):
    """Run ``nb`` in place, cell by cell, in a (sandboxed) kernel. Returns the
    fault that stopped the run, or None. ``km``: a kernel started ahead in
    ``scratch`` (``KernelAhead``; if it cannot be reached a fresh one is
    started); ``ready()`` is called once the kernel answers."""
    prefix = sandbox.prefix_for(sandbox.mode(use_sandbox), scratch)
    fault, started = None, time.monotonic()
    for ahead in ([km] if km is not None else []) + [None]:
        runner = NotebookRunner(nb, scratch, km=ahead or kernel_manager(scratch, prefix),
                                timeout=cell_timeout, interrupt_on_timeout=False,
                                startup_timeout=60, cell_limit=CELL_OUTPUT_LIMIT,
                                total_limit=TOTAL_OUTPUT_LIMIT)
        connected = False
        try:
            with runner.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
                connected = True
                if ready is not None:
                    ready()
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    if time.monotonic() - started > budget:
                        fault = f"the notebook ran for more than {budget} s in all"
                    elif fault is None:
                        try:
                            runner.run_cell(cell, index)
                            continue
                        except CellTimeoutError:
                            fault = f"a cell ran for more than {cell_timeout} s (stopped)"
                        except DeadKernelError:
                            fault = "the kernel died (for example os._exit, a crash, or the " \
                                    "memory limit)"
                        except OutputFlood as exc:
                            fault = str(exc)
                        cell.outputs.append(error_output("GraderFault", fault))
                        break
        except (RuntimeError, TimeoutError) as exc:
            if ahead is not None and not connected:
                continue  # nothing ran: the notebook gets a kernel started now
            fault = fault or f"the kernel could not run the notebook ({type(exc).__name__}: {exc})"
        finally:
            runner.stop()
        break
    if fault:
        stop = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                     and any(o.get("ename") == "GraderFault" for o in c.get("outputs", []))),
                    -1)
        for cell in nb.cells[stop + 1:]:
            if cell.cell_type == "code" and not cell.outputs:
                cell.outputs.append(error_output("GraderFault", f"not run: {fault}"))
    return fault


class KernelAhead:
    """The kernel of the next submission, started while this one runs.

    Starting a kernel (the sandbox, Python, ipykernel) takes over half a
    second that would otherwise add to every submission. A worker's grading
    process, which grades one submission after another, enables this
    (``cluster.py``); elsewhere ``run_submission`` starts each kernel itself.
    Nothing changes for the submission: its kernel is new and has run
    nothing, in its own new scratch folder and sandbox (the submission's files
    are copied in before its first cell, as before); one kernel per submission.
    """

    def __init__(self):
        self.enabled = False
        self._next = None  # (sandbox mode, scratch folder, kernel manager)

    def enable(self):
        import multiprocessing.util

        self.enabled = True
        # a multiprocessing child runs these finalizers, not atexit, when it ends
        multiprocessing.util.Finalize(self, self.discard, exitpriority=10)

    def take(self, sandbox_mode):
        """``(scratch, km)`` of the kernel started for a submission in
        ``sandbox_mode``, or ``(None, None)``."""
        ahead, self._next = self._next, None
        if ahead is None:
            return None, None
        if ahead[0] != sandbox_mode or not kernel_alive(ahead[2]):
            self._drop(ahead)
            return None, None
        return ahead[1], ahead[2]

    def start_next(self, sandbox_mode):
        if not self.enabled or self._next is not None:
            return
        scratch = Path(tempfile.mkdtemp(prefix="autodiff-grade-"))
        try:
            km = launch_kernel(scratch, sandbox.prefix_for(sandbox_mode, scratch))
        except Exception:  # noqa: BLE001  (the next submission starts its own)
            shutil.rmtree(scratch, ignore_errors=True)
            return
        self._next = (sandbox_mode, scratch, km)

    def discard(self):
        ahead, self._next = self._next, None
        if ahead is not None:
            self._drop(ahead)

    def scratch(self):
        """The folder of the kernel started ahead (to remove it in a hurry)."""
        return self._next[1] if self._next else None

    @staticmethod
    def _drop(ahead):
        stop_kernel(ahead[2])
        shutil.rmtree(ahead[1], ignore_errors=True)


KERNEL_AHEAD = KernelAhead()


def fail_everything(nb, reason):
    """Nothing to run (no notebook): every code cell fails with the reason."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [error_output("GraderFault", f"not run: {reason}")]


def run_submission(nb, sub_dir, use_sandbox, cell_timeout):
    """Run in a fresh scratch folder holding the submission's data files (the
    folder of the kernel started ahead for it, if there is one)."""
    mode = sandbox.mode(use_sandbox)
    scratch, km = KERNEL_AHEAD.take(mode)
    scratch = scratch or Path(tempfile.mkdtemp(prefix="autodiff-grade-"))
    try:
        for extra in Path(sub_dir).iterdir():  # data files that came with it
            if extra.is_file() and extra.suffix != ".ipynb":
                shutil.copy2(extra, scratch / extra.name)
        return execute(nb, scratch, use_sandbox, cell_timeout, km=km,
                       ready=lambda: KERNEL_AHEAD.start_next(mode))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ------------------------------------------------- 7.-8. clean up


def strip_grader_cells(nb):
    nb.cells = [c for c in nb.cells if not c.metadata.get("autodiff_grader")]


def restore_test_sources(nb, tests):
    """The test sources nbgrader expects (it checks and restores them)."""
    for cell in nb.cells:
        if is_test(cell):
            cell.source = tests.get(grade_id(cell), cell.source)


# ------------------------------------------------------- 9. publish


def _package_files():
    """Every source file of the installed engine and tooling (the rules)."""
    import autodiff_course
    import autodiff_ref

    for package in (autodiff_ref, autodiff_course):
        root = Path(package.__file__).resolve().parent
        for path in sorted(p for suffix in ("*.py", "*.po") for p in root.rglob(suffix)):
            yield root.name, path.relative_to(root), path


@functools.lru_cache(maxsize=1)
def package_digest():
    """A hash of the installed engine and tooling: a worker that grades must
    run the same rules as the instructor's machine that records."""
    h = hashlib.sha256()
    for package, relative, path in _package_files():
        h.update(f"{package}/{relative}".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def read_submission(sub_dir):
    """The files of a submission folder (top level), name -> bytes."""
    sub_dir = Path(sub_dir)
    if not sub_dir.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(sub_dir.iterdir()) if p.is_file()}


def fingerprint(files, assignment_templates, cell_timeout, sandbox_mode="bwrap"):
    """A hash of everything a phase-1 result depends on (``files``: the
    submission, name -> bytes)."""
    h = hashlib.sha256(f"{GRADER_VERSION} {cell_timeout} {sandbox.MEMORY_LIMIT} "
                       f"{sandbox.mode(sandbox_mode)}".encode())
    h.update(package_digest().encode())
    for name, data in sorted(files.items()):
        h.update(name.encode())
        h.update(data)
    for name, t in sorted(assignment_templates.items()):
        h.update(name.encode())
        h.update(nbformat.writes(t.release).encode())
        h.update(json.dumps(t.tests, sort_keys=True).encode())
        h.update(json.dumps({k: v.to_metadata() for k, v in t.policies.items()},
                            sort_keys=True).encode())
        h.update(json.dumps({k: nbformat.writes(v) for k, v in t.editions.items()},
                            sort_keys=True).encode())
        h.update(json.dumps(t.messages, sort_keys=True).encode())
    return h.hexdigest()


def cached_outcome(out_dir, key):
    record = Path(out_dir) / RECORD_FILE
    if record.exists():
        saved = json.loads(record.read_text())
        if saved.get("key") == key:
            return Outcome(**{**saved["outcome"], "cached": True})
    return None


def publish(course, student, assignment, notebooks, outcome, files, key):
    """Write ``autograde-input/<student>/<assignment>/`` in one atomic rename:
    the graded notebooks (name -> nbformat text), the files nbgrader needs
    later and the outcome with its fingerprint. A half-graded folder never
    looks done."""
    root = Path(course) / INPUT_DIR
    root.mkdir(exist_ok=True)
    out_dir = root / student / assignment
    work = Path(tempfile.mkdtemp(prefix=f".{student}-", dir=root))
    try:
        for name, text in notebooks.items():
            (work / name).write_text(text, encoding="utf-8")
        for name in CARRIED_FILES:
            if name in files:
                (work / name).write_bytes(files[name])
        (work / RECORD_FILE).write_text(json.dumps({"key": key, "outcome": asdict(outcome)},
                                                   indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------ all


def grade_notebook(template, student_nb, reasons, sub_dir, use_sandbox, cell_timeout,
                   fault=None):
    """Steps 2-8 for one notebook; returns (notebook, results, (explanation,
    error type) of each failed test, violations, dropped cells, fault). With
    ``fault`` given nothing runs: every code cell fails with that reason."""
    token = secrets.token_hex(16)
    nb, violations, dropped = rebuild(template, student_nb)
    violations += screen_answers(nb, template.policies)
    instrument(nb, token)
    if fault is not None:
        fail_everything(nb, fault)
    elif student_nb is None:
        fail_everything(nb, "; ".join(reasons) or "no notebook")
    else:
        fault = run_submission(nb, sub_dir, use_sandbox, cell_timeout)
    results = decide(nb, token)
    failed = [c for c in nb.cells if is_test(c) and results.get(grade_id(c), [1])[0] == 0]
    why = {grade_id(c): (explanation(c), error_name(c)) for c in failed}
    strip_grader_cells(nb)
    restore_test_sources(nb, template.tests)
    return nb, results, why, violations, dropped, fault


def grade_files(assignment_templates, files, student, use_sandbox=True,
                cell_timeout=CELL_TIMEOUT, fault=None):
    """Steps 1-8 for one student, with no course folder: the instructor's
    ``Template`` objects and the submission's files (name -> bytes) in, the
    graded notebooks (name -> nbformat text) and the ``Outcome`` out.

    This is what a grading worker runs (``grade.py`` sends it to Dask); it
    writes only to a private temporary folder. With ``fault`` given, nothing
    runs and every test fails with that reason (a submission that killed
    its workers)."""
    started = time.monotonic()
    outcome, notebooks = Outcome(student), {}
    with tempfile.TemporaryDirectory(prefix="autodiff-submission-") as tmp:
        sub_dir = Path(tmp)
        # the edition (language) each notebook was worked in, under its English name
        files, languages, notes = language.choose_editions(files, assignment_templates)
        outcome.reasons += notes
        for name, data in files.items():
            if Path(name).name == name and name not in (".", ".."):  # plain names only
                (sub_dir / name).write_bytes(data)
        found = find_notebooks(sub_dir, assignment_templates)
        for name, template in assignment_templates.items():
            student_nb, reasons = found[name]
            outcome.reasons += reasons
            nb, results, why, violations, dropped, nb_fault = grade_notebook(
                template, student_nb, reasons, sub_dir, use_sandbox, cell_timeout, fault)
            outcome.violations += [f"{name}: {v}" for v in violations]
            outcome.dropped_cells += dropped
            if nb_fault:
                outcome.reasons.append(f"{name}: {nb_fault}")
            language.localize(nb, languages[name], template)
            notebooks[name] = nbformat.writes(nb)
            for gid, pair in results.items():
                outcome.tests[f"{name}:{gid}"] = pair
                sentence, ename = why.get(gid, (None, None))
                if sentence:
                    outcome.explanations[f"{name}:{gid}"] = sentence
                if ename:
                    outcome.errors[f"{name}:{gid}"] = ename
    outcome.score = sum(p for p, _ in outcome.tests.values())
    outcome.max_score = sum(m for _, m in outcome.tests.values())
    outcome.seconds = round(time.monotonic() - started, 2)
    return notebooks, outcome


def grade_submission(course, assignment, student, use_sandbox=True, force=False,
                     cell_timeout=CELL_TIMEOUT):
    """Phase 1 for one student on this machine: read the inputs, skip if the
    fingerprint is unchanged, grade, publish
    ``autograde-input/<student>/<assignment>/``."""
    course = Path(course)
    tmpl = templates(course, assignment)
    files = read_submission(course / "submitted" / student / assignment)
    key = fingerprint(files, tmpl, cell_timeout, use_sandbox)
    out_dir = course / INPUT_DIR / student / assignment
    if not force and (done := cached_outcome(out_dir, key)) is not None:
        return done
    notebooks, outcome = grade_files(tmpl, files, student, use_sandbox, cell_timeout)
    publish(course, student, assignment, notebooks, outcome, files, key)
    return outcome
