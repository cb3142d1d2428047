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

OUTPUTS_DIR = Path(".autodiff") / "outputs"  # in the course: outputs kept by the build


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
    tests' included (``language.py``); ``outputs``: code cell position ->
    the outputs that cell showed when the build graded the solution, for the
    cells whose outputs cannot depend on the answers (``save_outputs``): the
    grader shows these instead of computing them again.
    """

    name: str
    release: nbformat.NotebookNode
    tests: dict
    policies: dict
    editions: dict = field(default_factory=dict)
    messages: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)

    @property
    def engine(self):
        """Whether the student's kernel gets the reference engine: only if an
        exercise of the notebook allows some of it (``allow=``)."""
        return any(p.allow for p in self.policies.values())

    def _cells(self):
        return code_cells(self.release, self.tests)

    def key(self):
        """A digest of the notebook's code cells and tests."""
        return hashlib.sha256(json.dumps(self._cells()).encode()).hexdigest()

    def judged(self):
        """The positions (among the code cells) of the instructor's cells
        the judge runs besides the tests (``slicing.needed``), read from the
        instructor's notebooks only: nothing a student writes changes it."""
        return needed(self._cells())


def code_cells(nb, tests=None):
    """``((kind, source), ...)`` of the code cells of ``nb``, kind "test",
    "answer" or "other" (what ``slicing.py`` reads); ``tests``: grade id ->
    the source to take for a test cell (the hidden part included)."""
    return tuple(("test", (tests or {}).get(grade_id(c), c.source)) if is_test(c)
                 else ("answer", c.source) if is_answer(c) else ("other", c.source)
                 for c in nb.cells if c.cell_type == "code")


def _outputs_file(course, assignment, name):
    return Path(course) / OUTPUTS_DIR / assignment / (Path(name).stem + ".json")


def save_outputs(course, assignment, template, graded):
    """Keep the outputs of ``graded`` (a solution graded by the build, every
    cell the instructor's) of the cells whose outputs cannot depend on the
    answers (``slicing.constant``); ``templates`` gives them to the grader,
    which then does not compute them again for every submission."""
    code = [c for c in graded.cells if c.cell_type == "code"]
    kept = {str(i): code[i].get("outputs", []) for i in constant(code_cells(graded))}
    target = _outputs_file(course, assignment, template.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"key": template.key(), "outputs": kept}))


def _load_outputs(course, assignment, template):
    """The outputs ``save_outputs`` kept for this very notebook, or {}."""
    try:
        saved = json.loads(_outputs_file(course, assignment, template.name).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or saved.get("key") != template.key():
        return {}  # kept for other cells: computed again
    return {int(k): [nbformat.from_dict(o) for o in v]
            for k, v in (saved.get("outputs") or {}).items() if k.isdigit()}


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
        template.outputs = _load_outputs(course, assignment, template)
        result[release.name] = template
    if not result:
        raise FileNotFoundError(f"no release notebooks for {assignment!r}: run "
                                "`autodiff-course build` first")
    return result
