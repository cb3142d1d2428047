"""The class report, the similarity list and the LMS exports on a simulated
class: notebook 01 of a course copy, 16 submissions with planted mistakes of
known kinds, two planted copies and independently written correct answers,
graded once with `autodiff-course grade` and shared by every test here.

The report's numbers must equal what was planted; the copies (renamed
variables, reordered lines) must be flagged and nothing else; the HTML must
render in a real browser; the exports must have the LMS's columns and the
gradebook's grades (manual grades included)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil

import nbformat
import pytest

import class_answers as C
from autodiff_course.grading import sandbox
from course_helpers import COURSE, run, solution_sources

pytestmark = pytest.mark.slow

A, NB = "01_derivatives", "derivatives.ipynb"


def _points():
    """{exercise: points} of notebook 01's tests, in notebook order (exercise =
    the test's grade id without "test_"), read from the course's source."""
    text = (COURSE / "notebooks" / A / "derivatives.py").read_text()
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r'^# %% test="test_(\w+)" points=(\d+)', text, re.M)}


POINTS = _points()
TESTS = {k: f"{NB}:test_{k}" for k in POINTS}
AFTER_FLOOD = list(POINTS)[list(POINTS).index("numerical_gradient"):]

# student -> (their answers instead of the reference's, {exercise: planted category})
CLASS = {
    "amara": ({}, {}),
    "bruno": ({"product_partials": C.PP_CUMPROD, "numerical_gradient": C.NG_FLAT}, {}),
    "chen": ({"product_partials": C.PP_LISTS, "numerical_gradient": C.NG_NDITER}, {}),
    "dara": ({"product_partials": C.PP_ONE_ARRAY}, {}),
    "farah": ({"product_partials": C.PP_WHILE}, {}),
    "gus": ({"product_partials": C.PP_WHILE_COPY}, {}),
    "hana": ({"numerical_gradient": C.NG_IN_PLACE}, {}),
    "ivo": ({"numerical_gradient": C.NG_IN_PLACE_COPY}, {}),
    "jon": ({"forward_difference": C.FD_NEGATED, "product_partials": C.PP_FINITE_DIFFERENCES},
            {"forward_difference": "wrong_sign", "product_partials": "not_exact"}),
    "kemal": ({"forward_difference": C.FD_NEGATED, "central_difference": C.CD_HALF_STEP},
              {"forward_difference": "wrong_sign", "central_difference": "constant_factor"}),
    "lena": ({"forward_difference": C.FD_NEGATED, "product_partials": C.PP_DIVIDE},
             {"forward_difference": "wrong_sign", "product_partials": "not_finite"}),
    "mo": ({"central_difference": C.CD_HALF_STEP, "numerical_gradient": C.NG_NO_RETURN},
           {"central_difference": "constant_factor", "numerical_gradient": "returned_nothing"}),
    # an answer that also patches NumPy: the screen notes it, the tests run in the
    # judge, so the honest part keeps its points and the patch changes nothing
    "nia": ({"product_partials": C.PP_TYPE_ERROR, "relative_error": "PATCH"},
            {"product_partials": "error:TypeError"}),
    # a flood of output stops the run at numerical_gradient
    "omar": ({"numerical_gradient": "FLOOD"}, {k: "fault" for k in AFTER_FLOOD}),
    "pia": (None, {k: "not_written" for k in POINTS}),  # untouched
    "quinn": ({"product_partials": C.PP_WHILE, "numerical_gradient": C.NG_NDITER}, {}),
}
COPIES = {("farah", "gus", "product_partials"), ("hana", "ivo", "numerical_gradient"),
          # quinn handed in farah's product_partials and chen's numerical_gradient verbatim
          ("farah", "quinn", "product_partials"), ("gus", "quinn", "product_partials"),
          ("chen", "quinn", "numerical_gradient")}


def expected_score(student):
    return sum(p for k, p in POINTS.items() if k not in CLASS[student][1])


def _submit(course):
    release = course / "release" / A / NB
    ref = solution_sources(course / "source" / A / NB)
    for student, (mine, _) in CLASS.items():
        nb = nbformat.read(release, as_version=4)
        answers = {} if mine is None else {**ref, **mine}
        answers = {k: {"PATCH": ref[k] + C.PATCH, "FLOOD": C.FLOOD + ref[k]}.get(v, v)
                   for k, v in answers.items()}
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answers[gid]
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
        nbformat.write(nb, folder / NB)


@pytest.fixture(scope="module")
def graded(built_course):
    """The class graded once, as the README says: `autodiff-course grade` in the course."""
    why = sandbox.available()
    if why and not os.environ.get("CI"):
        pytest.skip(why)
    course, problems = built_course
    assert problems == []
    _submit(course)
    run(["autodiff-course", "grade", A, "--cell-timeout", "30"], course)
    return course


@pytest.fixture(scope="module")
def report(graded):
    proc = run(["autodiff-course", "report", A], graded)
    assert "class-report.html" in proc.stdout
    folder = graded / "grading-reports" / A
    return graded, folder, json.loads((folder / "class-report.json").read_text())


@pytest.fixture(scope="module")
def named(report):
    """`autodiff-course report A --names`, run once after the anonymised report."""
    course, folder, _ = report
    run(["autodiff-course", "report", A, "--names"], course)
    return json.loads((folder / "class-report-named.json").read_text())


def _by_test(summary):
    found = {}
    for d in summary["diagnoses"]:
        found.setdefault(d["test"], {})[d["category"]] = d["count"]
    return found


def test_the_diagnoses_are_the_planted_mistakes(report):
    _, _, summary = report
    planted = {}
    for _, kinds in CLASS.values():
        for exercise, code in kinds.items():
            bucket = planted.setdefault(TESTS[exercise], {})
            bucket[code] = bucket.get(code, 0) + 1
    assert _by_test(summary) == planted
    n = len(CLASS)
    assert summary["students"] == n
    for d in summary["diagnoses"]:
        assert d["fraction"] == d["count"] / n
        assert d["example"] and d["example_student"].startswith("student ")


def test_credit_per_test_and_scores(report):
    _, folder, summary = report
    for x in summary["exercises"]:
        exercise = x["test"].split(":test_", 1)[1]
        failed = sum(exercise in kinds for _, kinds in CLASS.values())
        assert (x["full"], x["partial"], x["none"]) == (len(CLASS) - failed, 0, failed)
    assert sorted(r["score"] for r in summary["scores"]) == \
        sorted(expected_score(s) for s in CLASS)
    with open(folder / "class-diagnoses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["test"], r["category"], int(r["count"])) for r in rows} == \
        {(d["test"], d["category"], d["count"]) for d in summary["diagnoses"]}
    assert len(summary["faults"]) == 1 and "MB of output" in summary["faults"][0]["reason"]
    assert len(summary["violations"]) == 1
    assert "attribute" in summary["violations"][0]["violation"]


def test_students_are_anonymised_unless_asked(report, named):
    course, folder, summary = report
    # the named report is written beside the anonymised one, never over it
    assert json.loads((folder / "class-report.json").read_text()) == summary
    assert {r["student"] for r in named["scores"]} == set(CLASS)
    text = "".join((folder / name).read_text() for name in
                   ("class-report.html", "class-report.json", "class-scores.csv",
                    "class-diagnoses.csv", "class-similarity.csv"))
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    for student in CLASS:
        assert not re.search(rf"\b{student}\b", text), student
    labels = {r["student"] for r in summary["scores"]}
    assert len(labels) == len(CLASS) and all(s.startswith("student ") for s in labels)
    # the same pseudonyms on a second run
    run(["autodiff-course", "report", A], course)
    again = json.loads((folder / "class-report.json").read_text())
    assert again["scores"] == summary["scores"]


def test_copies_are_flagged_and_independent_answers_are_not(named):
    summary = named
    flagged = {(p["a"], p["b"], p["exercise"].split(":", 1)[1])
               for p in summary["similar_pairs"]}
    assert flagged == COPIES
    for p in summary["similar_pairs"]:
        assert min(p["similarity_a"], p["similarity_b"]) >= 0.6
        assert p["spans_a"] and p["spans_b"]


@pytest.mark.browser
def test_the_report_renders_in_a_browser(report):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium) and not os.environ.get("CI"):  # CI installs it
        pytest.skip("no Chromium: install Debian's chromium (apt-get install chromium)")
    from playwright import sync_api as playwright
    from test_browser import ARGS

    _, folder, summary = report
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            page = browser.new_page()
            page.goto((folder / "class-report.html").as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
            assert len(images) == 4
            for complete, width, alt in images:
                assert complete and width > 0 and len(alt) > 20
            assert page.locator("h1").inner_text() == f"Class report: {A}"
            assert page.locator(".pair").count() == len(summary["similar_pairs"])
            assert "wrong sign" in page.content()
        finally:
            browser.close()


# ------------------------------------------------------------- exports


def _roster(path, students, canvas=True):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "student_id",
                    "Email address"])
        for i, s in enumerate(students):
            w.writerow([f"{s.title()}, Test", 1000 + i, f"S{i:04d}", f"{s}@uni.example",
                        "Section A", s, f"{s}@uni.example"])


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _manual_grade(course, student, points):
    """Change one autograded test's score by hand, as formgrader would."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="autodiff-course") as gb:
        grade = gb.find_grade("test_forward_difference", "derivatives", A, student)
        grade.manual_score = points
        gb.db.commit()


def test_canvas_export(graded, tmp_path):
    course = graded
    _manual_grade(course, "jon", 1.0)  # jon's wrong sign forgiven by hand
    students = sorted(CLASS) + ["zoe"]  # zoe is enrolled and handed nothing in
    _roster(tmp_path / "roster.csv", students)
    out = tmp_path / "canvas.csv"
    proc = run(["autodiff-course", "export", A, "--format", "canvas", "--roster",
                str(tmp_path / "roster.csv"), "-o", str(out)], course)
    rows = _read(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    got = {r[3].split("@")[0]: r[5] for r in rows[1:]}
    expected = {s: f"{expected_score(s):g}" for s in CLASS}
    expected["jon"] = f"{expected_score('jon') + 1:g}"
    assert got == {**expected, "zoe": ""}
    assert "zoe" in proc.stderr and "WARNING" in proc.stderr


def test_moodle_export_and_students_missing_from_the_roster(graded, tmp_path):
    course = graded
    _roster(tmp_path / "roster.csv", sorted(set(CLASS) - {"pia", "omar"}))
    out = tmp_path / "moodle.csv"
    proc = run(["autodiff-course", "export", A, "--format", "moodle", "--roster",
                str(tmp_path / "roster.csv"), "-o", str(out), "--column", "Derivatives"],
               course, check=False)
    assert proc.returncode == 1
    assert "pia" in proc.stderr and "omar" in proc.stderr and "NOT in the file" in proc.stderr
    rows = _read(out)
    assert rows[0] == ["Email address", "Derivatives"]
    assert {r[0] for r in rows[1:]} == {f"{s}@uni.example" for s in CLASS if s not in
                                        ("pia", "omar")}
    assert dict(rows[1:])["kemal@uni.example"] == f"{expected_score('kemal'):g}"


def test_export_refuses_a_roster_without_the_columns(graded, tmp_path):
    (tmp_path / "roster.csv").write_text("student_id,name\namara,Amara\n")
    proc = run(["autodiff-course", "export", A, "--format", "canvas", "--roster",
                str(tmp_path / "roster.csv")], graded, check=False)
    assert proc.returncode == 2 and "no column 'Student'" in proc.stderr
