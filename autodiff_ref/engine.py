"""The engine: grad mode, the order of the backward walk, and the walk itself.

Everything that moves gradients through a recorded graph lives in this file;
it imports nothing else from the package.

A graph is made of *nodes*. Each call of ``Function.apply`` that involves a
tensor with ``requires_grad=True`` records one node (``function.Node``); the
node remembers its Function, its context (what forward saved) and, for each
input, where that input came from: another node, a leaf tensor, or nothing.
``node.call_backward(g, create_graph)`` runs the Function's backward rule and
checks what it returned (``function.py``); this file only decides the order
and adds the gradients up.

The backward walk (``run_backward``) does what the course derives by hand:

1. Count, for every node reachable from the outputs, how many consumers it has.
2. Start from the outputs with their upstream gradients. Take a node whose
   consumers have all reported (its gradient is complete), call its
   Function's ``backward`` and add each returned gradient into the node it
   came from ("accumulate, never assign": a value used twice receives two
   contributions). ``backward_order`` yields the nodes in this order
   (consumers before producers) without recursion, so a graph 20,000 nodes
   deep is no problem.
3. Gradients that reach a leaf are added to ``leaf.grad`` (``backward``) or
   handed back to the caller (``grad``).
"""

from __future__ import annotations

import contextlib

import numpy as np


class _Mode:
    """The only global switches: is the graph being recorded, is forward mode on."""

    grad_enabled = True
    forward_ad_level = 0  # > 0 inside functional.jvp: tangents are propagated


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


# ------------------------------------------------------------ the walk


def _is_node(source):
    """A recorded node (a ``function.Node``), as opposed to a leaf tensor or None."""
    return getattr(source, "is_node", False)


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


def _roots(outputs):
    roots = []
    for t in outputs:
        if t.grad_fn is not None and t.grad_fn not in roots:
            roots.append(t.grad_fn)
    return roots


def backward_order(outputs):
    """Yield the nodes reachable from ``outputs`` (tensors), each after all of
    its consumers: the order of the backward walk (producers come last).

    A generator, so that ``run_backward`` can use it while it walks; the graph
    drawing (``viz.draw``) reverses it. (Notebook 04's exercise
    ``topological_order`` returns the opposite order, producers first.)
    """
    roots = _roots(outputs)
    counts = _consumer_counts(roots)
    ready = [n for n in roots if counts.get(n, 0) == 0]
    while ready:
        node = ready.pop()
        yield node
        for source in node.next:
            if _is_node(source):
                counts[source] -= 1
                if counts[source] == 0:
                    ready.append(source)


def run_backward(outputs, grad_outputs, *, retain_graph, create_graph, inputs=None):
    """Back-propagate ``grad_outputs`` from ``outputs`` through the graph.

    With ``inputs=None`` gradients are accumulated into ``.grad`` of the leaves
    (and of tensors that called ``retain_grad``): this is ``Tensor.backward``.
    Otherwise the gradients with respect to ``inputs`` are returned as a list
    (``None`` where an input was not reached) and no ``.grad`` is touched:
    this is ``ad.grad``.
    """
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
            g = type(g)(np.array(g.data))  # shared with another leaf, or a view
        handed_out.add(id(g.data))
        return g

    def deliver_to_leaf(leaf, g):
        if capture is not None:
            if id(leaf) in wanted_leaves:
                capture[id(leaf)] = g if id(leaf) not in capture else capture[id(leaf)] + g
            return
        leaf.grad = own(g) if leaf.grad is None else leaf.grad + g

    grads = {}  # node -> gradient of that node's output, being accumulated
    for out, g in zip(outputs, grad_outputs):
        if out.grad_fn is None:
            deliver_to_leaf(out, g)
        else:
            node = out.grad_fn
            grads[node] = grads[node] + g if node in grads else g

    with set_grad_enabled(create_graph):
        for node in backward_order(outputs):
            g = grads.pop(node, None)
            if g is None:  # no gradient reached this node: it contributes nothing
                continue
            if capture is not None:
                if id(node) in wanted_nodes:
                    capture[id(node)] = g
            else:
                out = node.output()
                if out is not None and out._retains_grad:
                    out.grad = own(g) if out.grad is None else out.grad + g
            input_grads = node.call_backward(g, create_graph)
            if not retain_graph:
                node.ctx.free()
            for source, gi in zip(node.next, input_grads):
                if gi is None or source is None:
                    continue
                if _is_node(source):
                    grads[source] = grads[source] + gi if source in grads else gi
                else:  # a leaf tensor
                    deliver_to_leaf(source, gi)

    if capture is None:
        return None
    return [capture.get(id(t) if t.grad_fn is None else id(t.grad_fn)) for t in inputs]
