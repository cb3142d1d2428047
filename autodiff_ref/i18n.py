"""The grading helper's sentences in other languages: ``translate``.

Every sentence the grading helper and the test cells write is English and is
made from a *template*, English text with named placeholders::

    {name} is transposed: its transpose is the right answer.
    gradient_descent on sum_i a_i theta_i^2, n={_n}, eta={_eta}, {_steps} steps

A catalog maps such English templates (the msgid of a gettext PO file) to the
same template in another language (its msgstr). ``translate(message,
language, catalog)`` takes the *finished* English message, finds the template
it was made from (the literal text must match, each placeholder matches any
text, whitespace may differ, as it does in a wrapped message), translates
each placeholder's value the same way (a name given to ``assert_close`` is
itself a template of the test cell) and fills the translated template. A
message no template matches stays English: translating never fails.

The function is pure (no global state): the same call translates in the
student's kernel (``grading.use_language``), in the grader (the recorded
outputs of a submission) and anywhere else the English text is at hand.

Catalogs: the engine's own sentences ship with the package
(``autodiff_ref/locale/<language>.po``, ``engine_catalog``); a notebook's
visible test messages lie beside it (``messages.<language>.po``, written by
the course build); the hidden tests' messages stay with the instructor.
"""

from __future__ import annotations

import functools
import re
import string
from pathlib import Path

ENGLISH = "en"
LOCALE = Path(__file__).resolve().parent / "locale"
_MAX_DEPTH = 3
# placeholders of the engine's sentences that always hold a number: they match
# only a number, so that a short template such as "gradient {i}" cannot
# swallow a sentence it was never made from
NUMBERS = frozenset({"i", "count", "returned", "uses", "number", "other_number", "wrong",
                     "size"})


def load_po(path):
    """``{msgid: msgstr}`` of a PO file's current entries (translated, not
    fuzzy, not obsolete); an empty dict if the file does not exist."""
    import polib

    path = Path(path)
    if not path.exists():
        return {}
    return {e.msgid: e.msgstr for e in polib.pofile(str(path))
            if e.msgstr and not e.obsolete and "fuzzy" not in e.flags}


def catalog_file(language):
    """The engine's catalog for ``language`` (``zh-CN`` -> ``locale/zh_CN.po``)."""
    return LOCALE / f"{language.replace('-', '_')}.po"


@functools.lru_cache(maxsize=None)
def engine_catalog(language):
    """The engine's own sentences in ``language`` ({} for English)."""
    if language == ENGLISH:
        return Catalog()
    path = catalog_file(language)
    if not path.exists():
        raise ValueError(f"no translation of the grading helper into {language!r} "
                         f"(expected {path.name} in {LOCALE})")
    return Catalog(load_po(path))


class _Pattern:
    """One template with placeholders, compiled for matching."""

    def __init__(self, msgid, msgstr):
        self.msgid, self.msgstr = msgid, msgstr
        regex, literals, seen = [], [], set()
        for literal, field, _spec, _conv in string.Formatter().parse(msgid):
            if literal:
                words = literal.split()
                literals += words
                pieces = re.split(r"(\s+)", literal)
                regex += [r"\s+" if piece.isspace() else re.escape(piece)
                          for piece in pieces if piece]
            if field is None:
                continue
            if not field.isidentifier():
                raise ValueError(f"placeholder {{{field}}} is not a name")
            value = r"[-+]?[0-9][0-9.eE+-]*" if field in NUMBERS else ".*?"
            regex.append(f"(?P={field})" if field in seen else f"(?P<{field}>{value})")
            seen.add(field)
        self.literals = literals  # the literal words, in order: a quick pre-check
        self.weight = sum(len(w) for w in literals)
        self.regex = re.compile("".join(regex), re.S)

    def could_match(self, text):
        position = 0
        for word in self.literals:
            position = text.find(word, position)
            if position < 0:
                return False
            position += len(word)
        return True


class Catalog(dict):
    """``{English template: translated template}`` with the templates that
    have placeholders compiled once (``translate`` accepts a plain dict too)."""

    def __init__(self, *catalogs):
        super().__init__()
        for one in catalogs:
            self.update(one)
        self._patterns = self._plain = None

    def __setitem__(self, key, value):  # keep the compiled patterns in step
        super().__setitem__(key, value)
        self._patterns = None

    def update(self, *args, **kw):
        super().update(*args, **kw)
        self._patterns = None

    def _compile(self):
        patterns, plain = [], {}
        for msgid, msgstr in self.items():
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(msgid) if f is not None]
                if not fields:  # a sentence: its literal braces are doubled
                    plain[msgid.format()] = msgstr.format()
                    continue
                pattern = _Pattern(msgid, msgstr)
            except (ValueError, KeyError, IndexError):
                plain[msgid] = msgstr  # not a template: an exact lookup only
                continue
            if pattern.weight:
                patterns.append(pattern)
        patterns.sort(key=lambda p: -p.weight)  # the most specific template first
        self._patterns, self._plain = patterns, plain

    @property
    def patterns(self):
        if self._patterns is None:
            self._compile()
        return self._patterns

    def exact(self, text):
        if self._patterns is None:
            self._compile()
        return self._plain.get(text)


def _flat(text):
    return " ".join(text.split())


def _lookup(text, catalog, depth):
    if not text or not re.search(r"[A-Za-z]", text):
        return None
    found = catalog.exact(text)
    if found is None and "\n" in text:
        found = catalog.exact(_flat(text))
    if found is not None:
        return found
    for pattern in catalog.patterns:
        if not pattern.could_match(text):
            continue
        match = pattern.regex.fullmatch(text)
        if match is None:
            continue
        values = match.groupdict()
        if depth < _MAX_DEPTH:
            values = {k: (_lookup(v, catalog, depth + 1) or v) for k, v in values.items()}
        try:
            return pattern.msgstr.format(**values)
        except (KeyError, IndexError, ValueError):
            return None
    return None


def translate(message, language, catalog):
    """``message`` (finished English text) in ``language``, through
    ``catalog`` ({English template: translated template}, or a ``Catalog``);
    the English message itself when the language is English or no template
    matches. Never raises on a message it cannot translate."""
    if language == ENGLISH or not catalog or not isinstance(message, str):
        return message
    if not isinstance(catalog, Catalog):
        catalog = Catalog(catalog)
    try:
        found = _lookup(message, catalog, 0)
    except Exception:  # noqa: BLE001  (a translation must never break a test)
        return message
    return message if found is None else found


def translate_lines(text, language, catalog):
    """``translate`` line by line (the printed output of a test cell)."""
    if language == ENGLISH or not catalog:
        return text
    return "\n".join(translate(line, language, catalog) if line.strip() else line
                     for line in text.split("\n"))
