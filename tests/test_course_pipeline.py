"""The built course: verification, nbval, the committed release. The whole
instructor path, as the README gives it, is in test_readme_path.py."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from course_helpers import run

pytestmark = pytest.mark.slow

ASSIGNMENT = "01_derivatives"
NOTEBOOK = "derivatives.ipynb"
def test_regenerate_verifies_the_course(built_course):
    """The whole course built, then verified as `autodiff-course build` does
    after building: every source notebook and translated solution scores
    full marks, every test fails on the student version, no leak."""
    from autodiff_course.build import verify
    from autodiff_course.course import assignments

    course, problems = built_course
    assert problems == []
    assert verify(course, assignments(course), log=lambda *a: None) == []
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
    # the visible tests' messages beside each Chinese notebook (grading.use_language)
    fresh_po = {p.relative_to(course / "release") for p in (course / "release").glob("*/*.po")}
    assert fresh_po == {p.relative_to(COURSE / "release")
                        for p in (COURSE / "release").glob("*/*.po")}
    assert {rel.parent for rel in fresh_po} == {rel.parent for rel in fresh}
    for rel in fresh_po:
        assert (COURSE / "release" / rel).read_bytes() == (course / "release" / rel).read_bytes(), \
            f"course/release/{rel} is stale: run `autodiff-course build` and commit it"
    pages = sorted(p.name for p in (course / "release").glob("*.md"))
    assert "notation.zh-CN.md" in pages  # the translated notation card
    for name in pages:
        assert (COURSE / "release" / name).read_text() == \
            (course / "release" / name).read_text(), \
            f"course/release/{name} is stale: run `autodiff-course build` and commit it"
