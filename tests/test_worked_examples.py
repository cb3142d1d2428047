"""The course's worked examples, with the numbers the notebooks derive by hand."""

import math

import numpy as np
import pytest

import autodiff_ref as ad

GIVEN = 5e-5  # the notes give these numbers to four decimals


def scalar(value):
    return ad.tensor(float(value), requires_grad=True)


# ------------------------------------------------------------ y = ln(x1) + x1 x2 - sin(x2)


def lecture_function(x1, x2):
    return x1.log() + x1 * x2 - x2.sin()


def test_lecture_function_reverse_mode():
    x1, x2 = scalar(2), scalar(5)
    y = lecture_function(x1, x2)
    assert y.item() == pytest.approx(11.652, abs=5e-4)
    assert y.item() == pytest.approx(math.log(2) + 10 - math.sin(5), rel=1e-14)
    y.backward()
    assert x1.grad.item() == pytest.approx(5.5, rel=1e-14)  # 1/x1 + x2
    assert x2.grad.item() == pytest.approx(2 - math.cos(5), rel=1e-14)  # x1 - cos x2
    assert x2.grad.item() == pytest.approx(1.7163, abs=GIVEN)


def test_lecture_function_forward_mode():
    # one input vector x = (x1, x2), seed direction v = (1, 0): dy/dx1
    y, dy = ad.functional.jvp(lambda x: lecture_function(x[0], x[1]),
                              ad.tensor([2.0, 5.0]), ad.tensor([1.0, 0.0]))
    assert y.item() == pytest.approx(11.652, abs=5e-4)
    assert dy.item() == pytest.approx(5.5, rel=1e-14)
    # two scalar inputs, seed (0, 1): dy/dx2
    _, dy2 = ad.functional.jvp(lecture_function, (ad.tensor(2.0), ad.tensor(5.0)),
                               (ad.tensor(0.0), ad.tensor(1.0)))
    assert dy2.item() == pytest.approx(2 - math.cos(5), rel=1e-14)
    # the full Jacobian both ways: one backward vs two forward passes
    for strategy in ("reverse-mode", "forward-mode"):
        J = ad.functional.jacobian(lecture_function, (ad.tensor(2.0), ad.tensor(5.0)),
                                   strategy=strategy)
        assert J[0].item() == pytest.approx(5.5) and J[1].item() == pytest.approx(1.7163,
                                                                                abs=GIVEN)


# ------------------------------------------------------------ the circuit f = (x + y) z


def test_circuit_add_then_multiply():
    x, y, z = scalar(-2), scalar(5), scalar(-4)
    q = x + y
    q.retain_grad()
    f = q * z
    assert q.item() == 3.0 and f.item() == -12.0
    f.backward()
    assert q.grad.item() == -4.0  # df/dq = z
    assert x.grad.item() == -4.0 and y.grad.item() == -4.0  # the add gate copies it
    assert z.grad.item() == 3.0  # the multiply gate swaps: df/dz = q


# ------------------------------------------------------------ L = (w x + b - y)^2


def test_squared_error_of_a_linear_unit():
    w, x, b, y = scalar(2), scalar(3), scalar(1), scalar(5)
    L = (w * x + b - y) ** 2
    assert L.item() == 4.0
    L.backward()
    assert w.grad.item() == 12.0  # 2 (wx + b - y) x
    assert b.grad.item() == 4.0  # 2 (wx + b - y)
    assert x.grad.item() == 8.0  # 2 (wx + b - y) w
    assert y.grad.item() == -4.0


# ------------------------------------------------------------ the sigmoid neuron


@pytest.mark.parametrize("spelled_out", [False, True])
def test_sigmoid_neuron(spelled_out):
    w = ad.tensor([2.0, -3.0, -3.0], requires_grad=True)
    x = ad.tensor([-1.0, -2.0], requires_grad=True)
    dot = (w[:2] * x).sum() + w[2]
    f = 1.0 / (1.0 + (-dot).exp()) if spelled_out else dot.sigmoid()
    assert dot.item() == 1.0
    assert f.item() == pytest.approx(0.7311, abs=GIVEN)
    f.backward()
    local = f.item() * (1 - f.item())  # sigma' = sigma (1 - sigma) = 0.1966
    np.testing.assert_allclose(x.grad.data, [0.3932, -0.5898], atol=GIVEN)
    np.testing.assert_allclose(w.grad.data, [-0.1966, -0.3932, 0.1966], atol=GIVEN)
    np.testing.assert_allclose(x.grad.data, local * np.array([2.0, -3.0]), rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, local * np.array([-1.0, -2.0, 1.0]), rtol=1e-12)


# ------------------------------------------------------------ the staged example


def staged(x, y):
    return (x + y.sigmoid()) / (x.sigmoid() + (x + y) ** 2)


def test_staged_computation():
    x, y = scalar(3), scalar(-4)
    f = staged(x, y)
    assert f.item() == pytest.approx(1.5456, abs=GIVEN)
    f.backward()
    assert x.grad.item() == pytest.approx(2.0596, abs=GIVEN)
    assert y.grad.item() == pytest.approx(1.5922, abs=GIVEN)
    assert ad.gradcheck(staged, (scalar(3), scalar(-4)))


def test_staged_computation_by_hand_matches():
    # the backward pass written out stage by stage, as in the notes
    x, y = 3.0, -4.0
    sigy = 1 / (1 + math.exp(-y))
    num = x + sigy
    sigx = 1 / (1 + math.exp(-x))
    xpy = x + y
    xpysqr = xpy ** 2
    den = sigx + xpysqr
    invden = 1 / den
    dnum, dinvden = invden, num
    dden = -1 / den ** 2 * dinvden
    dsigx, dxpysqr = dden, dden
    dxpy = 2 * xpy * dxpysqr
    dx = dxpy + (1 - sigx) * sigx * dsigx + dnum
    dy = dxpy + (1 - sigy) * sigy * dnum
    xt, yt = scalar(x), scalar(y)
    staged(xt, yt).backward()
    assert xt.grad.item() == pytest.approx(dx, rel=1e-12)
    assert yt.grad.item() == pytest.approx(dy, rel=1e-12)


# ------------------------------------------------------------ a shared subexpression


@pytest.mark.parametrize("v1", [-1.0, 0.0, 0.5, 2.0])
def test_shared_exponential(v1):
    x = scalar(v1)
    e = x.exp()  # used twice
    ((e + 1) * e).backward()
    assert x.grad.item() == pytest.approx(2 * math.exp(2 * v1) + math.exp(v1), rel=1e-13)


# ------------------------------------------------------------ a custom Square


class Square(ad.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 2

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 2 * x

    @staticmethod
    def jvp(ctx, x_tangent):
        (x,) = ctx.saved_tensors
        return 2 * x * x_tangent


def test_custom_square():
    x = scalar(2)
    y = Square.apply(x)
    assert y.item() == 4.0
    assert y.grad_fn is not None and y.grad_fn.name == "SquareBackward"
    y.backward()
    assert x.grad.item() == 4.0
    _, tangent = ad.functional.jvp(Square.apply, ad.tensor(2.0), ad.tensor(1.0))
    assert tangent.item() == 4.0
    xs = ad.tensor([0.5, -1.0, 2.0], requires_grad=True)
    assert ad.gradcheck(Square.apply, xs)
    assert ad.gradgradcheck(Square.apply, xs)
    (g,) = ad.grad(Square.apply(xs).sum(), xs, create_graph=True)
    (h,) = ad.grad(g.sum(), xs)
    np.testing.assert_allclose(h.data, [2.0, 2.0, 2.0])
