"""A whole class graded with `autodiff-course grade`: honest, partly wrong,
untouched, broken and cheating submissions built from the real notebook 01.
Each must score exactly what it earned, and nothing may be lost."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import random
import shutil

import nbformat
import pytest

from autodiff_course.grading import sandbox
from autodiff_course.grading.grade import grade
from course_helpers import run, solution_sources

pytestmark = pytest.mark.slow

A, NB = "01_derivatives", "derivatives.ipynb"
POINTS = {"gradient_descent": 1, "forward_difference": 1, "central_difference": 1,
          "richardson": 2, "richardson_table": 2, "optimal_step": 2, "numerical_gradient": 2,
          "relative_error": 1, "directional_check": 2, "coordinate_check": 2,
          "product_partials": 2}
TOTAL = sum(POINTS.values())
TEST_OF = {k: f"test_{k}" for k in POINTS}

WRONG = {  # a plausible mistake per exercise
    "gradient_descent": (  # steps uphill
        "def gradient_descent(grad, theta0, eta, steps):\n"
        "    path = [np.array(theta0, dtype=float)]\n"
        "    for _ in range(steps):\n        path.append(path[-1] + eta * grad(path[-1]))\n"
        "    return np.array(path)\n"),
    "richardson": (  # averages the two central differences instead of extrapolating
        "def richardson(f, x, eps):\n"
        "    coarse = (f(x + eps) - f(x - eps)) / (2 * eps)\n"
        "    fine = (f(x + eps / 2) - f(x - eps / 2)) / eps\n"
        "    return (fine + coarse) / 2\n"),
    "richardson_table": (  # the weight 4 in every column instead of 4**j
        "def richardson_table(f, x, eps, levels):\n"
        "    T = np.full((levels + 1, levels + 1), np.nan)\n"
        "    for k in range(levels + 1):\n        h = eps / 2**k\n"
        "        T[k, 0] = (f(x + h) - f(x - h)) / (2 * h)\n"
        "        for j in range(1, k + 1):\n"
        "            T[k, j] = (4 * T[k, j - 1] - T[k - 1, j - 1]) / 3\n"
        "    return T\n"),
    "optimal_step": (  # forgets the factor p from the derivative of C eps^p
        "def optimal_step(C, p, R):\n    e = (R / C) ** (1 / (p + 1))\n"
        "    return e, C * e**p + R / e\n"),
    "coordinate_check": (  # forward instead of central differences
        "def coordinate_check(f, grad_f, theta, k, eps=1e-6, rng=None):\n"
        "    rng = np.random.default_rng() if rng is None else rng\n"
        "    theta = np.array(theta, dtype=float)\n    g = grad_f(theta.copy())\n"
        "    flat = rng.choice(theta.size, size=min(k, theta.size), replace=False)\n"
        "    idx = [np.unravel_index(int(p), theta.shape) for p in flat]\n"
        "    err = []\n    for i in idx:\n        step = np.zeros_like(theta)\n"
        "        step[i] = eps\n        num = (f(theta + step) - f(theta)) / eps\n"
        "        err.append(abs(g[i] - num) / max(abs(g[i]), abs(num), 1e-12))\n"
        "    return idx, np.array(err)\n"),
    "forward_difference": "def forward_difference(f, x, eps):\n    return -(f(x + eps) - f(x)) / eps\n",
    "central_difference": "def central_difference(f, x, eps):\n    return (f(x + eps) - f(x - eps)) / eps\n",
    "numerical_gradient": (
        "def numerical_gradient(f, theta, eps=1e-6):\n"
        "    theta = np.array(theta, dtype=float)\n    grad = np.zeros_like(theta)\n"
        "    for i in range(theta.size):\n        up = theta.copy()\n"
        "        up.flat[i] += eps\n        grad.flat[i] = (f(up) - f(theta)) / eps\n"
        "    return grad\n"),
    "relative_error": ("def relative_error(a, b):\n"
                       "    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / "
                       "max(np.linalg.norm(b), 1e-12)\n"),
    "directional_check": (
        "def directional_check(f, grad_f, theta, eps=1e-6, rng=None):\n"
        "    rng = np.random.default_rng() if rng is None else rng\n"
        "    theta = np.asarray(theta, dtype=float)\n"
        "    d = rng.standard_normal(theta.shape)\n    d /= np.linalg.norm(d)\n"
        "    analytic = np.sum(d * grad_f(theta))\n"
        "    numeric = (f(theta + eps * d) - f(theta - eps * d)) / eps\n"
        "    return relative_error(analytic, numeric)\n"),
    "product_partials": ("def product_partials(theta):\n"
                         "    theta = np.asarray(theta, dtype=float)\n"
                         "    return np.prod(theta) / theta\n"),
}


def _notebook(release, answers=None, edit=None):
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if answers and gid in answers:
            cell.source = answers[gid]
    if edit:
        edit(nb)
    return nb


def _add_cell(index, source):
    return lambda nb: nb.cells.insert(index, nbformat.v4.new_code_cell(source))


def _tests(edit_cell):
    def edit(nb):
        for cell in list(nb.cells):
            if cell.metadata.get("nbgrader", {}).get("grade"):
                edit_cell(nb, cell)
    return edit


def _delete(nb, cell):
    nb.cells.remove(cell)


def _blank(nb, cell):
    cell.source = "pass"


def _retag(nb, cell):
    cell.metadata.nbgrader.update(grade=False, solution=True, locked=False)


def make_class(course):
    """Write every submission into course/submitted; return {student: (expected, note)}."""
    release = course / "release" / A / NB
    ans = solution_sources(course / "source" / A / NB)
    expected = {}

    def submit(student, score, nb=None, raw=None, name=NB, note=""):
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
        if nb is not None:
            nbformat.write(nb, folder / name)
        if raw is not None:
            (folder / name).write_bytes(raw)
        expected[student] = (score, note)

    def wrong(*names):
        return {**ans, **{n: WRONG[n] for n in names}}

    def lost(*names):
        names = set(names)
        if "relative_error" in names:  # the solution's directional_check calls it
            names.add("directional_check")
        return TOTAL - sum(POINTS[n] for n in names)

    for i in range(18):
        submit(f"honest{i:02d}", TOTAL, _notebook(release, ans))
    rng = random.Random(4)
    for i in range(18):
        names = rng.sample(sorted(POINTS), rng.randint(1, 6))
        submit(f"partly{i:02d}", lost(*names), _notebook(release, wrong(*names)))
    for i in range(6):
        submit(f"untouched{i}", 0, _notebook(release))

    # broken submissions
    submit("broken_binary", 0, raw=os.urandom(300), note="could not be read")
    submit("broken_json", 0, raw=b'{"cells": [', note="could not be read")
    submit("broken_missing", 0, note="missing")
    submit("broken_renamed", TOTAL, _notebook(release, ans), name="my derivatives (1).ipynb",
           note="submitted as")
    v3 = nbformat.convert(_notebook(release, ans), 3)
    submit("broken_nbformat3", TOTAL, raw=nbformat.writes(v3, version=3).encode())
    submit("broken_syntax", lost("central_difference"),
           _notebook(release, {**ans, "central_difference": "def central_difference(f, x, eps:\n"}))
    submit("broken_timeout", lost("product_partials"),
           _notebook(release, {**ans, "product_partials": ans["product_partials"] +
                               "\nwhile True:\n    pass\n"}), note="more than")
    submit("broken_memory", TOTAL,
           _notebook(release, {**ans, "relative_error": ans["relative_error"] +
                               "\nhog = bytearray(16 * 1024 ** 3)\n"}))
    submit("broken_flood", sum(POINTS[n] for n in ("gradient_descent", "forward_difference",
                                                   "central_difference", "richardson",
                                                   "richardson_table", "optimal_step")),
           _notebook(release, {**ans, "numerical_gradient": "print('x' * (40 * 1024 ** 2))\n" +
                               ans["numerical_gradient"]}), note="MB of output")
    submit("broken_deleted_tests", TOTAL, _notebook(release, ans, _tests(_delete)))

    # cheating: the cheat earns nothing, honest work beside it what it earned
    everything_wrong = wrong(*POINTS)
    patch = "\nnp.testing.assert_allclose = lambda *a, **k: None\nnp.allclose = lambda *a, **k: True\n"
    submit("cheat_patch_in_answer", 0,
           _notebook(release, {**everything_wrong,
                               "forward_difference": everything_wrong["forward_difference"] + patch}),
           note="attribute-assignment")
    submit("cheat_patch_added_cell", 0, _notebook(release, everything_wrong, _add_cell(2, patch)))
    submit("cheat_patch_added_cell_honest", TOTAL, _notebook(release, ans, _add_cell(2, patch)))
    submit("cheat_grading_helper", lost("central_difference"),
           _notebook(release, {**ans, "central_difference": WRONG["central_difference"] +
                               "\ngrading.assert_close = lambda *a, **k: None\n"}),
           note="grading")
    submit("cheat_sys_modules", lost("product_partials"),
           _notebook(release, {**ans, "product_partials": WRONG["product_partials"] +
                               "\nimport sys\nsys.modules['autodiff_ref.grading'] = None\n"}),
           note="import")
    submit("cheat_swallow_errors", lost("relative_error"),
           _notebook(release, {**ans, "relative_error": WRONG["relative_error"] +
                               "\nget_ipython().set_custom_exc((Exception,), lambda *a, **k: None)\n"}),
           note="get_ipython")
    submit("cheat_edit_tests", lost("central_difference"),
           _notebook(release, wrong("central_difference"), _tests(_blank)))
    submit("cheat_retag_tests", lost("product_partials"),
           _notebook(release, wrong("product_partials"), _tests(_retag)))
    submit("cheat_engine", lost("product_partials"),
           _notebook(release, {**ans, "product_partials": (
               "def product_partials(theta):\n"
               "    x = ad.tensor(np.asarray(theta, dtype=float), requires_grad=True)\n"
               "    y = x[0]\n    for k in range(1, len(theta)):\n        y = y * x[k]\n"
               "    y.backward()\n    return x.grad.numpy()\n")}), note="delegation")
    submit("cheat_finite_differences", lost("product_partials"),
           _notebook(release, {**ans, "product_partials": (
               "def product_partials(theta):\n"
               "    return numerical_gradient(lambda t: np.prod(t), np.asarray(theta, float))\n")}))
    submit("cheat_complex_step", lost("product_partials"),
           _notebook(release, {**ans, "product_partials": (
               "def product_partials(theta):\n    theta = np.asarray(theta, dtype=float)\n"
               "    out = np.zeros(len(theta))\n    for k in range(len(theta)):\n"
               "        z = theta.astype(complex)\n        z[k] += 1e-30j\n"
               "        out[k] = np.prod(z).imag / 1e-30\n    return out\n")}), note="exact")
    return expected


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def _export(course, tmp_path, name):
    path = tmp_path / name
    run(["nbgrader", "export", "--to", str(path)], course)
    with open(path, newline="") as f:
        return {r["student_id"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == A}


@pytest.fixture(scope="module")
def graded(built_course, tmp_path_factory):
    why = sandbox.available()
    if why and not os.environ.get("CI"):
        pytest.skip(why)
    course, problems = built_course
    assert problems == []
    expected = make_class(course)
    assert len(expected) >= 60
    before = {d: _digest(course / d) for d in ("submitted", "source", "release")}
    outcomes = grade(course, A, jobs=2, cell_timeout=30, log=lambda *a: None)
    return course, expected, outcomes, before, tmp_path_factory.mktemp("export")


def test_every_submission_scores_exactly_what_it_earned(graded):
    course, expected, outcomes, _, tmp = graded
    table = _export(course, tmp, "grades.csv")
    assert table == {s: float(score) for s, (score, _) in expected.items()}


def test_the_report_says_who_tried_what(graded):
    course, expected, outcomes, _, _ = graded
    report = json.loads((course / "grading-reports" / A / "report.json").read_text())
    assert report["problems"] == []
    by_student = {s["student"]: s for s in report["submissions"]}
    assert set(by_student) == set(expected)
    for student, (_, note) in expected.items():
        text = " ".join(by_student[student]["reasons"] + by_student[student]["violations"])
        if note:
            assert note in text, (student, text)
        if student.startswith(("honest", "partly", "untouched")):
            assert text == "", (student, text)
    assert by_student["cheat_patch_added_cell"]["dropped_cells"] == 1
    assert (course / "grading-reports" / A / "summary.csv").exists()


def test_feedback_explains_the_cheat_and_the_mistakes(graded):
    course, *_ = graded
    run(["nbgrader", "generate_feedback", A], course)
    from autodiff_ref import grading

    # a policy the screen still enforces: the answer was not run, and says why
    html = (course / "feedback" / "cheat_complex_step" / A / "derivatives.html").read_text()
    assert "The autograder did not run this answer" in html and "complex" in html
    # tampering is harmless now: the cheat's wrong answers are explained like anyone's
    for student in ("cheat_patch_in_answer", "partly00"):
        html = (course / "feedback" / student / A / "derivatives.html").read_text()
        assert any(f"{error.__name__}:" in html for error in grading.ERRORS), student
        assert "BEGIN HIDDEN TESTS" not in html


def test_grading_changes_no_submission_and_no_course_file(graded):
    course, _, _, before, _ = graded
    for folder, digest in before.items():
        assert _digest(course / folder) == digest, folder


def test_rerun_is_idempotent_and_resumes(graded):
    course, expected, _, _, tmp = graded
    first = _export(course, tmp, "first.csv")
    again = grade(course, A, jobs=2, cell_timeout=30, log=lambda *a: None)
    assert all(o.cached for o in again)
    assert _export(course, tmp, "again.csv") == first
    # an interrupted run: one student's phase-1 result is missing
    shutil.rmtree(course / "autograde-input" / "honest03")
    resumed = grade(course, A, jobs=2, cell_timeout=30, log=lambda *a: None)
    assert [o.student for o in resumed if not o.cached] == ["honest03"]
    assert _export(course, tmp, "resumed.csv") == first


def test_two_grading_runs_cannot_overlap(graded):
    course, *_ = graded
    with open(course / ".autograde.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="another grading run"):
            grade(course, A, jobs=2, log=lambda *a: None)
