"""``Function``: the one way to add an operation to the engine.

Every primitive of ``autodiff_ref`` (``Mul``, ``Exp``, ``MatMul``, ...) is a
subclass of ``Function``, written exactly like the ones students write::

    class Square(ad.Function):
        @staticmethod
        def forward(ctx, x):            # runs with recording off
            ctx.save_for_backward(x)
            return x.data ** 2          # a NumPy array or a Tensor
        @staticmethod
        def backward(ctx, grad_output): # one gradient (or None) per input
            (x,) = ctx.saved_tensors
            return grad_output * 2 * x  # Tensor operations: differentiable again
        @staticmethod
        def jvp(ctx, x_tangent):        # forward mode (optional)
            (x,) = ctx.saved_tensors
            return 2 * x * x_tangent

    y = Square.apply(x)

``apply`` runs ``forward`` with recording switched off, wraps the result in a
Tensor and, if any input requires grad, records a ``Node`` that lets the
engine call ``backward`` later. Under ``functional.jvp`` it also calls ``jvp``
to push tangents forward: ``jvp`` gets one tangent per tensor input (zeros
for inputs without one) and the non-tensor arguments of forward unchanged.
"""

from __future__ import annotations

import numpy as np

from .engine import Node, mode, primitive_mode
from .tensor import Tensor


class Context:
    """What ``forward`` hands to ``backward`` (and ``jvp``) of one call.

    ``ctx.save_for_backward(*tensors)`` keeps tensors; ``ctx.saved_tensors``
    gives them back. ``ctx.needs_input_grad[i]`` says whether input ``i``
    needs a gradient, so a backward can skip work. Other facts (an axis, a
    shape) can be stored as plain attributes: ``ctx.axis = axis``.
    """

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self.freed = False

    def save_for_backward(self, *tensors):
        self._saved = tensors

    @property
    def saved_tensors(self):
        if self.freed:
            raise RuntimeError(
                "saved tensors were freed by an earlier backward(); pass "
                "retain_graph=True to it to keep them.")
        return self._saved

    def free(self):
        """Drop what forward saved (done after backward unless retain_graph)."""
        self._saved = ()
        self.freed = True


class Function:
    """Base class of every differentiable operation. See the module docstring."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("a Function must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError("a Function must define backward(ctx, grad_output)")

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError("this Function has no jvp rule for forward mode")

    @classmethod
    def apply(cls, *args):
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = Context(needs)
        with primitive_mode():
            out = cls.forward(ctx, *args)
        if not isinstance(out, Tensor) or any(out is a for a in args) \
                or out.grad_fn is not None or out.requires_grad:
            out = Tensor(out.data if isinstance(out, Tensor) else np.asarray(out))

        if mode.grad_enabled and any(needs):
            out.requires_grad = True
            sources = [(a.grad_fn or a) if need else None for a, need in zip(args, needs)]
            shapes = [a.shape if isinstance(a, Tensor) else None for a in args]
            out.grad_fn = Node(cls, ctx, sources, shapes, out)

        if mode.forward_ad_level and any(isinstance(a, Tensor) and a._tangent is not None
                                         for a in args):
            out._tangent = cls._push_tangents(ctx, args, out)
        if mode.tracers:
            for tape in mode.tracers:
                tape.append(out)
        return out

    @classmethod
    def _push_tangents(cls, ctx, args, out):
        tangents = []
        for a in args:
            if not isinstance(a, Tensor):
                tangents.append(a)  # non-tensor arguments (an axis, ...) pass through
            elif a._tangent is None:
                tangents.append(Tensor(np.zeros_like(a.data)))
            else:
                tangents.append(a._tangent)
        with primitive_mode():
            t = cls.jvp(ctx, *tangents)
        t = t if isinstance(t, Tensor) else Tensor(np.asarray(t))
        if t.shape != out.shape:
            try:
                t = Tensor(np.broadcast_to(t.data, out.shape))
            except ValueError:
                raise RuntimeError(
                    f"{cls.__name__}.jvp returned a tangent of shape {t.shape} for an "
                    f"output of shape {out.shape}") from None
        return t
