"""A class that works in two languages, graded with one command into one
gradebook (README: `autodiff-course grade`, `nbgrader generate_feedback`,
`autodiff-course report`), in a copy of the built course outside the
repository.

Four students: the same right answers and the same mistake (central
difference without the 2), each once in the English and once in the Chinese
notebook. The same answers must score the same; the Chinese feedback must
explain the mistake in Chinese, with Chinese prose and no hidden test; the
English feedback stays English.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

import nbformat
import polib
import pytest
from nbgrader.utils import compute_checksum

from autodiff_course import messages
from autodiff_course.grading import sandbox
from autodiff_course.grading.language import edition_name
from autodiff_course.translation import load_catalog, translate_source, units
from course_helpers import COURSE, hidden_test_lines, run, solution_sources

pytestmark = pytest.mark.slow

A, NB = "01_derivatives", "derivatives.ipynb"
ZH = "zh-CN"
ZH_NB = edition_name(NB, ZH)
CJK = re.compile(r"[\u4e00-\u9fff]")
# the mistake: the central difference without its 2; and the two students who
# make it share one unusual (right) product_partials, which the similarity
# list must find across the two editions
MISTAKE = {"central_difference": "return (f(x + eps) - f(x - eps)) / eps\n",
           "product_partials": (
               "theta = np.asarray(theta, dtype=float)\n"
               "out = np.empty(len(theta))\n"
               "for position in range(len(theta)):\n"
               "    others = np.concatenate([theta[:position], theta[position + 1:]])\n"
               "    out[position] = np.prod(others) if len(others) else 1.0\n"
               "return out\n")}
STUDENTS = {"en_right": (NB, {}), "zh_right": (ZH_NB, {}),
            "en_mistake": (NB, MISTAKE), "zh_mistake": (ZH_NB, MISTAKE)}


def _text(page):
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())


def _autodiff_course(args, cwd):
    return run([str(Path(sys.executable).parent / "autodiff-course"), *args], cwd)


def _zh_edition(course):
    """The Chinese release notebook and the visible tests' catalog, as the
    build writes them; made here from the catalogs if this build does not."""
    if not (course / "translations").exists():
        shutil.copytree(COURSE / "translations", course / "translations")
    assert messages.build_messages(course, A) == []
    target = course / "release" / A / ZH_NB
    if target.exists():
        return
    catalog = load_catalog(course / "translations" / "zh_CN" / f"{A}.po")
    nb = nbformat.read(course / "release" / A / NB, as_version=4)
    for cell in nb.cells:
        pieces = units(cell)
        if pieces and not cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = translate_source(cell.source, pieces,
                                           lambda u: catalog.get(u.text, u.text))
            if "checksum" in cell.metadata.get("nbgrader", {}):  # its own, as the build does
                cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
    setup = next(c for c in nb.cells if "from autodiff_ref import grading" in c.source)
    setup.source = setup.source.replace("from autodiff_ref import grading",
                                        f'from autodiff_ref import grading\n'
                                        f'grading.use_language("{ZH}")', 1)
    if "checksum" in setup.metadata.get("nbgrader", {}):
        setup.metadata.nbgrader["checksum"] = compute_checksum(setup)
    nbformat.write(nb, target)


def _code_answers(course):
    """grade id -> the body of the reference solution (between the markers)."""
    source = course / "source" / A / NB
    code = {c.metadata.nbgrader["grade_id"] for c in nbformat.read(source, as_version=4).cells
            if c.cell_type == "code"}
    bodies = {}
    for gid, text in solution_sources(source).items():
        if gid in code:
            body = text.split("### BEGIN SOLUTION\n", 1)[1].split("### END SOLUTION", 1)[0]
            bodies[gid] = textwrap.dedent(body)
    return bodies


def _write_answer(stub, body):
    """What a student does: the stub's `raise NotImplementedError()` (and the
    comment above it) replaced by code, in the notebook's own language."""
    lines = stub.split("\n")
    at = next(i for i, line in enumerate(lines) if "raise NotImplementedError()" in line)
    indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    start = at - 1 if at and lines[at - 1].strip().startswith("#") else at
    code = [indent + line if line else line for line in body.rstrip("\n").split("\n")]
    return "\n".join(lines[:start] + code + lines[at + 1:])


@pytest.fixture(scope="module")
def graded(built_course, tmp_path_factory):
    why = sandbox.available()
    if why:
        pytest.skip(why)
    course, problems = built_course
    assert problems == []
    _zh_edition(course)
    answers = _code_answers(course)
    for student, (name, changes) in STUDENTS.items():
        folder = course / "submitted" / student / A
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
        for edition in (NB, ZH_NB):  # the folder holds both notebooks, one worked in
            nb = nbformat.read(course / "release" / A / edition, as_version=4)
            if edition == name:
                for cell in nb.cells:
                    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                    if gid in answers:
                        cell.source = _write_answer(cell.source, {**answers, **changes}[gid])
            nbformat.write(nb, folder / edition)
    _autodiff_course(["grade", A], course)
    run(["nbgrader", "generate_feedback", A], course)
    export = tmp_path_factory.mktemp("export") / "grades.csv"
    run(["nbgrader", "export", "--to", str(export)], course)
    with open(export, newline="") as f:
        scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)
                  if r["assignment"] == A}
    return course, scores


def _feedback(course, student):
    return (course / "feedback" / student / A / "derivatives.html").read_text()


def test_the_same_answers_get_the_same_score_in_either_language(graded):
    course, scores = graded
    assert set(scores) == set(STUDENTS)
    assert scores["en_right"] == scores["zh_right"] > scores["en_mistake"] == scores["zh_mistake"]
    report = json.loads((course / "grading-reports" / A / "report.json").read_text())
    by = {s["student"]: s for s in report["submissions"]}
    key = f"{NB}:test_central_difference"
    for student in ("en_mistake", "zh_mistake"):
        assert by[student]["tests"][key][0] == 0
    # the instructor's report is English for everyone, the category the same
    assert by["zh_mistake"]["errors"][key] == by["en_mistake"]["errors"][key] \
        == "ConstantFactorError"
    assert by["zh_mistake"]["explanations"][key] == by["en_mistake"]["explanations"][key]


def test_one_gradebook_under_the_english_notebook_with_the_language_marked(graded):
    course, _ = graded
    for student, (name, _) in STUDENTS.items():
        graded_nbs = sorted(p.name for p in (course / "autograded" / student / A).glob("*.ipynb"))
        assert graded_nbs == [NB], student
        nb = nbformat.read(course / "autograded" / student / A / NB, as_version=4)
        language = (nb.metadata.get("autodiff") or {}).get("language", "en")
        assert language == (ZH if name == ZH_NB else "en"), student


def test_chinese_feedback_explains_in_chinese_with_chinese_prose(graded):
    course, _ = graded
    text = _text(_feedback(course, "zh_mistake"))
    # the grading helper's explanation of the factor of 2, in Chinese
    assert "差了一个因子2" in text, text[:2000]
    assert "练习central_difference" in text
    assert "is off by a factor" not in text
    # a test cell's own message (the visible test's name=) in Chinese
    assert "central_difference(lambda x: x**2 - 4*x, 3.0, 0.5)" in text
    # the locked prose is the Chinese edition's
    catalog = load_catalog(course / "translations" / "zh_CN" / f"{A}.po")
    headings = [zh.splitlines()[0].lstrip("# ").strip() for en, zh in catalog.items()
                if en.startswith("## ") and CJK.search(zh.splitlines()[0])]
    assert len(headings) > 3
    assert [h for h in headings if h not in text] == []
    passed = "✓ gradient_descent通过了可见测试"
    assert passed in text


def test_no_hidden_test_reaches_the_chinese_feedback(graded):
    course, _ = graded
    page = _feedback(course, "zh_mistake")
    hidden = hidden_test_lines(course / "source" / A / NB)
    assert hidden
    text = html.unescape(page)
    assert not [line for line in hidden if line in text]
    assert "BEGIN HIDDEN TESTS" not in text


def test_english_feedback_stays_english(graded):
    course, _ = graded
    for student in ("en_mistake", "en_right"):
        text = _text(_feedback(course, student))
        assert not CJK.search(text), CJK.search(text)
        assert "Exercise central_difference" in text
    text = _text(_feedback(course, "en_mistake"))
    assert "is off by a factor of 2" in text
    assert "✓ gradient_descent passes the visible tests" in text


def test_report_and_similarity_work_on_a_mixed_class(graded):
    course, _ = graded
    _autodiff_course(["report", A], course)
    _autodiff_course(["report", A, "--names"], course)
    data = json.loads((course / "grading-reports" / A / "class-report-named.json").read_text())
    dump = json.dumps(data, ensure_ascii=False)
    assert "constant_factor" in dump
    # the one shared unusual answer is found across the two editions; the
    # translated docstrings the Chinese students share are not a finding
    pairs = {(p["exercise"].split(":")[-1], frozenset((p["a"], p["b"])))
             for p in data["similar_pairs"]}
    assert pairs == {("product_partials", frozenset(("en_mistake", "zh_mistake")))}
    assert (course / "grading-reports" / A / "class-report.html").exists()


def test_validate_explains_in_chinese_in_the_students_kernel(graded, tmp_path):
    """The student's path: the Chinese notebook and its visible tests' catalog
    in a folder, a mistake, Validate: the explanation is Chinese, and a test
    cell's own message too; nothing of a hidden test is there to be read."""
    course, _ = graded
    folder = tmp_path / "student"
    folder.mkdir()
    for name in (ZH_NB, "messages.zh-CN.po"):
        shutil.copy(course / "release" / A / name, folder / name)
    answers = _code_answers(course)
    nb = nbformat.read(folder / ZH_NB, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = _write_answer(cell.source, {**answers, **MISTAKE}[gid])
    nbformat.write(nb, folder / ZH_NB)
    out = run(["nbgrader", "validate", ZH_NB], folder, check=False).stdout
    assert "差了一个因子2" in out, out[-3000:]
    assert "central_difference(np.sin, 1.0, 1e-5)" in out
    catalog = polib.pofile(str(folder / "messages.zh-CN.po"))
    hidden = polib.pofile(str(messages.course_catalog_path(course, A)))
    assert not {e.msgid for e in catalog} & {e.msgid for e in hidden if "hidden" in e.flags}


def test_lms_export_of_a_mixed_class(graded, tmp_path):
    course, scores = graded
    roster = tmp_path / "roster.csv"
    with open(roster, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "student_id"])
        for i, s in enumerate(sorted(STUDENTS)):
            w.writerow([s, 1000 + i, f"S{i:04d}", f"{s}@uni.example", "A", s])
    out = tmp_path / "canvas.csv"
    _autodiff_course(["export", A, "--format", "canvas", "--roster", str(roster), "-o",
                      str(out)], course)
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    got = {r[3].split("@")[0]: float(r[5]) for r in rows[1:]}
    assert got == scores
    assert got["zh_mistake"] == got["en_mistake"] and got["zh_right"] == got["en_right"]


def test_feedback_is_offered_for_every_edition_the_student_submitted(tmp_path):
    """nbgrader's panel offers feedback only when every notebook of the
    submission has some: the feedback of the graded notebook is written
    under each other edition's name the student submitted, and no other."""
    from autodiff_course.grading.record import feedback_for_every_edition

    for student, editions in (("both", [NB, ZH_NB]), ("english", [NB])):
        submitted = tmp_path / "submitted" / student / A
        submitted.mkdir(parents=True)
        for name in editions:
            (submitted / name).write_text("{}")
        autograded = tmp_path / "autograded" / student / A
        autograded.mkdir(parents=True)
        (autograded / NB).write_text("{}")
        feedback = tmp_path / "feedback" / student / A
        feedback.mkdir(parents=True)
        (feedback / NB.replace(".ipynb", ".html")).write_text(f"<p>{student}</p>")
        feedback_for_every_edition(A, "*", [str(autograded / NB)])
    both = tmp_path / "feedback" / "both" / A
    assert sorted(p.name for p in both.iterdir()) == sorted(
        [NB.replace(".ipynb", ".html"), ZH_NB.replace(".ipynb", ".html")])
    assert (both / ZH_NB.replace(".ipynb", ".html")).read_text() == "<p>both</p>"
    assert [p.name for p in (tmp_path / "feedback" / "english" / A).iterdir()] == \
        [NB.replace(".ipynb", ".html")]
