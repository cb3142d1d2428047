"""The student edition (`autodiff-course publish`): what students may see,
nothing more, and a Binder set-up that runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_helpers import run

pytestmark = pytest.mark.slow


def _regions(source_nb):
    """Lines of the solution regions and hidden tests of an instructor notebook
    that its public parts (prose, setup, visible tests) do not also contain."""
    secret, public = set(), set()
    for cell in nbformat.read(source_nb, as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
                inside = False
            elif line.strip():
                (secret if inside else public).add(line.strip())
    return secret - public


@pytest.fixture(scope="module")
def edition(built_course, tmp_path_factory):
    course, problems = built_course
    assert problems == []
    folder = tmp_path_factory.mktemp("published") / "autodiff-notebooks"
    script = Path(sys.executable).parent / "autodiff-course"
    run([str(script), "publish", str(folder)], course)
    return course, folder


def test_student_edition_holds_no_solution_or_hidden_test(edition):
    course, folder = edition
    by_notebook = {nb.relative_to(course / "source"): _regions(nb)
                   for nb in (course / "source").glob("*/*.ipynb")}
    secret = set().union(*by_notebook.values())
    assert secret
    notebooks = sorted((folder / "notebooks").glob("*/*.ipynb"))
    assert {p.relative_to(folder / "notebooks") for p in notebooks} == \
        {p.relative_to(course / "release") for p in (course / "release").glob("*/*.ipynb")}
    for nb in notebooks:  # no line of its solutions or hidden tests, however short
        # a Chinese notebook against the secrets of the English one it translates
        own = by_notebook[nb.relative_to(folder / "notebooks").with_name(
            nb.name.replace(".zh-CN.ipynb", ".ipynb"))]
        for cell in nbformat.read(nb, as_version=4).cells:
            found = {line.strip() for line in cell.source.splitlines()} & own
            assert not {f for f in found if len(f) > 8}, (nb, found)
    long_secret = {line for line in secret if len(line) >= 30}
    # every other file; the engine autodiff_ref is public by design (students
    # read it), and a solution may well repeat one of its generic lines
    for path in folder.rglob("*"):
        if "autodiff_ref" in path.relative_to(folder).parts:
            continue
        if path.is_file() and path.suffix in (".py", ".md", ".yml", ".toml", ".txt", ""):
            text = {line.strip() for line in path.read_text(errors="ignore").splitlines()}
            assert not text & long_secret, path
    names = {p.name for p in folder.rglob("*")}
    assert not names & {"autodiff_course", "source", "solution", "mutants", "tests",
                        "gradebook.db"}
    assert "autodiff_course" not in (folder / "nbgrader_config.py").read_text()
    assert not list(folder.rglob("notebooks/*/*.py"))


def test_student_edition_readme_and_environment(edition):
    _, folder = edition
    readme = (folder / "README.md").read_text()
    for needed in ("mybinder.org", "pip install -e .", "Validate", "--Exchange.root",
                   "/usr/local/share/nbgrader/exchange", "Download", "01_derivatives"):
        assert needed in readme, needed
    assert "nbgrader" in (folder / "pyproject.toml").read_text()
    assert "python=3.11" in (folder / "binder" / "environment.yml").read_text()


def test_student_edition_carries_the_chinese_edition(edition):
    """The Chinese notebooks beside the English ones, the Chinese notation
    card, README.zh-CN.md linked from the README, the CJK font for Binder,
    the Chinese interface; not the translators' tools."""
    course, folder = edition
    notebooks = sorted((folder / "notebooks").glob("*/*.ipynb"))
    chinese = [p for p in notebooks if p.name.endswith(".zh-CN.ipynb")]
    english = [p for p in notebooks if p not in chinese]
    assert len(chinese) == 9 and len(english) == 9
    assert (folder / "notebooks" / "notation.zh-CN.md").exists()
    assert "README.zh-CN.md" in (folder / "README.md").read_text()
    zh = (folder / "README.zh-CN.md").read_text(encoding="utf-8")
    for nb in chinese:  # the table links every Chinese notebook
        assert f"(notebooks/{nb.parent.name}/{nb.name})" in zh, nb
    for needed in ("mybinder.org", "pip install -e .", "--index-url", "pip config set",
                   "Validate", "fonts-noto-cjk", "Settings → Language"):
        assert needed in zh, needed
    hosts = re.findall(r"https?://([^/\s)`>]+)", zh)
    assert set(hosts) == {"mybinder.org"}, hosts  # no package mirror named
    assert "fonts-noto-cjk" in (folder / "binder" / "apt.txt").read_text()
    requirements = (folder / "pyproject.toml").read_text()
    assert "jupyterlab-language-pack-zh-CN" in requirements
    assert "zhon" not in requirements  # the build's tool


def test_student_edition_binder_post_build_runs(edition, tmp_path):
    """postBuild in a fresh environment: installs the engine, switches off the
    instructor panels and the exchange panels, opens JupyterLab on notebooks/."""
    _, folder = edition
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = next(venv.glob("lib/python*/site-packages"))
    # the new environment sees this one's packages (like Binder's conda env)
    outer = [p for p in sys.path if p.endswith("site-packages")]
    (purelib / "outer.pth").write_text("\n".join(outer) + "\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home),
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--version"], env=env,
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr  # pip comes from the outer environment
    proc = subprocess.run(["bash", "binder/postBuild"], cwd=folder, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import autodiff_ref, sys; print(autodiff_ref.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert str(venv) in check.stdout, check.stdout + check.stderr  # installed, not the repo's
    config = json.loads((venv / "etc" / "jupyter" / "labconfig" / "page_config.json").read_text())
    disabled = config["disabledExtensions"]
    for plugin in ("formgrader", "create-assignment", "course-list", "assignment-list"):
        assert disabled.get(f"@jupyter/nbgrader:{plugin}") is True
    assert "@jupyter/nbgrader:validate-assignment" not in disabled
    assert "/lab/tree/notebooks" in (home / ".jupyter" / "jupyter_server_config.py").read_text()


def test_validate_in_the_student_edition_is_quiet(edition, tmp_path):
    """A student's Validate: no "no nbgrader_config.py" or TCP warnings."""
    _, folder = edition
    proc = run(["nbgrader", "validate", "notebooks/01_derivatives/derivatives.ipynb"], folder,
               {"HOME": str(tmp_path)})
    output = proc.stdout + proc.stderr
    assert "VALIDATION FAILED" in output  # an untouched notebook fails, as it should
    assert "No nbgrader_config.py" not in output
    assert "over TCP" not in output
    proc = run(["nbgrader", "validate", "notebooks/01_derivatives/derivatives.zh-CN.ipynb"],
               folder, {"HOME": str(tmp_path)})
    output = proc.stdout + proc.stderr
    assert "VALIDATION FAILED" in output and "NotImplementedError" in output
    assert "No nbgrader_config.py" not in output
