"""The course end to end, with the real nbgrader CLI: regenerate, release,
fetch as three students, submit, collect, autograde, feedback, export."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import nbformat
import pytest

from course_helpers import fill_in, run, solution_sources

pytestmark = pytest.mark.slow

ASSIGNMENT = "01_derivatives"
NOTEBOOK = "derivatives.ipynb"
TOTAL = 18  # the autograded points
MAX_SCORE = TOTAL + 2  # and two written answers, graded by hand

# Bob's answers: two plausible mistakes, everything else correct.
BOB_MISTAKES = {
    # forgot the 2 in the denominator: off by a factor of 2
    "central_difference": (
        "def central_difference(f, x, eps):\n"
        "    return (f(x + eps) - f(x - eps)) / eps\n"),
    # divides the full product by each entry: breaks as soon as theta has a zero
    "product_partials": (
        "def product_partials(theta):\n"
        "    theta = np.asarray(theta, dtype=float)\n"
        "    return np.prod(theta) / theta\n"),
}
BOB_LOST = {"test_central_difference": 1, "test_product_partials": 2}


def test_regenerate_verifies_the_course(built_course):
    course, problems = built_course
    assert problems == []
    for folder in ("source", "release", "solution"):
        assert (course / folder / ASSIGNMENT / NOTEBOOK).exists(), folder
    release = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in release.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text
    solution = nbformat.read(course / "solution" / ASSIGNMENT / NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in solution.cells)
    assert "HIDDEN TESTS" not in text
    assert "BEGIN SOLUTION" in text  # the solution code is there for students


def test_verify_catches_a_test_that_passes_on_the_student_version(built_course, tmp_path):
    """The build's check is real: a test cell that cannot fail is reported."""
    from autodiff_course.build import verify
    import shutil

    course, _ = built_course
    copy = tmp_path / "course"
    shutil.copytree(course, copy)
    path = copy / "release" / ASSIGNMENT / NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    cell.source = "assert True"
    del cell.metadata.nbgrader["checksum"]
    nbformat.write(nb, path)
    problems = verify(copy, [ASSIGNMENT], log=lambda *a: None)
    assert any("pass on the student version" in p for p in problems), problems


def test_full_pipeline(built_course, tmp_path):
    course, problems = built_course
    assert problems == []
    env = {"AUTODIFF_COURSE_EXCHANGE": str(tmp_path / "exchange")}
    (tmp_path / "exchange").mkdir()
    run(["nbgrader", "release_assignment", ASSIGNMENT, "--force"], course, env)

    answers = solution_sources(course / "source" / ASSIGNMENT / NOTEBOOK)
    plan = {
        "alice": answers,  # everything right
        "bob": {**answers, **BOB_MISTAKES},  # two mistakes
        "carol": {},  # submits the notebook untouched
    }
    for student, filled in plan.items():
        home = tmp_path / student
        home.mkdir()
        # a student's machine has no course config: the exchange is given on the line
        exchange = f"--Exchange.root={tmp_path / 'exchange'}"
        run(["nbgrader", "fetch_assignment", ASSIGNMENT, "--course", "autodiff-course",
             exchange], home, env)
        fill_in(home / ASSIGNMENT / NOTEBOOK, filled)
        run(["nbgrader", "submit", ASSIGNMENT, "--course", "autodiff-course",
             f"--student={student}", exchange], home, env)

    run(["nbgrader", "collect", ASSIGNMENT], course, env)
    for student in plan:
        assert (course / "submitted" / student / ASSIGNMENT / NOTEBOOK).exists()
    run(["nbgrader", "autograde", ASSIGNMENT], course, env)
    run(["nbgrader", "generate_feedback", ASSIGNMENT], course, env)
    run(["nbgrader", "export", "--to", str(tmp_path / "grades.csv")], course, env)

    with open(tmp_path / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == ASSIGNMENT}
    scores = {s: float(rows[s]["score"]) for s in plan}
    assert scores == {"alice": TOTAL, "bob": TOTAL - sum(BOB_LOST.values()), "carol": 0.0}
    assert all(float(rows[s]["max_score"]) == MAX_SCORE for s in plan)

    feedback = (course / "feedback" / "bob" / ASSIGNMENT /
                NOTEBOOK.replace(".ipynb", ".html")).read_text()
    feedback = " ".join(feedback.split())  # explanations are wrapped at 78 columns
    assert "off by a factor of 2" in feedback  # the helper's words, not just a traceback
    assert "NaN or infinity" in feedback or "wrong values" in feedback
    alice = (course / "feedback" / "alice" / ASSIGNMENT /
             NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "off by a factor" not in alice and "NaN or infinity" not in alice


def test_nbval_runs_every_source_notebook(built_course):
    """Every source notebook runs top to bottom in a fresh kernel under nbval."""
    course, _ = built_course
    notebooks = sorted(str(p) for p in (course / "source").glob("*/*.ipynb"))
    assert notebooks
    runner = str(Path(__file__).parent / "nbval_ipc.py")
    proc = run([sys.executable, runner, "--nbval-lax", "--nbval-cell-timeout=120", "-p",
                "no:xdist", "-p", "no:cacheprovider", "-q", *notebooks], course, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_committed_release_matches_a_fresh_build(built_course):
    """course/release/ is committed for Binder: it must be what the build makes."""
    from course_helpers import COURSE

    course, _ = built_course
    fresh = {p.relative_to(course / "release") for p in (course / "release").glob("*/*.ipynb")}
    committed = {p.relative_to(COURSE / "release")
                 for p in (COURSE / "release").glob("*/*.ipynb")}
    assert committed == fresh, "run `autodiff-course build` and commit course/release/"
    for rel in fresh:
        a = nbformat.read(course / "release" / rel, as_version=4)
        b = nbformat.read(COURSE / "release" / rel, as_version=4)
        assert [(c.cell_type, c.source, c.metadata) for c in a.cells] == \
            [(c.cell_type, c.source, c.metadata) for c in b.cells], \
            f"course/release/{rel} is stale: run `autodiff-course build` and commit it"
