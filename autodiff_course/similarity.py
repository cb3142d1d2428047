"""Similar answers across a class: ``autodiff-course report`` lists pairs of
students whose answer to one exercise share much of their code.

The fingerprints are copydetect's (a maintained implementation of the
winnowing algorithm MOSS uses): each answer is tokenised with Pygments,
every name becomes ``V`` (functions ``F``), strings ``S``, comments and
white space go, and what is left is cut into overlapping k-grams (all of
them are kept: answers are short). Renamed variables therefore change nothing, and reordered lines
keep every k-gram that lies inside a line.

What a correct student would write anyway must not flood the list:

* the scaffolding and the instructor's own solution are *boilerplate*: every
  k-gram of the release notebook's stub and of the reference solution is
  removed from each answer before comparing, so the signature, the docstring
  and the textbook solution match nobody;
* an answer with fewer than ``MIN_TOKENS`` tokens of its own left after that
  (a one-liner) is not compared at all;
* a pair is listed only if both answers share at least ``THRESHOLD`` of
  their own tokens with the other.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .editions import EDITIONS, edition_name, english_notebooks
from .jupyter import grade_id, is_solution
from .grading.language import choose_editions
from .grading.submission import find_notebooks, read_submission
from .grading.template import templates

K = 10  # characters of filtered code per k-gram (a filtered line is ~10-40)
WINDOW = 1  # keep every k-gram: answers are short, and the result does not depend
# on the per-process salt of Python's str hash that copydetect hashes with
MIN_TOKENS = 40  # characters of an answer's own filtered code (after boilerplate)
THRESHOLD = 0.6  # share of each answer's own code found in the other
MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$", re.M)


@dataclass
class Pair:
    exercise: str  # "notebook:grade id" of the answer cell
    a: str  # student ids
    b: str
    similarity_a: float  # share of a's own code found in b
    similarity_b: float
    tokens: int  # filtered characters in common
    code_a: str
    code_b: str
    spans_a: list  # [start, end) character ranges of a's code found in b
    spans_b: list


def class_answers(course, assignment):
    """``{"notebook:grade id": {student: source}}`` for every code answer cell,
    read from ``submitted/`` (what the students wrote, also answers the
    grader's integrity screen refused to run)."""
    course = Path(course)
    tmpl = templates(course, assignment)
    answers = {}
    for sub_dir in sorted((course / "submitted").glob(f"*/{assignment}")):
        student = sub_dir.parent.name
        for name, (nb, _) in _worked_notebooks(sub_dir, tmpl).items():
            wanted = {grade_id(c) for c in tmpl[name].release.cells
                      if is_solution(c) and c.cell_type == "code"}
            for cell in (nb.cells if nb is not None else []):
                if cell.get("cell_type") == "code" and grade_id(cell) in wanted:
                    source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
                    answers.setdefault(f"{name}:{grade_id(cell)}", {}).setdefault(student, source)
    return answers


def _worked_notebooks(sub_dir, tmpl):
    """``find_notebooks`` on the edition each notebook was worked in (the
    grader's choice, ``language.choose_editions``)."""
    import tempfile

    files, _, _ = choose_editions(read_submission(sub_dir), tmpl)
    with tempfile.TemporaryDirectory(prefix="autodiff-similarity-") as tmp:
        for name, data in files.items():
            if name.endswith(".ipynb") and Path(name).name == name:
                (Path(tmp) / name).write_bytes(data)
        return find_notebooks(tmp, tmpl)


def scaffolding(course, assignment):
    """``{"notebook:grade id": text}``: the release stub and the reference solution
    of each code answer cell, the code every student is expected to share (the
    stubs of every language's edition included: their translated docstrings
    are shared too)."""
    course = Path(course)
    out = {}
    for release in english_notebooks(course / "release" / assignment):
        source = nbformat.read(course / "source" / assignment / release.name, as_version=4)
        editions = [release.with_name(edition_name(release.name, lang)) for lang in EDITIONS]
        for nb in [nbformat.read(release, as_version=4), source] + \
                [nbformat.read(p, as_version=4) for p in editions if p.exists()]:
            for cell in nb.cells:
                if is_solution(cell) and cell.cell_type == "code":
                    key = f"{release.name}:{grade_id(cell)}"
                    out[key] = out.get(key, "") + "\n" + MARKER.sub("", cell.source)
    return out


def _fingerprint(code, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint("answer.py", K, WINDOW, boilerplate=boilerplate, fp=io.StringIO(code))


def _boilerplate(text):
    import numpy as np
    from copydetect.utils import filter_code, hashed_kgrams

    filtered, _ = filter_code(text, "scaffolding.py")
    return np.unique(hashed_kgrams(filtered, K)) if len(filtered) >= K else np.array([])


def _merge(slices):
    spans = sorted(zip(slices[0].tolist(), slices[1].tolist())) if len(slices[0]) else []
    merged = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def similar_pairs(answers, scaffolds, threshold=THRESHOLD, min_tokens=MIN_TOKENS):
    """Pairs of answers to the same exercise above ``threshold``, most similar first."""
    from copydetect import compare_files

    pairs = []
    for exercise, by_student in sorted(answers.items()):
        boilerplate = _boilerplate(scaffolds.get(exercise, ""))
        prints = {}
        for student, code in sorted(by_student.items()):
            fp = _fingerprint(code, boilerplate)
            if fp.token_coverage >= min_tokens:
                prints[student] = fp
        students = sorted(prints)
        for i, a in enumerate(students):
            for b in students[i + 1:]:
                if not prints[a].hashes & prints[b].hashes:
                    continue  # no fingerprint in common
                tokens, (sim_a, sim_b), slices = compare_files(prints[a], prints[b])
                if min(sim_a, sim_b) >= threshold:
                    pairs.append(Pair(exercise, a, b, round(float(sim_a), 3),
                                      round(float(sim_b), 3), int(tokens),
                                      prints[a].raw_code, prints[b].raw_code,
                                      _merge(slices[0]), _merge(slices[1])))
    pairs.sort(key=lambda p: (-min(p.similarity_a, p.similarity_b), p.exercise, p.a, p.b))
    return pairs
