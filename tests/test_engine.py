"""Engine semantics (accumulation, leaves, fan-out, depth, control flow,
no_grad, detach, ad.grad), its error messages, and the Function API."""

import gc

import numpy as np
import pytest

import autodiff_ref as ad


def leaf(values):
    return ad.tensor(values, requires_grad=True)


# ------------------------------------------------------------ accumulation and leaves


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, -4.0, 6.0])
    (x * x).sum().backward()  # a new graph: adds, does not assign
    np.testing.assert_allclose(x.grad.data, [4.0, -8.0, 12.0])
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [7.0, -5.0, 15.0])
    x.grad = None  # how to forget it
    x.sin().sum().backward()
    np.testing.assert_allclose(x.grad.data, np.cos(x.data))
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.data, 0.0)
    (2 * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0, 2.0])


def test_optimizer_zero_grad_clears_gradients():
    w = leaf([1.0, 2.0])
    opt = ad.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.data, [1.0 - 0.2, 2.0 - 0.4])
    opt.zero_grad()
    assert w.grad is None


def test_leaves_keep_grad_intermediates_do_not_unless_retained():
    x = leaf([1.0, 2.0])
    y = x * 3
    z = y.exp()
    assert x.is_leaf and not y.is_leaf and y.grad_fn is not None
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * np.exp(3 * x.data))
    assert y.grad is None and z.grad is None

    x.grad = None
    y = x * 3
    z = y.exp()
    assert y.retain_grad() is y
    w = z * y  # y used twice: its retained gradient is the sum of both uses
    w.sum().backward()
    np.testing.assert_allclose(y.grad.data, np.exp(y.data) * y.data + np.exp(y.data))
    assert z.grad is None
    np.testing.assert_allclose(x.grad.data, 3 * y.grad.data)


def test_retain_grad_on_the_output_itself():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    y.backward(ad.tensor([5.0, 7.0]))
    np.testing.assert_allclose(y.grad.data, [5.0, 7.0])
    np.testing.assert_allclose(x.grad.data, [10.0, 14.0])


def test_fan_out_sums_contributions():
    x = leaf([0.3, -1.2, 2.0])
    (x.sin() + x.sin()).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.cos(x.data))

    x.grad = None
    s = x.sin()
    (s + s).sum().backward()  # one node, two uses
    np.testing.assert_allclose(x.grad.data, 2 * np.cos(x.data))

    x.grad = None
    (x * x * x).sum().backward()  # x used three times
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2)

    x.grad = None
    (x + x + x).backward(ad.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(x.grad.data, [3.0, 6.0, 9.0])


def test_diamond_graph():
    x = leaf(0.7)
    a = x.exp()
    b = a.sin()
    c = a.cos()
    (b * c + a).backward()
    e = np.exp(0.7)
    expected = (np.cos(e) * np.cos(e) - np.sin(e) * np.sin(e)) * e + e
    assert x.grad.item() == pytest.approx(expected, rel=1e-12)


def test_a_chain_20000_nodes_deep_backpropagates_without_recursion():
    depth = 20_000
    x = leaf([1.0, 2.0])
    y = x
    for i in range(depth):
        y = y * 1.0001 if i % 2 else y + 0.5
    node, nodes = y.grad_fn, 0
    while node is not None:  # really one chain of `depth` nodes
        nodes += 1
        node = node.next[0] if type(node.next[0]).__name__ == "Node" else None
    assert nodes == depth
    (g,) = ad.grad(y.sum(), x, retain_graph=True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 1.0001 ** (depth // 2), rtol=1e-9)
    np.testing.assert_array_equal(g.data, x.grad.data)
    del y, node  # and the graph is freed without recursion
    gc.collect()


def test_python_control_flow_is_recorded_as_it_runs():
    x = leaf([0.5, -1.0, 0.25])
    b = x * 2
    steps = 0
    while b.norm() < 1000:
        b = b * 2
        steps += 1
    multiplier = 2.0 ** (steps + 1)
    np.testing.assert_allclose(b.data, multiplier * x.data)
    b.sum().backward()
    np.testing.assert_allclose(x.grad.data, [multiplier] * 3)
    assert steps > 5

    x.grad = None
    b = x * 2
    while b.norm() < 1000:
        b = b * 2
    v = np.array([0.1, 1.0, 0.0001])
    b.backward(ad.tensor(v))
    np.testing.assert_allclose(x.grad.data, multiplier * v)


def test_branching_on_values():
    def f(x):
        return x * x if x.item() > 0 else -x

    x = leaf(3.0)
    f(x).backward()
    assert x.grad.item() == 6.0
    x = leaf(-3.0)
    f(x).backward()
    assert x.grad.item() == -1.0


# ------------------------------------------------------------ no_grad and detach


def test_no_grad_context():
    x = leaf([1.0, 2.0])
    with ad.no_grad():
        assert not ad.is_grad_enabled()
        y = x * 2
        z = (y + x).exp()
    assert ad.is_grad_enabled()
    for t in (y, z):
        assert t.requires_grad is False and t.grad_fn is None
    w = x * 2  # recording again
    assert w.requires_grad and w.grad_fn is not None


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with ad.no_grad():
            1 / 0
    assert ad.is_grad_enabled()


def test_no_grad_as_decorator():
    x = leaf([1.0, 2.0])

    @ad.no_grad()
    def evaluate(t):
        assert not ad.is_grad_enabled()
        return t * 3

    y = evaluate(x)
    assert y.requires_grad is False and y.grad_fn is None
    np.testing.assert_allclose(y.data, [3.0, 6.0])
    assert ad.is_grad_enabled()
    assert evaluate(x).grad_fn is None  # the same decorator works again


def test_no_grad_decorator_on_a_recursive_function_restores_the_mode():
    @ad.no_grad()
    def depth(n):
        assert not ad.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(4) == 4
    assert ad.is_grad_enabled()  # the same instance was entered 5 times
    assert (leaf([1.0]) * 2).grad_fn is not None


def test_nested_grad_modes():
    x = leaf([1.0])
    with ad.no_grad():
        with ad.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
        with ad.set_grad_enabled(True):
            assert (x * 2).grad_fn is not None
    with ad.set_grad_enabled(False):
        assert (x * 2).grad_fn is None
    assert ad.is_grad_enabled()


def test_detach_stops_gradients():
    x = leaf([1.0, 2.0, 3.0])
    d = x.detach()
    assert d.requires_grad is False and d.grad_fn is None and d.is_leaf
    np.testing.assert_array_equal(d.data, x.data)
    (x * x.detach()).sum().backward()  # the detached factor is a constant
    np.testing.assert_allclose(x.grad.data, x.data)  # not 2x

    x.grad = None
    y = (x * 2).exp()
    z = y.detach() * x + y
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(2 * x.data) + 2 * np.exp(2 * x.data))


def test_comparisons_are_constants():
    x = leaf([1.0, -2.0])
    mask = x > 0
    assert mask.requires_grad is False and mask.grad_fn is None
    np.testing.assert_array_equal(mask.data, [True, False])
    np.testing.assert_array_equal((x <= -2).data, [False, True])


# ------------------------------------------------------------ non-scalar backward


def test_backward_with_gradient_on_a_non_scalar_output():
    x = leaf([1.0, 2.0, 3.0])
    y = 2 * x
    y.backward(gradient=ad.tensor([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(x.grad.data, [2.0, 0.0, 0.0])
    for v in ([0.0, 1.0, 0.0], np.array([0.0, 1.0, 0.0])):  # a list or an array also work
        x.grad = None
        (2 * x).backward(v)
        np.testing.assert_allclose(x.grad.data, [0.0, 2.0, 0.0])


def test_gradient_of_two_x_dot_x():
    x = leaf([0.0, 1.0, 2.0, 3.0])
    y = 2 * (x @ x)
    assert y.shape == ()
    y.backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 4.0, 8.0, 12.0])
    x.grad = None
    (2 * x.T @ x).backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 4.0, 8.0, 12.0])


def test_backward_on_a_leaf():
    x = leaf([1.0, 2.0])
    x.backward(ad.tensor([3.0, 4.0]))
    np.testing.assert_allclose(x.grad.data, [3.0, 4.0])


# ------------------------------------------------------------ NumPy interplay


def test_numpy_asarray_and_ndarray_operators():
    x = leaf([1.0, 2.0, 3.0])
    a = np.asarray(x)
    assert isinstance(a, np.ndarray)
    np.testing.assert_array_equal(a, [1.0, 2.0, 3.0])
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    assert x.numpy() is x.data
    np.testing.assert_array_equal(np.exp(np.asarray(x)), np.exp(x.data))

    c = np.array([4.0, 5.0, 6.0])
    y = c * x
    assert isinstance(y, ad.Tensor) and y.requires_grad
    z = c + x
    assert isinstance(z, ad.Tensor)
    M = np.arange(6.0).reshape(2, 3)
    w = M @ x
    assert isinstance(w, ad.Tensor) and w.shape == (2,)
    (y.sum() + z.sum() + w.sum() + (c - x).sum() + (c / x).sum()).backward()
    expected = c + 1 + M.sum(axis=0) - 1 - c / x.data ** 2
    np.testing.assert_allclose(x.grad.data, expected)


def test_python_numbers_keep_the_tensor_dtype():
    x = ad.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    for y in (2 * x, x * 2.5, 1.0 / x, x - 1, 2.0 ** x, x ** 2, x.mean()):
        assert y.dtype == np.float32
    (x * 3).sum().backward()
    assert x.grad.dtype == np.float32


# ------------------------------------------------------------ ad.grad


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x = leaf([1.0, 2.0])
    w = leaf([3.0, -1.0])
    y = (x * w).sum()
    result = ad.grad(y, x, retain_graph=True)
    assert isinstance(result, tuple) and len(result) == 1
    np.testing.assert_allclose(result[0].data, w.data)
    gx, gw = ad.grad(y, [x, w])
    np.testing.assert_allclose(gw.data, x.data)
    assert x.grad is None and w.grad is None
    assert gx.requires_grad is False and gx.grad_fn is None


def test_grad_with_respect_to_an_intermediate():
    x = leaf([0.5, 1.5])
    h = x * x
    y = h.sin().sum()
    gh, gx = ad.grad(y, [h, x])
    np.testing.assert_allclose(gh.data, np.cos(h.data))
    np.testing.assert_allclose(gx.data, np.cos(h.data) * 2 * x.data)
    assert h.grad is None and x.grad is None


def test_grad_of_several_outputs_that_depend_on_each_other():
    x = leaf([1.0, 2.0])
    y = x.sin()
    (g,) = ad.grad([y.sum(), (y * 2).sum()], x)  # the second output is computed from the first
    np.testing.assert_allclose(g.data, 3 * np.cos(x.data))
    (g,) = ad.grad([x, 2 * x], x, [ad.tensor([3.0, 4.0]), ad.tensor([1.0, 1.0])])
    np.testing.assert_allclose(g.data, [5.0, 6.0])  # an output may be the input itself


def test_grad_allow_unused():
    x = leaf([1.0])
    unused = leaf([2.0])
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        ad.grad(y, [x, unused], retain_graph=True)
    gx, gu = ad.grad(y, [x, unused], allow_unused=True)
    assert gx.item() == 3.0 and gu is None


def test_grad_of_an_input_that_does_not_require_grad_fails():
    x = leaf([1.0])
    c = ad.tensor([2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        ad.grad((x * c).sum(), [x, c])


def test_grad_create_graph_gives_higher_derivatives():
    x = leaf([1.0, 2.0, -3.0])
    (g,) = ad.grad((x ** 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    assert g.requires_grad and g.grad_fn is not None
    (h,) = ad.grad(g.sum(), x, create_graph=True)
    np.testing.assert_allclose(h.data, 6 * x.data)  # d2/dx2 x^3 = 6x
    (t,) = ad.grad(h.sum(), x)
    np.testing.assert_allclose(t.data, [6.0, 6.0, 6.0])

    # also with x*x*x and through backward(create_graph=True)
    x2 = leaf(2.0)
    (x2 * x2 * x2).backward(create_graph=True)
    assert x2.grad.item() == pytest.approx(12.0)
    (h2,) = ad.grad(x2.grad, x2)
    assert h2.item() == pytest.approx(12.0)


def test_grad_without_create_graph_is_not_differentiable():
    x = leaf([1.0, 2.0])
    (g,) = ad.grad((x ** 3).sum(), x)
    assert g.requires_grad is False
    with pytest.raises(RuntimeError, match="does not require grad"):
        g.sum().backward()


# ------------------------------------------------------------ errors


class WrongCount(ad.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a.data * b.data

    @staticmethod
    def backward(ctx, g):
        return g  # one gradient for two inputs


class WrongShape(ad.Function):
    @staticmethod
    def forward(ctx, x):
        return x.data.sum()

    @staticmethod
    def backward(ctx, g):
        return ad.tensor(np.ones(2))  # the input has shape (3,)


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    with pytest.raises(RuntimeError) as info:
        y.backward()
    message = str(info.value)
    assert "(3,)" in message and "gradient" in message and "scalar" in message
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(3,\)"):
        y.backward(ad.tensor([1.0, 2.0]))


def test_backward_on_something_without_a_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (ad.tensor([1.0, 2.0]) * 2).sum().backward()


def test_a_backward_with_the_wrong_number_of_gradients_is_named():
    a, b = leaf([1.0]), leaf([2.0])
    y = WrongCount.apply(a, b)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    message = str(info.value)
    assert "WrongCount" in message and "1 gradient" in message and "2 input" in message


def test_a_gradient_of_the_wrong_shape_is_named():
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError) as info:
        WrongShape.apply(x).backward()
    message = str(info.value)
    assert "WrongShape" in message and "(2,)" in message and "(3,)" in message


def test_backward_twice_needs_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()

    x.grad = None
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * (np.exp(x.data) * (1 + x.data)))


def test_saved_tensors_after_free_mention_retain_graph():
    ctx = ad.Context((True,))
    ctx.save_for_backward(ad.tensor(1.0))
    ctx.free()
    with pytest.raises(RuntimeError, match="retain_graph"):
        ctx.saved_tensors


def test_requires_grad_on_integer_data_raises_type_error():
    with pytest.raises(TypeError, match="int64"):
        ad.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(TypeError, match="int32"):
        ad.Tensor(np.arange(3, dtype=np.int32), requires_grad=True)
    with pytest.raises(TypeError, match="bool"):
        ad.tensor([True, False]).requires_grad_()
    assert ad.tensor([1, 2], dtype=np.float64, requires_grad=True).requires_grad


def test_requires_grad_only_on_leaves_and_zero_only_off_graph():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="zero_"):
        x.zero_()


@pytest.mark.parametrize("logits, target, pattern", [
    (np.zeros((3, 4)), [0.0, 1.0, 2.0], "integer"),
    (np.zeros((3, 4)), [0, 1], r"shape \(2,\)"),
    (np.zeros((3, 4)), [0, 1, 4], r"\[0, 4\)"),
    (np.zeros((3, 4)), [0, -1, 2], r"\[0, 4\)"),
    (np.zeros(4), [0], r"\(N, C\)"),
])
def test_cross_entropy_rejects_bad_targets(logits, target, pattern):
    with pytest.raises(ValueError, match=pattern):
        ad.cross_entropy(ad.tensor(logits, requires_grad=True), target)


def test_matmul_with_a_scalar_is_an_error():
    with pytest.raises(ValueError, match="at least one dimension"):
        ad.tensor(2.0) @ ad.tensor([1.0, 2.0])


def test_reshape_to_the_wrong_size_is_an_error():
    with pytest.raises(ValueError, match="cannot reshape"):
        ad.tensor(np.zeros(6)).reshape(4, -1)


# ------------------------------------------------------------ the Function API


def test_save_for_backward_and_ctx_attributes():
    seen = {}

    class ScaledSquare(ad.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale  # a plain attribute for a non-tensor
            return scale * x.data ** 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            seen["saved"] = x
            return g * 2 * ctx.scale * x, None

    x = leaf([1.0, -2.0])
    ScaledSquare.apply(x, 3.0).sum().backward()
    assert seen["saved"] is x
    np.testing.assert_allclose(x.grad.data, 6 * x.data)
    assert ad.gradcheck(lambda t: ScaledSquare.apply(t, 3.0), x)


def test_needs_input_grad_lets_backward_skip_work():
    calls = []

    class Mul2(ad.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a.data * b.data

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            calls.append(ctx.needs_input_grad)
            ga = g * b if ctx.needs_input_grad[0] else None
            gb = g * a if ctx.needs_input_grad[1] else None
            return ga, gb

    a, b = leaf([1.0, 2.0]), ad.tensor([3.0, 4.0])
    y = Mul2.apply(a, b)
    y.sum().backward()
    assert calls == [(True, False)]
    np.testing.assert_allclose(a.grad.data, [3.0, 4.0])
    assert b.grad is None

    Mul2.apply(ad.tensor([1.0, 2.0]), leaf([5.0, 6.0])).sum().backward()
    assert calls[-1] == (False, True)

    # non-tensor arguments never need a gradient
    class AddConst(ad.Function):
        @staticmethod
        def forward(ctx, x, c):
            calls.append(ctx.needs_input_grad)
            return x.data + c

        @staticmethod
        def backward(ctx, g):
            return g, None

    AddConst.apply(leaf([1.0]), 2.0)
    assert calls[-1] == (True, False)


def test_forward_runs_with_recording_off():
    seen = {}

    class Probe(ad.Function):
        @staticmethod
        def forward(ctx, x):
            inner = x * 2 + x.exp()
            seen["enabled"] = ad.is_grad_enabled()
            seen["inner grad_fn"] = inner.grad_fn
            seen["inner requires_grad"] = inner.requires_grad
            return inner  # a Tensor result is fine too

        @staticmethod
        def backward(ctx, g):
            return g * 7

    x = leaf([1.0, 2.0])
    y = Probe.apply(x)
    assert seen["enabled"] is False
    assert seen["inner grad_fn"] is None and seen["inner requires_grad"] is False
    assert y.grad_fn is not None and y.grad_fn.function is Probe
    assert y.grad_fn.name == "ProbeBackward"
    np.testing.assert_allclose(y.data, 2 * x.data + np.exp(x.data))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [7.0, 7.0])  # the custom rule, not Mul/Exp's
    assert ad.is_grad_enabled()


def test_identity_function_does_not_clobber_its_input():
    class Identity(ad.Function):
        @staticmethod
        def forward(ctx, x):
            return x  # the input itself

        @staticmethod
        def backward(ctx, g):
            return g * 5  # recognisable

    a = leaf([1.0, 2.0])
    h = a * 3
    node = h.grad_fn
    y = Identity.apply(h)
    assert y is not h
    assert h.grad_fn is node  # the input keeps its own history
    assert y.grad_fn.function is Identity
    y.sum().backward()
    np.testing.assert_allclose(a.grad.data, [15.0, 15.0])

    # on a leaf: the leaf stays a leaf
    b = leaf([1.0])
    z = Identity.apply(b)
    assert b.is_leaf and b.grad_fn is None and z is not b
    z.backward(ad.tensor([1.0]))
    np.testing.assert_allclose(b.grad.data, [5.0])


def test_a_custom_function_with_a_jvp_rule_works_in_forward_mode():
    class Cube(ad.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.data ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x * x

        @staticmethod
        def jvp(ctx, tx):
            (x,) = ctx.saved_tensors
            return 3 * x * x * tx

    class NoJvp(ad.Function):
        @staticmethod
        def forward(ctx, x):
            return x.data

        @staticmethod
        def backward(ctx, g):
            return g

    x = ad.tensor([1.0, 2.0])
    out, t = ad.functional.jvp(Cube.apply, x, ad.tensor([1.0, 0.5]))
    np.testing.assert_allclose(out.data, [1.0, 8.0])
    np.testing.assert_allclose(t.data, [3.0, 6.0])
    with pytest.raises(NotImplementedError, match="jvp"):
        ad.functional.jvp(NoJvp.apply, x, ad.tensor([1.0, 0.5]))


def test_functional_input_checks():
    x = ad.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="ad.Tensor"):
        ad.functional.jvp(lambda t: t, np.array([1.0]), ad.tensor([1.0]))
    with pytest.raises(RuntimeError, match="shape"):
        ad.functional.jvp(lambda t: t * 2, x, ad.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(RuntimeError, match="omitted"):
        ad.functional.vjp(lambda t: t * 2, x)  # non-scalar output needs v
    with pytest.raises(RuntimeError, match="scalar"):
        ad.functional.hessian(lambda t: t * 2, x)
    with pytest.raises(ValueError, match="strategy"):
        ad.functional.jacobian(lambda t: t, x, strategy="sideways")


def test_backward_order_puts_consumers_first():
    from autodiff_ref.engine import backward_order

    x = leaf([1.0])
    a = x.exp()
    b = a * 2
    c = a + b
    d = c.sin()
    order = list(backward_order([d]))
    pos = {node: i for i, node in enumerate(order)}
    assert len(order) == 4  # exp, mul, add, sin: each node once
    for node in order:
        for source in node.next:
            if source in pos:
                assert pos[node] < pos[source]
    assert order[0] is d.grad_fn and order[-1] is a.grad_fn


def test_each_grad_owns_its_array():
    """Add hands one gradient to both inputs and backward(v) starts from the
    caller's v: writing into one .grad must not change another (or v)."""
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    h = a * 1.0
    h.retain_grad()
    v = ad.tensor([1.0, 2.0])
    (h + b).backward(v)
    a.grad.numpy()[0] = 100.0
    h.grad.numpy()[1] = -100.0
    np.testing.assert_array_equal(b.grad.data, [1.0, 2.0])
    np.testing.assert_array_equal(v.data, [1.0, 2.0])
    np.testing.assert_array_equal(a.grad.data, [100.0, 2.0])
    c = leaf([0.0, 0.0])
    c.backward(v)
    assert not np.shares_memory(c.grad.data, v.data)
    d = leaf(1.0)
    d.broadcast_to((2, 3)).backward(ad.tensor(np.ones((2, 3))))
    assert d.grad.item() == 6.0 and d.grad.data.flags.writeable


def test_constructors():
    assert ad.zeros(2, 3).shape == (2, 3) and ad.zeros((2, 3)).shape == (2, 3)
    assert ad.ones(4).data.sum() == 4.0 and ad.zeros(()).shape == ()
    assert ad.zeros(2, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(ad.randn(3, seed=0).data, ad.randn(3, seed=0).data)
    assert ad.randn(2, 2, requires_grad=True).requires_grad
    x = leaf([1.0, 2.0])
    assert ad.ones_like(x, requires_grad=True).requires_grad
    np.testing.assert_array_equal(ad.zeros_like(x).data, [0.0, 0.0])
    y = ad.tensor(x)  # always a copy, never connected
    y.data[0] = 5.0
    assert x.data[0] == 1.0 and y.grad_fn is None and not y.requires_grad
    parts = list(x)  # iterating indexes: gradients flow back
    assert len(parts) == 2 and parts[0].shape == ()
    (parts[0] * 3 + parts[1]).backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 1.0])


@pytest.mark.parametrize("call", [
    lambda f, x: ad.functional.vjp(f, x, strict=True),
    lambda f, x: ad.functional.jvp(f, x, strict=True),
    lambda f, x: ad.functional.jacobian(f, x, strict=True),
    lambda f, x: ad.functional.jacobian(f, x, vectorize=True),
    lambda f, x: ad.functional.hessian(lambda t: (t * t).sum(), x, vectorize=True),
])
def test_functional_refuses_options_it_does_not_implement(call):
    with pytest.raises(NotImplementedError, match="strict|vectorize"):
        call(lambda t: t * 2, ad.tensor([1.0, 2.0]))


def test_engine_imports_nothing_from_the_package():
    """The walk knows nodes and tensors only by their attributes: the only
    import circle in autodiff_ref is tensor <-> ops."""
    import ast
    from pathlib import Path

    source = (Path(ad.__file__).parent / "engine.py").read_text()
    relative = [n for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert relative == []


def test_backward_rules_learn_create_graph_from_ctx():
    seen = []

    class Probe(ad.Function):
        @staticmethod
        def forward(ctx, x):
            return x.data * 3

        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.create_graph)
            return g * 3

    x = ad.tensor([1.0], requires_grad=True)
    Probe.apply(x).sum().backward()
    ad.grad(Probe.apply(x).sum(), x, create_graph=True)
    assert seen == [False, True]


def test_a_gradient_summed_from_nowhere_is_refused():
    """PyTorch issue #65244: a backward that returns a larger, broadcastable
    array for an input is not summed silently when the call did not broadcast."""
    class SumWrongShape(ad.Function):
        @staticmethod
        def forward(ctx, x):
            return x.data.sum()

        @staticmethod
        def backward(ctx, g):
            return g * ad.tensor(np.ones((4, 3)))  # should be (3,)

    x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"SumWrongShape.backward returned a gradient of "
                                           r"shape \(4, 3\) for input 0, which has shape \(3,\)"):
        SumWrongShape.apply(x).backward()


def test_a_gradient_shaped_like_the_broadcast_output_is_summed():
    class AddRow(ad.Function):
        @staticmethod
        def forward(ctx, x, b):
            return x.data + b.data

        @staticmethod
        def backward(ctx, g):
            return g, g  # b was broadcast over the rows: the engine sums

    x = ad.tensor(np.ones((2, 3)), requires_grad=True)
    b = ad.tensor(np.zeros((1, 3)), requires_grad=True)
    AddRow.apply(x, b).sum().backward()
    np.testing.assert_array_equal(b.grad.data, [[2.0, 2.0, 2.0]])
