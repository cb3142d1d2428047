"""Reductions. The gradient of a reduced axis is copied back along it."""

import numpy as np

from ..function import Function
from ..tensor import Tensor


def _expand(g, in_shape, axis, keepdims):
    """Bring a reduced gradient back to ``in_shape``: re-insert the reduced
    axes as size 1 (unless keepdims kept them) and broadcast."""
    if not keepdims:
        kept = tuple(1 if i in axis else n for i, n in enumerate(in_shape))
        g = g.reshape(kept)
    return g.broadcast_to(in_shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.in_shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return np.sum(x.data, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return _expand(g, ctx.in_shape, ctx.axis, ctx.keepdims), None, None

    @staticmethod
    def jvp(ctx, tx, axis, keepdims):
        return tx.sum(axis, keepdims)


class Max(Function):
    """Maximum over ``axis``. The gradient goes to the element that is the
    maximum; if several elements tie, they share it equally (so the
    gradient still sums to the upstream gradient)."""

    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.in_shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        top = np.max(x.data, axis=axis, keepdims=True)
        winners = (x.data == top).astype(x.dtype)
        ctx.share = Tensor(winners / winners.sum(axis=axis, keepdims=True))
        return top if keepdims else top.reshape([n for i, n in enumerate(x.shape)
                                                 if i not in axis])

    @staticmethod
    def backward(ctx, g):
        return _expand(g, ctx.in_shape, ctx.axis, ctx.keepdims) * ctx.share, None, None

    @staticmethod
    def jvp(ctx, tx, axis, keepdims):
        return (tx * ctx.share).sum(axis, keepdims)
