"""The student edition: ``autodiff-course publish FOLDER``.

The instructor's repository holds the notebook sources with their solutions
and hidden tests; it must stay private for a graded course. The student
edition is a separate, ready-to-push repository with only what students may
see: the release notebooks (``release/``), the reference engine
``autodiff_ref``, a Binder set-up that opens the notebooks, a conda
environment, a pip project and a student README. No sources, solutions,
hidden tests, mutant lists or instructor tools.
"""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path

import nbformat

from . import editions

EDITION = Path(__file__).resolve().parent / "edition"  # the student edition's own files
NAME = "autodiff-notebooks"
# what students need of the course's dependencies (jupytext is for authoring)
# and zhon (the build's check of the translations)
LEFT_OUT = {"jupytext", "zhon"}


def student_requirements():
    """The engine's and the course's requirements of this installation."""
    wanted = []
    for text in metadata.requires("autodiff-course") or []:
        requirement, _, marker = (part.strip() for part in text.partition(";"))
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0]
        if name not in LEFT_OUT and (not marker or marker.replace("'", '"') == 'extra == "course"'):
            wanted.append(requirement)
    return wanted


def _title(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def _table(release, tag=None):
    """The notebooks of one edition (English: ``tag`` None) as a markdown table."""
    heading = ("| # | assignment | notebook |" if tag is None else "| # | 作业 | 笔记本 |")
    rows = [heading, "|---|---|---|"]
    for folder in sorted(p for p in release.iterdir() if p.is_dir()):
        for nb in editions.english_notebooks(folder):
            if tag is not None:
                nb = nb.with_name(f"{nb.stem}.{tag}{nb.suffix}")
                if not nb.exists():
                    continue
            rows.append(f"| {folder.name[:2]} | `{folder.name}` | [{_title(nb)}]"
                        f"(notebooks/{folder.name}/{nb.name}) |")
    return "\n".join(rows)


def _pyproject(requirements):
    deps = "".join(f'    "{r}",\n' for r in requirements)
    return f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{NAME}"
version = "1.0"
description = "Notebooks on automatic differentiation and backpropagation, with the reference engine autodiff_ref"
requires-python = ">=3.11"
dependencies = [
{deps}]

[tool.setuptools.packages.find]
include = ["autodiff_ref*"]

[tool.setuptools.package-data]
autodiff_ref = ["locale/*.po"]
'''


def _environment(requirements, name, python):
    pins = "".join(f"      - {r}\n" for r in requirements)
    return (f"name: {name}\nchannels:\n  - conda-forge\ndependencies:\n  - {python}\n"
            f"  - pip\n  - pip:\n{pins}")


def publish(course, folder, log=print):
    """Write the student edition of ``course`` to ``folder`` (new or empty)."""
    import autodiff_ref

    course, folder = Path(course), Path(folder).resolve()
    release = course / "release"
    if not any(release.glob("*/*.ipynb")):
        raise FileNotFoundError("nothing to publish: run `autodiff-course build` first")
    if folder.exists() and any(p.name != ".git" for p in folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: publish into a new folder (or one "
                              "holding only a .git folder, to update a repository)")
    if folder == course or course in folder.parents:
        raise FileExistsError(f"{folder} is inside the course: publish somewhere else")
    folder.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(release, folder / "notebooks", ignore=ignore)
    shutil.copytree(Path(autodiff_ref.__file__).parent, folder / "autodiff_ref", ignore=ignore)
    requirements = student_requirements()
    (folder / "pyproject.toml").write_text(_pyproject(requirements))
    (folder / "environment.yml").write_text(
        "# conda env create -f environment.yml; then `pip install -e .` is not needed:\n"
        "# the last line installs the engine from this folder.\n"
        + _environment(requirements + ["--editable ."], NAME, "python>=3.11"))
    (folder / "binder").mkdir()
    (folder / "binder" / "environment.yml").write_text(
        "# Binder builds from this folder; postBuild installs the engine.\n"
        + _environment(requirements, f"{NAME}-binder", "python=3.11"))
    for name in ("postBuild", "apt.txt"):  # apt.txt: the CJK font of the Chinese figures
        shutil.copy2(EDITION / "binder" / name, folder / "binder" / name)
    for name in ("nbgrader_config.py", "kernel_polling.py"):  # Validate's settings
        shutil.copy2(EDITION / name, folder / name)
    readme = (EDITION / "README.md").read_text().replace("$NOTEBOOK_TABLE", _table(release))
    (folder / "README.md").write_text(readme)
    zh = (EDITION / "README.zh-CN.md").read_text().replace("$NOTEBOOK_TABLE",
                                                           _table(release, "zh-CN"))
    (folder / "README.zh-CN.md").write_text(zh)
    (folder / ".gitignore").write_text("__pycache__/\n*.pyc\n.ipynb_checkpoints/\n.venv/\n"
                                       "*.egg-info/\n")
    count = len(list((folder / "notebooks").glob("*/*.ipynb")))
    log(f"student edition with {count} notebook(s) in {folder}")
    return folder
