"""The messages of the test cells, for translation (the instructor's side).

Test cells are byte-identical in every edition, so their hand-written
messages (``GradingError("...")``, ``name=``, ``names=[...]``, ``hint=``,
``passed(...)``, f-strings included) are translated by lookup, not by
editing the cell: ``extract`` turns each into a *template*, the English text
with every computed part of an f-string (or of a ``+`` concatenation) as a
named placeholder, ``{_n}`` for ``{_n:.3f}``, ``{v1}`` for a longer
expression. ``autodiff_ref.i18n`` matches a formatted English message against
these templates and fills the Chinese one with the same values.

Where the catalogs live (one msgid per template, ``msgstr`` the Chinese):

- ``course/translations/<lang>/messages/<assignment>.po``: every test message
  of the assignment, the hidden tests' included (their entries are flagged
  ``hidden``); the instructor's, never published;
- ``release/<assignment>/messages.<lang>.po``: only the visible tests'
  entries, written by ``write_release_catalog`` beside the student notebooks
  and loaded by ``grading.use_language`` in the student's kernel.

``check_messages`` is the build's check: every extracted message has a
current translation with the same placeholders, code spans and glossary terms.
"""

from __future__ import annotations

import ast
import collections
import re
import string
from pathlib import Path

from .jupyter import grade_id, is_test
from .translation import python_only

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_FLAG = "hidden"


def _escape(text):
    return text.replace("{", "{{").replace("}", "}}")


class _Template:
    """Build a template from an expression made of string literals,
    f-strings and ``+``; ``None`` if the expression is not text."""

    def __init__(self, source):
        self.source = source
        self.counter = 0

    def placeholder(self, node):
        if isinstance(node, ast.Name):
            return "{" + node.id + "}"
        self.counter += 1
        return "{v%d}" % self.counter

    def text(self, node, top=True):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return _escape(node.value)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(_escape(value.value))
                else:
                    parts.append(self.placeholder(value.value))
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self.text(node.left, top=False)
            right = self.text(node.right, top=False)
            if left is None and right is None:
                return None
            return (left if left is not None else self.placeholder(node.left)) + \
                (right if right is not None else self.placeholder(node.right))
        return None


_WORD = re.compile(r"[A-Za-z][A-Za-z']+")


def is_prose(template):
    """True if a template reads as English (a word outside code), so it needs
    a translation; a bare call like ``relative_error([3.0, 4.0], [3.0, 4.5])``
    stays as it is in every language."""
    if re.fullmatch(r"\s*[A-Za-z_][\w.]*\s*", template):
        return False  # one identifier: the name of a function or an exercise
    text = re.sub(r"`[^`]*`", " ", template)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    for match in _WORD.finditer(text):
        word, end, start = match.group(0), match.end(), match.start()
        if end < len(text) and text[end] in "(_[.=/0123456789":
            continue
        if start > 0 and text[start - 1] in "._=/0123456789":
            continue
        if word.lower() in _CODE_WORDS:
            continue
        return True
    return False


_CODE_WORDS = {"np", "sin", "cos", "exp", "log", "tanh", "sum", "max", "min", "eps", "nan",
               "inf", "idx", "axis", "keepdims", "grad", "dx", "dy", "relu", "sigmoid", "abs",
               "sqrt", "id", "ad", "vs", "pi", "det", "mean", "std", "var", "ones", "zeros", "true", "false", "none", "ok"}


def _hidden_lines(source):
    """Line numbers (1-based) inside the hidden part of a test cell."""
    hidden, inside = set(), False
    for number, line in enumerate(source.splitlines(), 1):
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif inside:
            hidden.add(number)
    return hidden


def _docstrings(tree):
    """The string nodes that are docstrings (never shown in a message)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant):
            found.add(id(node.body[0].value))
    return found


def extract(source):
    """``[(template, hidden, line)]`` for the messages of one test cell's
    source, in order: every text (string literal, f-string, ``+`` of texts)
    that reads as prose, except docstrings. Most are arguments of a message
    (``GradingError(...)``, ``name=``, ``names=``, ``hint=``, ``passed``);
    the others are pieces a message is made of (a label in a list of cases,
    a rule named in a sentence), which ``i18n.translate`` finds inside a
    message's placeholders."""
    try:
        tree = ast.parse(python_only(source))
    except SyntaxError:
        return []
    hidden = _hidden_lines(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):  # parents before children
        if id(node) in skip or not isinstance(node, (ast.Constant, ast.JoinedStr, ast.BinOp)):
            continue
        template = _Template(source).text(node)
        if template is None:
            continue
        skip.update(id(child) for child in ast.walk(node))
        if is_prose(template):
            found.append((template, node.lineno in hidden, node.lineno))
    found.sort(key=lambda item: item[2])
    return found


def notebook_messages(nb):
    """``{template: (hidden, [grade ids])}`` over the test cells of a source
    notebook; a message that also occurs in a visible part is visible."""
    found = {}
    for cell in nb.cells:
        if not is_test(cell):
            continue
        for template, hidden, _line in extract(cell.source):
            was_hidden, where = found.get(template, (True, []))
            found[template] = (was_hidden and hidden, where + [grade_id(cell)])
    return found


def placeholders(template):
    """The named fields of a template, with their counts."""
    return collections.Counter(field for _, field, _, _ in string.Formatter().parse(template)
                               if field is not None)


# ------------------------------------------------------------- catalogs


def _folder(language):
    """``zh-CN`` -> ``zh_CN``, its folder under ``course/translations/``."""
    return language.replace("-", "_")


def course_catalog_path(course, assignment, language="zh-CN"):
    return Path(course) / "translations" / _folder(language) / "messages" / f"{assignment}.po"


def release_catalog_name(language="zh-CN"):
    return f"messages.{language}.po"


def update_messages(course, assignment, source_notebooks, language="zh-CN"):
    """Merge the messages of ``source_notebooks`` into the instructor's
    catalog of ``assignment`` (new ones empty, changed ones fuzzy, gone ones
    obsolete; ``translation.update_catalog``); the entries of hidden tests
    carry the flag ``hidden``. Returns the polib catalog."""
    from .translation import update_catalog

    found = {}
    for nb in source_notebooks:
        for template, (hidden, where) in notebook_messages(nb).items():
            was_hidden, was_where = found.get(template, (True, []))
            found[template] = (was_hidden and hidden, was_where + where)
    entries = [(t, (f"{assignment}:{where[0]}", ""), "message") for t, (_, where) in found.items()]
    path = course_catalog_path(course, assignment, language)
    header = {"Project-Id-Version": f"autodiff-course {assignment} test messages",
              "Language": _folder(language), "MIME-Version": "1.0",
              "Content-Type": "text/plain; charset=UTF-8",
              "Content-Transfer-Encoding": "8bit"}
    po = update_catalog(path, entries, header)
    for entry in po:
        if entry.obsolete:
            continue
        entry.flags = [f for f in entry.flags if f not in (HIDDEN_FLAG, "python-brace-format")]
        if found[entry.msgid][0]:
            entry.flags.append(HIDDEN_FLAG)
        if placeholders(entry.msgid):
            entry.flags.append("python-brace-format")
    po.save(str(path))
    return po


def write_release_catalog(course, assignment, language="zh-CN"):
    """Write ``release/<assignment>/messages.<language>.po``: the translated
    messages of the visible tests only (a student may read it). Returns its path."""
    import polib

    source = polib.pofile(str(course_catalog_path(course, assignment, language)))
    out = polib.POFile(wrapwidth=78)
    out.metadata = dict(source.metadata)
    out.metadata["Project-Id-Version"] = f"autodiff-course {assignment} visible test messages"
    for entry in source:
        if entry.obsolete or HIDDEN_FLAG in entry.flags or "fuzzy" in entry.flags \
                or not entry.msgstr:
            continue
        out.append(polib.POEntry(msgid=entry.msgid, msgstr=entry.msgstr,
                                 flags=[f for f in entry.flags if f == "python-brace-format"]))
    path = Path(course) / "release" / assignment / release_catalog_name(language)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(str(path))
    return path


def check_messages(po, glossary=None):
    """Problems of a message catalog (polib), as sentences: an entry without a
    current translation, or whose translation lost or added a placeholder or
    a code span, or uses a forbidden glossary variant."""
    problems = []
    for entry in po:
        if entry.obsolete:
            continue
        where = f"{entry.occurrences[0][0] if entry.occurrences else '?'} {entry.msgid[:60]!r}"
        if not entry.msgstr:
            problems.append(f"{where}: no translation")
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"{where}: stale translation (fuzzy): the English changed")
        problems += [f"{where}: {p}" for p in check_translation(entry.msgid, entry.msgstr,
                                                                glossary)]
    return problems


_CODE = re.compile(r"`[^`\n]+`")


def check_translation(english, chinese, glossary=None):
    """What a translation of one template got wrong (a list of sentences)."""
    problems = []
    try:
        if placeholders(english) != placeholders(chinese):
            problems.append(f"placeholders differ: {dict(placeholders(english))} vs "
                            f"{dict(placeholders(chinese))}")
    except ValueError as exc:
        problems.append(f"not a valid template: {exc}")
    a, b = collections.Counter(_CODE.findall(english)), collections.Counter(_CODE.findall(chinese))
    if a != b:
        problems.append(f"code spans differ: missing {sorted(a - b)} extra {sorted(b - a)}")
    for row in glossary or ():
        for bad in filter(None, (row.get("forbidden") or "").split("|")):
            if bad in chinese:
                problems.append(f"forbidden variant {bad!r} (use {row['chinese']!r})")
    from .translation import traditional_only

    traditional = sorted(set(chinese) & traditional_only())
    if traditional:
        problems.append(f"uses traditional characters {''.join(traditional)} "
                        "(this edition is Simplified Chinese)")
    return problems


def read_glossary(path):
    import csv

    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


# ------------------------------------------------- the engine's sentences

ENGINE_PLAIN = ("your result", "the visible tests")  # default values that read as prose


def engine_templates(path=None):
    """The English templates of the grading helper (``autodiff_ref/grading.py``):
    every string given to ``_say``, directly or through a variable, plus the
    default names that read as prose."""
    if path is None:
        import autodiff_ref.grading

        path = autodiff_ref.grading.__file__
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    found = []

    def strings(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return strings(node.body) + strings(node.orelse)
        return []

    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.Module)):
            continue
        assigned = collections.defaultdict(list)
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned[target.id] += strings(node.value)
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_say" and node.args:
                first = node.args[0]
                values = assigned[first.id] if isinstance(first, ast.Name) else strings(first)
                found += [v for v in values if v not in found]
    return found + [p for p in ENGINE_PLAIN if p not in found]


# -------------------------------------------------------- for the build


def build_messages(course, assignment, language="zh-CN"):
    """The build's step for the test messages of ``assignment`` (English
    source notebooks in ``source/<assignment>/`` already written): merge them
    into the instructor's catalog, check it, and write the visible tests'
    catalog beside the release notebooks. Returns the problems (sentences
    naming the catalog and the message); the build fails on any."""
    import nbformat
    import polib

    course = Path(course)
    notebooks = [nbformat.read(p, as_version=4)
                 for p in sorted((course / "source" / assignment).glob("*.ipynb"))
                 if p.name.count(".") == 1]  # the English notebooks
    update_messages(course, assignment, notebooks, language)
    path = course_catalog_path(course, assignment, language)
    glossary_path = path.parent.parent / "glossary.tsv"
    glossary = read_glossary(glossary_path) if glossary_path.exists() else None
    problems = [f"{path.relative_to(course)}: {p}"
                for p in check_messages(polib.pofile(str(path)), glossary)]
    write_release_catalog(course, assignment, language)
    return problems
