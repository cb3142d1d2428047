"""Translations of the course: gettext PO catalogs keyed by the English text.

One catalog per assignment and language, ``course/translations/<lang>/<assignment>.po``
(and ``notation.po`` for the notation card). An entry's ``msgid`` is a piece
of English exactly as it stands in the source notebook, so a changed English
text no longer finds its translation: the build reports it, and
``update_catalog`` carries the old translation over marked *fuzzy* (stale)
for a translator to review, the way gettext's ``msgmerge`` does.

What is translated (``units``):

- a markdown cell, whole; a cell with solution regions (a written answer's
  model answer and rubric) only outside those regions, so no solution text
  enters a catalog;
- in a code cell: each comment, each string literal that reads as prose
  (has a space and a letter: sentences, docstrings), and each string shown
  to the reader even when it is one word (an argument of ``print``, of a
  figure's title, label or text, of a widget's description; see
  ``_shown_strings``), outside solution regions;
- never a test cell: tests are byte-identical in every edition, so a grade
  cannot depend on the language.

The catalogs are PO files (``polib``) because every translation tool and
platform (Poedit, Weblate, Transifex, Lokalize) reads and writes them, they
record fuzzy/stale state and the previous English, and they diff well.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from .jupyter import is_grade

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# nbgrader's placeholders in a student's answer cells: conventions the student
# must find as they are, in every edition
NBGRADER_STUBS = {"YOUR CODE HERE", "YOUR ANSWER HERE"}
_PROSE = re.compile(r"[A-Za-z]")
_STRING_PREFIX = re.compile(r"^([rRbBuUfF]*)('''|\"\"\"|'|\")", re.S)


@dataclass(frozen=True)
class Unit:
    """One translatable piece of a cell: ``text`` at ``start:end`` of the source."""

    kind: str  # "markdown", "comment" or "string"
    text: str
    start: int
    end: int


def _solution_spans(source):
    """Character spans of the solution regions (markers included)."""
    spans, start, offset = [], None, 0
    for line in source.splitlines(keepends=True):
        if BEGIN in line and start is None:
            start = offset
        elif END in line and start is not None:
            spans.append((start, offset + len(line)))
            start = None
        offset += len(line)
    if start is not None:
        spans.append((start, len(source)))
    return spans


def _inside(spans, start, end):
    return any(a <= start and end <= b for a, b in spans)


def _markdown_units(source):
    spans = _solution_spans(source)
    units, cursor = [], 0
    for a, b in spans + [(len(source), len(source))]:
        piece = source[cursor:a]
        stripped = piece.strip()
        if stripped:
            lead = piece.index(stripped)
            units.append(Unit("markdown", stripped, cursor + lead, cursor + lead + len(stripped)))
        cursor = b
    return units


# Calls and keywords whose string arguments a reader sees in an output,
# a figure or a widget.
_SHOWING_CALLS = {"print", "set_title", "set_xlabel", "set_ylabel", "set_zlabel", "title",
                  "xlabel", "ylabel", "suptitle", "text", "annotate", "Label", "HTML",
                  "Markdown"}
_SHOWING_KEYWORDS = {"label", "title", "description", "xlabel", "ylabel", "tooltip"}


def _shown_strings(source):
    """(line, column) of string literals passed to a call that shows them."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = set()

    def mark(node):
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Constant, ast.JoinedStr)) and (
                    isinstance(sub, ast.JoinedStr) or isinstance(sub.value, str)):
                found.add((sub.lineno, sub.col_offset))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _SHOWING_CALLS:
                for arg in node.args:
                    mark(arg)
            for kw in node.keywords:
                if kw.arg in _SHOWING_KEYWORDS:
                    mark(kw.value)
    return found


def _a_word(text):
    """A shown one-word string worth translating: a word outside math,
    placeholders and escapes, not a name from the code (``ad.grad``,
    ``J_g``, ``f'(z)``) nor a one- or two-letter symbol."""
    rest = re.sub(r"\$[^$]*\$|\{[^{}]*\}|\\.", " ", text)
    words = re.findall(r"[A-Za-z][A-Za-z'()._]*", rest)
    return any(len(w) > 2 and not re.search(r"[_.()']", w) for w in words)


def _line_offsets(source):
    offsets, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        offsets.append(total)
    return offsets


def python_only(source):
    """IPython magics and shell lines as comments (same length), so Python's
    tokenizer and parser read the cell."""
    return "\n".join("#" + line[1:] if line.lstrip().startswith(("%", "!")) else line
                     for line in source.split("\n"))


def _code_units(source):
    spans = _solution_spans(source)
    offsets = _line_offsets(source)
    masked = python_only(source)
    shown = _shown_strings(masked)
    units = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(masked).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return units
    for tok in tokens:
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = offsets[tok.end[0] - 1] + tok.end[1]
        if _inside(spans, start, end) or source[start:end] != tok.string:
            continue
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            if not _PROSE.search(text) or text.startswith(("noqa", "type:", "%")):
                continue
            lead = tok.string.index(text)
            units.append(Unit("comment", text, start + lead, start + lead + len(text)))
        elif tok.type == tokenize.STRING:
            match = _STRING_PREFIX.match(tok.string)
            if not match or "b" in match.group(1).lower():
                continue
            quote = match.group(2)
            inner_start = start + len(match.group(0))
            inner_end = end - len(quote)
            text = source[inner_start:inner_end]
            if _PROSE.search(text) and (" " in text or (tok.start in shown and _a_word(text))):
                units.append(Unit("string", text, inner_start, inner_end))
    return units


def units(cell):
    """The translatable pieces of one notebook cell, in order."""
    if cell.cell_type == "markdown":
        found = _markdown_units(cell.source)
    elif cell.cell_type == "code" and not is_grade(cell):
        found = _code_units(cell.source)
    else:
        return []
    return [u for u in found if u.text not in NBGRADER_STUBS]


def translate_source(source, pieces, lookup):
    """``source`` with each unit's text replaced by ``lookup(unit)`` (a string)."""
    out, cursor = [], 0
    for unit in pieces:
        out.append(source[cursor:unit.start])
        out.append(lookup(unit))
        cursor = unit.end
    out.append(source[cursor:])
    return "".join(out)


def catalog_units(nb):
    """(cell index, unit) for every translatable unit of a notebook."""
    return [(index, unit) for index, cell in enumerate(nb.cells) for unit in units(cell)]


def markdown_file_units(text):
    """A markdown file (the notation card) as blank-line separated blocks."""
    found, offset = [], 0
    for block in re.split(r"(\n\s*\n)", text):
        stripped = block.strip()
        if stripped and not re.fullmatch(r"\n\s*\n", block):
            lead = block.index(stripped)
            found.append(Unit("markdown", stripped, offset + lead, offset + lead + len(stripped)))
        offset += len(block)
    return found


def update_catalog(po_path, entries, header):
    """Create or merge the catalog at ``po_path`` with ``entries``, a list of
    (msgid, occurrence, kind). Entries whose English is gone become obsolete;
    a new English text that closely resembles an obsolete one inherits its
    translation marked fuzzy, with the previous English kept (``#| msgid``).
    Returns the polib catalog (saved)."""
    import difflib

    import polib

    po = polib.pofile(str(po_path)) if po_path.exists() else polib.POFile()
    if not po_path.exists():
        po.metadata = header
    old = {e.msgid: e for e in po if not e.obsolete}
    wanted, seen = [], set()
    for msgid, occurrence, kind in entries:
        if msgid in seen:
            for e in wanted:
                if e.msgid == msgid and occurrence not in e.occurrences:
                    e.occurrences.append(occurrence)
            continue
        seen.add(msgid)
        entry = old.get(msgid) or polib.POEntry(msgid=msgid, msgstr="")
        entry.occurrences = [occurrence]
        entry.comment = kind
        wanted.append(entry)
    gone = [e for m, e in old.items() if m not in seen and e.msgstr]
    for entry in wanted:
        if entry.msgstr or not gone:
            continue
        best = max(gone, key=lambda e: difflib.SequenceMatcher(None, e.msgid, entry.msgid,
                                                                autojunk=False).ratio())
        if difflib.SequenceMatcher(None, best.msgid, entry.msgid, autojunk=False).ratio() > 0.6:
            entry.msgstr = best.msgstr
            entry.previous_msgid = best.msgid
            if "fuzzy" not in entry.flags:
                entry.flags.append("fuzzy")
    fresh = polib.POFile(wrapwidth=78)
    fresh.metadata = po.metadata or header
    for entry in wanted:
        fresh.append(entry)
    for entry in gone:
        entry.obsolete = True
        fresh.append(entry)
    po_path.parent.mkdir(parents=True, exist_ok=True)
    fresh.save(str(po_path))
    return fresh


class TranslationError(ValueError):
    """A catalog lacks a translation, or holds a stale one; the message names it."""


def load_catalog(po_path):
    """{English msgid: translation} of the catalog's current, non-fuzzy entries."""
    import polib

    return {e.msgid: e.msgstr for e in polib.pofile(str(po_path))
            if e.msgstr and not e.obsolete and "fuzzy" not in e.flags}


def translate_notebook(nb, catalog, where="notebook"):
    """A copy of ``nb`` with every unit replaced by its translation from
    ``catalog`` ({msgid: msgstr}); test cells are left byte-identical.
    Raises ``TranslationError`` listing every unit without a translation."""
    import copy

    out = copy.deepcopy(nb)
    missing = []
    for index, cell in enumerate(out.cells):
        pieces = units(cell)
        if not pieces:
            continue

        def lookup(unit, index=index):
            if unit.text not in catalog:
                missing.append(f"{where}: cell {index} ({unit.kind}) {unit.text[:60]!r}")
                return unit.text
            return catalog[unit.text]

        cell.source = translate_source(cell.source, pieces, lookup)
    if missing:
        raise TranslationError("no current translation for:\n  " + "\n  ".join(missing))
    return out


# ------------------------------------------------------------ the course's catalogs

CATALOGS = "translations"  # course/translations/<lang>/<assignment>.po


def languages(course):
    """The course's languages: folders of ``translations/`` holding catalogs
    (gettext names such as ``zh_CN``)."""
    root = Path(course) / CATALOGS
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.po")))


def language_tag(lang):
    """``zh_CN`` -> ``zh-CN``: the tag in notebook names and ``grading.use_language``."""
    return lang.replace("_", "-")


def header(lang):
    return {"Project-Id-Version": "autodiff-course", "Language": lang, "MIME-Version": "1.0",
            "Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit"}


def english_entries(course, assignment):
    """(msgid, occurrence, kind) of every unit of an assignment's English
    notebooks, read from the ``.py`` sources (cell numbers as in every built
    edition: nbgrader keeps the cells and their order)."""
    from .authoring import to_notebook

    found = []
    for py in sorted((Path(course) / "notebooks" / assignment).glob("*.py")):
        for index, unit in catalog_units(to_notebook(py)):
            found.append((unit.text, (f"{assignment}/{py.name}", str(index)), unit.kind))
    return found


def pages(course):
    """The markdown pages every notebook links to (the notation card)."""
    return sorted((Path(course) / "notebooks").glob("*.md"))


def page_entries(page):
    return [(u.text, (page.name, "0"), u.kind) for u in markdown_file_units(page.read_text())]


def catalog_path(course, lang, name):
    """The catalog of an assignment (``01_derivatives``) or page (``notation``)."""
    return Path(course) / CATALOGS / lang / f"{name}.po"


def wanted_catalogs(course):
    """name -> English entries, for every assignment and page of the course."""
    from .course import assignments

    wanted = {a: english_entries(course, a) for a in assignments(course)}
    for page in pages(course):
        wanted[page.stem] = page_entries(page)
    return wanted


@dataclass
class CatalogState:
    """How far a catalog is: counts of its current entries."""

    path: Path
    translated: int = 0
    fuzzy: int = 0
    untranslated: int = 0
    obsolete: int = 0
    new: int = 0  # entries this update added (English with no translation yet)

    def line(self):
        return (f"{self.path}: {self.translated} translated, {self.fuzzy} stale (fuzzy), "
                f"{self.untranslated} untranslated, {self.obsolete} obsolete")


def _state(path, po, new=0):
    state = CatalogState(path, new=new)
    for e in po:
        if e.obsolete:
            state.obsolete += 1
        elif "fuzzy" in e.flags:
            state.fuzzy += 1
        elif e.msgstr:
            state.translated += 1
        else:
            state.untranslated += 1
    return state


def update(course, lang):
    """Bring every catalog of ``lang`` in step with the English: new English
    becomes an untranslated entry, changed English keeps its old translation
    marked fuzzy with the previous English beside it, vanished English becomes
    obsolete. Returns a ``CatalogState`` per catalog."""
    import polib

    states = []
    for name, entries in wanted_catalogs(course).items():
        path = catalog_path(course, lang, name)
        before = {e.msgid for e in polib.pofile(str(path)) if not e.obsolete} \
            if path.exists() else set()
        po = update_catalog(path, entries, header(lang))
        new = len({m for m, _, _ in entries} - before)
        states.append(_state(Path(shown(course, path)), po, new))
    return states


# ------------------------------------------------------------ what a translation keeps

CODE_BLOCK = re.compile(r"^```.*?^```", re.S | re.M)
# a span may wrap onto the next line, but not across a blank line
_SPAN = r"(?:\\.|[^{stop}\\\n]|\n(?![ \t]*\n))+?"
CODE_SPAN = re.compile(r"`(?:[^`\n]|\n(?![ \t]*\n))+?`")
MATH = re.compile(r"\$\$.+?\$\$|\$(?!\s)" + _SPAN.format(stop="$") + r"\$", re.S)
LINK_TARGET = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@functools.cache
def traditional_only():
    """Characters written only in traditional Chinese: CC-CEDICT's traditional
    forms that are no simplified form (through ``zhon``). A zh_CN translation
    must not use them."""
    from zhon import cedict

    return frozenset(cedict.traditional) - frozenset(cedict.simplified)


def _spans(pattern, text):
    """The spans ``pattern`` finds in ``text`` (code blocks and code spans
    set aside first when looking for math), whitespace-normalised: a
    translation may wrap lines differently."""
    import collections

    if pattern is not CODE_BLOCK:
        text = CODE_BLOCK.sub(" ", text)
    if pattern is MATH:
        text = CODE_SPAN.sub(" ", text)
    return collections.Counter(" ".join(m.split()) for m in pattern.findall(text))


def entry_problems(msgid, msgstr, kind, forbidden=()):
    """What is wrong with one translation, as short sentences (empty: fine).
    ``forbidden``: (variant, preferred term) pairs from the glossary."""
    problems = []
    keep = [("code block", CODE_BLOCK), ("math", MATH), ("code span", CODE_SPAN),
            ("link target", LINK_TARGET)]
    if kind == "string":
        keep.append(("placeholder", PLACEHOLDER))
    for name, pattern in keep:
        english, translated = _spans(pattern, msgid), _spans(pattern, msgstr)
        if english != translated:
            lost = list((english - translated).elements())[:3]
            added = list((translated - english).elements())[:3]
            problems.append(f"changes a {name}: the English has {lost} "
                            f"that the translation lacks" if lost else
                            f"adds a {name} the English does not have: {added}")
    for variant, term in forbidden:
        if variant in msgstr:
            problems.append(f"uses {variant!r}, a variant the glossary forbids "
                            f"(write {term!r})")
    traditional = sorted(set(msgstr) & traditional_only())
    if traditional:
        problems.append(f"uses traditional characters {''.join(traditional)} "
                        "(this edition is Simplified Chinese)")
    return problems


@dataclass(frozen=True)
class Term:
    english: str
    chinese: str
    forbidden: tuple
    note: str


def glossary(course, lang):
    """The terms of ``translations/<lang>/glossary.tsv`` (english, chinese,
    forbidden variants separated by ``|``, note)."""
    import csv

    path = Path(course) / CATALOGS / lang / "glossary.tsv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [Term(r["english"], r["chinese"],
                 tuple(v for v in (r.get("forbidden") or "").split("|") if v),
                 r.get("note") or "") for r in rows]


def forbidden_variants(terms):
    return [(v, t.chinese) for t in terms for v in t.forbidden]


def catalog_problems(course, lang, name, entries=None):
    """Every problem of one catalog against the English ``entries`` (default:
    read from the course): missing, stale (fuzzy) and broken translations."""
    import polib

    entries = wanted_catalogs(course)[name] if entries is None else entries
    path = catalog_path(course, lang, name)
    name_shown = shown(course, path)
    if not path.exists():
        return [f"{name_shown}: missing (run `autodiff-course translations update "
                f"--lang {lang}`)"]
    po = polib.pofile(str(path))
    by_id = {e.msgid: e for e in po if not e.obsolete}
    forbidden = forbidden_variants(glossary(course, lang))
    problems, seen = [], set()
    for msgid, (where, cell), kind in entries:
        if msgid in seen:
            continue
        seen.add(msgid)
        at = f"{name_shown}: {where} cell {cell} ({kind}) {short(msgid)}"
        problems += translated(by_id.get(msgid), msgid, kind, lang, at, forbidden)[1]
    return problems


def translated(entry, msgid, kind, lang, at, forbidden=()):
    """(the text to use, problems) for one unit and its catalog ``entry``: the
    translation, or the English with a problem (each prefixed by ``at``) if
    the entry is missing, stale or broken."""
    problem = unit_problem(entry, lang)
    if problem:
        return msgid, [f"{at}: {problem}"]
    broken = [f"{at}: the translation {p}. Fix the msgstr in a PO editor."
              for p in entry_problems(msgid, entry.msgstr, kind, forbidden)]
    return entry.msgstr, broken


def unit_problem(entry, lang):
    """Why a catalog entry cannot be used (None: it can), with the fix."""
    if entry is None:
        return ("no translation: this English is not in the catalog. Run `autodiff-course "
                f"translations update --lang {lang}`, then translate the new entry")
    if "fuzzy" in entry.flags:
        before = f" (it was: {short(entry.previous_msgid)})" if entry.previous_msgid else ""
        return ("stale translation: the English changed since it was translated"
                f"{before}. Review the msgstr against the new English in a PO editor, "
                "then clear the fuzzy flag")
    if not entry.msgstr:
        return "no translation yet (empty msgstr): translate it in a PO editor"
    return None


def check(course, lang):
    """All problems of every catalog of ``lang`` (``autodiff-course translations check``)."""
    problems = []
    for name, entries in wanted_catalogs(course).items():
        problems += catalog_problems(course, lang, name, entries)
    return problems


def short(text, width=60):
    text = " ".join(text.split())
    return repr(text if len(text) <= width else text[:width - 1] + "…")


def shown(course, path):
    try:
        return str(Path(path).relative_to(Path(course)))
    except ValueError:
        return str(path)
