"""What crosses between the student's kernel and the judge: data, never code.

Both sides use this module (the kernel's agent to write its replies, the
judge to read them), and nothing here runs code named by the other side. A
value is written as JSON:

* ``None``, ``bool``, ``int``, ``float`` (NaN and infinities included),
  ``str`` as themselves (exact types only: a subclass of ``float`` that lies
  to ``==`` is not a float here);
* ``complex`` as ``{"$c": [re, im]}``; ``tuple`` as ``{"$t": [...]}``;
  ``list`` as a list; ``dict`` with ``str`` keys as ``{"$d": {...}}``;
* a NumPy array as ``{"$nd": [dtype, shape, base64 of the raw bytes]}`` and a
  NumPy scalar as ``{"$np": [dtype, base64]}``, the dtype from ``DTYPES``
  (numbers only: never ``object``, never a structured or string dtype);
* a ``slice`` of integers as ``{"$sl": [start, stop, step]}``, ``...`` as
  ``{"$el": 0}`` (NumPy indices, as the engine's ``getitem`` saves them);
* a NumPy random ``Generator`` as ``{"$rng": [bit generator, state]}`` (its
  state is numbers: the same seed draws the same numbers on both sides);
* anything else as a *handle*: ``{"$h": [id, type name]}``, a number into a
  table kept by the side that owns the object. Two more markers go from the
  judge to the kernel only: ``{"$cb": id}`` (a judge-side function the kernel
  may call back) and ``{"$g": name}`` (a class the instructor's cells
  define, which the kernel has under the same name); ``{"$obj": [id]}`` names an
  object of a class the instructor's cells define, sent by value in the
  request's table of objects, whose kernel-side copy the kernel names the
  same way in its reply (its changed attributes come back). The reference
  engine's tensors, nodes and contexts travel both ways as ``{"$ad": key}``
  with their contents in the message's table (``graphs.py``), a Function of
  the engine's own as ``{"$fn": name}``.

``decode`` validates everything it reads (JSON nesting, dtype, shape against
the byte count, sizes) and raises ``WireError`` on anything else: a kernel that
lies about its data gets an error, not a crash of the grader.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np

DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                    "uint64", "float16", "float32", "float64", "complex64", "complex128"})
BIT_GENERATORS = frozenset({"PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"})
FIGURE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf")  # a figure's
# formats in a display output (the kernel told not to draw them: only text/plain)
MAX_DEPTH = 32  # nesting of lists, tuples and dicts
MAX_DIMS = 32
MAX_ITEMS = 1_000_000  # elements of lists, tuples and dicts in one value


class WireError(ValueError):
    """Data from the other side that is not a value this module writes."""


# --------------------------------------------------------- writing


def encode(value, handle, depth=0, arrays=None):
    """``value`` as JSON-ready data; ``handle(obj)`` names what is not data
    (it returns the marker dict to send in its place). ``arrays``, a list,
    collects the arrays written, in order (``decode`` reads them in the same
    order: the two sides name an argument array by its position)."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value
    if kind is complex:
        return {"$c": [value.real, value.imag]}
    if depth < MAX_DEPTH:
        if kind is list:
            return [encode(v, handle, depth + 1, arrays) for v in value]
        if kind is tuple:
            return {"$t": [encode(v, handle, depth + 1, arrays) for v in value]}
        if kind is dict and all(type(k) is str for k in value):
            return {"$d": {k: encode(v, handle, depth + 1, arrays) for k, v in value.items()}}
    if kind is slice and all(p is None or type(p) is int
                             for p in (value.start, value.stop, value.step)):
        return {"$sl": [value.start, value.stop, value.step]}
    if value is Ellipsis:
        return {"$el": 0}
    if kind is np.ndarray and value.dtype.name in DTYPES:
        data = np.ascontiguousarray(value)
        if arrays is not None:
            arrays.append(value)
        return {"$nd": [value.dtype.name, list(value.shape),
                        base64.b64encode(data.tobytes()).decode("ascii")]}
    if kind is np.random.Generator:
        bits = value.bit_generator
        if type(bits).__name__ in BIT_GENERATORS:
            if arrays is not None:
                arrays.append(value)
            return {"$rng": [type(bits).__name__, encode(bits.state, handle, MAX_DEPTH - 4)]}
    if issubclass(kind, np.generic) and kind.__module__ == "numpy" \
            and value.dtype.name in DTYPES:
        return {"$np": [value.dtype.name, base64.b64encode(value.tobytes()).decode("ascii")]}
    return handle(value)


def dumps(value, handle, arrays=None):
    return json.dumps(encode(value, handle, arrays=arrays), allow_nan=True,
                      separators=(",", ":"))


# --------------------------------------------------------- reading


def _array(spec):
    if not (isinstance(spec, list) and len(spec) == 3):
        raise WireError("an array must be [dtype, shape, bytes]")
    dtype, shape, data = spec
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise WireError(f"arrays of dtype {str(dtype)[:40]!r} are not accepted (numbers only)")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(type(n) is int and n >= 0 for n in shape)):
        raise WireError(f"not an array shape: {str(shape)[:80]}")
    if not isinstance(data, str):
        raise WireError("array bytes must be base64 text")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise WireError("array bytes are not valid base64") from None
    itemsize = np.dtype(dtype).itemsize
    count = math.prod(shape)
    if count * itemsize != len(raw):
        raise WireError(f"an array of shape {tuple(shape)} and dtype {dtype} needs "
                        f"{count * itemsize} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _scalar(spec):
    if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], str)):
        raise WireError("a NumPy scalar must be [dtype, bytes]")
    return _array([spec[0], [], spec[1]])[()]


def _generator(spec, resolve):
    if not (isinstance(spec, list) and len(spec) == 2 and spec[0] in BIT_GENERATORS):
        raise WireError("a random generator must be [bit generator, state]")
    state = decode(spec[1], resolve, MAX_DEPTH - 4)
    rng = np.random.Generator(getattr(np.random, spec[0])())
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise WireError(f"not a state of {spec[0]}: {str(exc)[:100]}") from None
    return rng


def same_state(a, b):
    """Whether two values the caller sent are unchanged (arrays: equal;
    generators: the same state)."""
    if isinstance(a, np.random.Generator):
        return json.dumps(encode(a.bit_generator.state, repr)) == \
            json.dumps(encode(b.bit_generator.state, repr))
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def copy_state(value):
    if isinstance(value, np.random.Generator):
        rng = np.random.Generator(type(value.bit_generator)())
        rng.bit_generator.state = value.bit_generator.state
        return rng
    return value.copy()


def decode(data, resolve, depth=0, budget=None, arrays=None):
    """The value ``data`` (from ``json.loads``) describes; ``resolve(marker,
    payload)`` turns a handle (or callback/tensor marker) into an object.
    Raises ``WireError`` for anything malformed. ``arrays`` collects the
    arrays read, in order (see ``encode``)."""
    budget = budget if budget is not None else [MAX_ITEMS]
    if depth > MAX_DEPTH + 1:
        raise WireError("the value is nested too deeply")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        budget[0] -= len(data)
        if budget[0] < 0:
            raise WireError("the value has too many elements")
        return [decode(v, resolve, depth + 1, budget, arrays) for v in data]
    if kind is not dict or len(data) != 1:
        raise WireError(f"unexpected data of type {kind.__name__}")
    (marker, payload), = data.items()
    if marker == "$c":
        if not (isinstance(payload, list) and len(payload) == 2
                and all(type(p) in (int, float) for p in payload)):
            raise WireError("a complex number must be [re, im]")
        return complex(*payload)
    if marker == "$t":
        if not isinstance(payload, list):
            raise WireError("a tuple must hold a list")
        return tuple(decode(payload, resolve, depth, budget, arrays))
    if marker == "$d":
        if not isinstance(payload, dict):
            raise WireError("a dict must hold an object")
        budget[0] -= len(payload)
        if budget[0] < 0:
            raise WireError("the value has too many elements")
        return {k: decode(v, resolve, depth + 1, budget, arrays) for k, v in payload.items()}
    if marker == "$nd":
        array = _array(payload)
        if arrays is not None:
            arrays.append(array)
        return array
    if marker == "$np":
        return _scalar(payload)
    if marker == "$rng":
        rng = _generator(payload, resolve)
        if arrays is not None:
            arrays.append(rng)
        return rng
    if marker == "$sl":
        if not (isinstance(payload, list) and len(payload) == 3
                and all(p is None or type(p) is int for p in payload)):
            raise WireError("a slice must be [start, stop, step] of integers or null")
        return slice(*payload)
    if marker == "$el":
        return Ellipsis
    if marker in ("$h", "$cb", "$obj", "$g", "$ad", "$fn"):
        return resolve(marker, payload)
    raise WireError(f"unknown marker {marker[:20]!r}")


def loads(text, resolve, limit=None, arrays=None):
    """``decode`` of JSON ``text`` of at most ``limit`` characters."""
    if not isinstance(text, str):
        raise WireError("a message must be text")
    if limit is not None and len(text) > limit:
        raise WireError(f"the reply is larger than {limit // 1024} KB")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise WireError("the reply is not valid JSON") from None
    return decode(data, resolve, arrays=arrays)
