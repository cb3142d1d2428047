"""Every primitive, driven by the one table in optable.py: value against NumPy,
reverse mode against central differences with a random upstream gradient,
broadcasting, forward mode; then gradcheck / gradgradcheck / numerical_jacobian
themselves."""

import re

import numpy as np
import pytest

import autodiff_ref as ad
from optable import (BROADCAST, BROADCAST_CASES, CASES, OPS, evaluate, make_inputs,
                     numerical_jvp, numerical_vjp)

RTOL = ATOL = 1e-6

case_params = [pytest.param(c, id=c.id) for c in CASES]


def _rng(case, salt=0):
    # a different but reproducible stream per case
    return np.random.default_rng([sum(map(ord, case.id)), len(case.id), salt])


def _leaves(arrays):
    return [ad.tensor(a, requires_grad=True) for a in arrays]


# ------------------------------------------------------------ the table itself


def test_table_covers_broadcasting_and_arity():
    names = {op.name for op in OPS}
    for required in ("add", "sub", "mul", "div", "pow-tensor", "maximum", "matmul", "exp",
                     "log", "sqrt", "softmax[axis=0]", "cross_entropy", "x[[0,2,0]]"):
        assert required in names
    shapes = set(BROADCAST)
    assert ((3, 1), (1, 4)) in shapes and ((4,), (2, 3, 4)) in shapes
    assert ((), (2, 3)) in shapes
    for op in OPS:
        assert op.arity in (1, 2) and all(len(s) == op.arity for s in op.shapes)


# ------------------------------------------------------------ (a) values


@pytest.mark.parametrize("case", case_params)
def test_value_matches_numpy(case):
    arrays = make_inputs(case, _rng(case))
    out = case.op.fn(*[ad.tensor(a) for a in arrays])
    expected = np.asarray(case.op.ref(*arrays))
    assert isinstance(out, ad.Tensor)
    assert out.shape == expected.shape
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ (b) reverse mode


@pytest.mark.parametrize("case", case_params)
def test_gradient_matches_finite_differences(case):
    rng = _rng(case)
    arrays = make_inputs(case, rng)
    xs = _leaves(arrays)
    out = case.op.fn(*xs)
    assert out.requires_grad and out.grad_fn is not None
    g = rng.standard_normal(out.shape)  # a random upstream gradient, not ones
    out.backward(ad.tensor(g))
    expected = numerical_vjp(case.op.fn, arrays, g)
    for i, (x, e) in enumerate(zip(xs, expected)):
        assert x.grad is not None, f"input {i} got no gradient"
        assert x.grad.shape == x.shape, f"input {i}: {x.grad.shape} != {x.shape}"
        assert x.grad.dtype == np.float64
        np.testing.assert_allclose(x.grad.data, e, rtol=RTOL, atol=ATOL,
                                   err_msg=f"gradient of input {i}")


@pytest.mark.parametrize("case", case_params)
def test_grad_function_agrees_with_backward(case):
    """ad.grad gives the same numbers as backward and leaves .grad alone."""
    rng = _rng(case, 1)
    xs = _leaves(make_inputs(case, rng))
    out = case.op.fn(*xs)
    g = rng.standard_normal(out.shape)
    grads = ad.grad(out, xs, ad.tensor(g), retain_graph=True)
    assert isinstance(grads, tuple) and len(grads) == len(xs)
    assert all(x.grad is None for x in xs)
    out.backward(ad.tensor(g))
    for x, gx in zip(xs, grads):
        np.testing.assert_array_equal(gx.data, x.grad.data)


# ------------------------------------------------------------ (c) broadcasting


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in BROADCAST_CASES])
def test_broadcast_gradient_is_summed_over_broadcast_axes(case):
    """The gradient of a broadcast operand equals the gradient with respect to
    its explicitly broadcast copy, summed over the stretched and new axes."""
    rng = _rng(case, 2)
    a, b = make_inputs(case, rng)
    out_shape = np.broadcast_shapes(a.shape, b.shape)
    assert out_shape not in (a.shape, b.shape) or a.shape != b.shape

    xa, xb = _leaves([a, b])
    out = case.op.fn(xa, xb)
    g = rng.standard_normal(out.shape)
    out.backward(ad.tensor(g))

    fa, fb = _leaves([np.broadcast_to(a, out_shape), np.broadcast_to(b, out_shape)])
    case.op.fn(fa, fb).backward(ad.tensor(g))
    for x, full in ((xa, fa), (xb, fb)):
        expected = full.grad.data
        lead = expected.ndim - x.ndim
        expected = expected.sum(axis=tuple(range(lead)))
        stretched = tuple(i for i, n in enumerate(x.shape) if n == 1 and expected.shape[i] != 1)
        expected = expected.sum(axis=stretched, keepdims=True).reshape(x.shape)
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12, atol=1e-12)


def test_sum_to_shape_undoes_broadcasting():
    from autodiff_ref.function import sum_to_shape

    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(sum_to_shape(g, (3, 1)), g.sum(axis=(0, 2))[:, None])
    np.testing.assert_array_equal(sum_to_shape(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(sum_to_shape(g, ()), g.sum())
    assert sum_to_shape(g, (2, 3, 4)) is g
    assert sum_to_shape(g, (5,)) is None  # not a broadcast of (5,)
    assert sum_to_shape(g, (1, 2, 3, 4)) is None  # more axes than the gradient


# ------------------------------------------------------------ (d) forward mode


@pytest.mark.parametrize("case", case_params)
def test_jvp_matches_finite_differences(case):
    rng = _rng(case, 3)
    arrays = make_inputs(case, rng)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    xs = [ad.tensor(a) for a in arrays]
    if case.op.arity == 1:  # a single tensor in, a single tensor out
        value, tangent = ad.functional.jvp(case.op.fn, xs[0], ad.tensor(vs[0]))
    else:
        value, tangent = ad.functional.jvp(case.op.fn, tuple(xs),
                                           tuple(ad.tensor(v) for v in vs))
    assert isinstance(value, ad.Tensor) and isinstance(tangent, ad.Tensor)
    np.testing.assert_allclose(value.data, evaluate(case.op.fn, arrays), rtol=1e-12,
                               atol=1e-12)
    assert tangent.shape == value.shape
    np.testing.assert_allclose(tangent.data, numerical_jvp(case.op.fn, arrays, vs),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", case_params)
def test_jvp_and_vjp_are_adjoint(case):
    """<g, J v> == <J^T g, v>: the forward and backward rules describe the same J."""
    rng = _rng(case, 4)
    arrays = make_inputs(case, rng)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    _, jv = ad.functional.jvp(case.op.fn, tuple(ad.tensor(a) for a in arrays),
                              tuple(ad.tensor(v) for v in vs))
    g = rng.standard_normal(jv.shape)
    _, gj = ad.functional.vjp(case.op.fn, tuple(ad.tensor(a) for a in arrays), ad.tensor(g))
    lhs = np.sum(g * jv.data)
    rhs = sum(np.sum(a.data * v) for a, v in zip(gj, vs))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


# ------------------------------------------------------------ gradcheck


class BadSquare(ad.Function):
    """x**2 with a deliberately wrong backward (forgets the factor 2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 2

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x


class NumpySquare(ad.Function):
    """x**2 with a correct backward written in NumPy: right once, not twice."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 2

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return 2 * grad_output.data * x.data


def _bad(a, x):
    return a * BadSquare.apply(x)


def test_gradcheck_catches_a_wrong_backward_and_names_the_element():
    a = ad.tensor([1.0, 2.0], requires_grad=True)
    x = ad.tensor([0.0, 1.5], requires_grad=True)  # at 0 wrong and right agree
    with pytest.raises(ad.GradcheckError) as info:
        ad.gradcheck(_bad, (a, x))
    message = str(info.value)
    assert "input 1" in message  # a (input 0) is right, x is wrong
    assert "x[1]" in message and "out[1]" in message
    found = re.search(r"analytical ([-+.\deE]+) but numerical ([-+.\deE]+)", message)
    assert found, message
    analytic, numeric = float(found.group(1)), float(found.group(2))
    assert analytic == pytest.approx(2.0 * 1.5)  # a * x  (the wrong rule)
    assert numeric == pytest.approx(2.0 * 2 * 1.5, rel=1e-6)  # a * 2x


def test_gradcheck_returns_false_without_raising():
    x = ad.tensor([0.5, -1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="Gradient check failed"):
        assert ad.gradcheck(BadSquare.apply, x, raise_exception=False) is False


def test_gradcheck_fast_mode_catches_a_wrong_backward():
    x = ad.tensor([0.5, -1.0, 2.0], requires_grad=True)
    with pytest.raises(ad.GradcheckError, match="fast mode"):
        ad.gradcheck(BadSquare.apply, x, fast_mode=True)
    with pytest.warns(UserWarning):
        assert ad.gradcheck(lambda t: BadSquare.apply(t).sum(), x, fast_mode=True,
                            raise_exception=False) is False


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES[::3]])
def test_gradcheck_passes_on_correct_ops(case, fast_mode):
    xs = tuple(_leaves(make_inputs(case, _rng(case, 5))))
    assert ad.gradcheck(case.op.fn, xs, fast_mode=fast_mode) is True


def test_gradcheck_passes_on_a_correct_custom_function():
    class Square(ad.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.data ** 2

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return 2 * grad_output * x

    x = ad.tensor([0.5, -1.0, 2.0], requires_grad=True)
    assert ad.gradcheck(Square.apply, x)
    assert ad.gradcheck(Square.apply, x, fast_mode=True)


def test_gradcheck_warns_on_float32():
    x = ad.tensor(np.array([0.5, -1.0, 2.0], dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="float32"):
        assert ad.gradcheck(lambda t: t * 3.0, x, eps=1e-2, atol=1e-2, rtol=1e-2)


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        ad.gradcheck(lambda t: t * 2, ad.tensor([1.0, 2.0]))


@pytest.mark.parametrize("fn, domains, shapes", [
    pytest.param(lambda x: x.exp(), ("real",), ((3,),), id="exp"),
    pytest.param(lambda x: x.tanh(), ("real",), ((2, 3),), id="tanh"),
    pytest.param(lambda x: x.sigmoid(), ("real",), ((4,),), id="sigmoid"),
    pytest.param(lambda x: ad.softmax(x, axis=1), ("real",), ((2, 3),), id="softmax"),
    pytest.param(lambda x: ad.log_softmax(x, axis=0), ("real",), ((3, 2),),
                 id="log_softmax"),
    pytest.param(lambda a, b: a @ b, ("real", "real"), ((2, 3), (3, 2)), id="matmul"),
    pytest.param(lambda a, b: a @ b, ("real", "real"), ((3,), (3, 2)), id="matmul-vec"),
    pytest.param(lambda a, b: a * b, ("real", "real"), ((2, 3), (3,)), id="mul"),
    pytest.param(lambda a, b: a / b, ("real", "nonzero"), ((3,), (3,)), id="div"),
    pytest.param(lambda a, b: a ** b, ("positive", "real"), ((3,), (3,)), id="pow"),
    pytest.param(lambda x: x ** 3, ("real",), ((3,),), id="pow-scalar"),
    pytest.param(lambda x: 2.0 ** x, ("real",), ((3,),), id="scalar-base"),
    pytest.param(lambda x: x.sin() * x.log(), ("positive",), ((3,),), id="sin*log"),
    pytest.param(lambda x: (x * x).sum(1).sqrt(), ("nonzero",), ((2, 3),), id="norm"),
    pytest.param(lambda x: x.max(1) * x.mean(), ("distinct",), ((2, 3),), id="max*mean"),
    pytest.param(lambda x: x[[0, 2, 0]].exp(), ("real",), ((3, 2),), id="getitem"),
    pytest.param(lambda x: ad.cross_entropy(x, [1, 0]), ("real",), ((2, 3),),
                 id="cross_entropy"),
])
def test_gradgradcheck_passes_on_tensor_written_backwards(fn, domains, shapes):
    from optable import sample

    rng = np.random.default_rng(7)
    xs = tuple(ad.tensor(sample(d, s, rng), requires_grad=True)
               for d, s in zip(domains, shapes))
    assert ad.gradgradcheck(fn, xs) is True


def test_numpy_backward_is_fine_once_but_not_twice():
    x = ad.tensor([0.5, -1.0, 2.0], requires_grad=True)
    assert ad.gradcheck(NumpySquare.apply, x)  # first derivatives are right
    with pytest.raises(RuntimeError) as info:
        ad.gradgradcheck(NumpySquare.apply, x)
    assert not isinstance(info.value, ad.GradcheckError)  # a clear error, not a number
    message = str(info.value)
    assert "NumpySquare" in message and "NumPy" in message and "Tensor operations" in message

    # the same through ad.grad directly: never a silent 0
    (g,) = ad.grad(NumpySquare.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 2 * x.data)
    with pytest.raises(RuntimeError, match="NumPy"):
        ad.grad(g.sum(), x)
    # ... also when the NumPy gradient is buried inside a bigger expression
    (g,) = ad.grad(NumpySquare.apply(x.sin()).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="NumPy"):
        (g * x).sum().backward()


# ------------------------------------------------------------ numerical_jacobian


def test_numerical_jacobian_of_a_linear_map_is_the_matrix():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 4))
    x = ad.tensor(rng.standard_normal(4))
    J = ad.numerical_jacobian(lambda t: ad.tensor(A) @ t, x)
    assert isinstance(J, np.ndarray) and J.shape == (3, 4)
    np.testing.assert_allclose(J, A, rtol=1e-8, atol=1e-8)


def test_numerical_jacobian_layout_is_out_shape_plus_in_shape():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, 4))
    X = ad.tensor(rng.standard_normal((4, 2)))
    J = ad.numerical_jacobian(lambda t: ad.tensor(A) @ t, X)
    assert J.shape == (3, 2, 4, 2)
    expected = np.einsum("ij,kl->ikjl", A, np.eye(2))  # d (AX)[i,k] / d X[j,l]
    np.testing.assert_allclose(J, expected, rtol=1e-8, atol=1e-8)

    # a tuple of inputs gives a tuple; a non-float input gives None
    b = rng.standard_normal(3)
    n = np.array([1, 2, 3, 4])
    Ja, Jb, Jn = ad.numerical_jacobian(lambda a, t, k: t @ a + t.sum() * k,
                                       (ad.tensor(A), ad.tensor(b), ad.tensor(n)))
    assert Ja.shape == (4, 3, 4) and Jb.shape == (4, 3) and Jn is None
    np.testing.assert_allclose(Ja, np.einsum("i,jk->kij", b, np.eye(4)), atol=1e-8)
    np.testing.assert_allclose(Jb, A.T + n[:, None], atol=1e-8)
    # a scalar output gives the input's shape
    Js = ad.numerical_jacobian(lambda t: (t * t).sum(), X)
    assert Js.shape == (4, 2)
    np.testing.assert_allclose(Js, 2 * X.data, atol=1e-8)
