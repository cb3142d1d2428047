"""The reference engine's objects crossing between judge and kernel, by value.

Notebooks 04, 07 and 09 hand the student's code graphs of the reference
engine (``topological_order(y)``), or hand the judge tensors and nodes the
student's ``ad.Function`` made. Such objects are not data, and a handle to a
tensor would make the judge's checks ask the kernel about every node. So a
``Tensor``, a ``Node`` and a ``Context`` cross as their contents: each side
keeps its own objects and *copies* of the other side's, linked by a key
(``"j7"`` made by the judge, ``"k7"`` by the kernel), so that identity
survives the trip (``y.grad_fn.ctx.saved_tensors[0] is y`` holds on both
sides; a node the student returns is the judge's own node).

In a message, an engine object is ``{"$ad": key}`` and the message carries a
flat table ``{key: description}`` of every engine object it reaches (a graph
5,000 nodes deep is 5,000 rows, no recursion)::

    Tensor   ["T", data, requires_grad, grad_fn, grad, name]
    Node     ["N", function, ctx, next, input_shapes, output_shape, output]
    Context  ["C", needs_input_grad, saved, freed, create_graph, {other attributes}]

A node's Function is ``{"$fn": "autodiff_ref.ops.elementwise.Exp"}`` for the
engine's own (looked up among the engine's classes, never imported by name)
or a handle for a class of the student's, which the judge turns into a
*stand-in*: a Function subclass on the judge side whose ``forward``,
``backward`` and ``jvp`` are calls into the kernel, while ``apply`` and the
backward walk stay the judge's.

What the kernel may change of the judge's own objects: only the tensors and
contexts passed as arguments of the call itself (the ``ctx`` a student's
``forward`` fills in, an input changed in place: ``data``, ``grad``, a
context's contents). The judge's nodes and every other judge object are
never changed by a reply: a student's code cannot rewrite the graph the
judge checks its answer against.

Both sides import this module: the kernel's agent and the judge's channel.
"""

from __future__ import annotations

from . import wire

MARK, FUNCTION = "$ad", "$fn"


_ENGINE = []


def engine():
    """The reference engine's modules here (package, function, tensor), or
    None (a kernel without it)."""
    if not _ENGINE:
        import importlib

        try:
            package = importlib.import_module("autodiff_ref")
            found = None
            # the stand-in engine has no classes (and importing its module files
            # would change what its names say): only the real one is looked into
            if isinstance(getattr(package, "Tensor", None), type):
                found = (package, importlib.import_module("autodiff_ref.function"),
                         importlib.import_module("autodiff_ref.tensor"))
        except ImportError:
            found = None
        _ENGINE.append(found)
    return _ENGINE[0]


def is_engine_object(obj):
    found = engine()
    if found is None:
        return False
    _, function, tensor = found
    return type(obj) in (tensor.Tensor, function.Node, function.Context)


def builtin_functions():
    """{qualified name: class} of the engine's own Function subclasses."""
    _, function, _ = engine()
    found, todo = {}, [function.Function]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            module = getattr(sub, "__module__", "")
            if module.startswith("autodiff_ref.") and "<locals>" not in sub.__qualname__:
                found[f"{module}.{sub.__qualname__}"] = sub
            todo.append(sub)
    return found


class Graphs:
    """One side's engine objects and copies, keyed (``mine`` is "j" or "k").

    ``function_out(cls)`` names a Function class that is not the engine's
    own (it returns the marker to send: a handle), ``function_in(value)``
    turns what arrived for one into a class."""

    def __init__(self, mine, function_out, function_in, describe_theirs=True):
        self.mine, self.describe_theirs = mine, describe_theirs
        self.function_out, self.function_in = function_out, function_in
        self.objects, self.keys = {}, {}  # key -> object, id(object) -> key
        self.count = 0
        self.queue = []
        self._builtins = None

    def builtin_name(self, cls):
        """The name of one of the engine's own Function classes, or None."""
        if self._builtins is None:
            self._builtins = builtin_functions()
        name = f"{getattr(cls, '__module__', '')}.{getattr(cls, '__qualname__', '')}"
        return name if self._builtins.get(name) is cls else None

    def builtin(self, name):
        if self._builtins is None:
            self._builtins = builtin_functions()
        if not isinstance(name, str) or name not in self._builtins:
            raise wire.WireError(f"no engine Function {str(name)[:80]!r}")
        return self._builtins[name]

    def find(self, key):
        if not isinstance(key, str) or key not in self.objects:
            raise wire.WireError("an engine object that was never described")
        return self.objects[key]

    # ------------------------------------------------ sending

    def key(self, obj):
        key = self.keys.get(id(obj))
        if key is None or self.objects.get(key) is not obj:
            self.count += 1
            key = f"{self.mine}{self.count}"
            self.keys[id(obj)], self.objects[key] = key, obj
        return key

    def mark(self, obj, describe=False):
        """The marker of ``obj`` in a message; its description is queued (for
        the other side's objects only if ``describe_theirs`` or ``describe``:
        the kernel describes the judge's objects only where the judge reads
        them back, the arguments of a call)."""
        key = self.key(obj)
        if describe or self.describe_theirs or key[0] == self.mine:
            self.queue.append(key)
        return {MARK: key}

    def table(self, handle):
        """The descriptions of every queued object and of what they reach."""
        table = {}
        while self.queue:
            key = self.queue.pop()
            if key not in table:
                table[key] = self.describe(self.objects[key], handle)
        return table

    def describe(self, obj, handle):
        _, function, tensor = engine()

        def enc(value):
            return wire.encode(value, handle)

        if type(obj) is tensor.Tensor:
            return ["T", enc(obj.data), bool(obj.requires_grad), enc(obj.grad_fn),
                    enc(obj.grad), obj.name if type(obj.name) is str else None]
        if type(obj) is function.Node:
            name = self.builtin_name(obj.function)
            fn_data = {FUNCTION: name} if name else self.function_out(obj.function)
            return ["N", fn_data, enc(obj.ctx), enc(list(obj.next)),
                    enc(list(obj.input_shapes)), enc(obj.output_shape), enc(obj.output())]
        other = {k: v for k, v in vars(obj).items()
                 if k not in ("needs_input_grad", "_saved", "freed", "create_graph")}
        return ["C", enc(tuple(obj.needs_input_grad)), enc(tuple(obj._saved)),
                bool(obj.freed), bool(obj.create_graph), enc(other)]

    # ------------------------------------------------ receiving

    def receive(self, table, resolve, writable=(), trusting=False):
        """Make or update the objects a message describes. ``resolve`` reads
        the markers that are not ours (handles...). Objects of this side that
        arrive are left alone, except those in ``writable`` (their keys: a
        tensor's data and grad, a context's contents), or all of them if the
        other side is ``trusting`` (the kernel takes the judge's word: the
        judge records the graph of a student's Function on its side)."""
        if not table:
            return
        if not isinstance(table, dict) or len(table) > wire.MAX_ITEMS:
            raise wire.WireError("a table of engine objects must be a dict")
        found = engine()
        if found is None:
            raise wire.WireError("the reference engine is not available in this kernel")
        _, function, tensor = found
        classes = {"T": tensor.Tensor, "N": function.Node, "C": function.Context}
        todo = []
        for key, row in table.items():
            if not (isinstance(key, str) and key[:1] in "jk" and key[1:].isdigit()
                    and isinstance(row, list) and row and row[0] in classes):
                raise wire.WireError("a malformed row of engine objects")
            obj = self.objects.get(key)
            if key[0] == self.mine:
                if obj is None:
                    raise wire.WireError("the other side named an object we never sent")
                if type(obj) is not classes[row[0]]:
                    raise wire.WireError("an engine object changed its kind")
                if not trusting and (key not in writable or row[0] == "N"):
                    continue
            elif obj is None:
                obj = object.__new__(classes[row[0]])
                self.objects[key], self.keys[id(obj)] = obj, key
            elif type(obj) is not classes[row[0]]:
                raise wire.WireError("an engine object changed its kind")
            todo.append((key, obj, row))

        def dec(value):
            return wire.decode(value, reader)

        def reader(marker, payload):
            if marker == MARK:
                return self.find(payload)
            if marker == FUNCTION:
                return self.builtin(payload)
            return resolve(marker, payload)

        import numpy as np
        import weakref

        for key, obj, row in todo:
            kind = row[0]
            if kind == "T" and len(row) == 6:
                data, requires_grad, grad_fn, grad = (dec(v) for v in row[1:5])
                if not isinstance(data, np.ndarray):
                    data = np.asarray(data)
                if data.dtype.name not in wire.DTYPES:
                    raise wire.WireError("a tensor's data must be numbers")
                if key[0] == self.mine and not trusting:
                    obj.data = data  # one of ours changed in place: data and grad only
                    obj.grad = grad if isinstance(grad, tensor.Tensor) else None
                    continue
                vars(obj).update(data=data, requires_grad=bool(requires_grad),
                                 grad_fn=grad_fn if type(grad_fn) is function.Node else None,
                                 grad=grad if type(grad) is tensor.Tensor else None,
                                 _retains_grad=False, _tangent=None,
                                 name=row[5] if type(row[5]) is str else None)
            elif kind == "N" and len(row) == 7:
                fn = row[1]
                fn = reader(FUNCTION, fn[FUNCTION]) if isinstance(fn, dict) and \
                    list(fn) == [FUNCTION] else self.function_in(dec(fn))
                ctx, nxt, shapes, out_shape, output = (dec(v) for v in row[2:7])
                if type(ctx) is not function.Context or not isinstance(nxt, list):
                    raise wire.WireError("a malformed node")
                obj.function, obj.ctx, obj.next = fn, ctx, nxt
                obj.input_shapes, obj.output_shape = shapes, out_shape
                obj._output = weakref.ref(output) if type(output) is tensor.Tensor \
                    else (lambda: None)
            elif kind == "C" and len(row) == 6:
                needs, saved, freed, create_graph, other = (dec(v) for v in row[1:6])
                if not isinstance(other, dict):
                    raise wire.WireError("a malformed context")
                for name in [k for k in vars(obj) if k not in ("needs_input_grad", "_saved",
                                                               "freed", "create_graph")]:
                    delattr(obj, name)
                vars(obj).update({k: v for k, v in other.items()
                                  if k.isidentifier() and not k.startswith("__")})
                obj.needs_input_grad = tuple(needs) if isinstance(needs, (list, tuple)) \
                    else ()
                obj._saved = tuple(saved) if isinstance(saved, (list, tuple)) else ()
                obj.freed, obj.create_graph = bool(freed), bool(create_graph)
            else:
                raise wire.WireError("a malformed row of engine objects")
