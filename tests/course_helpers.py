"""Shared helpers of the course tests: a built temporary copy of the course,
nbgrader commands run the way an instructor or a student runs them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat

from autodiff_course.jupyter import tool_environment

REPO = Path(__file__).resolve().parent.parent
COURSE = REPO / "course"


def nbgrader_cell(source, gid=None, test=False, points=0):
    """A code cell with nbgrader's metadata: an answer (``gid``) or, with
    ``test``, a test worth ``points``; without ``gid`` the instructor's."""
    cell = nbformat.v4.new_code_cell(source)
    if gid:
        cell.metadata["nbgrader"] = {"grade": test, "solution": not test, "locked": test,
                                     "grade_id": gid, "schema_version": 3,
                                     **({"points": points} if test else {})}
    return cell


def copy_course(dest):
    """A fresh copy of the course's inputs: sources, translation catalogs and
    config, nothing generated."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(COURSE / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copytree(COURSE / "notebooks", dest / "notebooks")
    shutil.copytree(COURSE / "translations", dest / "translations")
    return dest


def run(args, cwd, env=None, check=True):
    """Run a command (e.g. ``["nbgrader", "collect", "ps"]``) with this Python's tools."""
    if args[0] in ("nbgrader", "jupyter", "pytest"):
        args = [sys.executable, "-m", args[0], *args[1:]]
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          env=tool_environment(env))
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def solution_sources(source_nb):
    """grade_id -> source of each answer cell of an instructor notebook."""
    nb = nbformat.read(source_nb, as_version=4)
    return {c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def fill_in(student_nb, answers):
    """Write ``answers`` (grade_id -> code) into a student's notebook, as a student would."""
    nb = nbformat.read(student_nb, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    nbformat.write(nb, student_nb)


# ------------------------------------------------ a class of notebook 01

CLASS_ASSIGNMENT, CLASS_NOTEBOOK = "01_derivatives", "derivatives.ipynb"
MISTAKES = {  # two plausible mistakes in notebook 01
    "central_difference": "def central_difference(f, x, eps):\n"
                          "    return (f(x + eps) - f(x - eps)) / eps\n",
    "product_partials": "def product_partials(theta):\n    return np.prod(theta) / theta\n",
}


def submit_class(course, students, prefix="s", assignment=CLASS_ASSIGNMENT,
                 notebook=CLASS_NOTEBOOK, mistakes=MISTAKES):
    """Fill ``course/submitted`` (a built course) with ``students`` submissions
    of ``notebook`` (notebook 01 unless told): every third right, the others
    with the first of ``mistakes`` or all of them. Returns the student ids."""
    a, name = assignment, notebook
    answers = solution_sources(Path(course) / "source" / a / name)
    first = next(iter(mistakes))
    variants = [answers, {**answers, first: mistakes[first]}, {**answers, **mistakes}]
    ids = []
    for i in range(students):
        student = f"{prefix}{i:03d}"
        target = Path(course) / "submitted" / student / a
        target.mkdir(parents=True)
        shutil.copy(Path(course) / "release" / a / name, target / name)
        (target / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
        fill_in(target / name, variants[i % len(variants)])
        ids.append(student)
    return ids


# ------------------------------------------------ a class of a quick assignment

# A small assignment written for the grading tests whose subject is the
# grading machinery (a Dask cluster, killed workers), not notebook 01: it runs
# in a fraction of a second, so a class of it costs what the machinery costs.
# Three exercises worth 1, 2 and 3 points with the grading helper's checks,
# visible and hidden tests, as the course's notebooks have them.
QUICK_ASSIGNMENT, QUICK_NOTEBOOK = "quick", "quick.ipynb"
QUICK_SOURCE = '''# %% [markdown]
# # A quick assignment
#
# Three short exercises on derivatives (a course of the grading tests).

# %%
import numpy as np
from autodiff_ref import grading

# %% solution="square_slope"
def square_slope(x):
    """The derivative of x**2 at x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %% test="test_square_slope" points=1
with grading.exercise(1, "square_slope"):
    grading.assert_close(square_slope(3.0), 6.0, name="square_slope(3.0)")
grading.passed("square_slope")
### BEGIN HIDDEN TESTS
grading.assert_close(square_slope(-1.25), -2.5, name="square_slope(-1.25)")
### END HIDDEN TESTS

# %% solution="central_difference"
def central_difference(f, x, eps):
    """Central-difference estimate of f'(x)."""
    ### BEGIN SOLUTION
    return (f(x + eps) - f(x - eps)) / (2 * eps)
    ### END SOLUTION

# %% test="test_central_difference" points=2
with grading.exercise(2, "central_difference"):
    grading.assert_close(central_difference(lambda x: x**2 - 4 * x, 3.0, 0.5), 2.0,
                         name="central_difference(lambda x: x**2 - 4*x, 3.0, 0.5)")
grading.passed("central_difference")
### BEGIN HIDDEN TESTS
grading.assert_close(central_difference(np.sin, 1.0, 1e-5), np.cos(1.0), rtol=1e-8,
                     name="central_difference(np.sin, 1.0, 1e-5)")
### END HIDDEN TESTS

# %% solution="squares_gradient"
def squares_gradient(theta):
    """The gradient of sum(theta**2), an array of theta's shape."""
    ### BEGIN SOLUTION
    return 2 * np.asarray(theta, dtype=float)
    ### END SOLUTION

# %% test="test_squares_gradient" points=3
with grading.exercise(3, "squares_gradient"):
    grading.assert_close(squares_gradient(np.array([1.0, -2.0])), np.array([2.0, -4.0]),
                         name="squares_gradient([1, -2])")
grading.passed("squares_gradient")
### BEGIN HIDDEN TESTS
grading.assert_close(squares_gradient(np.arange(6.0).reshape(2, 3)),
                     2 * np.arange(6.0).reshape(2, 3), name="squares_gradient of a 2x3 array")
### END HIDDEN TESTS
'''
QUICK_MISTAKES = {  # a plausible mistake in two of its exercises (submit_class)
    "central_difference": "def central_difference(f, x, eps):\n"
                          "    return (f(x + eps) - f(x - eps)) / eps\n",
    "squares_gradient": "def squares_gradient(theta):\n    return np.asarray(theta, dtype=float)\n",
}


def quick_course(dest):
    """A course holding only the quick assignment, built and verified (its
    solution scores full marks, every test fails on the student version)."""
    from autodiff_course.build import build

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(COURSE / "nbgrader_config.py", dest / "nbgrader_config.py")
    folder = dest / "notebooks" / QUICK_ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / QUICK_NOTEBOOK.replace(".ipynb", ".py")).write_text(QUICK_SOURCE)
    problems = build(dest, [QUICK_ASSIGNMENT], log=lambda *a: None)
    assert problems == [], problems
    return dest


def grade_or_kill_worker(assignment_templates, files, student, *args, **kw):
    """A phase-1 task (``submission.grade_files``) that kills the worker
    process running it when the student is called "killer", as a submission
    that runs its worker out of memory would."""
    if student == "killer":
        os.kill(os.getpid(), 9)
    from autodiff_course.grading.submission import grade_files

    return grade_files(assignment_templates, files, student, *args, **kw)


# ------------------------------------------------ a Dask cluster


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_environment():
    """The embedded cluster's Dask settings (``cluster.CLUSTER_SETTINGS``) as
    the environment variables docs/distributed-grading.md gives for workers
    started by hand (``DASK_`` + the key, dots as ``__``, dashes as ``_``)."""
    from autodiff_course.grading.cluster import CLUSTER_SETTINGS

    return {"DASK_" + key.replace(".", "__").replace("-", "_").upper(): str(value)
            for key, value in CLUSTER_SETTINGS.items()}


@contextmanager
def dask_cluster(folder, workers=2):
    """`dask scheduler` and `dask worker ... --nthreads 1` processes on
    127.0.0.1, each in its own empty folder (no course folder to share),
    with its own temporary folder (the process's ``temporary``)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    logs = Path(folder)

    def start(name, args):
        cwd = logs / name
        cwd.mkdir(parents=True, exist_ok=True)
        # its own temporary folder, with a short path (the kernels' sockets go there)
        temporary = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))
        out = open(cwd / "log.txt", "w")
        procs.append(subprocess.Popen([str(Path(sys.executable).parent / "dask"), *args], cwd=cwd, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      env={**os.environ, "TMPDIR": str(temporary),
                                           **dask_environment()}))
        procs[-1].temporary = temporary
        return procs[-1]

    try:
        start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                            "--no-dashboard", "--no-show"])
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (logs / "scheduler" / "log.txt").read_text()
                time.sleep(0.2)
        # --no-nanny: the worker is this OS process, so killing it kills the worker
        worker_procs = [start(f"worker{i}", ["worker", address, "--nthreads", "1", "--no-nanny",
                                             "--no-dashboard", "--host", "127.0.0.1",
                                             "--local-directory", str(logs / f"worker{i}")])
                        for i in range(workers)]
        yield address, worker_procs
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
            shutil.rmtree(p.temporary, ignore_errors=True)


def hidden_test_lines(source_nb):
    """The lines (over 20 characters) of the hidden tests of a source notebook."""
    lines = []
    for cell in nbformat.read(source_nb, as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 20:
                lines.append(line.strip())
    return lines
