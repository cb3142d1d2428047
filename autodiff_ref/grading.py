"""What the notebooks' test cells call: compare a student's answer with the
reference and with finite differences, and explain a mismatch in words.

A failing check raises ``GradingError`` (an ``AssertionError``) whose message
says what is wrong, in the order a student would want to know it:

* returned nothing, or NaN / infinity;
* wrong shape (expected vs got), or the transpose of the right answer;
* a gradient that is missing the sum over the axes along which its input was
  broadcast;
* the right values with the wrong sign, or off by a constant factor;
* a backward function that ignores the upstream gradient;
* otherwise: the largest error, where it is, and both values there.

Typical use in a test cell::

    from autodiff_ref import grading
    grading.assert_close(central_difference(np.sin, 1.0, 1e-5), np.cos(1.0),
                         name="central_difference(sin, 1.0, 1e-5)", rtol=1e-8)
    grading.check_vjp(matmul_backward, lambda a, b: a @ b, [(3, 4), (4, 2)])

Every sentence is an English template with named placeholders (``_say``);
``use_language("zh-CN")``, called by the setup cell of the Chinese notebook,
makes the helper write them in Chinese (``autodiff_ref.i18n``: the engine's
catalog plus the test messages of the notebook's folder). The language is
the notebook's choice, never the machine's locale, and the error classes
(the categories) are the same in every language.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
import unicodedata
from pathlib import Path

import numpy as np

from . import i18n
from .function import sum_to_shape
from .gradcheck import numerical_jacobian
from .tensor import Tensor


WIDTH = 78  # explanations wrap here: Validate's dialog clips long lines

# The language the helper writes in (``use_language``): its code and catalog.
_LANGUAGE = {"code": i18n.ENGLISH, "catalog": i18n.Catalog()}


def use_language(language="en", messages=None):
    """Write every explanation, ``exercise`` and ``passed`` line in ``language``
    (``"en"``, the default, or ``"zh-CN"``), for this kernel.

    The catalog is the engine's own sentences plus the notebook's test
    messages, ``messages.<language>.po`` in the current folder (the
    notebook's) or the file ``messages``. The setup cell of the Chinese
    notebook calls this; the machine's locale plays no part.
    """
    if language == i18n.ENGLISH:
        _LANGUAGE.update(code=language, catalog=i18n.Catalog())
        return
    engine = i18n.engine_catalog(language)  # raises for a language it does not know
    path = Path(messages) if messages else Path.cwd() / f"messages.{language}.po"
    _LANGUAGE.update(code=language, catalog=i18n.Catalog(engine, i18n.load_po(path)))


def language():
    """The language the helper writes in (``use_language``)."""
    return _LANGUAGE["code"]


def _say(template, **fields):
    """An English sentence from its template (the msgid of the catalogs);
    translated, if a language is chosen, when it is raised or printed."""
    return template.format(**fields)


def _local(text):
    return i18n.translate(text, _LANGUAGE["code"], _LANGUAGE["catalog"])


def _width(text):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


_CJK_TOKEN = re.compile(r"\([^()]*\)|`[^`]*`|[\u2e80-\u9fff\uff00-\uffef][，。：；、！？）」]*"
                        r"|[^\s\u2e80-\u9fff\uff00-\uffef]+[，。：；、！？）」]*|\s+")


def _wrap_wide(part):
    """Wrap a line holding Chinese at ``WIDTH`` columns (a Chinese character
    is two): break between characters or at spaces, never inside a
    parenthesised shape or a code span, never before closing punctuation."""
    lines, line = [], ""
    for token in _CJK_TOKEN.findall(part):
        if line and _width(line) + _width(token.rstrip()) > WIDTH:
            lines.append(line.rstrip())
            line = "" if token.isspace() else token
        else:
            line += token
    lines.append(line.rstrip())
    return "\n".join(lines)


def _wrap(text):
    """Wrap long lines at spaces, never inside a parenthesised shape like (4, 2)."""
    keep = "\u00a0"  # a placeholder space that textwrap does not break at
    lines = []
    for part in str(text).split("\n"):
        if _width(part) != len(part):
            lines.append(_wrap_wide(part))
            continue
        part = re.sub(r"\([^()]*\)", lambda m: m.group(0).replace(" ", keep), part)
        wrapped = textwrap.fill(part, WIDTH, break_long_words=False, break_on_hyphens=False)
        lines.append(wrapped.replace(keep, " ") if len(part) > WIDTH else part.replace(keep, " "))
    return "\n".join(lines)


class GradingError(AssertionError):
    """A test-cell check failed; the message explains why (wrapped to ``WIDTH``).

    ``category`` is a stable code for the kind of mistake (see ``CATEGORIES``):
    it never depends on the wording, so the class report can count mistakes
    in any language edition. The class's name travels with the failure (a
    notebook records it as the error's ``ename``).
    """

    category = "check_failed"  # a test cell's own check (its message says what)

    def __init__(self, message=""):
        super().__init__(_wrap(_local(message)))


class ExerciseNotWritten(GradingError):
    """The exercise still raises the ``NotImplementedError`` of the student version."""

    category = "not_written"


# The kinds of mistake ``diagnose`` recognises: one stable code each, and the
# GradingError subclass ``assert_close`` raises for it. The English sentences
# stay in ``_diagnosis``; this table is the one place that names the kinds.
class NothingReturnedError(GradingError):
    category = "returned_nothing"


class NotAnArrayError(GradingError):
    category = "not_an_array"


class NotFiniteError(GradingError):
    category = "not_finite"


class WrongShapeError(GradingError):
    category = "wrong_shape"


class TransposedError(GradingError):
    category = "transposed"


class MissingBroadcastSumError(GradingError):
    category = "missing_broadcast_sum"


class NeedsReshapeError(GradingError):
    category = "needs_reshape"


class WrongSignError(GradingError):
    category = "wrong_sign"


class IgnoresUpstreamError(GradingError):
    category = "ignores_upstream"


class ConstantFactorError(GradingError):
    category = "constant_factor"


class NotExactError(GradingError):
    category = "not_exact"


class WrongValueError(GradingError):
    category = "wrong_values"


class WrongCountError(GradingError):
    category = "wrong_count"


class OutOfBoundsError(GradingError):
    category = "out_of_bounds"


class MissingPathError(GradingError):
    category = "missing_paths"  # assert_sum_of_parts: = where += was needed


ERRORS = (GradingError, ExerciseNotWritten, NothingReturnedError, NotAnArrayError,
          NotFiniteError, WrongShapeError, TransposedError, MissingBroadcastSumError,
          NeedsReshapeError, WrongSignError, IgnoresUpstreamError, ConstantFactorError,
          NotExactError, WrongValueError, WrongCountError, OutOfBoundsError,
          MissingPathError)
CATEGORIES = {cls.category: cls for cls in ERRORS}  # code -> the error raised for it


def category_of(ename):
    """The category code of a failure recorded under the exception name
    ``ename`` (a notebook error's ``ename``), or None if it is not a grading
    helper's error. An untouched stub's ``NotImplementedError`` counts as
    ``not_written``."""
    if ename == "NotImplementedError":
        return "not_written"
    return next((cls.category for cls in ERRORS if cls.__name__ == ename), None)


@contextlib.contextmanager
def exercise(number, name, *, needs=()):
    """Wrap a test cell's checks of exercise ``number`` (the function ``name``).

    An untouched exercise (its stub raises ``NotImplementedError``) fails with
    one line, "Exercise N (`name`) is not written yet", instead of a long
    traceback. ``needs`` lists earlier exercises, as ``(number, name)``
    pairs, that this one calls: if one of those is the unwritten one, the
    message says to finish it first.
    """
    try:
        yield
    except NotImplementedError as exc:
        where = _unwritten_function(exc)
        for other_number, other in needs:
            if where == other:
                raise ExerciseNotWritten(_say(
                    "Exercise {number} (`{name}`) uses exercise {other_number} (`{other}`), "
                    "which is not written yet: finish exercise {other_number} first.",
                    number=number, name=name, other_number=other_number,
                    other=other)) from None
        raise ExerciseNotWritten(_say(
            "Exercise {number} (`{name}`) is not written yet: replace "
            "`raise NotImplementedError()` with your code.", number=number, name=name)) from None


def _unwritten_function(exc):
    """The name of the innermost function that raised ``exc``."""
    tb, name = exc.__traceback__, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return name


# Replaced by the trusted grader while it runs a notebook's tests (see batch).
batching = contextlib.nullcontext


def batch():
    """``with grading.batch(): ...`` around test code that builds something
    out of many small operations on the student's objects (a graph of
    thousands of Values). In a notebook it does nothing. When the grader
    runs the tests outside the student's process, the operations inside the
    block travel to the student's kernel together instead of one by one;
    an error of the student's code then surfaces at the end of the block."""
    return batching()


def passed(name, what="the visible tests"):
    """The one line a passing test cell prints."""
    print(_local(_say("\u2713 {name} passes {what}", name=name, what=what)))


def _array(x):
    if isinstance(x, Tensor):
        return x.data
    return np.asarray(x)


def _shape(s):
    return "(" + ", ".join(str(n) for n in s) + ("," if len(s) == 1 else "") + ")"


def _close(a, b, rtol, atol):
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _broadcast_axes(big, small):
    """Axes of ``big`` along which an array of shape ``small`` was broadcast."""
    extra = len(big) - len(small)
    axes = list(range(extra))
    axes += [extra + i for i, n in enumerate(small) if n == 1 and big[extra + i] != 1]
    return axes


def diagnose(got, expected, *, rtol=1e-6, atol=1e-8, name="your result",
             without_upstream=None, category=False):
    """``None`` if ``got`` matches ``expected``, else a sentence saying what is wrong.

    ``without_upstream``: what the answer would be with an upstream gradient
    of ones; a ``got`` equal to it means the upstream gradient was ignored.
    ``category=True``: return ``(code, sentence)`` instead, the code one of
    ``CATEGORIES`` (stable, whatever the language of the sentence).
    """
    found = _diagnosis(got, expected, rtol, atol, name, without_upstream)
    if found is None or category:
        return found
    return found[1]


def _diagnosis(got, expected, rtol, atol, name, without_upstream):
    """(category, sentence) or None; see ``diagnose``."""
    if got is None:
        return ("returned_nothing", _say(
            "{name} is None: the function returned nothing. Did you forget `return`?",
            name=name))
    try:
        g = np.asarray(_array(got), dtype=np.float64)
    except (TypeError, ValueError):
        return ("not_an_array", _say("{name} should be a number or an array, got {type}",
                                     name=name, type=type(got).__name__))
    e = np.asarray(_array(expected), dtype=np.float64)
    if not np.all(np.isfinite(g)):
        return ("not_finite", _say(
            "{name} contains NaN or infinity (at index {index}): look for a division by "
            "zero, a log of a non-positive number or an overflow.", name=name,
            index=tuple(int(i) for i in np.argwhere(~np.isfinite(g))[0])))
    if g.shape != e.shape:
        if e.ndim == 0:
            return ("wrong_shape", _say(
                "{name} should be a single number, got an array of shape {got}.",
                name=name, got=_shape(g.shape)))
        if g.ndim == 0:
            return ("wrong_shape", _say(
                "{name} should be an array of shape {expected}, got a single number.",
                name=name, expected=_shape(e.shape)))
        if g.ndim == 2 and g.shape == e.shape[::-1] and _close(g.T, e, rtol, atol):
            return ("transposed", _say(
                "{name} is transposed: expected shape {expected}, got {got}, and its "
                "transpose is the right answer.", name=name, expected=_shape(e.shape),
                got=_shape(g.shape)))
        summed = sum_to_shape(g, e.shape)
        if summed is not None and _close(summed, e, rtol, atol):
            return ("missing_broadcast_sum", _say(
                "{name} has shape {got} but must have the input's shape {expected}: it is "
                "missing the sum over the broadcast axis/axes {axes}. An input that was "
                "broadcast is used several times, so its gradient is the sum of the copies' "
                "gradients.", name=name, got=_shape(g.shape), expected=_shape(e.shape),
                axes=tuple(_broadcast_axes(g.shape, e.shape))))
        if g.size == e.size and _close(g.reshape(e.shape), e, rtol, atol):
            return ("needs_reshape", _say(
                "{name} has the right values but the wrong shape: expected {expected}, got "
                "{got} (reshape it).", name=name, expected=_shape(e.shape),
                got=_shape(g.shape)))
        return ("wrong_shape", _say("{name} has the wrong shape: expected {expected}, got {got}.",
                                    name=name, expected=_shape(e.shape), got=_shape(g.shape)))
    if _close(g, e, rtol, atol):
        return None
    if np.any(e) and _close(-g, e, rtol, atol):
        return ("wrong_sign", _say(
            "{name} has the wrong sign: it is exactly minus the correct value.", name=name))
    if g.ndim == 2 and g.shape[0] == g.shape[1] and _close(g.T, e, rtol, atol):
        return ("transposed", _say("{name} is transposed: its transpose is the right answer.",
                                   name=name))
    if without_upstream is not None:
        w = np.asarray(_array(without_upstream), dtype=np.float64)
        if w.shape == g.shape and _close(g, w, rtol, atol):
            return ("ignores_upstream", _say(
                "{name} ignores the upstream gradient: it equals the result for an upstream "
                "gradient of all ones. Multiply by grad_output (chain rule).", name=name))
    denom = float(np.vdot(e, e))
    if denom > 0 and e.size > 1:
        factor = float(np.vdot(g, e)) / denom
        if abs(factor) > 1e-12 and _close(g, factor * e, max(rtol, 1e-9), atol) and \
                not np.isclose(factor, 1.0):
            nice = min((2.0, 0.5, 3.0, 1 / 3, 4.0, 0.25), key=lambda c: abs(c - abs(factor)))
            if np.isclose(abs(factor), nice, rtol=1e-3):
                return ("constant_factor", _say(
                    "{name} is off by a constant factor: every value is {factor} times the "
                    "correct one (about {nice}x). Check constants such as 2, 1/2 or 1/n.",
                    name=name, factor=f"{factor:.6g}", nice=f"{nice:g}"))
            return ("constant_factor", _say(
                "{name} is off by a constant factor: every value is {factor} times the "
                "correct one. Check constants such as 2, 1/2 or 1/n.",
                name=name, factor=f"{factor:.6g}"))
    if rtol <= 1e-9 and np.allclose(g, e, rtol=1e-4, atol=atol):
        worst = float(np.max(np.abs(g - e) / np.maximum(np.abs(e), 1e-300)))
        return ("not_exact", _say(
            "{name} is close but not exact: it agrees only to a relative error of about "
            "{error}. That is what a numerical approximation (finite differences) gives; this "
            "exercise asks for the exact value from a formula.", name=name,
            error=f"{worst:.0e}"))
    if e.size == 1 and e.item() != 0:  # one number: name the factor only if it is telling
        factor = float(g.item() / e.item())
        for nice in (2.0, 0.5, 3.0, 1 / 3, 4.0, 0.25, 10.0, 0.1):
            if np.isclose(abs(factor), nice, rtol=1e-4):
                template = ("{name} is off by a factor of minus {factor}: expected {expected}, "
                            "got {got}. Check constants such as 2, 1/2 or 1/n." if factor < 0
                            else "{name} is off by a factor of {factor}: expected {expected}, "
                            "got {got}. Check constants such as 2, 1/2 or 1/n.")
                return ("constant_factor", _say(template, name=name, factor=f"{nice:g}",
                                                expected=f"{e.item():.10g}",
                                                got=f"{g.item():.10g}"))
    if e.size == 1:
        return ("wrong_values", _say("{name} is wrong: expected {expected}, got {got}.",
                                     name=name, expected=f"{e.item():.10g}",
                                     got=f"{g.item():.10g}"))
    err = np.abs(g - e)
    idx = np.unravel_index(int(np.argmax(err)), g.shape) if g.ndim else ()
    wrong = int(np.sum(~np.isclose(g, e, rtol=rtol, atol=atol)))
    fields = dict(name=name, wrong=wrong, size=g.size, expected=f"{e[idx]:.10g}",
                  got=f"{g[idx]:.10g}", index=tuple(int(i) for i in idx))
    if g.ndim:
        return ("wrong_values", _say(
            "{name} has wrong values: {wrong} of {size} differ; the largest error is at index "
            "{index}: expected {expected}, got {got}.", **fields))
    return ("wrong_values", _say(
        "{name} has wrong values: {wrong} of {size} differ; the largest error is: expected "
        "{expected}, got {got}.", **fields))


def assert_close(got, expected, *, name="your result", rtol=1e-6, atol=1e-8,
                 without_upstream=None):
    """Raise ``GradingError`` with an explanation unless ``got`` matches ``expected``."""
    problem = _diagnosis(got, expected, rtol, atol, name, without_upstream)
    if problem is not None:
        code, sentence = problem
        raise CATEGORIES[code](sentence)


def _bound(value, bound, name, hint, above):
    if above:
        template = ("{name} is {value}, but it should be above {bound}. {hint}" if hint
                    else "{name} is {value}, but it should be above {bound}.")
    else:
        template = ("{name} is {value}, but it should be below {bound}. {hint}" if hint
                    else "{name} is {value}, but it should be below {bound}.")
    raise OutOfBoundsError(_say(template, name=name, value=f"{value:.6g}", bound=f"{bound:g}",
                                hint=hint))


def assert_less(value, bound, *, name="your result", hint=""):
    """Raise ``GradingError`` unless the number ``value`` is below ``bound``."""
    value = float(_array(value))
    if not value < bound:
        _bound(value, bound, name, hint, above=False)


def assert_greater(value, bound, *, name="your result", hint=""):
    """Raise ``GradingError`` unless the number ``value`` is above ``bound``."""
    value = float(_array(value))
    if not value > bound:
        _bound(value, bound, name, hint, above=True)


def assert_sum_of_parts(got, parts, *, name="your result", rtol=1e-10, atol=1e-12):
    """Check that ``got`` is the sum of the contributions ``parts``.

    ``parts`` maps a label (the consumer a path goes through) to its
    contribution, e.g. the partial adjoints a variable receives from each of
    its uses. If ``got`` equals the sum of only some of them, the message
    names the missing paths: the overwrite-instead-of-add (``=`` for ``+=``)
    bug of hand-written backward passes.
    """
    import itertools

    values = {k: np.asarray(_array(v), dtype=np.float64) for k, v in parts.items()}
    expected = sum(values.values())
    g = np.asarray(_array(got), dtype=np.float64) if got is not None else None
    if g is not None and g.shape == np.shape(expected) and np.all(np.isfinite(g)) \
            and not _close(g, np.asarray(expected), rtol, atol):
        labels = list(values)
        for r in range(1, len(labels)):
            for combo in itertools.combinations(labels, r):
                if _close(g, np.asarray(sum(values[c] for c in combo)), rtol * 10, atol * 10):
                    missing = [c for c in labels if c not in combo]
                    raise MissingPathError(_say(
                        "{name} is only the contribution of the path(s) through {found}; it "
                        "misses the path(s) through {missing}. The variable is used {uses} "
                        "times, so its gradient is the sum of {uses} contributions: add each "
                        "one (+=); a second assignment (=) throws away what was added before.",
                        name=name, found=", ".join(combo), missing=", ".join(missing),
                        uses=len(labels)))
    parts_text = ", ".join(_say("through {label} {value}", label=k,
                                value=np.round(v, 6).tolist()) for k, v in values.items())
    assert_close(got, expected, rtol=rtol, atol=atol,
                 name=_say("{name} (the sum of one contribution per use: {parts})",
                           name=name, parts=parts_text))


def numerical_vjp(forward, arrays, upstream, eps=1e-6):
    """J^T g for each input of ``forward`` (arrays -> array), by central differences."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    jacs = numerical_jacobian(lambda *xs: np.asarray(forward(*xs), dtype=np.float64),
                              tuple(arrays), eps)
    g = np.asarray(upstream, dtype=np.float64)
    return [np.tensordot(g, j, axes=g.ndim) for j in jacs]


def check_vjp(backward, forward, shapes, *, reference=None, rng=None, trials=2,
              rtol=1e-5, atol=1e-7, names=None, low=-2.0, high=2.0, positive=False):
    """Check a hand-written backward rule (a VJP) on random inputs.

    ``forward(*arrays)`` computes the function with NumPy; ``backward(g,
    *arrays)`` is the student's rule and returns one gradient per input (a
    single array if there is one input); ``shapes`` lists the input shapes.
    The upstream gradient ``g`` is random (never all ones: that hides
    transposes and broadcasting bugs). The expected answer comes from central
    differences in float64 and, when ``reference`` is given (a function of
    autodiff_ref tensors), also from the reference engine. Returns nothing (a
    test cell ending with it prints no stray value); raises ``GradingError``.
    """
    rng = np.random.default_rng() if rng is None else rng
    names = names or [_say("gradient {i}", i=i) for i in range(len(shapes))]
    for _ in range(trials):
        arrays = [rng.uniform(low, high, s) for s in shapes]
        if positive:
            arrays = [np.abs(a) + 0.5 for a in arrays]
        out = np.asarray(forward(*arrays), dtype=np.float64)
        g = rng.standard_normal(out.shape)
        expected = numerical_vjp(forward, arrays, g)
        ones = numerical_vjp(forward, arrays, np.ones(out.shape))
        if reference is not None:
            xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
            ref_out = reference(*xs)
            ref_out.backward(Tensor(g))
            for i, x in enumerate(xs):
                ref = np.zeros(x.shape) if x.grad is None else x.grad.data
                if not np.allclose(ref, expected[i], rtol=1e-5, atol=1e-6):
                    raise RuntimeError(_local(_say(
                        "the reference and finite differences disagree on {name}: a bug in "
                        "the test, not in your code", name=names[i])))
                expected[i] = ref
        got = backward(g, *[a.copy() for a in arrays])
        got = list(got) if isinstance(got, (tuple, list)) else [got]
        if len(got) != len(shapes):
            raise WrongCountError(_say(
                "backward must return {count} gradient(s), one per input, but returned "
                "{returned}.", count=len(shapes), returned=len(got)))
        for i, (gi, ei, wi) in enumerate(zip(got, expected, ones)):
            where = _say("{name} (inputs of shape {shapes})", name=names[i],
                         shapes=", ".join(_shape(s) for s in shapes))
            assert_close(gi, ei, name=where, rtol=rtol, atol=atol, without_upstream=wi)
