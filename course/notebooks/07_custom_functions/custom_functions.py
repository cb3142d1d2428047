# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Custom functions
#
# Every operation of `autodiff_ref` (`+`, `exp`, `@`, `softmax`, ...) is a
# small class with two methods: a `forward` that computes the value and a
# `backward` that turns the gradient of the output into gradients of the
# inputs. The engine itself knows no calculus at all: it only records which
# of these classes was applied to what, and calls the `backward` methods in
# the right order (notebooks 03 and 04). The same extension point is open to
# you: subclass `ad.Function`, and your operation becomes a first-class
# citizen of the graph, exactly like `torch.autograd.Function` in PyTorch.
#
# Most of the time you never need this: compose built-in operations and the
# engine differentiates the composition for you. This notebook is about the
# cases where writing the derivative yourself is *better*:
#
# 1. the `Function` API: `forward(ctx, ...)`, `backward(ctx, grad_output)`,
#    `ctx.save_for_backward`, `ctx.saved_tensors`, `ctx.needs_input_grad`,
#    `apply`, and the checks the engine runs on what `backward` returns;
# 2. a `backward` written with Tensor operations can itself be
#    differentiated (second derivatives, `ad.gradgradcheck`); one written
#    with raw NumPy cannot;
# 3. the situations where a custom Function is the right tool: a rule in
#    terms of the output (sigmoid, normalising a vector), a fused and
#    numerically stable operation (log-sum-exp), a non-differentiable
#    operation with a gradient you choose (straight-through rounding and
#    gradient clipping, used to train a model with quantised weights), an
#    operation of several inputs that skips the gradients nobody needs, and
#    recomputing instead of saving (gradient checkpointing).
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are six exercises (17 points), each asking for one or
# more classes that subclass `ad.Function`, and one written answer (2
# points, graded by hand). Replace each `raise NotImplementedError()` with
# your code, then run the test cell right below. The tests check your
# classes with `ad.gradcheck` (and `ad.gradgradcheck` where the exercise
# says so) and compare them with the built-in operations; when the notebook
# is graded, hidden tests repeat this on fresh random inputs. Your answers
# may use NumPy (for instance on `x.data` in `forward`) and, from the
# engine, `ad.Function`, `ad.Tensor`, `ad.tensor` and `ad.no_grad` (and,
# where an exercise says so, `ad.enable_grad` and `ad.grad`). Every other
# cell runs without your code.
#
# **Run All stops at the first unfinished exercise**: its test cell raises an
# error, and Jupyter does not run the cells after it. While you work, run the
# cells one by one (or use *Run All Above* on the cell you are working on),
# and do the exercises in order.
#
# Symbols follow the course's [notation card](../notation.md): $\bar v =
# \partial L/\partial v$ is the adjoint (the upstream gradient) of $v$, and
# a gradient has the shape of what it is the gradient of.

# %%
# %matplotlib inline
import time

import numpy as np
import matplotlib.pyplot as plt
import autodiff_ref as ad
from autodiff_ref import grading
from autodiff_ref.engine import backward_order

# %% [markdown]
# ## 1. The `Function` API
#
# Think of one operation $y = f(x)$ inside a long computation that ends in a
# scalar loss $L$. During the backward pass the engine arrives at $y$ with the
# **upstream gradient** $\bar y = \partial L / \partial y$ (an array of $y$'s
# shape) and needs $\bar x = \partial L / \partial x$. By the chain rule this
# is a vector-Jacobian product,
#
# $$
# \bar x_j \;=\; \sum_i \bar y_i \,\frac{\partial y_i}{\partial x_j},
# \qquad\text{for an element-wise } f:\quad \bar x = \bar y \odot f'(x).
# $$
#
# A `Function` supplies exactly these two pieces:
#
# | piece | what it does |
# |---|---|
# | `forward(ctx, *args)` | computes the value; `args` are the arguments given to `apply`, tensors and plain Python values (an axis, a constant) alike |
# | `ctx.save_for_backward(*tensors)` | (in `forward`) keeps the tensors `backward` will need |
# | `ctx.saved_tensors` | (in `backward`) gives them back, as a tuple |
# | `ctx.something = value` | keeps any other fact (a shape, a constant) as a plain attribute |
# | `backward(ctx, grad_output)` | gets $\bar y$ and returns **one gradient per argument of `forward`**, in the same order, `None` for an argument that has no gradient (a non-tensor, or a tensor that needs none) |
# | `ctx.needs_input_grad` | a tuple of booleans, one per argument: does that argument need a gradient at all? |
# | `MyFunction.apply(*args)` | what you call; never call `forward` yourself |
#
# `apply` does three things: it creates a fresh `ctx` and runs `forward`
# **with recording switched off** (whatever `forward` computes leaves no
# trace in the graph); it wraps the result in a Tensor if `forward` returned
# a NumPy array; and, if some input requires a gradient, it records one node
# (`y.grad_fn`) holding the Function and its `ctx`. During `backward()` the engine calls your `backward` with
# that same `ctx`, checks the number and the shapes of the gradients it
# returns, and sums away broadcasting (an input of shape `(3,)` that was
# broadcast to `(2, 3)` gets its gradient summed back to `(3,)`). Forward and
# backward are both `@staticmethod`s: all per-call state lives in `ctx`.
#
# **The classic first example.** $y = x^2$ has $\bar x = \bar y \cdot 2x$.
# At $x = 2$: $y = 4$ and $dy/dx = 4$.

# %%
class Square(ad.Function):
    @staticmethod
    def forward(ctx, x):
        print(f"  inside forward: x is a {type(x).__name__}, recording on? "
              f"{ad.is_grad_enabled()}")
        ctx.save_for_backward(x)  # backward needs x
        return x.data ** 2  # a NumPy array: apply wraps it in a Tensor

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 2 * x  # one gradient for the one input


x = ad.tensor(2.0, requires_grad=True)
y = Square.apply(x)
print("y =", y)
print("the recorded node:", y.grad_fn, " saved:", y.grad_fn.ctx.saved_tensors,
      " needs_input_grad:", y.grad_fn.ctx.needs_input_grad)
y.backward()
print("dy/dx =", x.grad)
assert y.item() == 4.0 and x.grad.item() == 4.0

# %% [markdown]
# Note the three facts the printout shows: `forward` receives Tensors (read
# their values as `x.data`, a NumPy array) with recording off, so it may
# compute with NumPy or with Tensor operations as it likes; the node is named
# after the class (`SquareBackward`); and the context remembers what was
# saved and which inputs need gradients.
#
# The engine checks what `backward` returns and says what is wrong. The next
# cell makes two classic mistakes on purpose: forgetting the `None` for a
# non-tensor argument, and returning a gradient of the wrong shape.

# %%
class Scale(ad.Function):
    """y = c * x for a plain number c, with a backward that forgets c's None."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c  # not a tensor: a plain attribute
        return c * x.data

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.c  # should be: return grad_output * ctx.c, None


class SumAll(ad.Function):
    """y = sum(x), with a backward that forgets to broadcast back to x's shape."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.data.sum()

    @staticmethod
    def backward(ctx, grad_output):
        return np.ones(3)  # should be: grad_output * np.ones(ctx.shape)


for make in [lambda: Scale.apply(ad.tensor([1.0, 2.0], requires_grad=True), 3.0).sum(),
             lambda: SumAll.apply(ad.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True))]:
    try:
        make().backward()
    except RuntimeError as error:
        print("RuntimeError:", error, "\n")

# %% [markdown]
# > **Common mistake: a gradient of the wrong shape that happens to
# > broadcast.** The engine must accept a gradient of the *output's* shape
# > for an input that the call broadcast (section 7 relies on it: `MulAdd` may
# > return $\bar f\,y$ of shape `(2, 3)` for an `x` of shape `(3,)`), and it
# > sums the broadcast axes away. PyTorch goes further and sums *any* array
# > that could broadcast back to the input's shape, so a backward that returns,
# > for an input of shape `(3,)` of a sum, an array of shape `(4, 3)` built by
# > accident is silently summed into a gradient four times too large
# > ([pytorch/pytorch#65244](https://github.com/pytorch/pytorch/issues/65244):
# > "expected, because of broadcasting; gradcheck catches it"). Nothing
# > crashes, the loss still goes down a little, and the wrong gradient can
# > cost days. `autodiff_ref` accepts extra axes only where the call's own
# > output has them (a sum's output is a scalar: it has none), so the same
# > mistake stops backward with an error that names the Function and the
# > shapes. A gradient of the right shape with wrong values is a different
# > story: only `ad.gradcheck` finds that, as the next cells show.

# %%
class SumWrongShape(ad.Function):
    """y = sum(x), whose backward returns a (4, 3) array for an x of shape (3,)."""

    @staticmethod
    def forward(ctx, x):
        return x.data.sum()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * np.ones((4, 3))  # should be: grad_output * np.ones(3)


x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
try:
    SumWrongShape.apply(x).backward()
except RuntimeError as error:
    print("backward refused the (4, 3) gradient:\n ", error)

# %% [markdown]
# A new backward rule is checked the way notebook 01 taught: against central
# finite differences, with `ad.gradcheck(fn, inputs)` in float64. It builds
# the whole Jacobian both ways and raises `ad.GradcheckError` naming the
# first entry that disagrees; it returns `True` when all agree. (From here
# on we use `QuietSquare`, the same class without the print: gradcheck calls
# `forward` twice per input element.)

# %%
class QuietSquare(ad.Function):
    """Square without the print."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 2

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 2 * x


class WrongSquare(QuietSquare):
    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x  # forgot the 2


rng = np.random.default_rng(0)
print("gradcheck(QuietSquare):", ad.gradcheck(QuietSquare.apply,
                                              ad.tensor(rng.standard_normal(3), requires_grad=True)))
try:
    ad.gradcheck(WrongSquare.apply, ad.tensor([1.0, -2.0], requires_grad=True))
except ad.GradcheckError as error:
    print("gradcheck(WrongSquare) raised GradcheckError:", str(error).splitlines()[0])

# %% [markdown]
# ## 2. A backward that can be differentiated again
#
# When you call `backward(create_graph=True)` or `ad.grad(...,
# create_graph=True)`, the engine runs every `backward` **with recording
# on**. If a `backward` computes its result with Tensor operations on
# `grad_output` and on the saved tensors, those operations are recorded like
# any others, and the gradient is itself a tensor in a graph: you can
# differentiate it again (Hessian-vector products, gradient penalties,
# meta-learning). For $y = x^2$: $dy/dx = 2x$ and $d^2y/dx^2 = 2$.

# %%
x = ad.tensor(2.0, requires_grad=True)
(dy_dx,) = ad.grad(QuietSquare.apply(x), x, create_graph=True)
(d2y_dx2,) = ad.grad(dy_dx, x)
print(f"dy/dx = {dy_dx.item()} (a tensor with grad_fn {dy_dx.grad_fn}),  d2y/dx2 = {d2y_dx2.item()}")
assert dy_dx.item() == 4.0 and d2y_dx2.item() == 2.0

# %% [markdown]
# `ad.gradgradcheck(fn, inputs)` checks second derivatives the same way
# gradcheck checks first ones: it treats "inputs and upstream gradient
# $\mapsto$ gradient" as a function and gradchecks *that*.
#
# A `backward` that computes with raw NumPy (`grad_output.data * 2 *
# x.data`) gives the right first derivative, but NumPy records nothing: the
# result is a plain array, cut off from the graph. A silent second derivative
# of 0 would be the worst outcome, so the engine marks such a gradient and
# raises a clear error if anyone tries to differentiate through it:

# %%
class NumpySquare(ad.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.data ** 2

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output.data * 2 * x.data  # NumPy: right value, but no graph


inputs = ad.tensor([1.0, -2.0, 0.5], requires_grad=True)
print("gradcheck(QuietSquare):    ", ad.gradcheck(QuietSquare.apply, inputs))
print("gradgradcheck(QuietSquare):", ad.gradgradcheck(QuietSquare.apply, inputs))
print("gradcheck(NumpySquare):    ", ad.gradcheck(NumpySquare.apply, inputs))
try:
    ad.gradgradcheck(NumpySquare.apply, inputs)
except RuntimeError as error:
    print("gradgradcheck(NumpySquare) raised RuntimeError:\n ", error)

# %% [markdown]
# So the rule of thumb: **compute in `forward` with whatever is fastest
# (NumPy is fine, recording is off anyway); write `backward` with Tensor
# operations on `grad_output` and `ctx.saved_tensors`.** One subtlety
# matters when you save the *output*: save the very Tensor object that
# `forward` returns (`out = ad.Tensor(...)`, `ctx.save_for_backward(out)`,
# `return out`). `apply` then turns that same object into the recorded
# output, connected to `x`, so a second derivative sees that the saved value
# depends on `x`. If you save a separate copy, the copy is a constant and the
# second derivative silently misses the path through it (gradgradcheck
# catches it). The built-in `exp`, `tanh` and `sigmoid` do exactly this.
#
# ## 3. When is a custom Function the right tool?
#
# Composing built-in operations is always correct in exact arithmetic, so a
# custom Function must buy something. Five things it can buy:
#
# | situation | why not compose built-ins? | example |
# |---|---|---|
# | the derivative is simplest in terms of the **output** | a composition saves every intermediate it needs; one node can save just the output | $\exp' = \exp$, $\tanh' = 1 - \tanh^2$, sigmoid and normalisation (Exercises 1 and 2) |
# | a **fused, numerically stable** operation | intermediate values overflow (`exp(1000) = inf`) even when the result is a normal number, and the gradient becomes `nan` | log-sum-exp, softmax-cross-entropy |
# | a **non-differentiable** operation with a gradient you **choose** | the true derivative is 0 almost everywhere (rounding) or is not the one you want | straight-through rounding, gradient clipping |
# | **several inputs** where some often need no gradient | a fused rule can skip the gradients nobody asked for (`ctx.needs_input_grad`) and save the intermediates of the composition | $x y + z$, a linear layer $x W^\top + b$ |
# | **memory**: recompute rather than save | a composition keeps every intermediate alive until backward | gradient checkpointing |
#
# The rest of the notebook takes them one at a time, each with an exercise.
# The tests of the exercises use the helpers of the next cell: `_call` and
# `_check` turn an error inside your class into a failing test that says
# where it happened, the others compute expected values or check what a
# function returned. You do not need to read them.

# %%
import itertools


def _call(what, fn):
    """Run fn(); an exception from the student's Function becomes a GradingError."""
    try:
        return fn()
    except (NotImplementedError, grading.GradingError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise grading.GradingError(f"{what} raised {type(exc).__name__}: {exc}") from None


def _check(what, fn, inputs, second=False):
    """ad.gradcheck (second=False) or ad.gradgradcheck of fn at inputs, as a GradingError."""
    name = "ad.gradgradcheck" if second else "ad.gradcheck"
    try:
        (ad.gradgradcheck if second else ad.gradcheck)(fn, inputs)
    except NotImplementedError:
        raise
    except ad.GradcheckError as exc:
        raise grading.GradingError(f"{name} of {what} failed: "
                                   f"{str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001
        raise grading.GradingError(f"{name} of {what} raised {type(exc).__name__}: "
                                   f"{exc}") from None


def _normalize_ad(x):
    return x / (x * x).sum(axis=-1, keepdims=True).sqrt()


def _needs_check(shapes, rng):
    """Call MulAdd.backward directly for every combination of inputs needing a gradient."""
    g = ad.tensor(rng.standard_normal(np.broadcast_shapes(*shapes)))
    for needs in itertools.product([False, True], repeat=3):
        if not any(needs):
            continue
        values = [rng.standard_normal(s) for s in shapes]
        inputs = [ad.tensor(v, requires_grad=n) for v, n in zip(values, needs)]
        out = _call(f"MulAdd.apply for shapes {shapes}", lambda: MulAdd.apply(*inputs))
        if tuple(out.grad_fn.ctx.needs_input_grad) != needs:
            raise RuntimeError("a bug in the test, not in your code")
        with ad.no_grad():
            grads = _call(f"MulAdd.backward with ctx.needs_input_grad = {needs}",
                          lambda: MulAdd.backward(out.grad_fn.ctx, g))
        if not isinstance(grads, tuple) or len(grads) != 3:
            raise grading.GradingError("MulAdd.backward should return a tuple of three "
                                       "values, one per input (x, y, z).")
        expected = [g.data * values[1], g.data * values[0], g.data]
        for label, need, got, exp in zip("xyz", needs, grads, expected):
            if not need and got is not None:
                raise grading.GradingError(
                    f"with ctx.needs_input_grad = {needs}, MulAdd.backward returned a gradient "
                    f"for {label}, which needs none: return None for it and skip the work.")
            if need and got is None:
                raise grading.GradingError(
                    f"with ctx.needs_input_grad = {needs}, MulAdd.backward returned None for "
                    f"{label}, which needs a gradient.")
            if need:
                grading.assert_close(got, exp, rtol=1e-12,
                                     name=f"the gradient for {label} returned by "
                                          f"MulAdd.backward (needs_input_grad = {needs})")


class _Counted:
    """block(t) = tanh(2 t) * t + sin(t), counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, t):
        self.calls += 1
        return ad.tanh(2.0 * t) * t + ad.sin(t)


def _check_checkpoint(values, upstream, what):
    block, x, ref = _Counted(), *(ad.tensor(values.copy(), requires_grad=True) for _ in "xr")
    y = _call(f"Checkpoint.apply(x, block) for {what}", lambda: Checkpoint.apply(x, block))
    saved = y.grad_fn.ctx.saved_tensors
    if len(saved) != 1 or saved[0] is not x:
        raise grading.GradingError(f"Checkpoint.forward saved {len(saved)} tensor(s); it should "
                                   "save exactly one, its input x.")
    _call("backward", lambda: y.backward(ad.tensor(upstream)))
    expected = block(ref)
    expected.backward(ad.tensor(upstream))
    grading.assert_close(y, expected.data, rtol=1e-13, name=f"Checkpoint.apply(x, block) for {what}")
    grading.assert_close(x.grad, ref.grad.data, rtol=1e-10, atol=1e-13,
                         name=f"x.grad through Checkpoint for {what}, vs block composed directly")
    if block.calls != 3:
        raise grading.GradingError(f"block was called {block.calls - 1} time(s) by Checkpoint "
                                   "for one forward and one backward; expected 2 (once each).")


def _fit_result(q, losses, target, steps, what):
    """Check what fit_quantized returned: q on the target, the loss 0 at the end."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.shape != (steps,):
        raise grading.GradingError(f"{what} returned losses of shape {losses.shape}; expected "
                                   f"({steps},), one loss per step.")
    if not np.all(np.isfinite(losses)) or losses[-1] > losses[0]:
        raise grading.GradingError(f"{what} diverged (losses {losses[:4].round(3).tolist()} "
                                   "...): is the gradient clipped by ClipGrad before the update?")
    if np.all(np.asarray(q) == 0) and np.any(np.asarray(target) != 0):
        raise grading.GradingError(f"{what} never moved the weights from 0: does the gradient "
                                   "reach w (RoundSTE passes it straight through)?")
    grading.assert_close(q, target, rtol=0, atol=1e-12, name=f"the quantised weights q of {what}")
    grading.assert_close(losses[-1], 0.0, rtol=0, atol=1e-20, name=f"the last loss of {what}")


# %% [markdown]
# ## 4. Saving the output instead of the input: sigmoid
#
# The logistic sigmoid is
#
# $$
# \sigma(x) = \frac{1}{1 + e^{-x}} .
# $$
#
# **Derive its backward rule yourself** (Exercise 1), in a form that needs
# only the **output** $s = \sigma(x)$: differentiate $\sigma$ with the chain
# rule (notebook 06 gave $\sigma'(x) = e^{-x}/(1 + e^{-x})^2$), then write
# $e^{-x}$ in terms of $s$ (solve $s = 1/(1 + e^{-x})$ for $e^{-x}$) and
# simplify until no $x$ and no exponential is left. Then no exponential has
# to be recomputed in backward, and $x$ itself is not needed at all.
# **Worked numbers** to check your formula: $\sigma(0) = 0.5$ with
# $\sigma'(0) = 0.25$; $\sigma(1) = 0.731059$ with $\sigma'(1) = 0.196612$.
#
# Why does saving the output matter? The output is kept alive anyway: the
# next layer uses it (and usually saves it for *its* backward). A node that
# saves only its output costs no extra memory; saving the input as well
# would keep a second array alive. And the composed formula
# `1 / (1 + exp(-x))` records four nodes that save two arrays between them,
# as the next cell counts for a vector of 1000 numbers.

# %%
def graph_size(y):
    """(number of recorded nodes, number of floats their contexts save) for y's graph."""
    nodes = list(backward_order([y]))
    floats = sum(t.size for n in nodes for t in n.ctx.saved_tensors if isinstance(t, ad.Tensor))
    return len(nodes), floats


x = ad.tensor(np.random.default_rng(1).standard_normal(1000), requires_grad=True)
composed = 1 / (1 + ad.exp(-x))
builtin = ad.sigmoid(x)
for label, y in [("1 / (1 + exp(-x))", composed), ("ad.sigmoid(x)", builtin)]:
    n_nodes, n_floats = graph_size(y)
    print(f"{label:18s}: {n_nodes} node(s), {n_floats:5d} saved floats, "
          f"nodes {[n.name for n in list(backward_order([y]))]}")

# %% [markdown]
# **Computing $\sigma$ without overflow.** For $x = -1000$, $e^{-x} = e^{1000}$
# overflows to `inf`. The result $1/(1 + \infty) = 0$ happens to be right,
# but NumPy warns, and the same trick fails in other formulas. A clean way
# only ever exponentiates non-positive numbers: with $e = e^{-|x|} \in (0, 1]$,
#
# $$
# \sigma(x) = \frac{1}{1 + e} \ \text{ for } x \ge 0, \qquad
# \sigma(x) = \frac{e}{1 + e} \ \text{ for } x < 0
# $$
#
# (multiply numerator and denominator of $\frac{1}{1 + e^{-x}}$ by $e^{x}$
# for the second case). `np.where(condition, a, b)` picks between two arrays
# element by element.
#
# ### Exercise 1 (2 points): a sigmoid that saves its output
#
# Write the class `Sigmoid`. In `forward`, compute $s = \sigma(x)$ from
# exponentials with NumPy on `x.data` (the built-in `sigmoid` and `tanh` are
# off limits here), wrap it as `out = ad.Tensor(s)`, save **only** `out`
# with `ctx.save_for_backward(out)` and return that same `out`. In
# `backward`, compute the gradient with the rule you derived, from the saved
# output, with Tensor operations, so that it can be differentiated again:
# the test runs
# `ad.gradcheck` and `ad.gradgradcheck`, and inspects what your `forward`
# saved (`y.grad_fn.ctx.saved_tensors`).

# %% solution="sigmoid_function" allow="Function,tensor,Tensor,no_grad" deny="sigmoid,tanh"
class Sigmoid(ad.Function):
    """The logistic sigmoid, saving its output for backward.

    Sigmoid.apply(x): x is a float64 ad.Tensor of any shape; returns
    sigma(x) = 1 / (1 + exp(-x)) element-wise, of x's shape, finite even for
    x = +-1000. forward saves exactly one tensor, the output it returns.
    backward returns the gradient for x, computed from that saved output
    (not from x) with Tensor operations, so that it is differentiable again.
    """

    @staticmethod
    def forward(ctx, x):
        ### BEGIN SOLUTION
        e = np.exp(-np.abs(x.data))  # in (0, 1]: never overflows
        out = ad.Tensor(np.where(x.data >= 0, 1 / (1 + e), e / (1 + e)))
        ctx.save_for_backward(out)
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (out,) = ctx.saved_tensors
        return grad_output * out * (1 - out)
        ### END SOLUTION


# %% test="test_sigmoid" points=2
with grading.exercise(1, "Sigmoid"):
    # sigma(0) = 0.5 and sigma(1) = 0.731059
    x = ad.tensor([0.0, 1.0], requires_grad=True)
    y = _call("Sigmoid.apply(x) for x = [0.0, 1.0]", lambda: Sigmoid.apply(x))
    grading.assert_close(y, [0.5, 0.7310585786300049], rtol=1e-12,
                         name="Sigmoid.apply(x) for x = [0.0, 1.0]")
    saved = y.grad_fn.ctx.saved_tensors
    if len(saved) != 1 or not isinstance(saved[0], ad.Tensor):
        raise grading.GradingError(
            f"Sigmoid.forward saved {len(saved)} object(s) "
            f"({', '.join(type(s).__name__ for s in saved) or 'nothing'}) with "
            "ctx.save_for_backward; it should save exactly one ad.Tensor: the output sigma(x).")
    if saved[0] is x or np.array_equal(np.asarray(saved[0].data), x.data):
        raise grading.GradingError("Sigmoid.forward saved its input x: save the output "
                                   "s = sigma(x) instead, and write the derivative in terms of s.")
    grading.assert_close(saved[0], y.data, rtol=1e-12,
                         name="the tensor Sigmoid.forward saved (it should be the output sigma(x))")
    # backward: sigma'(0) = 0.25 and sigma'(1) = 0.196612 times the upstream gradient [2.0, -1.0]
    _call("y.backward(ad.tensor([2.0, -1.0])) for y = Sigmoid.apply(x)",
          lambda: y.backward(ad.tensor([2.0, -1.0])))
    grading.assert_close(x.grad, [0.5, -0.19661193324148185], rtol=1e-10,
                         without_upstream=[0.25, 0.19661193324148185],
                         name="x.grad for x = [0.0, 1.0] and the upstream gradient [2.0, -1.0]")
    # first and second derivatives against finite differences
    x = ad.tensor(np.random.default_rng(0).uniform(-4, 4, (3, 4)), requires_grad=True)
    _check("Sigmoid.apply on a random (3, 4) input", Sigmoid.apply, (x,))
    y = Sigmoid.apply(x)
    if y.grad_fn.ctx.saved_tensors[0] is not y:
        raise grading.GradingError(
            "Sigmoid.forward saved a copy of its output, not the tensor it returns. Write "
            "out = ad.Tensor(...); ctx.save_for_backward(out); return out: a copy is a "
            "constant, so a second derivative misses that s depends on x.")
    _check("Sigmoid.apply on a random (3, 4) input (is backward written with Tensor operations?)",
           Sigmoid.apply, (x,), second=True)
grading.passed("Sigmoid")
### BEGIN HIDDEN TESTS
# stable at +-1000: sigma = 0 and 1, gradient 0, no NaN
x = ad.tensor([-1000.0, 1000.0], requires_grad=True)
y = _call("Sigmoid.apply(x) for x = [-1000.0, 1000.0]", lambda: Sigmoid.apply(x))
grading.assert_close(y, [0.0, 1.0], rtol=0, atol=1e-12, name="Sigmoid.apply([-1000.0, 1000.0])")
_call("backward at x = [-1000.0, 1000.0]", lambda: y.backward(ad.tensor([1.0, 1.0])))
grading.assert_close(x.grad, [0.0, 0.0], rtol=0, atol=1e-12,
                     name="x.grad for x = [-1000.0, 1000.0] (the slope is 0 there)")
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(1, 7)),), (2, 5), (2, 3, 4)]:
    _x = _rng.uniform(-8, 8, _shape)
    _x.flat[0] = _rng.choice([-1000.0, 1000.0])
    _xt = ad.tensor(_x.copy(), requires_grad=True)
    _y = _call(f"Sigmoid.apply(x) for x of shape {_shape}", lambda: Sigmoid.apply(_xt))
    _ref = ad.tensor(_x.copy(), requires_grad=True)
    _yr = ad.sigmoid(_ref)
    grading.assert_close(_y, _yr.data, rtol=1e-10, atol=1e-15,
                         name=f"Sigmoid.apply(x) for random x of shape {_shape} vs ad.sigmoid")
    if not np.array_equal(_xt.data, _x):
        raise grading.GradingError("Sigmoid changed its input x.data in place.")
    _saved = _y.grad_fn.ctx.saved_tensors
    if len(_saved) != 1 or _saved[0] is not _y:
        raise grading.GradingError(f"for x of shape {_shape}, Sigmoid.forward should save "
                                   "exactly one tensor, the output it returns.")
    _g = _rng.standard_normal(_shape)
    _call("backward", lambda: _y.backward(ad.tensor(_g)))
    _yr.backward(ad.tensor(_g))
    grading.assert_close(_xt.grad, _ref.grad.data, rtol=1e-9, atol=1e-14,
                         without_upstream=_yr.data * (1 - _yr.data),
                         name=f"x.grad for a random upstream gradient, x of shape {_shape}, "
                              "vs ad.sigmoid")
# inside a larger computation: L = sum(w * sigma(a x + b))
_a, _b = _rng.uniform(0.5, 2), _rng.uniform(-1, 1)
_x = _rng.uniform(-3, 3, (4, 3))
_w = _rng.standard_normal((4, 3))
_xt, _ref = ad.tensor(_x.copy(), requires_grad=True), ad.tensor(_x.copy(), requires_grad=True)
_call("a chain through Sigmoid", lambda: (Sigmoid.apply(_xt * _a + _b) * _w).sum().backward())
(ad.sigmoid(_ref * _a + _b) * _w).sum().backward()
grading.assert_close(_xt.grad, _ref.grad.data, rtol=1e-9, atol=1e-14,
                     name="the gradient of sum(w * Sigmoid(a x + b)) vs ad.sigmoid")
_x = ad.tensor(_rng.uniform(-5, 5, (2, 3)), requires_grad=True)
_check("Sigmoid.apply on a random (2, 3) input", Sigmoid.apply, (_x,))
_check("Sigmoid.apply on a random (2, 3) input", Sigmoid.apply, (_x,), second=True)
### END HIDDEN TESTS

# %% [markdown]
# With your `Sigmoid` done, the graph of the 1000-number example shrinks to
# one node that saves one array, and the gradients agree with the composed
# formula:

# %%
try:
    x = ad.tensor(np.random.default_rng(1).standard_normal(1000), requires_grad=True)
    y = Sigmoid.apply(x)
    n_nodes, n_floats = graph_size(y)
    print(f"Sigmoid.apply(x): {n_nodes} node, {n_floats} saved floats")
    y.sum().backward()
    x2 = ad.tensor(x.data, requires_grad=True)
    (1 / (1 + ad.exp(-x2))).sum().backward()
    print("largest difference from the composed gradient:",
          np.max(np.abs(x.grad.data - x2.grad.data)))
except NotImplementedError:
    print("Finish Exercise 1 (Sigmoid) to see your sigmoid's graph.")

# %% [markdown]
# ### 4.2 Another rule in terms of the output: normalising a vector
#
# Cosine similarities, contrastive losses and weight normalisation all
# divide a vector by its length: for each row $x \in \mathbb{R}^n$ (the last
# axis of an array),
#
# $$
# y = \frac{x}{r}, \qquad r = \lVert x \rVert = \sqrt{\textstyle\sum_j x_j^2} .
# $$
#
# Composed from built-ins (`x * x`, `sum`, `sqrt`, `/`), that is four nodes
# and three saved intermediates. One node can do with much less, and its
# backward rule is short once you have derived it. **The recipe:**
# (1) differentiate $r$: $\partial r/\partial x_j$ is a component of $y$;
# (2) with the quotient rule, $\partial y_i/\partial x_j$ for $i = j$ and for
# $i \ne j$ (an identity matrix and an outer product); (3) the backward rule
# is the vector-Jacobian product $\bar x_j = \sum_i \bar y_i\, \partial
# y_i/\partial x_j$: write it with $\bar y$, $y$, $r$ and one dot product
# $y \cdot \bar y$, without building the $n \times n$ Jacobian.
#
# **Worked numbers.** $x = (3, 4)$: $r = 5$ and $y = (0.6, 0.8)$. For the
# upstream gradient $\bar y = (1, 0)$ the answer is $\bar x = (0.128,
# -0.096)$. Notice $\bar x \cdot x = 0$: scaling $x$ does not change $y$, so
# the gradient has no component along $x$. Your formula should show why.
#
# **For the second derivative**, everything `backward` computes with must
# be connected to $x$ in the graph: the input `x` is, and so is the very
# output tensor `forward` returns (section 2), but a norm computed with
# NumPy in `forward` and saved as a new tensor is a constant. Get $r$ in
# `backward` from connected tensors (with a dot product of two of them, for
# instance).
#
# **Forward mode too.** An `ad.Function` may also define `jvp(ctx,
# x_tangent)`, the forward-mode rule of notebook 03: it gets a tangent
# $\dot x$ (the direction in which $x$ moves) and returns $\dot y = J \dot x$,
# the Jacobian-*vector* product, using what `forward` saved.
# `ad.functional.jvp(f, x, v)` uses it. Derive it from the same Jacobian as
# your backward rule, and look at that Jacobian: what does its symmetry
# tell you about the two rules?
#
# ### Exercise 2 (3 points): normalising the rows, both modes

# %% solution="normalize_function" allow="Function,tensor,Tensor,no_grad"
class Normalize(ad.Function):
    """Each row of x divided by its Euclidean length, as one node.

    Normalize.apply(x): x is a float64 ad.Tensor of shape (..., n) with no
    row of zeros; returns x / ||x|| along the last axis (x's shape).
    backward returns the gradient for x (x's shape), computed with Tensor
    operations from tensors connected to x, so that ad.gradgradcheck passes.
    jvp (forward mode) gets the tangent of x (x's shape) and returns the
    tangent of the output (x's shape).
    """

    @staticmethod
    def forward(ctx, x):
        ### BEGIN SOLUTION
        norm = np.sqrt((x.data * x.data).sum(axis=-1, keepdims=True))
        out = ad.Tensor(x.data / norm)
        ctx.save_for_backward(x, out)
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        x, out = ctx.saved_tensors
        norm = (x * out).sum(axis=-1, keepdims=True)  # x . x / r = r, connected to x
        along = (out * grad_output).sum(axis=-1, keepdims=True)  # y . ybar per row
        return (grad_output - out * along) / norm
        ### END SOLUTION

    @staticmethod
    def jvp(ctx, x_tangent):
        ### BEGIN SOLUTION
        x, out = ctx.saved_tensors
        norm = (x * out).sum(axis=-1, keepdims=True)
        along = (out * x_tangent).sum(axis=-1, keepdims=True)
        return (x_tangent - out * along) / norm
        ### END SOLUTION


# %% test="test_normalize" points=3
with grading.exercise(2, "Normalize"):
    # x = (3, 4): y = (0.6, 0.8); the upstream gradient (1, 0) gives (0.128, -0.096)
    x = ad.tensor([3.0, 4.0], requires_grad=True)
    y = _call("Normalize.apply([3.0, 4.0])", lambda: Normalize.apply(x))
    grading.assert_close(y, [0.6, 0.8], rtol=1e-14, name="Normalize.apply([3.0, 4.0])")
    _call("backward", lambda: y.backward(ad.tensor([1.0, 0.0])))
    grading.assert_close(x.grad, [0.128, -0.096], rtol=1e-12,
                         name="x.grad for x = [3.0, 4.0] and the upstream gradient [1.0, 0.0]")
    x = ad.tensor(np.random.default_rng(2).standard_normal((3, 4)), requires_grad=True)
    _check("Normalize.apply on a random (3, 4) input", Normalize.apply, (x,))
    _check("Normalize.apply on a random (3, 4) input (is everything backward uses connected "
           "to x?)", Normalize.apply, (x,), second=True)
    # forward mode at x = (3, 4) in the direction (0, 1): the tangent (-0.096, 0.072)
    _tangent = _call("ad.functional.jvp(Normalize.apply, [3.0, 4.0], [0.0, 1.0])",
                     lambda: ad.functional.jvp(Normalize.apply, ad.tensor([3.0, 4.0]),
                                               ad.tensor([0.0, 1.0]))[1])
    grading.assert_close(_tangent, [-0.096, 0.072], rtol=1e-12,
                         name="the output tangent of Normalize at x = [3.0, 4.0] for the "
                              "input tangent [0.0, 1.0]")
grading.passed("Normalize")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(2, 7)),), (int(_rng.integers(2, 5)), 3), (2, 3, 4)]:
    _x = _rng.standard_normal(_shape) * _rng.uniform(0.1, 10)
    _xt, _ref = ad.tensor(_x.copy(), requires_grad=True), ad.tensor(_x.copy(), requires_grad=True)
    _y = _call(f"Normalize.apply(x) for x of shape {_shape}", lambda: Normalize.apply(_xt))
    _yr = _normalize_ad(_ref)
    grading.assert_close(_y, _yr.data, rtol=1e-12, atol=1e-15,
                         name=f"Normalize.apply(x) for random x of shape {_shape}")
    if not np.array_equal(_xt.data, _x):
        raise grading.GradingError("Normalize changed its input x.data in place.")
    _g = _rng.standard_normal(_shape)
    _call("backward", lambda: _y.backward(ad.tensor(_g)))
    _yr.backward(ad.tensor(_g))
    grading.assert_close(_xt.grad, _ref.grad.data, rtol=1e-9, atol=1e-12,
                         name=f"x.grad for a random upstream gradient, x of shape {_shape}, "
                              "vs x / sqrt(sum(x * x)) composed from built-ins")
    _check(f"Normalize.apply on a random input of shape {_shape}", Normalize.apply,
           (ad.tensor(_x, requires_grad=True),), second=True)
    _v = _rng.standard_normal(_shape)
    _tangent = _call("ad.functional.jvp(Normalize.apply, x, v)",
                     lambda: ad.functional.jvp(Normalize.apply, ad.tensor(_x), ad.tensor(_v))[1])
    grading.assert_close(_tangent, ad.functional.jvp(_normalize_ad, ad.tensor(_x),
                                                     ad.tensor(_v))[1].data,
                         rtol=1e-9, atol=1e-12,
                         name=f"the output tangent of Normalize (jvp) for random x and v of "
                              f"shape {_shape}, vs the composed built-ins")
_n_nodes, _n_floats = graph_size(Normalize.apply(ad.tensor(_rng.standard_normal((5, 4)),
                                                           requires_grad=True)))
if _n_nodes != 1 or _n_floats > 40:
    raise grading.GradingError(f"Normalize.apply recorded {_n_nodes} node(s) saving {_n_floats} "
                               "floats for a (5, 4) input; expected one node saving at most "
                               "two arrays of that size.")
### END HIDDEN TESTS

# %% [markdown]
# One node, and a rule whose structure you can read: $\bar x$ is $\bar y$
# with its component along $y$ removed (a projection onto the directions
# that change $y$), divided by the length $r$.
#
# ## 5. A fused, numerically stable operation: log-sum-exp
#
# The **log-sum-exp** of a vector $x \in \mathbb{R}^n$ is a smooth version of
# the maximum, and the denominator of every softmax and cross-entropy:
#
# $$
# \operatorname{lse}(x) = \log \sum_{j=1}^n e^{x_j} .
# $$
#
# Its gradient is yours to derive (Exercise 3): differentiate the logarithm
# and then the sum with respect to one $x_k$. You will recognise a function
# from notebook 06. Then rewrite the result so that it uses the output
# $\operatorname{lse}(x)$ and contains only exponentials of numbers $\le 0$
# (divide numerator and denominator by the same thing).
#
# Composed from built-ins, `log(exp(x).sum())` breaks for large inputs:
# $e^{1000}$ overflows to `inf`, the value becomes `inf` and the gradient
# `inf / inf = nan`, although $\operatorname{lse}(1000, 1000) = 1000 + \log 2$
# is a perfectly ordinary number. The cure is to shift by the maximum
# $m = \max_j x_j$ first:
#
# $$
# \operatorname{lse}(x) = m + \log \sum_j e^{x_j - m},
# $$
#
# exact in real arithmetic (factor $e^m$ out of the sum), and now every
# exponent is $\le 0$, the largest term is $e^0 = 1$, so the sum lies in
# $[1, n]$: no overflow, and no $\log 0$. Written the right way, the gradient
# is just as stable. One fused node computes both, saving $x$ and the
# output.
#
# **Worked numbers.** $\operatorname{lse}(1, 2, 3) = 3 + \log(e^{-2} + e^{-1}
# + 1) = 3.407606$, with gradient $(0.090031, 0.244728, 0.665241)$. $\operatorname{lse}(1000, 1000) = 1000.693147$ with
# gradient $(0.5, 0.5)$.

# %%
for values in ([1.0, 2.0, 3.0], [1000.0, 1000.0]):
    x = ad.tensor(values, requires_grad=True)
    with np.errstate(over="ignore", invalid="ignore"):
        y = ad.log(ad.exp(x).sum())
        y.backward()
    print(f"composed log(exp(x).sum()) at x = {values}: value {y.item()}, gradient {x.grad.data}")

x = np.array([1000.0, 1000.0])
m = x.max()
print("shifted by the maximum:", m + np.log(np.exp(x - m).sum()))

# %% [markdown]
# ### Exercise 3 (3 points): a stable, fused log-sum-exp
#
# Write the class `LogSumExp` such that `LogSumExp.apply(x)` reduces the
# **last axis** of `x`: for `x` of shape `(..., n)` the result has shape
# `(...)` (a 0-d tensor for a vector), each entry the log-sum-exp of one row.
# It must be finite for inputs like $\pm 1000$, also when one row is near
# $+1000$ and another near $-1000$ (so take the maximum of each row, not of
# the whole array). In `forward`, use NumPy on `x.data` (`max` and `sum`
# with `axis=-1` and `keepdims=True` keep the shapes easy to combine), and
# do not modify `x.data`. In `backward`, `grad_output` has the output's
# shape `(...)`; give it a trailing axis of length 1 (`.reshape(...)`) so it
# multiplies every entry of its row. Writing `backward` with Tensor
# operations on the saved tensors keeps it differentiable, but only
# gradcheck is required here.

# %% solution="logsumexp_function" allow="Function,tensor,Tensor,no_grad" deny="logsumexp,logaddexp,softmax,log_softmax"
class LogSumExp(ad.Function):
    """log(sum(exp(x), axis=-1)), computed stably as one node.

    LogSumExp.apply(x): x is a float64 ad.Tensor of shape (..., n); returns
    an ad.Tensor of shape (...) with m + log(sum(exp(x - m))) along the last
    axis, m the maximum of each row. backward gets grad_output of shape (...)
    and returns the gradient for x, of x's shape, finite for rows near
    +-1000.
    """

    @staticmethod
    def forward(ctx, x):
        ### BEGIN SOLUTION
        m = x.data.max(axis=-1, keepdims=True)  # shape (..., 1)
        out = ad.Tensor(np.log(np.exp(x.data - m).sum(axis=-1)) + m[..., 0])
        ctx.save_for_backward(x, out)
        ctx.row_shape = m.shape
        return out
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        x, out = ctx.saved_tensors
        softmax = (x - out.reshape(ctx.row_shape)).exp()
        return grad_output.reshape(ctx.row_shape) * softmax
        ### END SOLUTION


# %% test="test_logsumexp" points=3
with grading.exercise(3, "LogSumExp"):
    # lse(1, 2, 3) = 3.407606, gradient (0.090031, 0.244728, 0.665241)
    x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = _call("LogSumExp.apply(x) for x = [1.0, 2.0, 3.0]", lambda: LogSumExp.apply(x))
    grading.assert_close(y, 3.40760596444438, rtol=1e-12, name="LogSumExp.apply([1.0, 2.0, 3.0])")
    if not np.array_equal(x.data, [1.0, 2.0, 3.0]):
        raise grading.GradingError(f"LogSumExp.forward changed its input x.data in place (to "
                                   f"{x.data}): compute x.data - m into a new array.")
    _call("LogSumExp.apply([1.0, 2.0, 3.0]).backward()", lambda: y.backward())
    grading.assert_close(x.grad, np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum(),
                         rtol=1e-10, name="the gradient of LogSumExp at [1.0, 2.0, 3.0]")
    # one row near +1000, one near -1000: lse = +-1000 + log 3, gradient 1/3 per entry times
    # the row's upstream gradient
    data = np.array([[1000.0, 1000.0, 1000.0], [-1000.0, -1000.0, -1000.0]])
    x = ad.tensor(data.copy(), requires_grad=True)
    y = _call("LogSumExp.apply(x) for x of shape (2, 3)", lambda: LogSumExp.apply(x))
    grading.assert_close(y, [1000 + np.log(3), -1000 + np.log(3)], rtol=1e-14,
                         name="LogSumExp.apply([[1000, 1000, 1000], [-1000, -1000, -1000]]) "
                              "(one value per row)")
    if not np.array_equal(x.data, data):
        raise grading.GradingError("LogSumExp changed its input x.data in place: compute "
                                   "x.data - m into a new array.")
    _call("backward with upstream gradient [2.0, -1.0]", lambda: y.backward(ad.tensor([2.0, -1.0])))
    grading.assert_close(x.grad, [[2 / 3] * 3, [-1 / 3] * 3], rtol=1e-10,
                         without_upstream=np.full((2, 3), 1 / 3),
                         name="x.grad for the (2, 3) input above and upstream gradient [2.0, -1.0]")
    x = ad.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    _check("LogSumExp.apply on a random (3, 4) input", LogSumExp.apply, (x,))
grading.passed("LogSumExp")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(2, 7)),), (int(_rng.integers(2, 5)), 5), (2, 3, 4)]:
    # each row shifted by -1000, 0 or +1000
    _x = _rng.standard_normal(_shape) * 3 + _rng.choice([-1000.0, 0.0, 1000.0],
                                                         _shape[:-1] + (1,))
    _xt = ad.tensor(_x.copy(), requires_grad=True)
    _y = _call(f"LogSumExp.apply(x) for x of shape {_shape}", lambda: LogSumExp.apply(_xt))
    _ref = ad.tensor(_x.copy(), requires_grad=True)
    _yr = _ref[..., 0] - ad.log_softmax(_ref, axis=-1)[..., 0]  # lse from the built-ins
    grading.assert_close(_y, _yr.data, rtol=1e-12, atol=1e-9,
                         name=f"LogSumExp.apply(x) for random x of shape {_shape} with rows "
                              "near -1000, 0 and +1000, vs the built-in log_softmax")
    if not np.array_equal(_xt.data, _x):
        raise grading.GradingError("LogSumExp changed its input x.data in place.")
    _g = _rng.standard_normal(_shape[:-1])
    _call("backward", lambda: _y.backward(ad.tensor(_g)))
    _yr.backward(ad.tensor(_g))
    grading.assert_close(_xt.grad, _ref.grad.data, rtol=1e-9, atol=1e-12,
                         without_upstream=ad.softmax(ad.tensor(_x), axis=-1).data,
                         name=f"x.grad for a random upstream gradient of shape {_shape[:-1]}, "
                              f"x of shape {_shape}, vs the built-in softmax")
# cross-entropy of logits z (N, C) with labels t: mean(lse(z) - z[i, t_i]) = ad.cross_entropy
_n, _c = 4, 5
_z = _rng.standard_normal((_n, _c)) * 5
_t = _rng.integers(0, _c, _n)
_zt, _ref = ad.tensor(_z.copy(), requires_grad=True), ad.tensor(_z.copy(), requires_grad=True)
_loss = _call("a cross-entropy built from LogSumExp",
              lambda: (LogSumExp.apply(_zt) - _zt[np.arange(_n), _t]).mean())
_call("backward of the cross-entropy", lambda: _loss.backward())
_lr = ad.cross_entropy(_ref, _t)
_lr.backward()
grading.assert_close(_loss, _lr.data, rtol=1e-12,
                     name="mean(LogSumExp(z) - z[i, t_i]) vs ad.cross_entropy(z, t)")
grading.assert_close(_zt.grad, _ref.grad.data, rtol=1e-9, atol=1e-12,
                     name="the gradient of that cross-entropy vs ad.cross_entropy")
_x = ad.tensor(_rng.standard_normal((2, 3, 3)), requires_grad=True)
_check("LogSumExp.apply on a random (2, 3, 3) input", LogSumExp.apply, (_x,))
### END HIDDEN TESTS

# %% [markdown]
# **The same idea in cross-entropy.** For logits $z \in \mathbb{R}^C$ and the
# correct class $t$, the cross-entropy is $-\log \operatorname{softmax}(z)_t
# = \operatorname{lse}(z) - z_t$, so a stable log-sum-exp gives a stable
# loss, and its gradient $\operatorname{softmax}(z) - \text{onehot}(t)$ is
# cheap. That is why `ad.cross_entropy` (and PyTorch's) is one fused
# primitive. The next cell compares your `LogSumExp` with the composed
# formula on confident logits $z = (1000, 0, -1000)$ with $t = 0$, where the
# loss is essentially $0$:

# %%
z_values = np.array([[1000.0, 0.0, -1000.0]])
try:
    z = ad.tensor(z_values, requires_grad=True)
    loss = (LogSumExp.apply(z) - z[:, 0]).mean()
    loss.backward()
    print("with LogSumExp:      loss", loss.item() + 0.0, " gradient", z.grad.data)
except NotImplementedError:
    print("Finish Exercise 3 (LogSumExp) to see the stable loss.")
z = ad.tensor(z_values, requires_grad=True)
with np.errstate(over="ignore", invalid="ignore"):
    loss = (ad.log(ad.exp(z).sum(axis=1)) - z[:, 0]).mean()
    loss.backward()
print("composed:            loss", loss.item() + 0.0, " gradient", z.grad.data)
z = ad.tensor(z_values, requires_grad=True)
loss = ad.cross_entropy(z, np.array([0]))
loss.backward()
print("ad.cross_entropy:    loss", loss.item() + 0.0, " gradient", z.grad.data)

# %% [markdown]
# ## 6. A gradient you choose
#
# ### 6.1 Straight-through rounding
#
# Rounding is everywhere in low-precision networks (quantized weights and
# activations) and in discrete latent codes. Its true derivative is useless
# for learning: $\operatorname{round}$ is flat between the jumps, so its
# derivative is $0$ almost everywhere (and undefined at the jumps). Any
# parameter that only reaches the loss through a rounding never moves.
#
# The **straight-through estimator** (STE; Hinton's lectures, Bengio et
# al. 2013) keeps the rounding in the forward pass and *pretends* it was the
# identity in the backward pass:
#
# $$
# \text{forward: } y = \operatorname{round}(x), \qquad
# \text{backward: } \bar x = \bar y .
# $$
#
# This is not the derivative of anything the forward computes; it is a
# deliberate choice, and the only way to make it is a custom Function. The
# gradient says "if $x$ grew, $y$ would grow on average at rate 1", which is
# true at the scale of many steps. NumPy rounds half-way cases to the nearest
# even number (`np.round(2.5) = 2.0`); that is fine here.
#
# **Worked numbers.** $x = (0.4, 1.6, -2.3)$ rounds to $(0, 2, -2)$; with the
# upstream gradient $(0.1, -2.0, 3.0)$ the STE passes $(0.1, -2.0, 3.0)$ on to
# $x$, where the true derivative would give $(0, 0, 0)$.

# %%
xs = np.linspace(-2.5, 2.5, 1001)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(xs, np.round(xs), label="forward: round(x)")
axes[0].plot(xs, xs, "--", color="0.5", label="what backward pretends: x")
axes[0].set_title("forward")
axes[0].set_ylabel("y")
axes[1].plot(xs, np.zeros_like(xs), label="true derivative of round (0 a.e.)")
axes[1].plot(xs, np.ones_like(xs), "--", label="straight-through: 1")
axes[1].set_ylim(-0.5, 1.5)
axes[1].set_title("the factor backward multiplies by")
axes[1].set_ylabel("dy/dx used in backward")
for ax in axes:
    ax.set_xlabel("x")
    ax.legend(loc="upper left", fontsize=8)
plt.show()

# %% [markdown]
# ### 6.2 Gradient clipping inside the graph
#
# Sometimes the forward pass is fine but the gradient flowing back through
# one place is dangerously large, as in recurrent networks where it can grow
# exponentially with the length of the sequence. One remedy (used for
# example by Graves 2013 for LSTMs) clips the gradient *at that point* of the
# graph: an operation whose forward is the identity and whose backward
# clips each entry of the upstream gradient to $[-c, c]$:
#
# $$
# \text{forward: } y = x, \qquad
# \text{backward: } \bar x = \operatorname{clip}(\bar y, -c, c)
# = \min\bigl(\max(\bar y, -c), c\bigr).
# $$
#
# Placed on a parameter, it caps each entry of that parameter's gradient, so
# no gradient step can move it by more than $\eta c$ (learning rate $\eta$),
# however steep the loss is. Placed anywhere else in the graph, it caps what
# flows back through that one point, something an optimiser that only ever
# sees the parameters' summed gradients cannot do. The threshold $c$ is a
# plain number, not a tensor: `forward(ctx, x, c)` keeps it as `ctx.c`, and
# `backward` must return **two** things, the gradient for `x` and `None`
# for `c`.
#
# **Worked numbers.** With $c = 1$ and the upstream gradient $(-3, 0.5, 2)$,
# $x$ receives $(-1, 0.5, 1)$, whatever $x$ is.
#
# ### 6.3 The task: a linear model with quantised weights
#
# Fit $t \approx X q$, where the weights $q$ the model *uses* live on a grid
# of step $g = 0.25$ (low-precision hardware stores only those), while
# training keeps real-valued weights $w$ and rounds them on every forward
# pass: $q = g \operatorname{round}(w / g)$. The data: 40 examples of two
# features, uncorrelated but of very different scales (root mean squares 1
# and 10, so $X^\top X / N = \operatorname{diag}(1, 100)$), and exact targets $t = X a^*$ with $a^* = (0.75, -0.5)$, a point
# of the grid. The loss is $L = \frac{1}{2N} \sum_n (X q - t)_n^2$, and
# gradient descent starts from $w = 0$ with learning rate $\eta = 0.5$.
#
# Two things go wrong without custom Functions:
#
# * With the true derivative of rounding, $\partial L/\partial w = 0$
#   everywhere: $w$ never moves.
# * With the straight-through estimator alone, the step for the large
#   feature is about $\eta \cdot 10^2 = 50$ times its error: each step
#   overshoots by more than the last, and training diverges. (A learning
#   rate small enough for that feature, below $2/100$, would crawl on the
#   small one.)
#
# Clipping the gradient that reaches $w$ at $c = 0.2$ bounds every step to
# $\eta c = 0.1$, less than half a grid step: $w$ walks towards the right
# cell of the grid and stops there, because once $q = a^*$ the loss and the
# gradient are exactly 0.
#
# ### Exercise 4 (4 points): train through a rounding
#
# Write the two Functions and the training loop that uses them:
#
# * `RoundSTE`: rounding to the nearest integer (`np.round`) with the
#   straight-through gradient;
# * `ClipGrad`: the identity, with the gradient clipped to $[-c, c]$ on the
#   way back (`np.clip(a, low, high)` clips a NumPy array; a NumPy array is
#   a fine return value for this `backward`);
# * `fit_quantized`: gradient descent on $w$ with `autodiff_ref` tensors,
#   exactly as its docstring says. The tests run it on the problem above and
#   on random ones, and also with `rounding=RoundTrue` (the class below, with
#   the true derivative) and with `clip=None`, to see that your loop honours
#   both.

# %%
class RoundTrue(ad.Function):
    """Rounding with its true derivative: 0 almost everywhere."""

    @staticmethod
    def forward(ctx, x):
        return np.round(x.data)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * 0


def quantization_problem(n=40, scales=(1.0, 10.0), target=(0.75, -0.5), seed=0):
    """X (n, D) with orthogonal columns of root mean square `scales`, and t = X @ target."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, len(scales))))
    X = q * np.sqrt(n) * np.asarray(scales)
    return X, X @ np.asarray(target)


X_q, t_q = quantization_problem()
print("X^T X / N =", (X_q.T @ X_q / len(X_q)).round(12).tolist(), " a* =", [0.75, -0.5])

# %% solution="straight_through" allow="Function,tensor,Tensor,no_grad"
class RoundSTE(ad.Function):
    """Rounding with the straight-through gradient.

    RoundSTE.apply(x): x is a float64 ad.Tensor of any shape; returns
    np.round(x) (same shape, float). backward returns the straight-through
    gradient for x (see the text).
    """

    @staticmethod
    def forward(ctx, x):
        ### BEGIN SOLUTION
        return np.round(x.data)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return grad_output
        ### END SOLUTION


class ClipGrad(ad.Function):
    """Identity forward, clipped backward.

    ClipGrad.apply(x, c): x is a float64 ad.Tensor of any shape, c > 0 a
    Python number. Returns a tensor equal to x (same shape and values).
    backward returns two values: the gradient for x, each entry of the
    upstream gradient clipped to [-c, c], and None for the non-tensor c.
    """

    @staticmethod
    def forward(ctx, x, c):
        ### BEGIN SOLUTION
        ctx.c = c
        return x.data.copy()
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        return np.clip(grad_output.data, -ctx.c, ctx.c), None
        ### END SOLUTION


def fit_quantized(X, t, grid=0.25, lr=0.5, clip=0.2, steps=40, rounding=RoundSTE):
    """Gradient descent on weights that are rounded to a grid in every step.

    X: (N, D) array; t: (N,) array. The trainable weights w, a (D,) tensor,
    start at 0. Each step computes, with autodiff_ref tensors,
        q = grid * rounding.apply(ClipGrad.apply(w, clip) / grid)
    (without the ClipGrad when clip is None), the loss
        L = sum over the N rows of (X @ q - t) ** 2, divided by 2 N,
    then dL/dw by backward(), and updates w <- w - lr * dL/dw.
    Returns (q, losses): q the quantised weights grid * round(w / grid)
    after the last update, a (D,) NumPy array; losses a (steps,) NumPy
    array, the loss of each step (before its update).
    """
    ### BEGIN SOLUTION
    N = X.shape[0]
    w = ad.tensor(np.zeros(X.shape[1]), requires_grad=True)
    X, t = ad.tensor(X), ad.tensor(t)
    losses = []
    for step in range(steps):
        clipped = w if clip is None else ClipGrad.apply(w, clip)
        q = grid * rounding.apply(clipped / grid)
        residual = X @ q - t
        loss = (residual * residual).sum() / (2 * N)
        w.grad = None
        loss.backward()
        with ad.no_grad():
            w.data = w.data - lr * w.grad.data
        losses.append(loss.item())
    return grid * np.round(w.data / grid), np.array(losses)
    ### END SOLUTION


# %% test="test_straight_through" points=4
with grading.exercise(4, "RoundSTE, ClipGrad and fit_quantized"):
    # the worked numbers: round (0.4, 1.6, -2.3) = (0, 2, -2), gradient passed straight through
    x = ad.tensor([0.4, 1.6, -2.3], requires_grad=True)
    y = _call("RoundSTE.apply([0.4, 1.6, -2.3])", lambda: RoundSTE.apply(x))
    grading.assert_close(y, [0.0, 2.0, -2.0], rtol=0, atol=0,
                         name="RoundSTE.apply([0.4, 1.6, -2.3])")
    _call("RoundSTE backward", lambda: y.backward(ad.tensor([0.1, -2.0, 3.0])))
    grading.assert_close(x.grad, [0.1, -2.0, 3.0], rtol=1e-15, without_upstream=np.ones(3),
                         name="x.grad through RoundSTE, upstream gradient [0.1, -2.0, 3.0]")
    # c = 1, upstream gradient (-3, 0.5, 2): x receives (-1, 0.5, 1); the forward is the identity
    x = ad.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    y = _call("ClipGrad.apply([-2.0, 0.5, 3.0], 1.0)", lambda: ClipGrad.apply(x, 1.0))
    grading.assert_close(y, [-2.0, 0.5, 3.0], rtol=0, atol=0,
                         name="ClipGrad.apply([-2.0, 0.5, 3.0], 1.0)")
    _call("ClipGrad backward", lambda: y.backward(ad.tensor([-3.0, 0.5, 2.0])))
    grading.assert_close(x.grad, [-1.0, 0.5, 1.0], rtol=1e-15,
                         name="x.grad through ClipGrad(x, 1.0), upstream gradient [-3.0, 0.5, 2.0]")
    # the task: q lands on a* = (0.75, -0.5) with loss exactly 0
    q, losses = _call("fit_quantized(X_q, t_q)", lambda: fit_quantized(X_q.copy(), t_q.copy()))
    _fit_result(q, losses, [0.75, -0.5], 40,
                "fit_quantized(X_q, t_q) (grid 0.25, lr 0.5, clip 0.2, 40 steps)")
    grading.assert_close(np.asarray(losses)[0], 12.78125, rtol=1e-12,
                         name="losses[0] of fit_quantized(X_q, t_q) (the loss at w = 0: "
                              "(0.75**2 * 1 + 0.5**2 * 100) / 2 = 12.78125)")
grading.passed("RoundSTE, ClipGrad and fit_quantized")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(1, 8)),), (3, 4), (2, 2, 3)]:
    _x = _rng.uniform(-10, 10, _shape)
    _xt = ad.tensor(_x.copy(), requires_grad=True)
    _y = _call(f"RoundSTE.apply(x) for x of shape {_shape}", lambda: RoundSTE.apply(_xt))
    grading.assert_close(_y, np.round(_x), rtol=0, atol=0,
                         name=f"RoundSTE.apply(x) for random x of shape {_shape} vs np.round")
    _g = _rng.standard_normal(_shape)
    _call("backward", lambda: _y.backward(ad.tensor(_g)))
    grading.assert_close(_xt.grad, _g, rtol=1e-15, without_upstream=np.ones(_shape),
                         name=f"x.grad through RoundSTE for a random upstream gradient, shape {_shape}")
    _c = float(_rng.uniform(0.2, 2.0))
    _xt = ad.tensor(_x.copy(), requires_grad=True)
    _y = _call(f"ClipGrad.apply(x, {_c:.3f}) for x of shape {_shape}", lambda: ClipGrad.apply(_xt, _c))
    grading.assert_close(_y, _x, rtol=0, atol=0, name=f"ClipGrad.apply(x, {_c:.3f}) (the identity)")
    if not np.array_equal(_xt.data, _x):
        raise grading.GradingError("RoundSTE or ClipGrad changed its input x.data in place.")
    _g = 3 * _rng.standard_normal(_shape)
    _g.flat[0], _g.flat[-1] = 4 * _c, -4 * _c  # at least one entry beyond each bound
    _call("backward", lambda: _y.backward(ad.tensor(_g)))
    grading.assert_close(_xt.grad, np.clip(_g, -_c, _c), rtol=1e-15,
                         name=f"x.grad through ClipGrad(x, {_c:.3f}) for a random upstream "
                              f"gradient of shape {_shape}, vs np.clip(g, -c, c)")
# in a chain with an integer c: L = sum(ClipGrad(x, 2) ** 3) gives clip(3 x^2, -2, 2)
_x = _rng.uniform(-2, 2, 7)
_xt = ad.tensor(_x.copy(), requires_grad=True)
_call("a chain through ClipGrad", lambda: (ClipGrad.apply(_xt, 2) ** 3).sum().backward())
grading.assert_close(_xt.grad, np.clip(3 * _x**2, -2, 2), rtol=1e-12,
                     name="the gradient of sum(ClipGrad(x, 2) ** 3) (should be clip(3 x^2, -2, 2))")
# within [-c, c] the clipped gradient is the true one
_check("lambda t: ClipGrad.apply(t, 10.0) on a random (3, 2) input",
       lambda t: ClipGrad.apply(t, 10.0), (ad.tensor(_rng.standard_normal((3, 2)), requires_grad=True),))
# random problems: D features of scales between 1 and 10, a target on the grid
for _ in range(2):
    _D, _N = int(_rng.integers(1, 5)), int(_rng.integers(20, 60))
    _scales = np.exp(_rng.uniform(0, np.log(10), _D))
    _scales[_rng.integers(_D)] = 10.0
    _target = _rng.integers(-6, 7, _D) * 0.25
    _X, _t = quantization_problem(_N, _scales, _target, seed=int(_rng.integers(1 << 30)))
    _fit_result(*fit_quantized(_X, _t, steps=60), _target, 60,
                f"fit_quantized on random data (N={_N}, D={_D}, target {_target.tolist()})")
# the whole loss curve against a NumPy re-computation of the same descent
def _reference_fit(X, t, grid, lr, clip, steps):
    w, out = np.zeros(X.shape[1]), []
    for _ in range(steps):
        r = X @ (grid * np.round(w / grid)) - t
        g = X.T @ r / len(t)
        w = w - lr * (g if clip is None else np.clip(g, -clip, clip))
        out.append(0.5 * np.mean(r * r))
    return out


for _args in [(X_q, t_q, 0.25, 0.5, 0.2, 40),
              (*quantization_problem(int(_rng.integers(20, 50)), (1.0, 0.5, 2.0),
                                     _rng.integers(-4, 5, 3) * 0.5,
                                     seed=int(_rng.integers(1 << 30))),
               0.5, float(_rng.uniform(0.05, 0.2)), None, 15)]:
    _q, _losses = fit_quantized(*_args[:2], grid=_args[2], lr=_args[3], clip=_args[4],
                                steps=_args[5])
    grading.assert_close(np.asarray(_losses, dtype=np.float64), _reference_fit(*_args),
                         rtol=1e-10, atol=1e-14,
                         name=f"the losses of fit_quantized(grid={_args[2]}, lr={_args[3]:.3f}, "
                              f"clip={_args[4]}, steps={_args[5]}) vs the same descent in NumPy")
# the loop must honour rounding= and clip=
_q, _losses = fit_quantized(X_q, t_q, rounding=RoundTrue, steps=5)
grading.assert_close(_q, [0.0, 0.0], rtol=0, atol=0,
                     name="q of fit_quantized(X_q, t_q, rounding=RoundTrue) (the true derivative "
                          "of rounding is 0: w must not move)")
with np.errstate(all="ignore"):
    _q, _losses = fit_quantized(X_q, t_q, clip=None, steps=8)
_losses = np.asarray(_losses, dtype=np.float64)
if not (_losses.shape == (8,) and not _losses[-1] < 1e3):
    raise grading.GradingError("fit_quantized(X_q, t_q, clip=None) should diverge (no clipping, "
                               f"learning rate 0.5 for a feature of scale 10); its losses were "
                               f"{np.asarray(_losses).round(3).tolist()}. Apply ClipGrad only "
                               "when clip is not None.")
### END HIDDEN TESTS

# %% [markdown]
# With your three pieces in place, the next cell runs the task three ways:
# with the true derivative of rounding, with the straight-through estimator
# but no clipping, and with both.

# %%
try:
    runs = {"true derivative of round": fit_quantized(X_q, t_q, rounding=RoundTrue),
            "straight-through, no clipping": None,
            "straight-through + ClipGrad(c = 0.2)": fit_quantized(X_q, t_q)}
    with np.errstate(all="ignore"):
        runs["straight-through, no clipping"] = fit_quantized(X_q, t_q, clip=None)
except NotImplementedError:
    print("Finish Exercise 4 (RoundSTE, ClipGrad, fit_quantized) to see the three runs.")
else:
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (q, losses) in runs.items():
        ax.semilogy(np.maximum(losses, 1e-6), "o-", ms=3, label=f"{label}: q = {q.tolist()}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss L (values below 1e-6 drawn at 1e-6)")
    ax.set_title("training weights on a grid of step 0.25")
    ax.legend(loc="center right", fontsize=8)
    plt.show()

# %% [markdown]
# ## 7. Several inputs, and the work `needs_input_grad` saves
#
# A Function may take any number of inputs; `backward` returns one gradient
# per input, in order. Take the fused multiply-add $f(x, y, z) = x\,y + z$
# (element-wise, with broadcasting): its gradients are
#
# $$
# \bar x = \bar f\, y, \qquad \bar y = \bar f\, x, \qquad \bar z = \bar f ,
# $$
#
# and you may return them with the output's shape: the engine sums away
# broadcasting. **Worked numbers:** $x = 2$, $y = 3$, $z = 1$ give $f = 7$ and
# the gradients $(3, 2, 1)$. Fused, it is one node that saves $x$ and $y$;
# composed, two nodes (a `Mul` and an `Add`) and the intermediate $x y$.
#
# Often only some inputs need a gradient: the data fed to the first layer
# never does, frozen weights don't, the target of a loss doesn't. Computing
# their gradients anyway is pure waste, and for a matrix product it is a
# whole extra matrix product. `ctx.needs_input_grad[i]` tells `backward`
# whether input $i$ needs one (it is `False` for a tensor with
# `requires_grad=False` and for a non-tensor argument); return `None` for
# the others and skip their work. The built-in `Mul` and `MatMul` do exactly
# that. The next cell measures it for a product $X W$ where only the weights
# $W$ need a gradient, counting and timing the matrix products of `backward`:

# %%
class CountedMatMul(ad.Function):
    """a @ b whose backward counts its matrix products; set use_needs to ignore
    or respect ctx.needs_input_grad."""

    use_needs = True
    products = 0

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.data @ b.data

    @staticmethod
    def backward(ctx, grad_output):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad if CountedMatMul.use_needs else (True, True)
        grad_a = grad_b = None
        if need_a:
            grad_a = grad_output.data @ b.data.T
            CountedMatMul.products += 1
        if need_b:
            grad_b = a.data.T @ grad_output.data
            CountedMatMul.products += 1
        return grad_a, grad_b


rng = np.random.default_rng(0)
X = ad.tensor(rng.standard_normal((1000, 250)))  # data: no gradient needed
W = ad.tensor(rng.standard_normal((250, 250)), requires_grad=True)
Y = CountedMatMul.apply(X, W)
G = ad.tensor(rng.standard_normal(Y.shape))  # an upstream gradient dL/dY
for use_needs in (False, True):
    CountedMatMul.use_needs, CountedMatMul.products = use_needs, 0
    start = time.perf_counter()
    for _ in range(5):
        W.grad = None
        Y.backward(G, retain_graph=True)  # the same graph, five times
    per_backward = (time.perf_counter() - start) / 5
    print(f"use needs_input_grad = {use_needs!s:5}: {CountedMatMul.products / 5:.0f} matrix "
          f"product(s) per backward, {per_backward * 1e3:.1f} ms per backward")

# %% [markdown]
# Half the products, and roughly half the time of the backward pass (the
# exact times depend on the machine and on what else it is doing). In a
# deep network only the first layer's input is data, so the saving there is one product per training step; for frozen layers during
# fine-tuning it is much more.
#
# ### Exercise 5 (3 points): a fused multiply-add that skips unneeded work
#
# Write `MulAdd` with `MulAdd.apply(x, y, z) = x * y + z` (three tensors whose
# shapes broadcast together). `forward` saves what `backward` needs. `backward`
# returns three values, and for each input that does not need a gradient
# (`ctx.needs_input_grad`) it returns `None` **without computing that
# gradient**. Write the gradients with Tensor operations on `grad_output` and
# the saved tensors: the test also runs `ad.gradgradcheck`, and it calls your
# `backward` directly for every combination of inputs that need a gradient.

# %% solution="mul_add" allow="Function,tensor,Tensor,no_grad"
class MulAdd(ad.Function):
    """The fused multiply-add x * y + z.

    MulAdd.apply(x, y, z): float64 ad.Tensors whose shapes broadcast together;
    returns x * y + z (the broadcast shape). backward returns a tuple of three
    gradients, for x, y and z (each may have the output's shape: the engine
    sums away broadcasting), with None in place of each one whose input does
    not need a gradient, which it then does not compute; written with Tensor
    operations, so it is differentiable again.
    """

    @staticmethod
    def forward(ctx, x, y, z):
        ### BEGIN SOLUTION
        ctx.save_for_backward(x, y)
        return x.data * y.data + z.data
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        x, y = ctx.saved_tensors
        need_x, need_y, need_z = ctx.needs_input_grad
        grad_x = grad_output * y if need_x else None
        grad_y = grad_output * x if need_y else None
        grad_z = grad_output if need_z else None
        return grad_x, grad_y, grad_z
        ### END SOLUTION


# %% test="test_mul_add" points=3
with grading.exercise(5, "MulAdd"):
    # x = 2, y = 3, z = 1: f = 7 and the gradients (3, 2, 1)
    x, y, z = (ad.tensor(v, requires_grad=True) for v in (2.0, 3.0, 1.0))
    f = _call("MulAdd.apply(x, y, z) for x = 2, y = 3, z = 1", lambda: MulAdd.apply(x, y, z))
    grading.assert_close(f, 7.0, rtol=1e-15, name="MulAdd.apply(2.0, 3.0, 1.0)")
    _call("MulAdd backward", lambda: f.backward())
    for label, t, expected in [("x.grad (= y)", x, 3.0), ("y.grad (= x)", y, 2.0),
                               ("z.grad (= 1)", z, 1.0)]:
        grading.assert_close(t.grad, expected, rtol=1e-15,
                             name=f"{label} after MulAdd.apply(2.0, 3.0, 1.0).backward()")
    _needs_check([(2, 3), (2, 3), (2, 3)], np.random.default_rng(0))
    inputs = tuple(ad.tensor(np.random.default_rng(i).standard_normal((2, 3)), requires_grad=True)
                   for i in range(3))
    _check("MulAdd.apply on random (2, 3) inputs", MulAdd.apply, inputs)
    _check("MulAdd.apply on random (2, 3) inputs (is backward written with Tensor operations?)",
           MulAdd.apply, inputs, second=True)
grading.passed("MulAdd")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
_m, _n = int(_rng.integers(2, 5)), int(_rng.integers(2, 5))
for _shapes in [[(_m, _n)] * 3, [(_m, _n), (_n,), (_m, 1)], [(_n,), (_m, _n), ()]]:
    _vals = [_rng.standard_normal(s) for s in _shapes]
    _ts = [ad.tensor(v.copy(), requires_grad=True) for v in _vals]
    _refs = [ad.tensor(v.copy(), requires_grad=True) for v in _vals]
    _f = _call(f"MulAdd.apply for shapes {_shapes}", lambda: MulAdd.apply(*_ts))
    _fr = _refs[0] * _refs[1] + _refs[2]
    grading.assert_close(_f, _fr.data, rtol=1e-12,
                         name=f"MulAdd.apply(x, y, z) for random inputs of shapes {_shapes} "
                              "vs x * y + z")
    _g = _rng.standard_normal(_fr.shape)
    _call("backward", lambda: _f.backward(ad.tensor(_g)))
    _fr.backward(ad.tensor(_g))
    for _label, _t, _r in zip("xyz", _ts, _refs):
        grading.assert_close(_t.grad, _r.grad.data, rtol=1e-10, atol=1e-12,
                             name=f"{_label}.grad for random inputs of shapes {_shapes} and a "
                                  "random upstream gradient, vs x * y + z")
    _needs_check(_shapes, _rng)
    _ins = tuple(ad.tensor(v, requires_grad=True) for v in _vals)
    _check(f"MulAdd.apply on random inputs of shapes {_shapes}", MulAdd.apply, _ins)
    _check(f"MulAdd.apply on random inputs of shapes {_shapes}", MulAdd.apply, _ins,
           second=True)
### END HIDDEN TESTS

# %% [markdown]
# ## 8. Trading time for memory: recompute instead of saving
#
# A deep network's backward pass needs the intermediate values of its
# forward pass, so training keeps all of them alive until the backward pass
# reaches them: memory grows with depth times batch size, and for large
# models it is activations, not weights, that fill the accelerator. **Gradient
# checkpointing** (Chen et al. 2016; `torch.utils.checkpoint`) gives up a
# little time for a lot of memory: run a block of the network in `forward`
# *without recording*, save only the block's input, and in `backward` run the
# block again, this time recording, to get its gradient. Each checkpointed
# block then holds one saved array between the two passes instead of all of
# its intermediates, at the price of a second forward pass through it.
#
# A custom Function is the natural place for this, with two tools from
# section 2: `with ad.enable_grad():` switches recording back on inside
# `backward` (which otherwise runs with recording off), and
# `ad.grad(outputs, inputs, grad_outputs=...)` returns the vector-Jacobian
# product for a given upstream gradient without touching any `.grad`.
#
# ### Exercise 6 (2 points): a checkpointed block
#
# Write `Checkpoint` with `Checkpoint.apply(x, block)`: `block` is a Python
# function from a tensor to a tensor built with `autodiff_ref` operations
# (here without parameters of its own that need gradients; PyTorch's version
# handles those too). Use a **fresh leaf tensor** holding `x`'s values for
# the recomputation, so that the recorded graph starts there. That also
# means the gradient it returns is not connected to `x`: this version gives
# first derivatives only, and a second derivative through it would be wrong
# (gradgradcheck fails on it, as it should).

# %% solution="checkpoint_function" allow="Function,tensor,Tensor,no_grad,enable_grad,grad"
class Checkpoint(ad.Function):
    """Run block(x) without keeping its graph; recompute it in backward.

    Checkpoint.apply(x, block): x is a float64 ad.Tensor; block is a Python
    function from a tensor to a tensor (autodiff_ref operations; any other
    tensors it uses need no gradient). Returns a tensor equal to block(x).
    forward saves only x (and keeps block as a plain attribute of ctx).
    backward calls block once more and returns two values: the gradient
    for x (x's shape) and None for block. First derivatives only.
    """

    @staticmethod
    def forward(ctx, x, block):
        ### BEGIN SOLUTION
        ctx.save_for_backward(x)
        ctx.block = block
        return block(x).data
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        (x,) = ctx.saved_tensors
        with ad.enable_grad():
            leaf = ad.tensor(x.data, requires_grad=True)
            out = ctx.block(leaf)
            (grad_x,) = ad.grad(out, leaf, grad_outputs=grad_output)
        return grad_x, None
        ### END SOLUTION


# %% test="test_checkpoint" points=2
with grading.exercise(6, "Checkpoint"):
    _check_checkpoint(np.array([0.5, -1.0, 2.0]), np.array([1.0, -2.0, 0.5]), "x = [0.5, -1, 2]")
grading.passed("Checkpoint")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(1, 6)),), (3, 4)]:
    _check_checkpoint(_rng.uniform(-3, 3, _shape), _rng.standard_normal(_shape),
                      f"random x of shape {_shape}")
_check("lambda t: Checkpoint.apply(t, block) on a random (2, 3) input",
       lambda t: Checkpoint.apply(t, _Counted()), (ad.tensor(_rng.standard_normal((2, 3)),
                                                             requires_grad=True),))
# a block whose output has another shape (a sum over the last axis), inside a chain
_x = _rng.standard_normal((3, 4))
_xt, _ref = ad.tensor(_x.copy(), requires_grad=True), ad.tensor(_x.copy(), requires_grad=True)
_w = _rng.standard_normal(3)
_call("a chain through Checkpoint",
      lambda: (Checkpoint.apply(_xt * 2.0, lambda t: (t.exp() * t).sum(axis=-1)) * _w).sum()
      .backward())
(((_ref * 2.0).exp() * _ref * 2.0).sum(axis=-1) * _w).sum().backward()
grading.assert_close(_xt.grad, _ref.grad.data, rtol=1e-10, atol=1e-12,
                     name="the gradient of sum(w * Checkpoint(2 x, block)) for a block with "
                          "a (3,) output from a (3, 4) input")
### END HIDDEN TESTS

# %% [markdown]
# The memory saved, counted with `graph_size` from section 4: a block of 10
# `tanh` layers applied to a vector of 1000 numbers, composed and
# checkpointed.

# %%
def ten_layers(t):
    for _ in range(10):
        t = ad.tanh(1.5 * t)
    return t


x = ad.tensor(np.random.default_rng(3).standard_normal(1000), requires_grad=True)
print("composed:     %d nodes, %6d saved floats" % graph_size(ten_layers(x)))
try:
    print("checkpointed: %d node,  %6d saved floats" % graph_size(Checkpoint.apply(x, ten_layers)))
except NotImplementedError:
    print("Finish Exercise 6 (Checkpoint) to count its saved floats.")

# %% [markdown]
# ## 9. When is a custom Function worth writing?
#
# **Question (2 points).** For each of the following, say whether you would
# write a custom Function or simply compose built-in operations, and name
# the reason (or the reason there is none). One or two sentences each.
#
# 1. The softplus $\log(1 + e^{x})$ in a loss where $x$ can reach $\pm 800$.
# 2. A `floor` that turns a continuous output into a bin index used in the
#    loss, while its input's parameters should still learn.
# 3. $f(x) = 3x^2 + \sin x$, used once per training step on a small vector.
# 4. A 48-layer network that does not fit in memory for training, while
#    each of its blocks easily fits.
# 5. $x \cdot \sigma(x)$ (SiLU) applied to large activations in every layer,
#    where profiling shows that its three separate element-wise operations
#    (and the arrays they save) cost real time and memory.

# %% [markdown] answer="when_custom_function" points=2
# ### BEGIN SOLUTION
# **Model answer.**
#
# 1. *Custom (or at least a stable formulation): numerical stability.*
#    Composed, `exp(800)` overflows to `inf`, giving `inf` or `nan` in the
#    value and the gradient although softplus(800) is about 800. A fused
#    node computes $\max(x, 0) + \log(1 + e^{-|x|})$ and its derivative
#    $\sigma(x)$ stably (which can even be written with the output).
# 2. *Custom: a non-differentiable op with a surrogate gradient.* The true
#    derivative of `floor` is 0 almost everywhere, so nothing upstream would
#    learn; a straight-through (or other chosen) backward is a design choice
#    that only a custom Function can express. gradcheck must fail on it.
# 3. *Compose: no reason.* The engine differentiates the composition
#    exactly; a hand-written rule only adds a chance of a bug.
# 4. *Custom: memory.* Checkpoint each block: save only its input and
#    recompute it in backward, trading one extra forward pass for keeping
#    one array per block instead of all intermediates.
# 5. *Custom: fused speed and memory.* One node with one pass over the data
#    and one saved array (its derivative $\sigma(x)(1 + x(1 - \sigma(x)))$
#    needs only $x$, or $x$ and $\sigma(x)$) instead of three kernels and
#    their intermediates; check it with gradcheck.
#
# **Rubric (2 points).** 0.4 point per case when the decision and the
# reason both match: 1 numerical stability (overflow of exp); 2 a
# surrogate gradient for a non-differentiable op; 3 compose, nothing to
# gain (a custom Function here earns nothing and risks a bug); 4 memory,
# by recomputing (checkpointing); 5 fused speed and memory. A right
# decision with a wrong or missing reason earns 0.2. "Faster" alone for
# case 1 or "more accurate" for case 2 does not count as the reason.
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# * A custom operation is a subclass of `ad.Function` with two static
#   methods. `forward(ctx, *args)` runs with recording off, may compute with
#   NumPy on `x.data`, may return a NumPy array or a Tensor, and keeps what
#   backward needs with `ctx.save_for_backward` (tensors) or as plain
#   attributes of `ctx` (numbers, shapes). `backward(ctx, grad_output)`
#   returns one gradient per argument of `forward`, `None` for non-tensors
#   and for inputs that need no gradient (`ctx.needs_input_grad`). Call it
#   as `MyFunction.apply(...)`; the engine checks the count and the shapes
#   of the gradients and sums away broadcasting. PyTorch's
#   `torch.autograd.Function` has the same shape.
# * Check every backward with `ad.gradcheck`. Write `backward` with Tensor
#   operations and it is differentiable again (`ad.gradgradcheck`); raw NumPy
#   gives the right first derivative, and a clear error when someone
#   differentiates it again. When you save the output, save the very tensor
#   `forward` returns.
# * PyTorch silently sums a gradient whose shape merely *broadcasts* to the
#   input's; `autodiff_ref` refuses extra axes the call did not broadcast.
#   A gradient of the right shape with wrong values: only gradcheck catches it.
# * Write a custom Function when it buys something: a derivative in terms
#   of the output (sigmoid, normalisation: one node, few saved arrays); a
#   fused, stable computation (log-sum-exp and cross-entropy, finite at
#   $\pm 1000$); a gradient you choose for a non-differentiable or
#   troublesome operation (straight-through rounding, which gradcheck
#   rightly rejects as "not the derivative", and gradient clipping, which
#   together train weights that live on a grid); several inputs where
#   skipping unneeded gradients saves real work; and memory, by recomputing
#   a block in backward instead of saving its intermediates.
