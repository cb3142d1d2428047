"""Softmax, log-softmax and cross-entropy, computed stably (shift by the maximum)."""

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


class CrossEntropy(Function):
    """Mean cross-entropy of logits x (N, C) against integer classes t (N,):
    L = -(1/N) sum_i log softmax(x_i)[t_i]. Fused into one primitive because
    its gradient is so simple: dL/dx = (softmax(x) - onehot(t)) / N."""

    @staticmethod
    def forward(ctx, x, target):
        n = x.shape[0]
        shifted = x.data - x.data.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        onehot = np.zeros_like(x.data)
        onehot[np.arange(n), target] = 1
        ctx.save_for_backward(x)
        ctx.probs, ctx.onehot, ctx.n = Tensor(e / total), Tensor(onehot), n
        return -(shifted - np.log(total))[np.arange(n), target].sum() / n

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # With create_graph the softmax is recomputed as an op of x, so that
        # the gradient can be differentiated again; otherwise reuse forward's.
        probs = Softmax.apply(x, 1) if ctx.create_graph else ctx.probs
        return (probs - ctx.onehot) * (g / ctx.n), None

    @staticmethod
    def jvp(ctx, tx, target):
        return (tx * (ctx.probs - ctx.onehot)).sum() / ctx.n


class Linear(Function):
    """y = x W^T + b (a fully connected layer, W of shape (out, in)), fused as
    one primitive like PyTorch's addmm: dx = g W, dW = g^T x, db = sum of g
    over the batch. Leading axes of x are batch axes; ``bias`` may be None."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        out = x.data @ weight.data.T
        if bias is not None:
            out += bias.data  # in place: out is a fresh array
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        g2 = g.reshape(-1, weight.shape[0])
        gx = (g @ weight) if ctx.needs_input_grad[0] else None
        gw = (g2.T @ x.reshape(-1, weight.shape[1])) if ctx.needs_input_grad[1] else None
        gb = g2.sum(0) if ctx.needs_input_grad[2] else None
        return gx, gw, gb

    @staticmethod
    def jvp(ctx, tx, tw, tb):
        x, weight = ctx.saved_tensors
        out = tx @ weight.T + x @ tw.T
        return out if tb is None else out + tb
