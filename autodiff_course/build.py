"""Regenerate and verify the course: ``autodiff-course build``.

From the one edited source, ``course/notebooks/<assignment>/*.py``:

1. write the nbgrader source notebooks ``course/source/<assignment>/*.ipynb``;
2. ``nbgrader generate_assignment``: the student versions in ``course/release/``;
3. ``nbgrader generate_solution``: the solutions, without hidden tests, in
   ``course/solution/``;
4. verify: no solution code or hidden test in a student version, no hidden
   test in a solution; every source notebook runs clean in a fresh kernel
   and scores full marks; every autograded test cell fails on the student
   version (a test that passes on an empty answer gives free points).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .authoring import to_notebook, write_notebook

# Workers are started fresh, not forked: forking a process that runs threads
# (a test runner, ZeroMQ) can leave the child waiting on a lock forever.
_SPAWN = multiprocessing.get_context("spawn")

COURSE = Path(__file__).resolve().parent.parent / "course"


def assignments(course=COURSE):
    """Assignment ids: the folders of ``course/notebooks`` holding a ``.py`` source."""
    root = Path(course) / "notebooks"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.py")))


def nbgrader(course, *args, check=True, env=None):
    """Run one nbgrader command in the course folder; returns the CompletedProcess."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader runs `alembic` from PATH: make this environment's scripts visible
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    proc = subprocess.run(cmd, cwd=course, capture_output=True, text=True,
                          env={**os.environ, "PATH": path, **(env or {})})
    if check and proc.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc


def write_sources(course, assignment):
    """Step 1: the ``.py`` sources of one assignment -> ``source/`` notebooks."""
    src_dir = Path(course) / "notebooks" / assignment
    out_dir = Path(course) / "source" / assignment
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written = []
    for py in sorted(src_dir.glob("*.py")):
        target = out_dir / (py.stem + ".ipynb")
        write_notebook(to_notebook(py), target)
        written.append(target)
    for extra in sorted(src_dir.iterdir()):  # data files shipped with the assignment
        if extra.suffix != ".py" and extra.is_file():
            shutil.copy2(extra, out_dir / extra.name)
    return written


# ------------------------------------------------------------ verification


@dataclass
class Run:
    """The graded cells of one executed notebook."""

    path: str
    scores: dict = field(default_factory=dict)  # grade_id -> (score, max_score)
    errors: list = field(default_factory=list)  # ids/indices of cells that raised
    messages: dict = field(default_factory=dict)  # grade_id -> last error line

    @property
    def total(self):
        return sum(s for s, _ in self.scores.values())

    @property
    def max_total(self):
        return sum(m for _, m in self.scores.values())


def local_kernel_manager(folder):
    """A kernel manager talking over Unix sockets in ``folder``. TCP ports are
    picked by binding and releasing them, which races when several kernels
    start at once (tests run in parallel) and can lose messages."""
    from jupyter_client import AsyncKernelManager

    return AsyncKernelManager(kernel_name="python3", transport="ipc",
                              ip=str(Path(folder) / "kernel"),
                              connection_file=str(Path(folder) / "kernel.json"))


def execute(path, timeout=120):
    """Run a notebook top to bottom in a fresh kernel, continuing past errors,
    and score its autograded cells the way nbgrader does."""
    from nbclient import NotebookClient
    from nbgrader import utils

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="autodiff-kernel-") as sockets:
        client = NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                                km=local_kernel_manager(sockets),
                                resources={"metadata": {"path": str(Path(path).parent)}})
        client.execute()
    run = Run(str(path))
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        md = cell.metadata.get("nbgrader", {})
        failed = [o for o in cell.outputs if o.output_type == "error"]
        if failed:
            run.errors.append(md.get("grade_id", index))
        if md.get("grade"):
            score, max_score = utils.determine_grade(cell)
            run.scores[md["grade_id"]] = (score, max_score)
            if failed:
                run.messages[md["grade_id"]] = f"{failed[0].ename}: {failed[0].evalue}"
    return run


def check_text(course, assignment):
    """Students never see solutions or hidden tests; solutions hide no hidden tests."""
    problems = []
    for folder, forbidden in (("release", ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS")),
                              ("solution", ("HIDDEN TESTS",))):
        for nb_path in sorted((Path(course) / folder / assignment).glob("*.ipynb")):
            nb = nbformat.read(nb_path, as_version=4)
            for i, cell in enumerate(nb.cells):
                for word in forbidden:
                    if word in cell.source:
                        problems.append(f"{nb_path}: cell {i} contains {word!r}")
    return problems


def verify(course, names, jobs=2, log=print):
    """Run every source and student notebook; return a list of problems."""
    problems = []
    for a in names:
        problems += check_text(course, a)
    sources = [p for a in names for p in sorted((Path(course) / "source" / a).glob("*.ipynb"))]
    releases = [p for a in names for p in sorted((Path(course) / "release" / a).glob("*.ipynb"))]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_SPAWN) as pool:
        runs = list(pool.map(execute, sources + releases))
    for run in runs[:len(sources)]:
        if run.errors or run.total != run.max_total:
            problems.append(f"{run.path}: the solution scores {run.total}/{run.max_total}; "
                            f"cells that raised: {run.errors} {run.messages}")
        else:
            log(f"  ok  {run.path}: full marks {run.total}/{run.max_total}, no errors")
    for run in runs[len(sources):]:
        passing = [g for g, (s, m) in run.scores.items() if s > 0]
        if passing:
            problems.append(f"{run.path}: test cell(s) {passing} pass on the student version")
        else:
            log(f"  ok  {run.path}: every one of {len(run.scores)} test cells fails "
                "on the student version")
    return problems


def build(course=COURSE, names=None, do_verify=True, jobs=2, log=print):
    course = Path(course)
    names = names or assignments(course)
    started = time.perf_counter()
    for a in names:
        written = write_sources(course, a)
        log(f"source   {a}: {', '.join(p.name for p in written)}")
    for page in sorted((course / "notebooks").glob("*.md")):  # pages every notebook links to
        for folder in ("source", "release"):
            (course / folder).mkdir(exist_ok=True)
            shutil.copy2(page, course / folder / page.name)
    for a in names:
        nbgrader(course, "generate_assignment", a, "--force")
        nbgrader(course, "generate_solution", a, "--force")
        log(f"release  {a}, solution {a}")
    problems = verify(course, names, jobs, log) if do_verify else check_text(course, names[0])
    log(f"built {len(names)} assignment(s) in {time.perf_counter() - started:.1f} s")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(prog="autodiff-course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="regenerate source/, release/ and solution/ and verify")
    b.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    b.add_argument("--course", default=str(COURSE), help="the course folder")
    b.add_argument("--no-verify", action="store_true", help="skip running the notebooks")
    b.add_argument("--jobs", type=int, default=2, help="notebooks run in parallel")
    v = sub.add_parser("verify", help="only run the checks on what is built")
    v.add_argument("assignments", nargs="*")
    v.add_argument("--course", default=str(COURSE))
    v.add_argument("--jobs", type=int, default=2)
    g = sub.add_parser("grade", help="grade every collected submission of an assignment "
                       "(sandboxed, tamper-checked, both cores)")
    g.add_argument("assignment")
    g.add_argument("--course", default=str(COURSE))
    g.add_argument("--jobs", type=int, default=2, help="submissions run in parallel")
    g.add_argument("--force", action="store_true", help="re-run even unchanged submissions")
    g.add_argument("--cell-timeout", type=int, default=60, help="seconds a cell may run")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run student code unsandboxed (only for trusted code)")
    m = sub.add_parser("mutate", help="mutation-test the tests of the built source notebooks")
    m.add_argument("assignments", nargs="*")
    m.add_argument("--course", default=str(COURSE))
    args = parser.parse_args(argv)
    course = Path(args.course).resolve()
    if args.command == "mutate":
        from .mutation import equivalent_mutants, run_notebook

        unexplained = 0
        for a in args.assignments or assignments(course):
            equivalent = equivalent_mutants(course, a)
            for nb in sorted((course / "source" / a).glob("*.ipynb")):
                report = run_notebook(nb)
                print(f"{nb}: {len(report.killed)}/{len(report.mutants)} mutants killed")
                for mutant in report.survivors:
                    why = equivalent.get(mutant.key)
                    unexplained += why is None
                    print(f"  survivor {mutant.key}\n    " +
                          (f"equivalent: {why}" if why else "NOT EXPLAINED: strengthen the tests"))
        return 1 if unexplained else 0
    if args.command == "grade":
        from .grader import grade

        try:
            grade(course, args.assignment, jobs=args.jobs, use_sandbox=not args.no_sandbox,
                  force=args.force, cell_timeout=args.cell_timeout)
        except (RuntimeError, FileNotFoundError) as exc:
            print(f"PROBLEM {exc}", file=sys.stderr)
            return 1
        return 0
    names = args.assignments or assignments(course)
    unknown = sorted(set(names) - set(assignments(course)))
    if unknown:
        parser.error(f"no such assignment(s) {unknown}; known: {assignments(course)}")
    if args.command == "build":
        problems = build(course, names, not args.no_verify, args.jobs)
    else:
        problems = verify(course, names, args.jobs)
    for p in problems:
        print("PROBLEM", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
