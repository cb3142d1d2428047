"""Primitives that move elements around: reshape, permute, broadcast,
indexing. Their backward moves the gradient back to where each element came
from."""

import numbers

import numpy as np

from ..function import Function, sum_to_shape
from ..tensor import Tensor


def normalize_axis(axis, ndim):
    """``None`` -> all axes; an int or a tuple -> a sorted tuple of axes >= 0."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimension(s)")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


def normalize_shape(shape, old_shape):
    """Resolve one ``-1`` in ``shape`` and check that the sizes agree."""
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(old_shape))
    if shape.count(-1) == 1:
        rest = int(np.prod([s for s in shape if s != -1]))
        if rest and size % rest == 0:
            shape = tuple(size // rest if s == -1 else s for s in shape)
    if int(np.prod(shape)) != size or any(s < 0 for s in shape):
        raise ValueError(f"cannot reshape a tensor of shape {old_shape} into shape {shape}")
    return shape


def normalize_index(index):
    """Indices may contain tensors (of integers) or lists: make them arrays."""
    items = index if isinstance(index, tuple) else (index,)
    items = tuple(np.asarray(i.data if isinstance(i, Tensor) else i)
                  if isinstance(i, (Tensor, list, np.ndarray)) else i for i in items)
    return items if isinstance(index, tuple) else items[0]


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.data.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None

    @staticmethod
    def jvp(ctx, tx, shape):
        return tx.reshape(shape)


class Permute(Function):
    """Reorder the axes; backward applies the inverse permutation."""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.data.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.permute(tuple(np.argsort(ctx.axes))), None

    @staticmethod
    def jvp(ctx, tx, _):
        return tx.permute(ctx.axes)


class BroadcastTo(Function):
    """Copy x along new or size-1 axes; backward sums the copies back."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return np.broadcast_to(x.data, shape)

    @staticmethod
    def backward(ctx, g):
        return sum_to_shape(g, ctx.in_shape), None

    @staticmethod
    def jvp(ctx, tx, shape):
        return tx.broadcast_to(shape)


class GetItem(Function):
    """x[index]; backward puts the gradient back at ``index`` (zeros elsewhere)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.in_shape, ctx.index = x.shape, index
        return x.data[index]

    @staticmethod
    def backward(ctx, g):
        return IndexAdd.apply(g, ctx.index, ctx.in_shape), None

    @staticmethod
    def jvp(ctx, tx, index):
        return tx[index]


class IndexAdd(Function):
    """zeros(shape) with g added at ``index``: the adjoint of GetItem.
    Repeated indices (fancy indexing) add up."""

    @staticmethod
    def forward(ctx, g, index, shape):
        ctx.index = index
        out = np.zeros(shape, dtype=g.dtype)
        np.add.at(out, index, g.data)
        return out

    @staticmethod
    def backward(ctx, g):
        return g[ctx.index], None, None

    @staticmethod
    def jvp(ctx, tg, index, shape):
        return IndexAdd.apply(tg, index, shape)
