"""Proxies of the objects that live in the student's kernel (trusted side).

A ``Remote`` is a handle (an id into the kernel agent's table and the type's
name) bound to the ``channel.Channel`` that made it; every operation on it is
a request over that channel. This module imports nothing of the package.
"""

from __future__ import annotations

def _typed(value, kinds, what):
    if type(value) not in kinds:
        raise TypeError(f"the student's object gave a {type(value).__name__} for {what}")
    return value


class Remote:
    """An object that lives in the student's kernel (a function, a class, an
    instance), reached through the channel. Every operation is a request;
    results are data or further ``Remote`` objects."""

    __slots__ = ("_channel", "_id", "_type", "_kin", "__weakref__")
    __array_ufunc__ = None  # NumPy defers to the reflected operators below

    def __init__(self, channel, ident, type_name):
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_kin", None)

    @property
    def __class__(self):
        """For ``isinstance`` only: an object of a student's class derived from
        a class of the notebook's (``class Value(Node)``) is an instance of the
        judge's copy of that class. ``type()`` still says ``Remote``."""
        if self._kin is None:
            kin = Remote
            object.__setattr__(self, "_kin", Remote)  # while we ask (the request encodes us)
            try:
                names = self._apply("mro_names", self)
            except Exception:  # noqa: BLE001
                names = []
            for name in names if isinstance(names, list) else []:
                cls = self._channel.notebook_class(name)
                if cls is not None:
                    kin = cls
                    break
            object.__setattr__(self, "_kin", kin)
        return self._kin

    def _apply(self, name, *args):
        return self._channel.apply(name, *args)

    def __call__(self, *args, **kwargs):
        return self._channel.request("call", target=[self._id, self._type], args=list(args),
                                     kwargs=kwargs, globals=self._channel.rebound())

    def __getattr__(self, name):
        if (name.startswith("__") and name.endswith("__")) or \
                name.startswith(("_repr_", "_ipython_", "_array")):
            raise AttributeError(name)
        return self._channel.request("getattr", target=[self._id, self._type], name=name)

    def __setattr__(self, name, value):
        self._channel.request("setattr", target=[self._id, self._type], name=name,
                              args=[value])

    def __repr__(self):
        try:
            text = self._apply("repr", self)
        except Exception:  # noqa: BLE001
            text = None
        if not isinstance(text, str):
            return f"<the student's {self._type} object>"
        return text if len(text) <= 300 else text[:300] + "..."

    def __str__(self):
        return repr(self)

    def __format__(self, spec):
        if not spec:
            return repr(self)
        return _typed(self._apply("format", self, spec), (str,), "format()")

    def __hash__(self):
        return hash((id(self._channel), self._id))

    def __bool__(self):
        return _typed(self._apply("bool", self), (bool,), "truth")

    def __len__(self):
        n = _typed(self._apply("len", self), (int,), "len()")
        if n < 0:
            raise ValueError("len() < 0")
        return n

    def __iter__(self):
        items = self._apply("list", self)
        return iter(_typed(items, (list,), "iteration"))

    def __float__(self):
        return _typed(self._apply("float", self), (float,), "float()")

    def __int__(self):
        return _typed(self._apply("int", self), (int,), "int()")

    def __index__(self):
        return _typed(self._apply("index", self), (int,), "an index")

    def __complex__(self):
        return _typed(self._apply("complex", self), (complex,), "complex()")

    def __round__(self, ndigits=None):
        return self._apply("round", self) if ndigits is None else self._apply("round", self,
                                                                              ndigits)

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        value = self._apply("array", self)
        if not isinstance(value, np.ndarray):
            if type(value) in (bool, int, float, complex) or isinstance(value, np.generic):
                value = np.asarray(value)
            else:
                raise TypeError(f"the student's {self._type} could not be read as an array")
        return value.astype(dtype) if dtype is not None else value

    def __getitem__(self, key):
        return self._apply("getitem", self, key)

    def __setitem__(self, key, value):
        self._apply("setitem", self, key, value)

    def __delitem__(self, key):
        self._apply("delitem", self, key)

    def __contains__(self, item):
        return _typed(self._apply("contains", self, item), (bool,), "in")

    def __mro_entries__(self, bases):
        """``class Sin(Function)`` in an instructor's cell, ``Function`` the
        student's class: the kernel ran the same cell, so the judge takes the
        kernel's class of that name (``_KernelClass``)."""
        return (self._channel.kernel_base(),)

    def __instancecheck__(self, obj):
        if isinstance(obj, Remote) and obj._channel is self._channel:
            return _typed(self._apply("isinstance", obj, self), (bool,), "isinstance()")
        return False

    def __subclasscheck__(self, cls):
        if isinstance(cls, Remote) and cls._channel is self._channel:
            return _typed(self._apply("issubclass", cls, self), (bool,), "issubclass()")
        return False


def _binary(name):
    def forward(self, other):
        return self._apply(name, self, other)

    def reflected(self, other):
        return self._apply(name, other, self)

    return forward, reflected


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and",
              "or", "xor", "lshift", "rshift"):
    _op = _name + "_" if _name in ("and", "or") else _name
    _f, _r = _binary(_op)
    setattr(Remote, f"__{_name}__", _f)
    setattr(Remote, f"__r{_name}__", _r)
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(Remote, f"__{_name}__", _binary(_name)[0])
for _name in ("neg", "pos", "abs", "invert"):
    setattr(Remote, f"__{_name}__", (lambda op: lambda self: self._apply(op, self))(_name))


def function_stand_in(remote, name):
    """A judge-side ``ad.Function`` subclass standing for the student's class
    ``remote``: ``apply`` (what records the graph) and the backward walk are
    the judge's, the rules ``forward``, ``backward`` and ``jvp`` are the
    student's, called in the kernel with the judge's grad mode."""
    import autodiff_ref as ad

    rules = {}

    def rule(which):
        def call(ctx, *args):
            if which not in rules:
                rules[which] = getattr(remote, which)
            return rules[which](ctx, *args)
        call.__name__ = which
        return staticmethod(call)

    if not (isinstance(name, str) and name.isidentifier()):
        name = "Function"
    return type(name, (ad.Function,), {"forward": rule("forward"), "backward": rule("backward"),
                                       "jvp": rule("jvp"), "_remote": remote,
                                       "__module__": "student", "__qualname__": name})


class KernelClass(type):
    """The metaclass behind ``Remote.__mro_entries__``: a class statement on
    the judge whose base is a student's class does not make a class here; it
    binds the name to the kernel's class of that name (made by the same cell
    in the kernel, derived from that base)."""

    def __new__(mcls, name, bases, namespace, **kwargs):
        if namespace.get("_channel") is not None:  # a channel's base (Channel.kernel_base)
            return super().__new__(mcls, name, bases, namespace)
        base = next(b for b in bases if isinstance(b, KernelClass))
        return base._channel.kernel_class(name, namespace)
