"""Softmax and log-softmax, computed stably (shift by the maximum)."""

import numpy as np

from ..function import Function
from ..tensor import Tensor


class Softmax(Function):
    """s = exp(x) / sum(exp(x)) along ``axis``. Its Jacobian is diag(s) - s s^T,
    so the VJP is s * (g - sum(g * s))."""

    @staticmethod
    def forward(ctx, x, axis):
        e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
        out = Tensor(e / e.sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return s * (g - (g * s).sum(ctx.axis, keepdims=True)), None

    @staticmethod
    def jvp(ctx, tx, axis):
        (s,) = ctx.saved_tensors
        return s * (tx - (tx * s).sum(axis, keepdims=True))


class LogSoftmax(Function):
    """log softmax(x) = x - logsumexp(x), stable for logits of +-1000.
    VJP: g - softmax(x) * sum(g)."""

    @staticmethod
    def forward(ctx, x, axis):
        shifted = x.data - x.data.max(axis=axis, keepdims=True)
        out = Tensor(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g - out.exp() * g.sum(ctx.axis, keepdims=True), None

    @staticmethod
    def jvp(ctx, tx, axis):
        (out,) = ctx.saved_tensors
        return tx - (out.exp() * tx).sum(axis, keepdims=True)
