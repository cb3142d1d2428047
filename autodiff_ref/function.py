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

import weakref

from .engine import mode, primitive_mode
from .tensor import Tensor, describe_shape

# Called with every tensor a Function produces (``viz.trace`` records with it).
output_hooks: list = []


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
        # Set by the backward walk: is backward being recorded (create_graph)?
        # A rule that caches for speed checks it to stay differentiable.
        self.create_graph = False

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
        for hook in output_hooks:
            hook(out)
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


# ------------------------------------------------------------ the graph


class Node:
    """One recorded call of a Function: what backward needs to run it again.

    ``next[i]`` says where input ``i`` of the call came from: another Node (the
    input was computed), a leaf Tensor (it was created by the user with
    ``requires_grad=True``) or ``None`` (it needs no gradient).
    """

    __slots__ = ("function", "ctx", "next", "input_shapes", "output_shape", "_output",
                 "__weakref__")
    is_node = True  # how the engine tells a node from a leaf tensor

    def __init__(self, function, ctx, next, input_shapes, output):
        self.function = function
        self.ctx = ctx
        self.next = next
        self.input_shapes = input_shapes
        self.output_shape = output.shape
        self._output = weakref.ref(output)

    def output(self):
        """The tensor this node produced, if it is still alive."""
        return self._output()

    @property
    def name(self):
        return self.function.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name}>"

    def call_backward(self, grad_output, create_graph):
        """Run the Function's backward rule for ``grad_output`` and check what
        it returned (see ``checked_gradients``)."""
        ctx = self.ctx
        if ctx.freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (at "
                f"{self.function.__name__}): its saved values were freed by the first "
                "backward(). Pass retain_graph=True to the first backward() (or ad.grad) "
                "if you need to back-propagate through the same graph twice.")
        ctx.create_graph = create_graph
        if create_graph:
            result = self.function.backward(ctx, grad_output)
        else:
            with primitive_mode():
                result = self.function.backward(ctx, grad_output)
        return checked_gradients(self, result, create_graph)


# ----------------------------------- what a backward rule may return


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


def _broadcast_by_this_call(grad_shape, input_shape, output_shape):
    """Can a gradient of ``grad_shape`` come from this call broadcasting its
    input? Every axis that ``sum_to_shape`` sums away must be an axis of the
    output with the output's size (aligned from the right, as NumPy does).

    Without this check a backward that returns, say, a (4, 3) array for an
    input of shape (3,) of a call whose output is a scalar would be summed
    silently into a wrong gradient (PyTorch does so: its issue #65244).
    """
    extra = len(grad_shape) - len(input_shape)
    for axis, size in enumerate(grad_shape):
        summed = axis < extra or (input_shape[axis - extra] == 1 and size != 1)
        if summed:
            from_right = len(grad_shape) - axis
            if from_right > len(output_shape) or output_shape[-from_right] != size:
                return False
    return True


def checked_gradients(node, result, create_graph):
    """What a backward rule returned, checked and made uniform.

    One gradient (or None) per input of forward; NumPy results become
    tensors; broadcasting is undone (``sum_to_shape``) and every shape is
    checked, naming the Function and both shapes when something is wrong.
    """
    name = node.function.__name__
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
        if fixed is None or not _broadcast_by_this_call(g.shape, shape, node.output_shape):
            raise RuntimeError(
                f"{name}.backward returned a gradient of shape {describe_shape(g.shape)} for "
                f"input {i}, which has shape {describe_shape(shape)}: the gradient of an "
                "input must have that input's shape (or, for an input this operation "
                f"broadcast, the output's shape {describe_shape(node.output_shape)} on the "
                "broadcast axes, which the engine then sums).")
        checked.append(fixed)
    return checked


def _wrap_numpy_gradient(g, name, create_graph):
    """A backward that returned NumPy cannot be differentiated again.

    Without ``create_graph`` the array is simply wrapped. With it, the array
    is wrapped in a tensor whose own backward raises a clear error, so that a
    second derivative through it fails loudly instead of silently being 0.
    """
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
