"""PyTorch as the independent oracle: the op table of optable.py, ties and kinks,
second derivatives, the functional API and a small training loop, all in float64."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import autodiff_ref as ad  # noqa: E402
from optable import CASES, make_inputs  # noqa: E402

torch.set_default_dtype(torch.float64)

case_params = [pytest.param(c, id=c.id) for c in CASES]


def _rng(case, salt=0):
    return np.random.default_rng([sum(map(ord, case.id)), len(case.id), salt, 99])


def ad_leaves(arrays):
    return [ad.tensor(a, requires_grad=True) for a in arrays]


def torch_leaves(arrays):
    return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]


def assert_same(ours, theirs, rtol=1e-10, atol=1e-12):
    """Same structure (tensor / tuple / tuple of tuples / None), shapes and values."""
    if theirs is None:
        assert ours is None, f"expected None, got {ours!r}"
        return
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple), f"expected a tuple, got {type(ours).__name__}"
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            assert_same(o, t, rtol, atol)
        return
    assert isinstance(theirs, torch.Tensor)
    assert isinstance(ours, ad.Tensor), f"expected an ad.Tensor, got {type(ours).__name__}"
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=atol)


# ------------------------------------------------------------ the op table


@pytest.mark.parametrize("case", case_params)
def test_value_and_gradient_match_torch(case):
    rng = _rng(case)
    arrays = make_inputs(case, rng)
    torch_fn = case.op.torch_fn or case.op.fn

    xs = ad_leaves(arrays)
    ts = torch_leaves(arrays)
    out = case.op.fn(*xs)
    tout = torch_fn(*ts)
    assert_same(out, tout)

    g = rng.standard_normal(out.shape)  # random upstream gradient
    out.backward(ad.tensor(g))
    tout.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        assert_same(x.grad, t.grad)


@pytest.mark.parametrize("case", case_params[::2])
def test_forward_mode_matches_torch(case):
    rng = _rng(case, 1)
    arrays = make_inputs(case, rng)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    torch_fn = case.op.torch_fn or case.op.fn
    ours = ad.functional.jvp(case.op.fn, tuple(ad.tensor(a) for a in arrays),
                             tuple(ad.tensor(v) for v in vs))
    theirs = torch.autograd.functional.jvp(torch_fn, tuple(torch.tensor(a) for a in arrays),
                                           tuple(torch.tensor(v) for v in vs))
    assert_same(ours, theirs)


# ------------------------------------------------------------ ties and kinks


@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), (0, True),
                                            ((0, 1), True), (-1, True)])
def test_max_ties_share_the_gradient_like_torch_amax(axis, keepdims):
    data = np.array([[1.0, 3.0, 3.0, 0.5],
                     [2.0, 2.0, 2.0, 2.0],
                     [3.0, -1.0, 3.0, 3.0]])
    x, t = ad_leaves([data])[0], torch_leaves([data])[0]
    dims = tuple(range(2)) if axis is None else axis
    out, tout = x.max(axis, keepdims), t.amax(dim=dims, keepdim=keepdims)
    assert_same(out, tout)
    g = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(ad.tensor(g))
    tout.backward(torch.tensor(g))
    assert_same(x.grad, t.grad)
    # the shares of each reduced group add up to its upstream gradient
    np.testing.assert_allclose(x.grad.data.sum(), np.sum(g))


def test_max_ties_along_axis_are_split_evenly():
    x = ad.tensor([[1.0, 3.0, 3.0, 3.0]], requires_grad=True)
    x.max(axis=1).backward(ad.tensor([6.0]))
    np.testing.assert_allclose(x.grad.data, [[0.0, 2.0, 2.0, 2.0]])


def test_maximum_ties_give_half_to_each_like_torch():
    a = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    b = np.array([1.0, 0.0, 3.0])  # ties at (0, 0) and (0, 2) only
    xa, xb = ad_leaves([a, b])
    ta, tb = torch_leaves([a, b])
    out, tout = ad.maximum(xa, xb), torch.maximum(ta, tb)
    assert_same(out, tout)
    g = np.array([[2.0, 4.0, 6.0], [8.0, 10.0, 12.0]])
    out.backward(ad.tensor(g))
    tout.backward(torch.tensor(g))
    assert_same(xa.grad, ta.grad)
    assert_same(xb.grad, tb.grad)
    np.testing.assert_allclose(xa.grad.data, [[1.0, 4.0, 3.0], [0.0, 0.0, 12.0]])
    np.testing.assert_allclose(xb.grad.data, [1.0 + 8.0, 10.0, 3.0 + 0.0])


@pytest.mark.parametrize("name", ["relu", "abs"])
def test_kinks_at_exactly_zero_match_torch(name):
    data = np.array([-1.5, -0.0, 0.0, 0.0, 2.0])
    x, t = ad_leaves([data])[0], torch_leaves([data])[0]
    out, tout = getattr(x, name)(), getattr(t, name)()
    assert_same(out, tout)
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out.backward(ad.tensor(g))
    tout.backward(torch.tensor(g))
    assert_same(x.grad, t.grad)
    assert x.grad.data[1] == 0 and x.grad.data[2] == 0  # the subgradient 0 at the kink
    # forward mode agrees with reverse mode at the kink
    _, tangent = ad.functional.jvp(lambda z: getattr(z, name)(), ad.tensor(data),
                                   ad.tensor(np.ones(5)))
    np.testing.assert_allclose(tangent.data, x.grad.data / g)


def test_maximum_with_scalar_at_the_kink_matches_torch():
    data = np.array([-1.0, 0.0, 1.0])
    x, t = ad_leaves([data])[0], torch_leaves([data])[0]
    out = ad.maximum(x, 0.0)
    tout = torch.maximum(t, torch.tensor(0.0))
    assert_same(out, tout)
    out.backward(ad.tensor([1.0, 1.0, 1.0]))
    tout.backward(torch.ones(3))
    assert_same(x.grad, t.grad)


def test_pow_at_a_zero_base_matches_torch():
    """0 ** b: the derivative is 0 where the value does not move (b = 0 for the
    base, b >= 0 for the exponent), not 0 * inf = nan."""
    a = np.array([0.0, 0.0, 0.0, 2.0, 0.5, 0.0])
    b = np.array([2.0, 0.0, -1.0, 3.0, 0.0, 0.5])
    xa, xb = ad_leaves([a, b])
    ta, tb = torch_leaves([a, b])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xa ** xb
        assert_same(out, ta ** tb)
        g = np.arange(1.0, 7.0)
        out.backward(ad.tensor(g))
    (ta ** tb).backward(torch.tensor(g))
    assert_same(xa.grad, ta.grad)
    assert_same(xb.grad, tb.grad)
    assert np.isfinite(xa.grad.data[[0, 1, 3, 4]]).all()
    assert np.isfinite(xb.grad.data[[0, 1, 3, 4, 5]]).all()


def test_polynomial_features_at_zero_match_torch():
    """sum_k w_k x^k at x = 0: the x ** 0 term must not turn the gradient into nan."""
    x_np, w_np = np.array([0.0, 1.5, -2.0]), np.array([0.5, -1.0, 2.0, 0.25])
    x, w = ad_leaves([x_np, w_np])
    tx, tw = torch_leaves([x_np, w_np])
    y = sum((w[k] * x ** k for k in range(4)), ad.tensor(0.0))
    ty = sum(tw[k] * tx ** k for k in range(4))
    assert_same(y, ty)
    y.sum().backward()
    ty.sum().backward()
    assert_same(x.grad, tx.grad)
    assert_same(w.grad, tw.grad)
    _, tangent = ad.functional.jvp(lambda t: t ** 0, ad.tensor(x_np), ad.tensor(np.ones(3)))
    np.testing.assert_array_equal(tangent.data, 0.0)


def test_cross_entropy_with_huge_logits_matches_torch():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    target = np.array([0, 2])
    x, t = ad_leaves([logits])[0], torch_leaves([logits])[0]
    loss = ad.cross_entropy(x, target)
    tloss = torch.nn.functional.cross_entropy(t, torch.tensor(target))
    assert np.isfinite(loss.item())
    assert_same(loss, tloss)
    loss.backward()
    tloss.backward()
    assert_same(x.grad, t.grad)


# ------------------------------------------------------------ second derivatives

COMPOSITES = {
    "tanh*exp": (lambda x, W: (x.tanh() * x.exp()).sum() + (W * W).sum(),) * 2,
    "sigmoid(Wx)^2": (lambda x, W: ((W @ x).sigmoid() ** 2).sum(),) * 2,
    "log_softmax(xW)": (lambda x, W: (ad.log_softmax(W.T @ x.reshape(3, 1).sin(), axis=0)
                                      * W.sum(0)).sum(),
                        lambda x, W: ((W.T @ x.reshape(3, 1).sin()).log_softmax(dim=0)
                                      * W.sum(0)).sum()),
    "softmax/pow": (lambda x, W: (ad.softmax(W @ x, axis=0) / (x * x + 1.0) ** 1.5).sum(),
                    lambda x, W: ((W @ x).softmax(dim=0) / (x * x + 1.0) ** 1.5).sum()),
    "norm*cos": (lambda x, W: (W @ x).norm() * x.cos().mean(),
                 lambda x, W: (W @ x).norm() * x.cos().mean()),
    "pow-tensor": (lambda x, W: ((x * x + 1.0) ** W[0]).sum() * (2.0 ** x[1]),) * 2,
    "maxes": (lambda x, W: (W @ x).max() * x.abs().sum() + (W.relu() * x).sum(),
              lambda x, W: (W @ x).amax() * x.abs().sum() + (W.relu() * x).sum()),
}


def _composite_inputs(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(3), rng.standard_normal((3, 3)) * 0.7


@pytest.mark.parametrize("name", list(COMPOSITES))
def test_second_derivatives_match_torch(name):
    ours_f, torch_f = COMPOSITES[name]
    x_np, W_np = _composite_inputs(len(name))
    v_x, v_W = np.random.default_rng(5).standard_normal(3), \
        np.random.default_rng(6).standard_normal((3, 3))

    x, W = ad_leaves([x_np, W_np])
    tx, tW = torch_leaves([x_np, W_np])
    out, tout = ours_f(x, W), torch_f(tx, tW)
    assert_same(out, tout)

    gx, gW = ad.grad(out, (x, W), create_graph=True)
    tgx, tgW = torch.autograd.grad(tout, (tx, tW), create_graph=True)
    assert_same((gx, gW), (tgx, tgW))
    assert gx.requires_grad and gx.grad_fn is not None  # differentiable again

    # Hessian-vector product: d/d(x, W) of <grad, v>
    dot = (gx * ad.tensor(v_x)).sum() + (gW * ad.tensor(v_W)).sum()
    tdot = (tgx * torch.tensor(v_x)).sum() + (tgW * torch.tensor(v_W)).sum()
    hvp = ad.grad(dot, (x, W), retain_graph=True)
    thvp = torch.autograd.grad(tdot, (tx, tW), retain_graph=True)
    assert_same(hvp, thvp, rtol=1e-9, atol=1e-10)

    # backward() on a gradient accumulates second derivatives into .grad
    gx.sum().backward()
    tgx.sum().backward()
    assert_same(x.grad, tx.grad, rtol=1e-9, atol=1e-10)
    assert_same(W.grad, tW.grad, rtol=1e-9, atol=1e-10)


def test_third_derivative_of_tanh_matches_torch():
    data = np.array([-1.2, 0.3, 0.8])
    x, t = ad_leaves([data])[0], torch_leaves([data])[0]
    (g1,) = ad.grad(x.tanh().sum(), x, create_graph=True)
    (g2,) = ad.grad(g1.sum(), x, create_graph=True)
    (g3,) = ad.grad(g2.sum(), x)
    (t1,) = torch.autograd.grad(t.tanh().sum(), t, create_graph=True)
    (t2,) = torch.autograd.grad(t1.sum(), t, create_graph=True)
    (t3,) = torch.autograd.grad(t2.sum(), t)
    assert_same((g1, g2, g3), (t1, t2, t3), rtol=1e-9)


@pytest.mark.parametrize("name", list(COMPOSITES))
def test_hessian_of_composites_matches_torch(name):
    ours_f, torch_f = COMPOSITES[name]
    x_np, W_np = _composite_inputs(len(name) + 1)
    ours = ad.functional.hessian(ours_f, (ad.tensor(x_np), ad.tensor(W_np)))
    theirs = torch.autograd.functional.hessian(torch_f, (torch.tensor(x_np),
                                                         torch.tensor(W_np)))
    assert_same(ours, theirs, rtol=1e-9, atol=1e-10)


# ------------------------------------------------------------ functional API


def f_scalar(x):
    return (x.sin() * x).sum()


def f_vector(x):
    return x.exp() * x.sum()


def f_two_in(x, y):
    return (x @ y).tanh()


def f_two_out(x):
    return x.exp(), (x * 2.0).sum()


def f_two_in_two_out(x, y):
    return x * y.sigmoid(), (x + y).sum()


def f_hess_two_in(x, y):
    return (x * y.exp()).sum() + (x * x).sum() * y.sum()


RNG = np.random.default_rng(42)
X3 = RNG.standard_normal(3)
Y3 = RNG.standard_normal(3)
M23 = RNG.standard_normal((2, 3))
M34 = RNG.standard_normal((3, 4))
X2x2 = RNG.standard_normal((2, 2))

FUNCTIONAL_CASES = {
    # name: (function, inputs: one array or a tuple of arrays)
    "scalar-out": (f_scalar, X3),
    "vector-out": (f_vector, X2x2),
    "tuple-in": (f_two_in, (M23, M34)),
    "tuple-out": (f_two_out, X3),
    "tuple-in-tuple-out": (f_two_in_two_out, (X3, Y3)),
}


def _like_outputs(fn, inputs, rng):
    out = fn(*[ad.tensor(a) for a in (inputs if isinstance(inputs, tuple) else (inputs,))])
    if isinstance(out, tuple):
        return tuple(rng.standard_normal(o.shape) for o in out)
    return rng.standard_normal(out.shape)


def _wrap(lib, arrays):
    make = ad.tensor if lib == "ad" else torch.tensor
    return tuple(make(a) for a in arrays) if isinstance(arrays, tuple) else make(arrays)


@pytest.mark.parametrize("name", list(FUNCTIONAL_CASES))
def test_functional_vjp_matches_torch(name):
    fn, inputs = FUNCTIONAL_CASES[name]
    v = _like_outputs(fn, inputs, np.random.default_rng(1))
    ours = ad.functional.vjp(fn, _wrap("ad", inputs), _wrap("ad", v))
    theirs = torch.autograd.functional.vjp(fn, _wrap("torch", inputs), _wrap("torch", v))
    assert_same(ours, theirs)


@pytest.mark.parametrize("name", list(FUNCTIONAL_CASES))
def test_functional_jvp_matches_torch(name):
    fn, inputs = FUNCTIONAL_CASES[name]
    rng = np.random.default_rng(2)
    v = tuple(rng.standard_normal(a.shape) for a in inputs) if isinstance(inputs, tuple) \
        else rng.standard_normal(inputs.shape)
    ours = ad.functional.jvp(fn, _wrap("ad", inputs), _wrap("ad", v))
    theirs = torch.autograd.functional.jvp(fn, _wrap("torch", inputs), _wrap("torch", v))
    assert_same(ours, theirs)


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
@pytest.mark.parametrize("name", list(FUNCTIONAL_CASES))
def test_functional_jacobian_matches_torch(name, strategy):
    fn, inputs = FUNCTIONAL_CASES[name]
    ours = ad.functional.jacobian(fn, _wrap("ad", inputs), strategy=strategy)
    theirs = torch.autograd.functional.jacobian(fn, _wrap("torch", inputs))
    assert_same(ours, theirs)


@pytest.mark.parametrize("fn, inputs", [
    pytest.param(f_scalar, X3, id="one-input"),
    pytest.param(lambda x: (x.tanh() ** 3).sum(), X2x2, id="one-2d-input"),
    pytest.param(f_hess_two_in, (X3, Y3), id="tuple-input"),
])
def test_functional_hessian_matches_torch(fn, inputs):
    ours = ad.functional.hessian(fn, _wrap("ad", inputs))
    theirs = torch.autograd.functional.hessian(fn, _wrap("torch", inputs))
    assert_same(ours, theirs, rtol=1e-9)


def test_functional_vjp_without_v_for_a_scalar_output_matches_torch():
    ours = ad.functional.vjp(f_scalar, ad.tensor(X3))
    theirs = torch.autograd.functional.vjp(f_scalar, torch.tensor(X3))
    assert_same(ours, theirs)


def test_functional_jvp_of_a_constant_function_matches_torch():
    ours = ad.functional.jvp(lambda x: ad.tensor(5.0) * 1.0, ad.tensor(X3),
                             ad.tensor(np.ones(3)))
    theirs = torch.autograd.functional.jvp(lambda x: torch.tensor(5.0) * 1.0,
                                           torch.tensor(X3), torch.ones(3))
    assert_same(ours, theirs)


def test_functional_vjp_with_create_graph_gives_a_differentiable_result():
    x_np = X3
    x = ad.tensor(x_np, requires_grad=True)
    _, g = ad.functional.vjp(f_scalar, x, create_graph=True)
    (h,) = ad.grad(g.sum(), x)
    t = torch.tensor(x_np, requires_grad=True)
    _, tg = torch.autograd.functional.vjp(f_scalar, t, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), t)
    assert_same(h, th)


def test_functional_jacobian_with_create_graph_matches_torch():
    x_np = X3
    x = ad.tensor(x_np, requires_grad=True)
    J = ad.functional.jacobian(f_vector, x, create_graph=True)
    (h,) = ad.grad((J * J).sum(), x)
    t = torch.tensor(x_np, requires_grad=True)
    tJ = torch.autograd.functional.jacobian(f_vector, t, create_graph=True)
    (th,) = torch.autograd.grad((tJ * tJ).sum(), t)
    assert_same(J, tJ)
    assert_same(h, th)


# ------------------------------------------------------------ a training loop


def test_linear_with_momentum_sgd_matches_torch():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 3))
    Y = rng.standard_normal((8, 2))

    layer = ad.nn.Linear(3, 2, seed=0)
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)  # (out, in) like torch
    tlayer = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        tlayer.weight.copy_(torch.tensor(layer.weight.data))
        tlayer.bias.copy_(torch.tensor(layer.bias.data))

    opt = ad.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tlayer.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        topt.zero_grad()
        loss = ((layer(ad.tensor(X)) - ad.tensor(Y)) ** 2).mean()
        tloss = ((tlayer(torch.tensor(X)) - torch.tensor(Y)) ** 2).mean()
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-12)
        loss.backward()
        tloss.backward()
        assert_same(layer.weight.grad, tlayer.weight.grad)
        assert_same(layer.bias.grad, tlayer.bias.grad)
        opt.step()
        topt.step()
        assert_same(layer.weight, tlayer.weight)
        assert_same(layer.bias, tlayer.bias)
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_two_layer_network_with_cross_entropy_matches_torch():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 4))
    target = np.array([0, 2, 1, 2, 0, 1])
    l1, l2 = ad.nn.Linear(4, 5, seed=1), ad.nn.Linear(5, 3, seed=2)
    net = ad.nn.Sequential(l1, ad.nn.Tanh(), l2)
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for ours, theirs in ((l1, tnet[0]), (l2, tnet[2])):
            theirs.weight.copy_(torch.tensor(ours.weight.data))
            theirs.bias.copy_(torch.tensor(ours.bias.data))
    assert len(net.parameters()) == 4
    opt = ad.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.5, momentum=0.9)
    for _ in range(4):
        opt.zero_grad()
        topt.zero_grad()
        loss = ad.cross_entropy(net(ad.tensor(X)), target)
        tloss = torch.nn.functional.cross_entropy(tnet(torch.tensor(X)),
                                                  torch.tensor(target))
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-12)
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
    for ours, theirs in zip(net.parameters(), tnet.parameters()):
        assert_same(ours, theirs, rtol=1e-9)


def test_functional_hessian_with_create_graph_matches_torch():
    x = ad.tensor(X3, requires_grad=True)
    H = ad.functional.hessian(f_scalar, x, create_graph=True)
    (third,) = ad.grad((H * H).sum(), x)
    t = torch.tensor(X3, requires_grad=True)
    tH = torch.autograd.functional.hessian(f_scalar, t, create_graph=True)
    (tthird,) = torch.autograd.grad((tH * tH).sum(), t)
    assert_same(H, tH)
    assert_same(third, tthird, rtol=1e-9)


def test_grad_with_several_outputs_of_different_shapes_matches_torch():
    x, t = ad_leaves([X3])[0], torch_leaves([X3])[0]
    g1, g2 = np.array([1.0, -2.0, 0.5]), 3.0
    (ours,) = ad.grad([x.exp(), x.sin().sum()], x, [ad.tensor(g1), ad.tensor(g2)])
    (theirs,) = torch.autograd.grad([t.exp(), t.sin().sum()], t,
                                    [torch.tensor(g1), torch.tensor(g2)])
    assert_same(ours, theirs)
