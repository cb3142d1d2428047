"""The instructor's path of README.md, word for word: in a copy of the course
outside the repository, from inside it, with the commands the README gives.

build -> release (temporary exchange) -> three students, each with their own
HOME, fetch, fill in, validate and submit -> collect -> autodiff-course grade
-> generate, release and fetch feedback -> export.
"""

from __future__ import annotations

import csv
import hashlib
import html
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_helpers import (COURSE, REPO, copy_course, fill_in, hidden_test_lines, run,
                            solution_sources)

pytestmark = pytest.mark.slow

ASSIGNMENT, NOTEBOOK = "01_derivatives", "derivatives.ipynb"

# Bob forgot the 2 in the denominator of the central difference: a factor of 2.
BOB_MISTAKE = {"central_difference": ("def central_difference(f, x, eps):\n"
                                      "    return (f(x + eps) - f(x - eps)) / eps\n")}


def _tree_hash(folder):
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _hidden_lines(source_nb, release_nb):
    """Lines of the hidden tests that appear nowhere in the student version."""
    public = "\n".join(c.source for c in nbformat.read(release_nb, as_version=4).cells)
    lines = [line for line in hidden_test_lines(source_nb) if line not in public]
    assert lines
    return lines


def _text(page):
    """What a reader sees of an HTML page (tags removed, entities decoded)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())


def _code_answers(source_nb):
    """The solution of every code answer cell of an instructor notebook."""
    answers = solution_sources(source_nb)
    code = {c.metadata.nbgrader["grade_id"] for c in nbformat.read(source_nb, as_version=4).cells
            if c.cell_type == "code"}
    return {k: v for k, v in answers.items() if k in code}


def _written_answers(source_nb):
    """grade id -> points of every manually graded written answer."""
    return {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"]
            for c in nbformat.read(source_nb, as_version=4).cells
            if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")}


def _autodiff_course(args, cwd, env=None, check=True):
    """`autodiff-course ...` as the README gives it (this Python's script)."""
    script = Path(sys.executable).parent / "autodiff-course"
    return run([str(script), *args], cwd, env, check)


def test_the_readme_path_works(tmp_path):
    repo_before = _tree_hash(COURSE)
    course = copy_course(tmp_path / "my-course")  # outside the repository
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    env = {"AUTODIFF_COURSE_EXCHANGE": str(exchange)}

    proc = _autodiff_course(["build", ASSIGNMENT], course, env)
    assert f"course: {course.resolve()}" in proc.stderr  # the course it was run in
    run(["nbgrader", "release_assignment", ASSIGNMENT, "--force"], course, env)

    code_answers = _code_answers(course / "source" / ASSIGNMENT / NOTEBOOK)
    written = _written_answers(course / "source" / ASSIGNMENT / NOTEBOOK)
    assert written  # the notebook asks for written answers (graded by hand below)
    prose = {gid: "My prediction, and why: the error is smallest where ..." for gid in written}
    plan = {"alice": {**code_answers, **prose}, "bob": {**code_answers, **BOB_MISTAKE, **prose},
            "carol": {}}
    homes = {}
    for student, filled in plan.items():
        home = homes[student] = tmp_path / "home" / student
        home.mkdir(parents=True)
        # a student has no course config: the exchange is given on the line
        student_env = {"HOME": str(home)}
        root = f"--Exchange.root={exchange}"
        run(["nbgrader", "fetch_assignment", ASSIGNMENT, "--course", "autodiff-course", root],
            home, student_env)
        notebook = home / ASSIGNMENT / NOTEBOOK
        fill_in(notebook, filled)
        validated = run(["nbgrader", "validate", str(notebook)], home, student_env)
        if student == "alice":
            assert "Success! Your notebook passes all the tests." in validated.stdout
        else:
            assert "failed" in validated.stdout.lower()
        run(["nbgrader", "submit", ASSIGNMENT, "--course", "autodiff-course",
             f"--student={student}", root], home, student_env)

    run(["nbgrader", "collect", ASSIGNMENT], course, env)
    graded = _autodiff_course(["grade", ASSIGNMENT], course, env)
    assert "graded 3 submission(s)" in graded.stdout
    run(["nbgrader", "generate_feedback", ASSIGNMENT], course, env)
    run(["nbgrader", "release_feedback", ASSIGNMENT], course, env)
    for student, home in homes.items():
        run(["nbgrader", "fetch_feedback", ASSIGNMENT, "--course", "autodiff-course",
             f"--student={student}", f"--Exchange.root={exchange}"], home,
            {"HOME": str(home)})
    # the instructor grades alice's written answers by hand (what the formgrader
    # does), then exports: the manual points are in the grades
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="autodiff-course") as gb:
        for gid in written:
            grade = gb.find_grade(gid, NOTEBOOK[:-6], ASSIGNMENT, "alice")
            grade.manual_score = grade.max_score
        gb.db.commit()
    run(["nbgrader", "export"], course, env)
    # grading again (e.g. a late submission arrived) keeps working after manual grades
    again = _autodiff_course(["grade", ASSIGNMENT], course, env)
    assert "3 unchanged" in again.stdout
    assert "phase 2 not needed" in again.stdout  # the gradebook already holds them
    run(["nbgrader", "export"], course, env)  # the manual grades are still there

    # exact scores (every autograded test's points; written answers are graded by hand)
    source = nbformat.read(course / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    points = {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"]
              for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")
              and c.cell_type == "code"}
    auto = sum(points.values())
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == ASSIGNMENT}
    assert {s: float(rows[s]["score"]) for s in plan} == {
        "alice": auto + sum(written.values()), "bob": auto - points["test_central_difference"],
        "carol": 0.0}
    assert {float(rows[s]["max_score"]) for s in plan} == {auto + sum(written.values())}

    # every student received feedback, in their own folder
    pages = {}
    for student, home in homes.items():
        found = sorted((home / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK[:-6]}.html"))
        assert len(found) == 1, (student, list((home / ASSIGNMENT).rglob("*")))
        pages[student] = found[0].read_text()
    bob = _text(pages["bob"])
    assert "off by a factor of 2" in bob  # the grading helper's explanation
    assert "Exercise central_difference" in bob  # links named by exercise
    for page in pages.values():
        text = _text(page)
        for line in _hidden_lines(course / "source" / ASSIGNMENT / NOTEBOOK,
                                  course / "release" / ASSIGNMENT / NOTEBOOK):
            assert line not in text, f"a hidden test line reached the feedback: {line}"
        assert "autodiff_course.grading.guard" not in text
        for private in (str(tmp_path), str(Path(sys.prefix)), str(REPO)):
            assert private not in page
        assert "Test cell</a>" not in page
        assert all("alt=" in tag for tag in re.findall(r"<img\b[^>]*>", page))

    # the grading report says why each test failed, in one line
    summary = (course / "grading-reports" / ASSIGNMENT / "summary.csv").read_text()
    bob_row = next(r for r in csv.DictReader(summary.splitlines()) if r["student"] == "bob")
    assert "test_central_difference" in bob_row["failed_tests"]
    assert "off by a factor of 2" in bob_row["failed_tests"]

    assert _tree_hash(COURSE) == repo_before  # the repository's course was not touched


def _errors(args, cwd):
    proc = _autodiff_course(args, cwd, check=False)
    assert proc.returncode != 0, proc
    return proc.stderr


def test_commands_refuse_with_the_fix(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert "no course here" in _errors(["build"], outside)
    course = copy_course(tmp_path / "c")
    assert "Did you mean '01_derivatives'" in _errors(["grade", "01_derivativs"], course)
    assert "Did you mean '01_derivatives'" in _errors(["build", "01_derivativs"], course)
    assert "autodiff-course build 01_derivatives" in _errors(["grade", "01_derivatives"], course)
    (course / "release" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), course / "release" / ASSIGNMENT / NOTEBOOK)
    assert "nbgrader collect 01_derivatives" in _errors(["grade", ASSIGNMENT], course)
    (course / "sub").mkdir()
    # the nearest folder above with nbgrader_config.py is the course
    proc = _autodiff_course(["verify", "01_derivativs"], course / "sub", check=False)
    assert f"course: {course.resolve()}" in proc.stderr and proc.returncode != 0


def test_non_editable_install_builds_and_grades_elsewhere(tmp_path):
    """`pip install .` (no course inside the package) then build and grade a
    course folder somewhere else."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(REPO)], check=True)
    assert not (target / "course").exists()
    assert (target / "autodiff_course" / "edition" / "binder" / "postBuild").exists()
    course = copy_course(tmp_path / "course")
    env = {"PYTHONPATH": str(target)}
    code = "import sys; from autodiff_course.cli import main; sys.exit(main())"
    built = run([sys.executable, "-c", code, "build", "--no-verify", ASSIGNMENT], course, env)
    assert f"course: {course.resolve()}" in built.stderr
    check = run([sys.executable, "-c", "import autodiff_course; print(autodiff_course.__file__)"],
                course, env)
    assert check.stdout.startswith(str(target))
    student = course / "submitted" / "dana" / ASSIGNMENT
    student.mkdir(parents=True)
    release = course / "release" / ASSIGNMENT / NOTEBOOK
    student.joinpath(NOTEBOOK).write_bytes(release.read_bytes())
    fill_in(student / NOTEBOOK, _code_answers(course / "source" / ASSIGNMENT / NOTEBOOK))
    graded = run([sys.executable, "-c", code, "grade", ASSIGNMENT], course, env)
    assert "dana" in graded.stdout and "graded 1 submission(s)" in graded.stdout
