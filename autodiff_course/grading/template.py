"""What the instructor's notebooks say about one notebook of an assignment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..editions import english_notebooks
from ..jupyter import grade_id, is_solution, is_test
from .integrity import Policy
from .language import load_editions


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
    tests' included (``language.py``).
    """

    name: str
    release: nbformat.NotebookNode
    tests: dict
    policies: dict
    editions: dict = field(default_factory=dict)
    messages: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    @property
    def engine(self):
        """Whether the student's kernel gets the reference engine: only if an
        exercise of the notebook allows some of it (``allow=``)."""
        return any(p.allow for p in self.policies.values())


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
        result[release.name] = Template(release.name, nbformat.read(release, as_version=4),
                                        tests, policies, editions, messages, data)
    if not result:
        raise FileNotFoundError(f"no release notebooks for {assignment!r}: run "
                                "`autodiff-course build` first")
    return result
