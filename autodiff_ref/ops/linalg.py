"""Matrix multiplication, the workhorse of every layer."""

import numpy as np

from ..function import Function


def _swap_last(t):
    return t.transpose(-1, -2)


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are vectors, leading axes
    of stacks broadcast.

    For Z = A B the scalar form Z_ij = sum_k A_ik B_kj gives
    dA = dZ B^T and dB = A^T dZ. A 1-D operand is treated as a one-row
    (left) or one-column (right) matrix; batch axes that were broadcast are
    summed by the engine.
    """

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs operands with at least one dimension; "
                             "use * to multiply by a scalar")
        ctx.save_for_backward(a, b)
        return np.matmul(a.data, b.data)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g2 = g.reshape(g.shape + (1,)) if b.ndim == 1 else g  # restore the column axis
        g2 = g2.reshape(g2.shape[:-1] + (1,) + g2.shape[-1:]) if a.ndim == 1 else g2
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = g2 @ _swap_last(b2)
            if a.ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if ctx.needs_input_grad[1]:
            gb = _swap_last(a2) @ g2
            if b.ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        return ta @ b + a @ tb
