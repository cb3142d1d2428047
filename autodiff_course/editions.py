"""The translated editions: ``<notebook>.<lang>.ipynb`` beside each English
notebook, written by ``autodiff-course build``.

One nbgrader assignment per topic holds both editions side by side::

    release/01_derivatives/derivatives.ipynb          English (nbgrader's)
    release/01_derivatives/derivatives.zh-CN.ipynb    Chinese (this module)
    solution/01_derivatives/derivatives.zh-CN.ipynb   Chinese worked solutions

``source/`` keeps only the English notebook, so the gradebook and the
assignment's points are those of one notebook. A translated notebook is the
English one with every translatable unit (``translation.units``) replaced
from the catalog, nothing else: cells, their order, grade ids, points and
test cells stay as they are, and the code of every cell keeps its tokens
(only comments and strings change). Three additions:

- the setup cell (the first code cell) gets the lines of ``setup_lines``:
  ``grading.use_language(...)``, so explanations come in the notebook's
  language, and a matplotlib font fallback that draws CJK characters with
  Noto Sans CJK (Latin text stays in DejaVu Sans, so the figures of the
  English edition are unchanged);
- links to a page of the course (the notation card) point at the page's
  translation, ``notation.zh-CN.md``;
- ``metadata.autodiff.language`` names the language.

Each problem (a missing, stale or broken translation; a code cell whose
code changed) is one line naming the catalog, notebook, cell and text, with
the fix.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import nbformat

from . import translation
from .jupyter import grade_id, is_grade, is_solution

SETUP_ANCHOR = "from autodiff_ref import grading"
# Per language: the font that draws its script (after matplotlib's
# default sans-serif font, which keeps Latin text and mathtext as in the English figures).
FONTS = {"zh_CN": "Noto Sans CJK SC"}
ENGLISH = "en"
EDITIONS = ("zh-CN",)  # the languages a notebook may come in besides English


def edition_name(name, tag):
    """``derivatives.ipynb``, ``zh-CN`` -> ``derivatives.zh-CN.ipynb``."""
    if tag == ENGLISH:
        return name
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{tag}.{suffix}"


def split_edition(name):
    """``derivatives.zh-CN.ipynb`` -> (``derivatives.ipynb``, ``zh-CN``);
    an English notebook's name -> (name, ``en``)."""
    for tag in EDITIONS:
        for suffix in (".ipynb", ".md"):
            if name.endswith(f".{tag}{suffix}"):
                return name[:-len(f".{tag}{suffix}")] + suffix, tag
    return name, ENGLISH


def edition_path(english, lang):
    """``derivatives.ipynb`` -> ``derivatives.zh-CN.ipynb`` (``lang`` as ``zh_CN``)."""
    english = Path(english)
    return english.with_name(edition_name(english.name, translation.language_tag(lang)))


def is_edition(path):
    """Is this a translated edition (``name.zh-CN.ipynb``), not an English notebook?"""
    return split_edition(Path(path).name)[1] != ENGLISH


def english_notebooks(folder):
    return sorted(p for p in Path(folder).glob("*.ipynb") if not is_edition(p))


def setup_lines(lang):
    """The lines the setup cell of a ``lang`` notebook gets after ``SETUP_ANCHOR``."""
    lines = []
    if lang in FONTS:
        lines.append(f'plt.rcParams["font.family"] = ["sans-serif", "{FONTS[lang]}"]')
    return lines + [f'grading.use_language("{translation.language_tag(lang)}")']


# ------------------------------------------------------------ code must not change


_NOT_CODE = {tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.ENCODING}


def code_tokens(source):
    """The code of a cell without its comments and strings: (type, text) tokens."""
    tokens = tokenize.generate_tokens(io.StringIO(translation.python_only(source)).readline)
    return [(t.type, t.string) for t in tokens if t.type not in _NOT_CODE]


def code_problem(english, translated):
    """Why a translated code cell is not the English code (None: it is)."""
    try:
        ast.parse(translation.python_only(translated))
    except SyntaxError as exc:
        return (f"no longer parses as Python ({exc.msg}, line {exc.lineno}): a translated "
                "string probably holds its own quote character (use “ ” in Chinese text) "
                "or lost an escape")
    try:
        same = code_tokens(english) == code_tokens(translated)
    except (tokenize.TokenError, SyntaxError) as exc:
        return f"cannot be read by Python's tokenizer ({exc})"
    if not same:
        return ("its code differs from the English cell beyond comments and strings: a "
                "translation must change only the text of a comment or string")
    return None


# ------------------------------------------------------------ one notebook


def _relink(text, lang, page_names):
    """Links to a course page (``../notation.md``) -> its translation."""
    def swap(match):
        target = match.group(1)
        name = target.rsplit("/", 1)[-1].split("#", 1)[0]
        if name not in page_names:
            return match.group(0)
        return "](" + target.replace(name, edition_path(name, lang).name, 1) + ")"
    return re.sub(r"\]\(([^)\s]+)\)", swap, text)


def translate(nb, catalog, lang, where, page_names=(), forbidden=()):
    """The ``lang`` edition of one built notebook ``nb`` and its problems.

    ``catalog``: {msgid: polib entry} of the assignment's catalog;
    ``where``: how problems name the catalog and notebook."""
    from nbgrader.utils import compute_checksum

    out = nbformat.reads(nbformat.writes(nb), as_version=4)  # a copy
    problems = []
    setup_done = False
    for index, cell in enumerate(out.cells):
        english = cell.source
        pieces = translation.units(cell)

        def lookup(unit, index=index):
            at = f"{where} cell {index} ({unit.kind}) {translation.short(unit.text)}"
            text, found = translation.translated(catalog.get(unit.text), unit.text, unit.kind,
                                                 lang, at, forbidden)
            problems.extend(found)
            return text

        if pieces:
            cell.source = translation.translate_source(english, pieces, lookup)
        if cell.cell_type == "markdown":
            cell.source = _relink(cell.source, lang, page_names)
        elif cell.cell_type == "code" and cell.source != english:
            problem = code_problem(english, cell.source)
            if problem:
                problems.append(f"{where} cell {index} (code): the translated cell {problem}. "
                                "Fix the msgstr of the cell's comments/strings in a PO editor.")
        if cell.cell_type == "code" and not setup_done:
            setup_done = True
            lines = cell.source.split("\n")
            at = [i for i, line in enumerate(lines) if line.strip() == SETUP_ANCHOR]
            if not at:
                problems.append(f"{where} cell {index}: the setup cell (first code cell) lacks "
                                f"`{SETUP_ANCHOR}`, after which the {lang} edition selects its "
                                "language: add that import to the notebook's setup cell")
            else:
                lines[at[0] + 1:at[0] + 1] = setup_lines(lang)
                cell.source = "\n".join(lines)
        if cell.source != english and "checksum" in cell.metadata.get("nbgrader", {}):
            cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
    out.metadata.setdefault("autodiff", {})["language"] = translation.language_tag(lang)
    return out, problems


def _catalog(course, lang, assignment):
    import polib

    path = translation.catalog_path(course, lang, assignment)
    if not path.exists():
        return None, path
    return {e.msgid: e for e in polib.pofile(str(path)) if not e.obsolete}, path


def write_editions(course, assignment, lang):
    """Write the ``lang`` edition of every built release and solution notebook
    of ``assignment``; returns the problems (an edition with a problem is not
    written, so no stale or half-English notebook stays behind)."""
    course = Path(course)
    catalog, path = _catalog(course, lang, assignment)
    shown = translation.shown(course, path)
    if catalog is None:
        return [f"{shown}: no catalog for {assignment} in {lang}. Create it with "
                f"`autodiff-course translations update --lang {lang}` and translate it."]
    forbidden = translation.forbidden_variants(translation.glossary(course, lang))
    page_names = {p.name for p in translation.pages(course)}
    problems, written = [], {}
    for folder in ("release", "solution"):
        for english in english_notebooks(course / folder / assignment):
            where = f"{shown}: {assignment}/{english.stem}.py"
            nb, found = translate(nbformat.read(english, as_version=4), catalog, lang, where,
                                  page_names, forbidden)
            problems += found
            target = edition_path(english, lang)
            if target.exists():
                target.unlink()
            written[target] = nb
    if not problems:
        for target, nb in written.items():
            nbformat.write(nb, target)
    return _unique(problems)


def write_pages(course, lang, folders=("source", "release")):
    """``notation.zh-CN.md`` (each page's translation) beside the English page."""
    import polib

    course = Path(course)
    problems = []
    for page in translation.pages(course):
        path = translation.catalog_path(course, lang, page.stem)
        shown = translation.shown(course, path)
        if not path.exists():
            problems.append(f"{shown}: no catalog for {page.name} in {lang}: run "
                            f"`autodiff-course translations update --lang {lang}`")
            continue
        catalog = {e.msgid: e for e in polib.pofile(str(path)) if not e.obsolete}
        forbidden = translation.forbidden_variants(translation.glossary(course, lang))
        text = page.read_text()
        found = []

        def lookup(unit):
            at = f"{shown}: {page.name} {translation.short(unit.text)}"
            text, problems_here = translation.translated(catalog.get(unit.text), unit.text,
                                                         unit.kind, lang, at, forbidden)
            found.extend(problems_here)
            return text

        translated = translation.translate_source(text, translation.markdown_file_units(text),
                                                  lookup)
        for folder in folders:
            target = course / folder / edition_path(page.name, lang).name
            if target.exists():
                target.unlink()
            if not found:
                target.parent.mkdir(exist_ok=True)
                target.write_text(translated)
        problems += found
    return problems


# ------------------------------------------------------------ the editions agree


def _role(cell):
    meta = dict(cell.metadata.get("nbgrader", {}))
    meta.pop("checksum", None)
    return cell.cell_type, meta


def compare(english, translated, lang, where):
    """Problems if ``translated`` (a notebook) is not ``english`` in every
    graded respect: the same cells in the same order with the same nbgrader
    metadata (grade ids, points, roles), byte-identical test cells, and the
    same code in every code cell (the setup lines aside)."""
    problems = []
    if [_role(c) for c in english.cells] != [_role(c) for c in translated.cells]:
        problems.append(f"{where}: its cells, their order or their nbgrader metadata differ "
                        "from the English notebook's")
        return problems
    added = setup_lines(lang)
    for index, (a, b) in enumerate(zip(english.cells, translated.cells)):
        if is_grade(a) and not is_solution(a) and a.cell_type == "code":
            if a.source != b.source:
                problems.append(f"{where}: test cell {grade_id(a)} differs from the English one")
        elif a.cell_type == "code":
            source = "\n".join(line for line in b.source.split("\n") if line not in added)
            if code_problem(a.source, source):
                problems.append(f"{where}: the code of cell {index} differs from the English")
    return problems


def compare_assignment(course, assignment, lang):
    """``compare`` for every edition of ``assignment`` in release/ and solution/."""
    course = Path(course)
    problems = []
    for folder in ("release", "solution"):
        for english in english_notebooks(course / folder / assignment):
            edition = edition_path(english, lang)
            where = f"{folder}/{assignment}/{edition.name}"
            if not edition.exists():
                problems.append(f"{where}: missing (`autodiff-course build {assignment}` "
                                "writes it when its catalog is complete)")
                continue
            problems += compare(nbformat.read(english, as_version=4),
                                nbformat.read(edition, as_version=4), lang, where)
    return problems


def _unique(items):
    return list(dict.fromkeys(items))
