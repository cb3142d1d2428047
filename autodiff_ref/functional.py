"""Whole-function transforms, with the call and return shapes of
``torch.autograd.functional``: ``vjp``, ``jvp``, ``jacobian``, ``hessian``.

``jvp`` is true forward mode: every input carries a tangent and each
primitive's ``jvp`` rule pushes it forward in the same pass as the values,
one pass per input direction. ``vjp`` is reverse mode: one forward pass,
then one backward pass per output direction.
"""

from __future__ import annotations

import numpy as np

from .engine import enable_grad, forward_ad, no_grad
from . import ops
from .tensor import Tensor, grad


def _inputs(inputs):
    is_tuple = isinstance(inputs, (tuple, list))
    inputs = tuple(inputs) if is_tuple else (inputs,)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"inputs[{i}] must be an ad.Tensor, got {type(x).__name__}")
    return is_tuple, inputs


def _vectors(v, like, what):
    """Check that the directions ``v`` match ``like`` (the inputs or outputs) in shape."""
    if v is None:
        for x in like:
            if x.size != 1:
                raise RuntimeError(f"{what} may only be omitted when every tensor it "
                                   f"pairs with has one element; got shape {x.shape}")
        return tuple(Tensor(np.ones(x.shape, dtype=x.dtype)) for x in like)
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(v) != len(like):
        raise RuntimeError(f"{what} has {len(v)} entries but there are {len(like)} tensors")
    out = []
    for i, (vi, x) in enumerate(zip(v, like)):
        vi = vi if isinstance(vi, Tensor) else Tensor(np.asarray(vi, dtype=x.dtype))
        if vi.shape != x.shape:
            raise RuntimeError(f"{what}[{i}] has shape {vi.shape} but must have shape {x.shape}")
        out.append(vi)
    return tuple(out)


def _leaves(inputs, requires_grad=True, create_graph=False):
    """Fresh leaves holding the inputs' values. With ``create_graph`` an input
    that requires grad is instead passed through a differentiable identity, so
    that the result stays connected to it and can be differentiated with
    respect to it (as ``torch.autograd.functional`` does with ``view_as``)."""
    return tuple(x.reshape(x.shape) if create_graph and x.requires_grad
                 else Tensor(x.data, requires_grad=requires_grad) for x in inputs)


def _pack(is_tuple, values):
    return tuple(values) if is_tuple else values[0]


def _unsupported(strict=False, vectorize=False):
    """PyTorch's ``strict`` and ``vectorize`` options are not implemented: say so
    rather than silently ignore them."""
    if strict:
        raise NotImplementedError("strict=True is not supported by autodiff_ref.functional")
    if vectorize:
        raise NotImplementedError("vectorize=True is not supported by autodiff_ref.functional")


def _zeros_for_none(grads, like):
    return tuple(Tensor(np.zeros(x.shape, dtype=x.dtype)) if g is None else g
                 for g, x in zip(grads, like))


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): one forward and one backward pass."""
    _unsupported(strict)
    in_tuple, inputs = _inputs(inputs)
    with enable_grad():
        xs = _leaves(inputs, create_graph=create_graph)
        out = func(*xs)
        out_tuple, outs = _inputs(out)
        v = _vectors(v, outs, "v")
        used = [(o, g) for o, g in zip(outs, v) if o.requires_grad]
        grads = (None,) * len(xs)
        if used:
            grads = grad([o for o, _ in used], xs, [g for _, g in used],
                         create_graph=create_graph, allow_unused=True)
    grads = _zeros_for_none(grads, xs)
    if not create_graph:
        outs = tuple(o.detach() for o in outs)
    return _pack(out_tuple, outs), _pack(in_tuple, grads)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v) by forward mode: tangents ride along with the values."""
    _unsupported(strict)
    if create_graph:
        raise NotImplementedError("jvp(create_graph=True) is not supported")
    in_tuple, inputs = _inputs(inputs)
    v = _vectors(v, inputs, "v")
    xs = _leaves(inputs, requires_grad=False)
    for x, t in zip(xs, v):
        x._tangent = t.detach()
    with no_grad(), forward_ad():
        out = func(*xs)
    out_tuple, outs = _inputs(out)
    tangents = tuple(o._tangent if o._tangent is not None
                     else Tensor(np.zeros(o.shape, dtype=o.dtype)) for o in outs)
    return _pack(out_tuple, tuple(o.detach() for o in outs)), _pack(out_tuple, tangents)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``.

    For one input and one output: a tensor of shape ``out.shape + in.shape``.
    With a tuple of inputs: a tuple over inputs; with a tuple of outputs: a
    tuple over outputs (of tuples over inputs if both are tuples).
    ``strategy="reverse-mode"`` builds it a row at a time (one backward per
    output element), ``"forward-mode"`` a column at a time (one jvp per input
    element): the two costs the course compares.
    """
    _unsupported(strict, vectorize)
    in_tuple, inputs = _inputs(inputs)
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError("forward-mode jacobian does not support create_graph")
        return _jacobian_forward(func, inputs, in_tuple)
    if strategy != "reverse-mode":
        raise ValueError(f"strategy must be 'reverse-mode' or 'forward-mode', got {strategy!r}")
    with enable_grad():
        xs = _leaves(inputs, create_graph=create_graph)
        out = func(*xs)
        out_tuple, outs = _inputs(out)
        blocks = []
        for o in outs:
            rows = [[] for _ in xs]
            for e in range(o.size):
                seed = np.zeros(o.shape, dtype=o.dtype)
                seed.flat[e] = 1
                grads = (None,) * len(xs)
                if o.requires_grad:
                    grads = grad([o], xs, [Tensor(seed)], retain_graph=True,
                                 create_graph=create_graph, allow_unused=True)
                for r, g in zip(rows, _zeros_for_none(grads, xs)):
                    r.append(g.reshape(-1))
            blocks.append(tuple(_stack_rows(r, o.shape, x.shape, create_graph)
                                for r, x in zip(rows, xs)))
    return _arrange(blocks, in_tuple, out_tuple)


def _stack_rows(rows, out_shape, in_shape, create_graph):
    """Stack the per-output-element gradient rows into one Jacobian tensor.

    With ``create_graph`` the rows are placed with ``IndexAdd`` (a
    differentiable op) so the Jacobian can be differentiated again.
    """
    shape = out_shape + in_shape
    if not rows:
        return Tensor(np.zeros(shape))
    if not create_graph:
        return Tensor(np.stack([r.data for r in rows]).reshape(shape))
    full = (len(rows), rows[0].size)
    stacked = sum((ops.IndexAdd.apply(r, e, full) for e, r in enumerate(rows)),
                  Tensor(np.zeros(full)))
    return stacked.reshape(shape)


def _jacobian_forward(func, inputs, in_tuple):
    out_tuple, outs = None, None
    columns = []  # per input: list of per-element tangents (tuples over outputs)
    for i, x in enumerate(inputs):
        cols = []
        for j in range(x.size):
            v = [np.zeros(t.shape, dtype=t.dtype) for t in inputs]
            v[i].flat[j] = 1
            out, tangent = jvp(func, inputs, tuple(Tensor(a) for a in v))
            out_tuple = isinstance(out, tuple)
            outs = out if out_tuple else (out,)
            cols.append(tangent if out_tuple else (tangent,))
        columns.append(cols)
    if outs is None:
        out = func(*inputs)
        out_tuple = isinstance(out, tuple)
        outs = out if out_tuple else (out,)
    blocks = []
    for k, o in enumerate(outs):
        per_input = []
        for x, cols in zip(inputs, columns):
            if cols:
                data = np.stack([c[k].data.reshape(-1) for c in cols], axis=1)
            else:
                data = np.zeros((o.size, 0))
            per_input.append(Tensor(data.reshape(o.shape + x.shape)))
        blocks.append(tuple(per_input))
    return _arrange(blocks, in_tuple, out_tuple)


def _arrange(blocks, in_tuple, out_tuple):
    per_output = [b if in_tuple else b[0] for b in blocks]
    return tuple(per_output) if out_tuple else per_output[0]


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar ``func``: the Jacobian of its gradient
    (reverse over reverse, through ``create_graph=True``).

    One input: shape ``in.shape + in.shape``; a tuple of inputs: a tuple of
    tuples, ``H[i][j]`` of shape ``in_i.shape + in_j.shape``.
    """
    _unsupported(strict, vectorize)
    in_tuple, inputs = _inputs(inputs)

    def gradient(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.size != 1:
            raise RuntimeError("hessian needs a function with a single scalar output, got "
                               f"{getattr(out, 'shape', type(out).__name__)}")
        if not out.requires_grad:
            return tuple(Tensor(np.zeros(x.shape)) for x in xs)
        grads = grad([out.reshape(())], xs, create_graph=True, allow_unused=True)
        return _zeros_for_none(grads, xs)

    h = jacobian(gradient, inputs if in_tuple else inputs[0], create_graph=create_graph,
                 strategy=outer_jacobian_strategy)
    return h if in_tuple else h[0]
