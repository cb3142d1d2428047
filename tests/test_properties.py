"""Property tests (hypothesis, derandomized so CI is reproducible):

* element-wise ops on random shapes (0-d to 3-D, size-1 axes, broadcasting)
  against central finite differences, both modes;
* random small expression DAGs (3-8 ops over 1-3 inputs, intermediate values
  reused) checked with ad.gradcheck and, when torch is importable, against
  torch (values, gradients and Hessian-vector products).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autodiff_ref as ad
from optable import np_sigmoid, numerical_jvp, numerical_vjp

try:
    import torch
except ImportError:  # the torch comparisons below are then left out
    torch = None

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------ element domains

REAL = st.floats(-2.0, 2.0)
POSITIVE = st.floats(0.5, 2.0)
NONZERO = st.floats(0.1, 2.0) | st.floats(-2.0, -0.1)  # away from kinks and poles
GRID_EVEN = st.integers(-6, 6).map(lambda k: 0.2 * k)  # against GRID_ODD: never a tie
GRID_ODD = st.integers(-6, 6).map(lambda k: 0.2 * k + 0.1)

UNARY = {
    "neg": (lambda x: -x, np.negative, REAL),
    "exp": (lambda x: x.exp(), np.exp, REAL),
    "log": (lambda x: x.log(), np.log, POSITIVE),
    "sin": (lambda x: x.sin(), np.sin, REAL),
    "cos": (lambda x: x.cos(), np.cos, REAL),
    "tanh": (lambda x: x.tanh(), np.tanh, REAL),
    "sigmoid": (lambda x: x.sigmoid(), np_sigmoid, REAL),
    "relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), NONZERO),
    "abs": (lambda x: x.abs(), np.abs, NONZERO),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, POSITIVE),
    "x**3": (lambda x: x ** 3, lambda x: x ** 3, REAL),
    "x**-0.5": (lambda x: x ** -0.5, lambda x: x ** -0.5, POSITIVE),
    "2**x": (lambda x: 2.0 ** x, lambda x: 2.0 ** x, REAL),
    "1/x": (lambda x: 1.0 / x, lambda x: 1.0 / x, NONZERO),
    "3-x": (lambda x: 3 - x, lambda x: 3 - x, REAL),
}

BINARY = {
    "add": (lambda a, b: a + b, np.add, REAL, REAL),
    "sub": (lambda a, b: a - b, np.subtract, REAL, REAL),
    "mul": (lambda a, b: a * b, np.multiply, REAL, REAL),
    "div": (lambda a, b: a / b, np.divide, REAL, NONZERO),
    "pow": (lambda a, b: a ** b, np.power, POSITIVE, REAL),
    "maximum": (ad.maximum, np.maximum, GRID_EVEN, GRID_ODD),
}

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)


def _check_both_modes(fn, ref, arrays, g, vs):
    xs = [ad.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    expected = np.asarray(ref(*arrays))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    out.backward(ad.tensor(g))
    for x, e in zip(xs, numerical_vjp(fn, arrays, g)):
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.data, e, rtol=1e-6, atol=1e-6)
    _, tangent = ad.functional.jvp(fn, tuple(ad.tensor(a) for a in arrays),
                                   tuple(ad.tensor(v) for v in vs))
    np.testing.assert_allclose(tangent.data, numerical_jvp(fn, arrays, vs),
                               rtol=1e-6, atol=1e-6)


@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), name=st.sampled_from(sorted(UNARY)), shape=SHAPES)
def test_unary_ops_on_random_shapes(data, name, shape):
    fn, ref, elements = UNARY[name]
    x = data.draw(hnp.arrays(np.float64, shape, elements=elements), label="x")
    g = data.draw(hnp.arrays(np.float64, shape, elements=REAL), label="g")
    v = data.draw(hnp.arrays(np.float64, shape, elements=REAL), label="v")
    _check_both_modes(fn, ref, [x], g, [v])


@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), name=st.sampled_from(sorted(BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                min_side=1, max_side=3))
def test_binary_ops_broadcast_on_random_shapes(data, name, shapes):
    fn, ref, dom_a, dom_b = BINARY[name]
    sa, sb = shapes.input_shapes
    a = data.draw(hnp.arrays(np.float64, sa, elements=dom_a), label="a")
    b = data.draw(hnp.arrays(np.float64, sb, elements=dom_b), label="b")
    g = data.draw(hnp.arrays(np.float64, shapes.result_shape, elements=REAL), label="g")
    va = data.draw(hnp.arrays(np.float64, sa, elements=REAL), label="va")
    vb = data.draw(hnp.arrays(np.float64, sb, elements=REAL), label="vb")
    _check_both_modes(fn, ref, [a, b], g, [va, vb])


# ------------------------------------------------------------ random expression DAGs

# Smooth everywhere and of bounded growth, so finite differences stay accurate
# whatever the DAG. Each op is (arity, ours, torch's); ``None``: the same code.
DAG_OPS = {
    "sin": (1, lambda x: x.sin(), None),
    "cos": (1, lambda x: x.cos(), None),
    "tanh": (1, lambda x: x.tanh(), None),
    "sigmoid": (1, lambda x: x.sigmoid(), None),
    "neg": (1, lambda x: -x, None),
    "half": (1, lambda x: 0.5 * x, None),
    "gauss": (1, lambda x: (-(x * x)).exp(), None),
    "log1p(x^2)": (1, lambda x: (1 + x ** 2).log(), None),
    "sqrt(1+x^2)": (1, lambda x: (1.0 + x * x).sqrt(), None),
    "2**tanh": (1, lambda x: 2.0 ** x.tanh(), None),
    "sum(-1)": (1, lambda x: x.sum(-1, True), None),
    "mean(0)": (1, lambda x: x.mean(0, True), None),
    "softmax": (1, lambda x: ad.softmax(x, -1), lambda x: x.softmax(-1)),
    "log_softmax": (1, lambda x: ad.log_softmax(x, 0), lambda x: x.log_softmax(0)),
    "add": (2, lambda a, b: a + b, None),
    "sub": (2, lambda a, b: a - b, None),
    "a*tanh(b)": (2, lambda a, b: a * b.tanh(), None),
    "a/(1+b^2)": (2, lambda a, b: a / (1 + b * b), None),
    "a*sigmoid(b)": (2, lambda a, b: a * b.sigmoid(), None),
}


@st.composite
def dags(draw):
    """A program: input shapes (mutually broadcastable, 1-D to 3-D) and a list of
    steps (op name, operand indices into the values computed so far)."""
    n_inputs = draw(st.integers(1, 3))
    shapes = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=n_inputs, min_dims=1, max_dims=3, min_side=1, max_side=3)).input_shapes
    steps = []
    n_values = n_inputs
    for _ in range(draw(st.integers(3, 8))):
        name = draw(st.sampled_from(sorted(DAG_OPS)))
        arity = DAG_OPS[name][0]
        # operands from anywhere in the pool: earlier values get reused (fan-out)
        steps.append((name, tuple(draw(st.integers(0, n_values - 1)) for _ in range(arity))))
        n_values += 1
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return shapes, steps, seed


def run_dag(steps, inputs, lib):
    """Evaluate the program; the output adds up every value nothing else used,
    so every step reaches the output."""
    values = list(inputs)
    used = set()
    for name, operands in steps:
        _, ours, theirs = DAG_OPS[name]
        fn = ours if lib == "ad" or theirs is None else theirs
        values.append(fn(*(values[i] for i in operands)))
        used.update(operands)
    sinks = [v for i, v in enumerate(values) if i not in used and i >= len(inputs)]
    out = sinks[0]
    for v in sinks[1:]:
        out = out + v
    return out


def _uses(steps, n_inputs):
    counts = [0] * (n_inputs + len(steps))
    for _, operands in steps:
        for i in operands:
            counts[i] += 1
    return counts


@settings(max_examples=80, **SETTINGS)
@given(program=dags())
def test_random_dags_pass_gradcheck_and_match_torch(program):
    shapes, steps, seed = program
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    xs = tuple(ad.tensor(a, requires_grad=True) for a in arrays)
    fn = lambda *t: run_dag(steps, t, "ad")  # noqa: E731

    assert ad.gradcheck(fn, xs)

    out = fn(*xs)
    g = rng.standard_normal(out.shape)
    grads = ad.grad(out, xs, ad.tensor(g), allow_unused=True)
    counts = _uses(steps, len(xs))
    for i, (x, gx) in enumerate(zip(xs, grads)):
        assert (gx is None) == (counts[i] == 0)  # None exactly for unused inputs

    if torch is None:
        return
    ts = tuple(torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays)
    tout = run_dag(steps, ts, "torch")
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    tgrads = torch.autograd.grad(tout, ts, torch.tensor(g), allow_unused=True,
                                 create_graph=True)
    for gx, tg in zip(grads, tgrads):
        assert (gx is None) == (tg is None)
        if gx is not None:
            np.testing.assert_allclose(gx.data, tg.detach().numpy(), rtol=1e-10, atol=1e-12)

    # second order: Hessian-vector products (d/dx of <grad, v>) against torch
    used = [i for i, tg in enumerate(tgrads) if tg is not None and tg.requires_grad]
    if not used:
        return
    vs = [rng.standard_normal(a.shape) for a in arrays]
    first = ad.grad(fn(*xs), xs, ad.tensor(g), create_graph=True, allow_unused=True)
    dot = sum(((first[i] * ad.tensor(vs[i])).sum() for i in used), ad.tensor(0.0))
    tdot = sum((tgrads[i] * torch.tensor(vs[i])).sum() for i in used)
    hvp = ad.grad(dot, xs, allow_unused=True)
    thvp = torch.autograd.grad(tdot, ts, allow_unused=True)
    for h, th in zip(hvp, thvp):
        h = np.zeros(1) if h is None else h.data
        th = np.zeros(1) if th is None else th.numpy()
        np.testing.assert_allclose(h, th, rtol=1e-9, atol=1e-10)


def test_the_dag_generator_makes_fan_out():
    """The strategy really produces reused intermediates (and is exercised)."""
    found = []

    @settings(max_examples=30, **SETTINGS)
    @given(program=dags())
    def collect(program):
        shapes, steps, _ = program
        found.append(max(_uses(steps, len(shapes))))

    collect()
    assert len(found) >= 20 and max(found) >= 2
    assert sum(c >= 2 for c in found) >= len(found) // 4


@pytest.mark.parametrize("name", sorted(DAG_OPS))
def test_every_dag_op_keeps_shapes_broadcastable(name):
    arity, ours, _ = DAG_OPS[name]
    a = ad.tensor(np.linspace(-1, 1, 6).reshape(2, 3))
    b = ad.tensor(np.linspace(0.5, 1.5, 3))
    out = ours(a) if arity == 1 else ours(a, b)
    assert np.broadcast_shapes(out.shape, (2, 3)) == (2, 3)
    assert np.isfinite(out.data).all()
