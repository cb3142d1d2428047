"""What the instructor's notebooks say about one notebook of an assignment."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..editions import english_notebooks
from ..jupyter import grade_id, is_answer, is_solution, is_test
from .integrity import Policy
from .language import load_editions
from .slicing import constant, needed
from .wire import FIGURE_TYPES

FIGURES_DIR = Path(".autodiff") / "figures"  # in the course: figures drawn at build time


@dataclass
class Template:
    """One notebook of an assignment, as the grader rebuilds submissions from it.

    ``release``: the student version (every cell but the answers comes from
    here); ``tests``: test grade id -> the test's source with its hidden part
    (from the instructor's source notebook); ``policies``: answer grade id ->
    what the answer may use (``integrity.Policy``); ``data``: the
    instructor's data files beside the release notebook (name -> bytes), the
    only files the student's kernel gets; ``editions``: language -> the
    release notebook of that edition (``<nb>.zh-CN.ipynb``); ``messages``:
    language -> the translations of the assignment's test messages, hidden
    tests' included (``language.py``); ``figures``: code cell position ->
    the figures (display outputs) that cell drew when the build graded the
    solution, for the cells whose outputs cannot depend on the answers
    (``save_figures``): the grader shows these instead of drawing them again.
    """

    name: str
    release: nbformat.NotebookNode
    tests: dict
    policies: dict
    editions: dict = field(default_factory=dict)
    messages: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)

    @property
    def engine(self):
        """Whether the student's kernel gets the reference engine: only if an
        exercise of the notebook allows some of it (``allow=``)."""
        return any(p.allow for p in self.policies.values())

    def _cells(self):
        cells = [c for c in self.release.cells if c.cell_type == "code"]
        return tuple(("test", self.tests.get(grade_id(c), c.source)) if is_test(c)
                     else ("answer", c.source) if is_answer(c) else ("other", c.source)
                     for c in cells)

    def key(self):
        """A digest of the notebook's code cells and tests."""
        return hashlib.sha256(json.dumps(self._cells()).encode()).hexdigest()

    def judged(self):
        """The positions (among the code cells) of the instructor's cells
        the judge runs besides the tests (``slicing.needed``), read from the
        instructor's notebooks only: nothing a student writes changes it."""
        return needed(self._cells())


def _figures_file(course, assignment, name):
    return Path(course) / FIGURES_DIR / assignment / (Path(name).stem + ".json")


def save_figures(course, assignment, template, graded):
    """Keep the figures of ``graded`` (a solution graded by the build, every
    cell the instructor's) that cells whose outputs cannot depend on the
    answers drew (``slicing.constant``); ``templates`` gives them to the
    grader, which then does not draw those figures for every submission."""
    still = constant(template._cells())
    code = [c for c in graded.cells if c.cell_type == "code"]
    figures = {}
    for index, cell in enumerate(code):
        drawn = [o for o in cell.get("outputs", []) if o.get("output_type") == "display_data"
                 and any(m in o.get("data", {}) for m in FIGURE_TYPES)]
        if index in still and drawn:
            figures[str(index)] = drawn
    target = _figures_file(course, assignment, template.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"key": template.key(), "figures": figures}))


def _load_figures(course, assignment, template):
    """The figures ``save_figures`` kept for this very notebook, or {}."""
    try:
        saved = json.loads(_figures_file(course, assignment, template.name).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or saved.get("key") != template.key():
        return {}  # drawn for other cells: drawn again
    return {int(k): [nbformat.from_dict(o) for o in v]
            for k, v in (saved.get("figures") or {}).items() if k.isdigit()}


def templates(course, assignment):
    """``{notebook name: Template}`` for every notebook of ``assignment``."""
    course = Path(course)
    result = {}
    # the translated editions (<nb>.zh-CN.ipynb) share the English notebook's
    # source, tests and grade ids: one Template per English notebook
    for release in english_notebooks(course / "release" / assignment):
        source = nbformat.read(course / "source" / assignment / release.name, as_version=4)
        tests = {grade_id(c): c.source for c in source.cells if is_test(c)}
        policies = {grade_id(c): Policy.from_metadata(c.metadata.get("autodiff"))
                    for c in source.cells if is_solution(c)}
        data = {p.name: p.read_bytes() for p in sorted(release.parent.iterdir())
                if p.is_file() and not p.is_symlink() and p.suffix != ".ipynb"}
        editions, messages = load_editions(course, assignment, release.name)
        template = Template(release.name, nbformat.read(release, as_version=4),
                            tests, policies, editions, messages, data)
        template.figures = _load_figures(course, assignment, template)
        result[release.name] = template
    if not result:
        raise FileNotFoundError(f"no release notebooks for {assignment!r}: run "
                                "`autodiff-course build` first")
    return result
