"""The engine: grad mode, the order of the backward walk, and the walk itself.

Everything that moves gradients through a recorded graph lives in this file.

A graph is made of *nodes*. Each call of ``Function.apply`` that involves a
tensor with ``requires_grad=True`` records one node (see ``function.py``); the
node remembers its Function, its context (what forward saved) and, for each
input, where that input came from: another node, a leaf tensor, or nothing.

The backward walk (``run_backward``) does what the course derives by hand:

1. Count, for every node reachable from the outputs, how many consumers it has.
2. Start from the outputs with their upstream gradients. Take a node whose
   consumers have all reported (its gradient is complete), call its
   Function's ``backward`` and add each returned gradient into the node it
   came from ("accumulate, never assign": a value used twice receives two
   contributions). This visits the nodes in reverse topological order without
   recursion, so a graph 20,000 nodes deep is no problem.
3. Gradients that reach a leaf are added to ``leaf.grad`` (``backward``) or
   handed back to the caller (``grad``).
"""

from __future__ import annotations

import contextlib
import weakref

import numpy as np


class _Mode:
    """The only global switches: is the graph being recorded, is forward mode on."""

    grad_enabled = True
    forward_ad_level = 0  # > 0 inside functional.jvp: tangents are propagated
    tracers: list = []  # lists that want every new tensor (viz.trace)


mode = _Mode()


def is_grad_enabled() -> bool:
    return mode.grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, enabled: bool):
        self.enabled = bool(enabled)
        # A stack, not one attribute: as a decorator the same instance is
        # entered again by recursive (or nested) calls of the decorated function.
        self._previous = []

    def __enter__(self):
        self._previous.append(mode.grad_enabled)
        mode.grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        mode.grad_enabled = self._previous.pop()
        return False


class no_grad(set_grad_enabled):
    """``with ad.no_grad(): ...`` computes values without recording a graph.

    Use it for evaluation and for parameter updates. Also works as a decorator.
    """

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    def __init__(self):
        super().__init__(True)


class primitive_mode:
    """Recording and tangent propagation off: how forward, backward-without-
    create_graph and jvp rules of a primitive run. (A plain class rather than
    a generator: it is entered for every operation.)"""

    __slots__ = ("saved",)

    def __enter__(self):
        self.saved = mode.grad_enabled, mode.forward_ad_level
        mode.grad_enabled, mode.forward_ad_level = False, 0

    def __exit__(self, *exc):
        mode.grad_enabled, mode.forward_ad_level = self.saved
        return False


@contextlib.contextmanager
def forward_ad():
    """Turn on tangent propagation (used by ``functional.jvp``)."""
    mode.forward_ad_level += 1
    try:
        yield
    finally:
        mode.forward_ad_level -= 1


# ------------------------------------------------------------ the graph


class Node:
    """One recorded call of a Function: what backward needs to run it again.

    ``next[i]`` says where input ``i`` of the call came from: another Node (the
    input was computed), a leaf Tensor (it was created by the user with
    ``requires_grad=True``) or ``None`` (it needs no gradient).
    """

    __slots__ = ("function", "ctx", "next", "input_shapes", "_output", "__weakref__")

    def __init__(self, function, ctx, next, input_shapes, output):
        self.function = function
        self.ctx = ctx
        self.next = next
        self.input_shapes = input_shapes
        self._output = weakref.ref(output)

    def output(self):
        """The tensor this node produced, if it is still alive."""
        return self._output()

    @property
    def name(self):
        return self.function.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name}>"


def _is_node(source):
    return type(source) is Node


# ---------------------------------------------------------------- helpers


def sum_to_shape(grad, shape):
    """Undo NumPy broadcasting: sum ``grad`` down to ``shape``.

    This is the one place where broadcasting is undone. If ``x`` of shape
    ``(3,)`` was broadcast against ``(2, 3)``, its gradient arrives with shape
    ``(2, 3)`` and must be summed over the new leading axis; an axis of size 1
    that was stretched is summed with ``keepdims``. Returns ``None`` when
    ``grad`` cannot have come from broadcasting ``shape``.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        return None
    stretched = []
    for i, size in enumerate(shape):
        gsize = grad.shape[extra + i]
        if size == 1 and gsize != 1:
            stretched.append(extra + i)
        elif size != gsize:
            return None
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    if stretched:
        grad = grad.sum(axis=tuple(a - extra for a in stretched), keepdims=True)
    return grad


def _describe(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


# ------------------------------------------------------------ the walk


def _consumer_counts(roots):
    """How many recorded uses each reachable node has (iterative, no recursion)."""
    counts = {}
    stack = [r for r in roots]
    seen = set(id(n) for n in stack)
    while stack:
        node = stack.pop()
        for source in node.next:
            if not _is_node(source):
                continue  # nothing, or a leaf tensor
            counts[source] = counts.get(source, 0) + 1
            if id(source) not in seen:
                seen.add(id(source))
                stack.append(source)
    return counts


def topological_order(outputs):
    """Nodes reachable from ``outputs`` (tensors), each after all its consumers.

    This is the order in which ``run_backward`` visits them; the graph
    drawing and the course notebooks use it too.
    """
    roots = []
    for t in outputs:
        if t.grad_fn is not None and t.grad_fn not in roots:
            roots.append(t.grad_fn)
    counts = _consumer_counts(roots)
    ready = [n for n in roots if counts.get(n, 0) == 0]
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for source in node.next:
            if _is_node(source):
                counts[source] -= 1
                if counts[source] == 0:
                    ready.append(source)
    return order


def run_backward(outputs, grad_outputs, *, retain_graph, create_graph, inputs=None):
    """Back-propagate ``grad_outputs`` from ``outputs`` through the graph.

    With ``inputs=None`` gradients are accumulated into ``.grad`` of the leaves
    (and of tensors that called ``retain_grad``): this is ``Tensor.backward``.
    Otherwise the gradients with respect to ``inputs`` are returned as a list
    (``None`` where an input was not reached) and no ``.grad`` is touched:
    this is ``ad.grad``.
    """
    from .tensor import Tensor

    capture = None
    if inputs is not None:
        capture = {}  # id(leaf tensor) or id(node) -> gradient
        wanted_leaves = {id(t) for t in inputs if t.grad_fn is None}
        wanted_nodes = {id(t.grad_fn) for t in inputs if t.grad_fn is not None}

    # Arrays already handed out as some .grad (and the caller's gradients):
    # a .grad must own its array, so these, and views, are copied.
    handed_out = {id(g.data) for g in grad_outputs}

    def own(g):
        if create_graph:
            return g
        if g.data.base is not None or id(g.data) in handed_out:
            g = Tensor(np.array(g.data))  # shared with another leaf, or a view
        handed_out.add(id(g.data))
        return g

    def deliver_to_leaf(leaf, g):
        if capture is not None:
            if id(leaf) in wanted_leaves:
                capture[id(leaf)] = g if id(leaf) not in capture else capture[id(leaf)] + g
            return
        leaf.grad = own(g) if leaf.grad is None else leaf.grad + g

    grads = {}  # node -> gradient of that node's output, being accumulated
    roots = []
    for out, g in zip(outputs, grad_outputs):
        if out.grad_fn is None:
            deliver_to_leaf(out, g)
            continue
        node = out.grad_fn
        grads[node] = grads[node] + g if node in grads else g
        if node not in roots:
            roots.append(node)

    counts = _consumer_counts(roots)
    ready = [n for n in roots if counts.get(n, 0) == 0]
    with set_grad_enabled(create_graph):
        while ready:
            node = ready.pop()
            g = grads.pop(node, None)
            if g is not None:
                if capture is not None:
                    if id(node) in wanted_nodes:
                        capture[id(node)] = g
                else:
                    out = node.output()
                    if out is not None and out._retains_grad:
                        out.grad = own(g) if out.grad is None else out.grad + g
                input_grads = _call_backward(node, g, create_graph)
                if not retain_graph:
                    node.ctx.free()
            else:  # no gradient reached this node: it contributes nothing
                input_grads = [None] * len(node.next)
            for source, gi in zip(node.next, input_grads):
                if source is None:
                    continue
                if not _is_node(source):  # a leaf tensor
                    if gi is not None:
                        deliver_to_leaf(source, gi)
                    continue
                if gi is not None:
                    grads[source] = grads[source] + gi if source in grads else gi
                counts[source] -= 1
                if counts[source] == 0:
                    ready.append(source)

    if capture is None:
        return None
    return [capture.get(id(t) if t.grad_fn is None else id(t.grad_fn)) for t in inputs]


def _call_backward(node, grad_output, create_graph):
    """Call one Function's backward and check what it returned.

    Checks the number of gradients, turns NumPy results into tensors, undoes
    broadcasting (``sum_to_shape``) and checks every shape, naming the
    Function and both shapes when something is wrong.
    """
    from .tensor import Tensor

    ctx = node.ctx
    name = node.function.__name__
    if ctx.freed:
        raise RuntimeError(
            f"Trying to backward through the graph a second time (at {name}): its "
            "saved values were freed by the first backward(). Pass "
            "retain_graph=True to the first backward() (or ad.grad) if you need "
            "to back-propagate through the same graph twice.")
    if create_graph:
        result = node.function.backward(ctx, grad_output)
    else:
        with primitive_mode():
            result = node.function.backward(ctx, grad_output)
    if not isinstance(result, tuple):
        result = (result,)
    if len(result) != len(node.next):
        raise RuntimeError(
            f"{name}.backward returned {len(result)} gradient(s), but {name}.forward "
            f"took {len(node.next)} input(s): return one gradient (or None) per input "
            "of forward, in the same order.")
    checked = []
    for i, (g, source, shape) in enumerate(zip(result, node.next, node.input_shapes)):
        if g is None or source is None:
            checked.append(None)
            continue
        if not isinstance(g, Tensor):
            g = _wrap_numpy_gradient(g, name, create_graph)
        fixed = sum_to_shape(g, shape)
        if fixed is None:
            raise RuntimeError(
                f"{name}.backward returned a gradient of shape {_describe(g.shape)} for "
                f"input {i}, which has shape {_describe(shape)}: the gradient of an "
                "input must have that input's shape.")
        checked.append(fixed)
    return checked


def _wrap_numpy_gradient(g, name, create_graph):
    """A backward that returned NumPy cannot be differentiated again.

    Without ``create_graph`` the array is simply wrapped. With it, the array
    is wrapped in a tensor whose own backward raises a clear error, so that a
    second derivative through it fails loudly instead of silently being 0.
    """
    from .function import Context
    from .tensor import Tensor

    t = Tensor(np.asarray(g))
    if create_graph:
        ctx = Context((False,))
        ctx.source_name = name
        t.requires_grad = True
        t.grad_fn = Node(_NumpyGradient, ctx, [None], [t.shape], t)
    return t


class _NumpyGradient:
    """Stands in the graph for a gradient that a backward computed with NumPy."""

    @staticmethod
    def backward(ctx, grad_output):
        raise RuntimeError(
            f"{ctx.source_name}.backward returned a NumPy array, so its result "
            "cannot be differentiated again (create_graph / second derivatives). "
            f"Write {ctx.source_name}.backward with Tensor operations on "
            "ctx.saved_tensors and grad_output to make it twice differentiable.")


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, as a tuple.

    Like ``torch.autograd.grad``: nothing is accumulated into ``.grad``.
    ``grad_outputs`` is the upstream gradient for each output (needed when an
    output is not a scalar); ``create_graph=True`` records the backward pass
    so the result can be differentiated again. ``retain_graph`` defaults to
    ``create_graph``. An input that the outputs do not depend on raises,
    unless ``allow_unused=True`` (then its entry is ``None``).
    """
    from .tensor import Tensor

    outputs = _as_list(outputs, "outputs")
    inputs = _as_list(inputs, "inputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"ad.grad: inputs[{i}] does not require grad, so no "
                               "gradient can be computed with respect to it.")
    if retain_graph is None:
        retain_graph = create_graph
    grad_outputs = _make_grad_outputs(outputs, grad_outputs)
    result = run_backward(outputs, grad_outputs, retain_graph=retain_graph,
                          create_graph=create_graph, inputs=inputs)
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"ad.grad: inputs[{i}] was not used to compute the outputs; pass "
                "allow_unused=True to get None for it.")
        if g is not None and not create_graph:
            result[i] = g.detach()
    return tuple(result)


def backward(tensor, gradient=None, retain_graph=False, create_graph=False):
    """``tensor.backward(...)``: accumulate d(tensor)/d(leaf) into every ``leaf.grad``."""
    (g,) = _make_grad_outputs([tensor], None if gradient is None else [gradient])
    run_backward([tensor], [g], retain_graph=retain_graph or create_graph,
                 create_graph=create_graph)


def _as_list(x, what):
    from .tensor import Tensor

    if isinstance(x, Tensor):
        return [x]
    x = list(x)
    for i, t in enumerate(x):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}[{i}] must be an ad.Tensor, got {type(t).__name__}")
    return x


def _make_grad_outputs(outputs, grad_outputs):
    from .tensor import Tensor

    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or (
            len(outputs) == 1 and not isinstance(grad_outputs, (list, tuple))):
        # one gradient for one output (a Tensor, an array or a number); a list or
        # tuple is one gradient per output. (np.ndim must not be used to tell them
        # apart: it fails on a list of tensors of different shapes.)
        grad_outputs = [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    result = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(
                f"output {i} does not require grad: nothing it was computed from has "
                "requires_grad=True (or it was computed under ad.no_grad() or from "
                "detached tensors), so there is no graph to back-propagate through.")
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar output, but the "
                    f"output has shape {_describe(out.shape)}. Pass gradient= (or "
                    "grad_outputs=) with that shape: the upstream gradient dL/d(output).")
            g = Tensor(np.ones_like(out.data))
        else:
            g = g if isinstance(g, Tensor) else Tensor(np.asarray(g, dtype=out.dtype))
            if g.shape != out.shape:
                raise RuntimeError(
                    f"the gradient passed for output {i} has shape {_describe(g.shape)} "
                    f"but the output has shape {_describe(out.shape)}: they must match.")
        result.append(g)
    return result
