"""Element-wise primitives. Binary ones broadcast like NumPy; their backward
returns gradients of the output's shape and the engine sums them down."""

import numpy as np

from ..function import Function
from ..tensor import Tensor


def _const(array):
    """A constant tensor (a mask, a sign): it carries no gradient."""
    return Tensor(array)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a.data + b.data

    @staticmethod
    def backward(ctx, g):
        return g, g

    @staticmethod
    def jvp(ctx, ta, tb):
        return ta + tb


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a.data - b.data

    @staticmethod
    def backward(ctx, g):
        return g, -g

    @staticmethod
    def jvp(ctx, ta, tb):
        return ta - tb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a.data

    @staticmethod
    def backward(ctx, g):
        return -g

    @staticmethod
    def jvp(ctx, ta):
        return -ta


class Mul(Function):
    """Mul swaps its inputs: d(ab)/da = b, d(ab)/db = a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.data * b.data

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (g * b if ctx.needs_input_grad[0] else None,
                g * a if ctx.needs_input_grad[1] else None)

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        return ta * b + a * tb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.data / b.data

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (g / b if ctx.needs_input_grad[0] else None,
                -g * a / (b * b) if ctx.needs_input_grad[1] else None)

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        return ta / b - a * tb / (b * b)


class PowScalar(Function):
    """x ** p for a constant number p. For p = 0 the derivative is 0 everywhere,
    also at x = 0 where p x^(p-1) would be 0 * inf = nan (as in PyTorch)."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x.data ** p

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (g * ctx.p * x ** (ctx.p - 1) if ctx.p != 0 else g * 0), None

    @staticmethod
    def jvp(ctx, tx, _):
        (x,) = ctx.saved_tensors
        return tx * ctx.p * x ** (ctx.p - 1) if ctx.p != 0 else tx * 0


class Pow(Function):
    """a ** b with both tensors: d/da = b a^(b-1), d/db = a^b log(a) (a > 0).

    At a = 0 the formulas give 0 * inf = nan where the true derivative is 0,
    because a^b does not change: d/da where b = 0 (a^0 = 1) and d/db where
    b >= 0 (0^b = 0 or 1). There a is replaced by 1 inside the formula (a
    constant mask, as PyTorch does)."""

    @staticmethod
    def forward(ctx, a, b):
        out = Tensor(a.data ** b.data)
        ctx.save_for_backward(a, b, out)
        zero = a.data == 0
        ctx.fix_da = _const((zero & (b.data == 0)).astype(out.dtype))
        ctx.fix_db = _const((zero & (b.data >= 0)).astype(out.dtype))
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        return (g * b * (a + ctx.fix_da) ** (b - 1) if ctx.needs_input_grad[0] else None,
                g * out * (a + ctx.fix_db).log() if ctx.needs_input_grad[1] else None)

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b, out = ctx.saved_tensors
        return ta * b * (a + ctx.fix_da) ** (b - 1) + tb * out * (a + ctx.fix_db).log()


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = Tensor(np.exp(x.data))
        ctx.save_for_backward(out)  # exp is its own derivative: keep the output
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out

    @staticmethod
    def jvp(ctx, tx):
        (out,) = ctx.saved_tensors
        return tx * out


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x.data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x

    @staticmethod
    def jvp(ctx, tx):
        (x,) = ctx.saved_tensors
        return tx / x


class Sin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x.data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos()

    @staticmethod
    def jvp(ctx, tx):
        (x,) = ctx.saved_tensors
        return tx * x.cos()


class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x.data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * x.sin()

    @staticmethod
    def jvp(ctx, tx):
        (x,) = ctx.saved_tensors
        return -tx * x.sin()


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = Tensor(np.tanh(x.data))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)

    @staticmethod
    def jvp(ctx, tx):
        (out,) = ctx.saved_tensors
        return tx * (1 - out * out)


class Sigmoid(Function):
    """sigma(x) = 1 / (1 + e^-x), computed without overflow; sigma' = s (1 - s)."""

    @staticmethod
    def forward(ctx, x):
        out = Tensor(np.exp(-np.logaddexp(0, -x.data)))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out * (1 - out)

    @staticmethod
    def jvp(ctx, tx):
        (out,) = ctx.saved_tensors
        return tx * out * (1 - out)


class Relu(Function):
    """max(x, 0); the gradient at exactly 0 is taken as 0 (as in PyTorch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.mask = _const((x.data > 0).astype(x.dtype))
        return x.data * ctx.mask.data

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask

    @staticmethod
    def jvp(ctx, tx):
        return tx * ctx.mask


class Abs(Function):
    """|x|; the gradient at exactly 0 is taken as 0 (sign(0) = 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.sign = _const(np.sign(x.data))
        return np.abs(x.data)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.sign

    @staticmethod
    def jvp(ctx, tx):
        return tx * ctx.sign


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        out = Tensor(np.sqrt(x.data))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (2 * out)

    @staticmethod
    def jvp(ctx, tx):
        (out,) = ctx.saved_tensors
        return tx / (2 * out)


class Maximum(Function):
    """Element-wise max(a, b): max routes the gradient to the larger input;
    on a tie each input gets half (as in PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        share = (a.data > b.data) + 0.5 * (a.data == b.data)
        ctx.share_a = _const(share.astype(np.result_type(a.dtype, b.dtype)))
        return np.maximum(a.data, b.data)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.share_a, g * (1 - ctx.share_a)

    @staticmethod
    def jvp(ctx, ta, tb):
        return ta * ctx.share_a + tb * (1 - ctx.share_a)
