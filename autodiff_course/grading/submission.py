"""Phase 1 for one submission: ``grade_submission``.

The steps, each one call below (``grade_submission`` reads as this list):

1. ``find_notebooks``: each notebook of the assignment in the submission
   folder, also under another name (matched by its grade ids), whatever its
   nbformat version; a reason is recorded if it is missing or unreadable;
2. ``rebuild``: every cell from the instructor's release notebook (tests
   with their hidden part from the source notebook) except the answer cells,
   which are the student's; cells the student added are dropped and counted;
3. ``screen_answers``: each answer cell is screened (``integrity.screen``)
   as early feedback; only a break of the exercise's own policy
   (``integrity.DECIDING_RULES``: what isolation cannot enforce) replaces
   the answer by a stub that fails, with the reason;
4. ``execute``: the student's kernel runs in the sandbox (``sandbox.py``)
   the instructor's cells and the answer cells, never a test cell; the judge
   (``judge.py``) runs, in the grading process, the instructor's cells and
   every test cell against the answers reached through the data-only
   channel. Time limits per cell and call, a budget per notebook, memory and
   output caps; a fault stops the run, the cells before it keep their
   results and the rest fail with the reason;
5. ``verdict.decide``: a test passes iff the judge ran it to its end
   without an exception;
6. ``restore_test_sources``: the test cells get back the sources nbgrader
   expects (their checksums are recorded at generate_assignment);
7. ``publish``: the notebooks, the submission's ``timestamp.txt`` and the
   outcome with a fingerprint of every input go to
   ``autograde-input/<student>/<assignment>/`` in one atomic rename, so a
   re-run skips work that is done and an interrupted run resumes.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from ..jupyter import (CellTimeoutError, DeadKernelError, NotebookRunner, OutputFlood,
                       grade_id, is_answer, is_solution, is_test, kernel_manager)
from . import language, sandbox
from .integrity import DECIDING_RULES, screen
from .channel import ChannelError, KernelFault
from .record import INPUT_DIR
from .slicing import constant, kernel_skips
from .template import code_cells, templates
from .verdict import decide, error_name, error_output, explanation
from .wire import FIGURE_TYPES

GRADER_VERSION = "2"
CELL_TIMEOUT = 60  # seconds per cell
RUN_BUDGET = 600  # seconds per submission in all
CELL_OUTPUT_LIMIT = 256 * 1024  # bytes of output kept per cell
TOTAL_OUTPUT_LIMIT = 16 * 1024 ** 2  # bytes of output before the run is stopped
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
    requests: int = 0  # requests the judge sent to the student's kernels
    request_seconds: float = 0.0  # the time they took (the student's code included)
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


# ---------------------------------------------------- 2.-3. rebuild


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
    """Screen each code answer (early feedback). An answer that breaks its
    exercise's policy (``integrity.DECIDING_RULES``) is replaced by a failing
    stub; other findings are only reported. Returns the report lines."""
    violations = []
    for cell in nb.cells:
        if not is_answer(cell):
            continue
        gid = grade_id(cell)
        found = screen(cell.source, policies.get(gid))
        deciding = [v for v in found if v.rule in DECIDING_RULES]
        if deciding:
            reasons = "; ".join(str(v) for v in deciding[:5])
            violations.append(f"{gid}: not run: {reasons}")
            message = "The autograder did not run this answer: " + reasons
            cell.source = f"raise RuntimeError({message!r})"
        elif found:
            violations.append(f"{gid}: noted (graded anyway): "
                              + "; ".join(str(v) for v in found[:5]))
    return violations


# ---------------------------------------------------------- 4. run


def _kernel_fault(exc, cell_timeout):
    if isinstance(exc, CellTimeoutError):
        return f"a cell ran for more than {cell_timeout} s (stopped)"
    if isinstance(exc, DeadKernelError):
        return "the kernel died (for example os._exit, a crash, or the memory limit)"
    return str(exc)


def _cap(outputs, limit=CELL_OUTPUT_LIMIT):
    """The judge's outputs of a test cell, streams cut at ``limit`` characters."""
    for out in outputs:
        if out.get("output_type") == "stream" and len(out["text"]) > limit:
            out["text"] = out["text"][:limit] + \
                f"\n[output truncated by the autograder after {limit // 1024} KB]\n"
    return outputs


def _show_figures(cell, saved):
    """Put the figures the build drew (``Template.outputs``) where the kernel,
    told not to draw them (``Channel.figures``), only named them."""
    saved = iter(_figures_in(saved))
    for position, out in enumerate(cell.outputs):
        data = out.get("data", {}) if out.get("output_type") == "display_data" else {}
        if set(data) == {"text/plain"} and str(data["text/plain"]).startswith("<Figure"):
            figure = next(saved, None)
            if figure is None:
                return
            cell.outputs[position] = copy.deepcopy(figure)


def _figures_in(outputs):
    """The figures (display outputs drawn as images) among ``outputs``."""
    return [o for o in outputs if o.get("output_type") == "display_data"
            and any(m in o.get("data", {}) for m in FIGURE_TYPES)]


def _run_cells(nb, kernels, serving, judge, cell_timeout, budget, started, judged=None,
               saved=None, skips=frozenset()):
    """Each code cell where it belongs: answers in the kernels (then the names
    they defined in the kernel that serves them, ``serving(grade id)``, are
    bound on the judge's side), tests in the judge, the instructor's other
    cells in the kernels and, if the tests need them (``judged``: their
    positions among the code cells; None: all), in the judge. The first
    kernel's outputs are kept. ``saved`` (code position -> outputs): what the
    build's run of the cells whose outputs cannot depend on the answers
    showed; the cells in ``skips`` (``slicing.kernel_skips``) do not run in
    the kernels, they show those outputs, and the others among them are run
    without drawing their figures, which are taken from there. Returns the
    fault that stopped the run."""
    saved, drawing, code = saved or {}, [True], -1

    def draw(on):  # tell the kernels whether to draw figures, when that changes
        if on != drawing[0]:
            for _, channel in kernels.values():
                channel.figures(on)
            drawing[0] = on

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code += 1
        if time.monotonic() - started > budget:
            return f"the notebook ran for more than {budget} s in all"
        try:
            if is_test(cell):
                outputs, _ = judge.run(cell.source)
                cell.outputs = _cap(outputs)
            elif is_answer(cell):
                draw(True)
                kind = serving(grade_id(cell))
                for other, (runner, _) in reversed(list(kernels.items())):
                    if other != kind:
                        runner.run_cell(cell, index)
                runner, channel = kernels[kind]
                channel.mark()
                runner.run_cell(cell, index)
                judge.bind(channel.changed())
            elif code in skips:
                cell.outputs = copy.deepcopy(saved[code])
                if judged is None or code in judged:
                    judge.run(cell.source, batch=True)
            else:
                shown = bool(_figures_in(saved.get(code, [])))
                draw(not shown)
                for runner, _ in reversed(list(kernels.values())):
                    runner.run_cell(cell, index)
                if shown:
                    _show_figures(cell, saved[code])
                engine_missing = any(o.get("output_type") == "error"
                                     and sandbox.UNAVAILABLE in str(o.get("evalue", ""))
                                     for o in cell.outputs)
                if not engine_missing and judged is not None and code not in judged:
                    continue  # the tests need nothing of it (slicing.py)
                outputs, exc = judge.run(cell.source, batch=True, figures=engine_missing)
                if engine_missing and exc is None:
                    # a demonstration that uses the engine, in a kernel without it:
                    # the judge's run of it (with the engine) is what the student sees
                    cell.outputs = _cap(outputs)
        except ChannelError as exc:  # the agent was broken by the answer: nothing bound
            judge.skipped.append((grade_id(cell), str(exc)))
        except KernelFault as exc:
            cell.outputs.append(error_output("GraderFault", str(exc)))
            return str(exc)
        except (CellTimeoutError, DeadKernelError, OutputFlood) as exc:
            fault = _kernel_fault(exc, cell_timeout)
            cell.outputs.append(error_output("GraderFault", fault))
            return fault
    return None


def _kernel(stack, nb, folder, kind, use_sandbox, cell_timeout, data, deadline):
    """Start one sandboxed kernel in ``folder``: ``kind`` "engine" (the
    reference engine available) or "plain" (its stand-in, other
    differentiators hidden). Returns its runner and channel."""
    from .channel import Channel

    sockets, work, files = folder / "kernel", folder / "work", folder / "data"
    for path in (sockets, work, files):
        path.mkdir(parents=True, exist_ok=True)
    mode = sandbox.mode(use_sandbox)
    bwrap = mode == "bwrap"
    for name, content in (data or {}).items():
        (files / name).write_bytes(content)
        if not bwrap:
            (work / name).write_bytes(content)
    engine = kind == "engine"
    stubs = None if engine else sandbox.engine_stub(folder / "engine" / "autodiff_ref")
    prefix = sandbox.prefix_for(mode, sockets, engine,
                                {n: files / n for n in (data or {})}, stubs,
                                sandbox.font_list(folder) if bwrap else None)
    runner = NotebookRunner(nb, work, km=kernel_manager(sockets, prefix),
                            timeout=cell_timeout, interrupt_on_timeout=False,
                            startup_timeout=60, cell_limit=CELL_OUTPUT_LIMIT,
                            total_limit=TOTAL_OUTPUT_LIMIT)
    stack.callback(runner.stop)
    stack.enter_context(runner.setup_kernel(stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
    channel = Channel(runner.kc, runner.km, deadline=deadline, call_timeout=cell_timeout)
    channel.mark()  # the first request imports the agent, before any student code
    channel.open()
    return runner, channel


def kernel_kinds(policies, engine=True):
    """Which kernel serves each answer (grade id -> "engine" or "plain"): an
    exercise that allows some of the reference engine gets the kernel with
    it, every other one the kernel without it. Without policies, all answers
    share one kernel (with the engine iff ``engine``)."""
    if policies is None:
        return lambda gid: "engine" if engine else "plain"
    return lambda gid: "engine" if policies.get(gid) and policies[gid].allow else "plain"


def execute(nb, scratch, use_sandbox=True, cell_timeout=CELL_TIMEOUT, budget=RUN_BUDGET,
            engine=True, data=None, policies=None, stats=None, judged=None, saved=None,
            skips=frozenset()):
    """Run ``nb`` in place: the student's kernels in the sandbox, the tests in
    the judge. With ``policies`` (answer grade id -> ``Policy``) the answers
    that allow nothing of the reference engine are served by a kernel without
    it, the others by one with it (both kernels run every non-test cell);
    without, one kernel (with the engine iff ``engine``). ``data``: the
    instructor's data files ({name: bytes}) for the working folder. Returns
    the fault that stopped the run, or None. ``stats`` (a dict), if given,
    gets the number of requests to the kernels and their time. ``judged``:
    the instructor's cells the judge runs (``Template.judged``; None: all);
    ``saved``, ``skips``: the build's outputs and the cells the kernels need
    not run (``_run_cells``)."""
    from .judge import Judge

    serving = kernel_kinds(policies, engine)
    answers = [grade_id(c) for c in nb.cells if is_answer(c)]
    kinds = [k for k in ("engine", "plain") if k in {serving(g) for g in answers}] or \
        [serving(None)]
    fault, started = None, time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            kernels = {kind: _kernel(stack, nb, Path(scratch) / kind, kind, use_sandbox,
                                     cell_timeout, data, started + budget) for kind in kinds}
            judge = Judge(*(channel for _, channel in kernels.values()))
            fault = _run_cells(nb, kernels, serving, judge, cell_timeout, budget, started,
                               judged, saved, skips)
            if stats is not None:
                for _, channel in kernels.values():
                    stats["requests"] = stats.get("requests", 0) + channel.requests
                    stats["seconds"] = stats.get("seconds", 0.0) + channel.seconds
        except (RuntimeError, TimeoutError) as exc:
            fault = fault or \
                f"the kernel could not run the notebook ({type(exc).__name__}: {exc})"
    if fault:
        stop = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                     and any(o.get("ename") == "GraderFault" for o in c.get("outputs", []))),
                    -1)
        for cell in nb.cells[stop + 1:]:
            if cell.cell_type == "code" and (is_test(cell) or not cell.outputs):
                cell.outputs = [error_output("GraderFault", f"not run: {fault}")]
    return fault


def fail_everything(nb, reason):
    """Nothing to run (no notebook): every code cell fails with the reason."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [error_output("GraderFault", f"not run: {reason}")]


SCRATCH = set()  # the scratch folders of the submissions running in this process
SOCKET_PATH_LIMIT = 107  # bytes of a Unix socket's path (Linux), the kernel's included


def _scratch_folder():
    """A new scratch folder in the temporary folder, or in /tmp where the
    temporary folder's path is too long for the kernel's sockets in it
    (``<scratch>/<kind>/kernel/kernel-N``)."""
    base = tempfile.gettempdir()
    if len(os.fsencode(base)) + len("/autodiff-grade-12345678/engine/kernel/kernel-10") > \
            SOCKET_PATH_LIMIT and os.path.isdir("/tmp"):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="autodiff-grade-", dir=base))


def remove_scratch():
    """Remove the scratch folders still in use (the process is about to end
    without finishing its submissions: its worker is gone)."""
    for folder in list(SCRATCH):
        shutil.rmtree(folder, ignore_errors=True)


def run_submission(nb, template, use_sandbox, cell_timeout, stats=None):
    """Run in a fresh, empty scratch folder: nothing of the submission folder
    goes near the kernel, only the instructor's data files."""
    scratch = _scratch_folder()
    SCRATCH.add(scratch)
    try:
        cells = code_cells(nb)
        still = constant(cells)  # with this student's answers
        saved = {i: outputs for i, outputs in template.outputs.items() if i in still}
        return execute(nb, scratch, use_sandbox, cell_timeout, data=template.data,
                       policies=template.policies, stats=stats, judged=template.judged(),
                       saved=saved, skips=kernel_skips(cells, frozenset(saved)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        SCRATCH.discard(scratch)


# ---------------------------------------------------- 6. clean up


def restore_test_sources(nb, tests):
    """The test sources nbgrader expects (it checks and restores them)."""
    for cell in nb.cells:
        if is_test(cell):
            cell.source = tests.get(grade_id(cell), cell.source)


# ------------------------------------------------------- 7. publish


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
    return {p.name: p.read_bytes() for p in sorted(sub_dir.iterdir())
            if p.is_file() and not p.is_symlink()}  # a link could reach the instructor's files


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
        for data_name, content in sorted(t.data.items()):
            h.update(data_name.encode())
            h.update(content)
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


def grade_notebook(template, student_nb, reasons, use_sandbox, cell_timeout, fault=None,
                   stats=None):
    """Steps 2-6 for one notebook; returns (notebook, results, (explanation,
    error type) of each failed test, violations, dropped cells, fault). With
    ``fault`` given nothing runs: every code cell fails with that reason."""
    nb, violations, dropped = rebuild(template, student_nb)
    violations += screen_answers(nb, template.policies)
    if fault is not None:
        fail_everything(nb, fault)
    elif student_nb is None:
        fail_everything(nb, "; ".join(reasons) or "no notebook")
    else:
        fault = run_submission(nb, template, use_sandbox, cell_timeout, stats)
    results = decide(nb)
    failed = [c for c in nb.cells if is_test(c) and results.get(grade_id(c), [1])[0] == 0]
    why = {grade_id(c): (explanation(c), error_name(c)) for c in failed}
    restore_test_sources(nb, template.tests)
    return nb, results, why, violations, dropped, fault


def grade_files(assignment_templates, files, student, use_sandbox=True,
                cell_timeout=CELL_TIMEOUT, fault=None):
    """Steps 1-6 for one student, with no course folder: the instructor's
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
            stats = {}
            nb, results, why, violations, dropped, nb_fault = grade_notebook(
                template, student_nb, reasons, use_sandbox, cell_timeout, fault, stats)
            outcome.requests += stats.get("requests", 0)
            outcome.request_seconds = round(outcome.request_seconds
                                            + stats.get("seconds", 0.0), 3)
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
