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
# # 09 · Beyond the formula sheet
#
# Up to now every backward rule came with a recipe close at hand: a table of
# identities (notebook 05), a network whose gradients we derived together
# (notebook 06). Real models are full of operations nobody hands you a
# formula for. This notebook is about deriving them yourself, checking them
# until you trust them, and finding the bug when the check fails:
#
# 1. **layer normalization**, first as a staged graph (one line per
#    intermediate, one adjoint per line), then fused into one derived
#    expression; then **batch normalization**, whose gradient in training
#    mode differs from the one in evaluation mode;
# 2. three operations whose backward is a lesson in shapes: the **embedding
#    lookup** (its adjoint is a scatter-add: repeated indices accumulate),
#    **`x ** y`** with both arguments broadcast, and the **batched matrix
#    product** with broadcasting, put to work in the backward pass of
#    **multi-query attention**;
# 3. **debugging** a custom `ad.Function` with three planted bugs, using
#    `ad.gradcheck` and the grading helper's explanations;
# 4. **minibatch SGD on real data** (8×8 images of handwritten digits):
#    weight decay derived and added to the gradient, loss and accuracy curves
#    for the training and validation sets, overfitting on a small subset,
#    and a widget to retrain with other settings.
#
# Notation follows the [notation card](../notation.md): $\bar v = \partial
# L/\partial v$ is the adjoint of $v$ and has $v$'s shape; $g$ (in code `g`)
# is the upstream gradient $\bar y$ of an operation's output $y$.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are eleven exercises (18 points) and three written
# answers (3 points, graded by hand). Replace each `raise
# NotImplementedError()` with your code, then run the test cell right below
# it; a passing test prints one line starting with ✓. Tests compare your
# answers with the reference engine `autodiff_ref` and with finite
# differences, and explain in words what is wrong. The hidden tests compare
# to about eleven significant digits, so the derivatives must come from
# formulas, not from finite differences; your answers may use NumPy but not
# the engine (except where an exercise says so). **Run All stops at the first
# unfinished exercise** (its test cell raises an error): run the cells one by
# one, or use *Run All Above* on the cell you are working on, or finish the
# exercises in order. Every other cell runs without your code.

# %%
# %matplotlib inline
import time

import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import autodiff_ref as ad
from autodiff_ref import grading
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

# The matrices here are small: one BLAS thread is faster than several that
# wait for each other (by a factor of ten on a busy machine).
threadpool_limits(1)

# %% [markdown]
# ## 1. Layer normalization, stage by stage
#
# Layer normalization (used in every transformer) rescales each example to
# mean 0 and variance 1 across its $D$ features, then applies a learned
# per-feature scale $\gamma$ and shift $\beta$. For a batch $x$ of shape
# $(N, D)$, row by row:
#
# $$
# \mu = \frac1D\sum_j x_j,\qquad
# \sigma^2 = \frac1D\sum_j (x_j-\mu)^2,\qquad
# \hat x_j = \frac{x_j-\mu}{\sqrt{\sigma^2+\epsilon}},\qquad
# y_j = \gamma_j\,\hat x_j + \beta_j .
# $$
#
# ($\epsilon$, typically $10^{-5}$, keeps the division safe for a constant
# row.) No table gives $\bar x$. The method that always works is the one of
# notebook 03: cut the computation into **stages**, each so simple that its
# local derivative is obvious, and walk them backwards. Here is the graph,
# one line per intermediate (all reductions over the last axis with
# `keepdims=True`, so $\mu$, $\sigma^2$, ... have shape $(N, 1)$):
#
# | stage | forward | shape |
# |---|---|---|
# | `mu` | $\mu = \operatorname{mean}_j x$ | $(N, 1)$ |
# | `xc` | $x_c = x - \mu$ | $(N, D)$ |
# | `sq` | $s = x_c^2$ | $(N, D)$ |
# | `var` | $v = \operatorname{mean}_j s$ | $(N, 1)$ |
# | `std` | $\sigma = \sqrt{v + \epsilon}$ | $(N, 1)$ |
# | `inv` | $r = 1/\sigma$ | $(N, 1)$ |
# | `xhat` | $\hat x = x_c\, r$ | $(N, D)$ |
# | `y` | $y = \gamma\,\hat x + \beta$ | $(N, D)$ |
#
# Backwards, each stage turns the adjoint of its output into adjoints of its
# inputs, with the two rules that matter here:
#
# * **a node used twice gets the sum of both contributions** (`+=`):
#   $x_c$ feeds both `sq` and `xhat`; $x$ feeds both `mu` and `xc`;
# * **a node broadcast in the forward pass is summed in the backward pass**:
#   `mu`, `inv` (shape $(N, 1)$) are stretched over the $D$ columns, and
#   $\gamma$, $\beta$ (shape $(D,)$) over the $N$ rows; a mean over $D$
#   entries, conversely, sends $\frac1D$ of its adjoint to each of them.
#
# **Worked example** (one row, $\gamma = 1$, $\beta = 0$, $\epsilon = 0$):
# $x = (1, 2, 4)$ gives $\mu = 7/3$, $x_c = (-4, -1, 5)/3$, $\sigma^2 = 14/9$,
# $\sigma = \sqrt{14}/3 \approx 1.2472$ and
# $\hat x = (-4, -1, 5)/\sqrt{14} \approx (-1.0690, -0.2673, 1.3363)$.
# For the loss $L = y_1$ (upstream gradient $g = (1, 0, 0)$) the staged
# backward pass gives
#
# $$
# \bar x = \frac{(6,\,-9,\,3)}{7\sqrt{14}} \approx (0.2291,\,-0.3436,\,0.1145).
# $$
#
# Check it against your exercise. Two properties of this answer hold for
# every row and every $g$, and you can see why without computing: the
# entries of $\bar x$ **sum to zero** (adding a constant to a row changes
# nothing after normalization) and, when $\epsilon = 0$, $\bar x$ is
# **orthogonal to $\hat x$** (then scaling a row by $1 + t$ changes nothing
# either).
#
# **Common mistake:** forgetting that $x_c$ has two consumers and writing
# `d_xc = d_xhat * inv` for the adjoint of `xc` (only the path through
# `xhat`): the gradient is then wrong everywhere, although every single line
# looks right. The same goes for $x$, which reaches the output through `xc`
# *and* through `mu`.
#
# ### Exercise 1 (3 points): layer norm, staged
#
# Write `norm_staged(x, gamma, beta, g, eps, axis)`: the forward pass one
# line per stage of the table, then the backward pass one line per adjoint,
# in reverse order. With `axis=1` it is layer norm, as in the table. With
# `axis=0` the reductions run down the columns instead: each **feature** is
# normalized over the **batch**, which is batch normalization in training
# mode (section 3); $\gamma$ and $\beta$ keep the shape $(D,)$, and the
# stages `mu`, `var`, `std`, `inv` get the shape $(1, D)$. Write the code
# once, for both. The test compares **every** adjoint with the reference
# engine (which keeps the gradients of the same intermediates), so a mistake
# is located at the first stage where it appears.

# %% solution="norm_staged" exact=true
def norm_staged(x, gamma, beta, g, eps=1e-5, axis=1):
    """Normalization of x along `axis`, forward and backward, stage by stage.

    x: (N, D); gamma, beta: (D,); g: the upstream gradient dL/dy, (N, D);
    eps: the number added to the variance; axis: 1 normalizes each row
    (layer norm), 0 each column (batch norm in training mode).
    Returns (y, grads): y is the output, shape (N, D); grads is a dict with
    the adjoint dL/dv of every stage v of the table: keys "xhat", "inv",
    "std", "var", "sq", "xc", "mu" and the inputs "x", "gamma", "beta", each
    with the shape of its node (mu, var, std, inv: (N, 1) for axis=1,
    (1, D) for axis=0).
    """
    ### BEGIN SOLUTION
    count = x.shape[axis]
    mu = x.mean(axis=axis, keepdims=True)
    xc = x - mu
    sq = xc ** 2
    var = sq.mean(axis=axis, keepdims=True)
    std = np.sqrt(var + eps)
    inv = 1.0 / std
    xhat = xc * inv
    y = gamma * xhat + beta

    d_beta = g.sum(axis=0)
    d_gamma = (g * xhat).sum(axis=0)
    d_xhat = g * gamma
    d_inv = (d_xhat * xc).sum(axis=axis, keepdims=True)
    d_xc = d_xhat * inv
    d_std = -d_inv / std ** 2
    d_var = d_std * 0.5 / std
    d_sq = np.ones_like(sq) * d_var / count
    d_xc = d_xc + 2 * xc * d_sq
    d_mu = -d_xc.sum(axis=axis, keepdims=True)
    d_x = d_xc + d_mu / count
    grads = {"xhat": d_xhat, "inv": d_inv, "std": d_std, "var": d_var, "sq": d_sq,
             "xc": d_xc, "mu": d_mu, "x": d_x, "gamma": d_gamma, "beta": d_beta}
    return y, grads
    ### END SOLUTION


# %% [markdown]
# The test cells of sections 1 and 2 build the same graphs from `ad`
# operations and let the reference engine backpropagate, keeping the
# gradient of every intermediate (`retain_grad`):

# %%
import contextlib

_STAGES = ("mu", "xc", "sq", "var", "std", "inv", "xhat")


def _layernorm_graph(xt, gt, bt, eps, axis=1):
    """The staged graph from ad operations on tensors: (y, {stage: node}).
    axis=0 normalizes each column instead (batch norm in training mode)."""
    mu = xt.mean(axis=axis, keepdims=True)
    xc = xt - mu
    sq = xc ** 2
    var = sq.mean(axis=axis, keepdims=True)
    std = (var + eps).sqrt()
    inv = 1 / std
    xhat = xc * inv
    return gt * xhat + bt, dict(zip(_STAGES, (mu, xc, sq, var, std, inv, xhat)))


def _layernorm_numpy(x, gamma, beta, eps):
    """The forward value, for finite differences."""
    return _layernorm_graph(ad.tensor(x), ad.tensor(gamma), ad.tensor(beta), eps)[0].data


def _layernorm_reference(x, gamma, beta, g, eps, axis=1):
    """The reference backward: (y, {stage or input: adjoint})."""
    xt, gt, bt = (ad.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    y, nodes = _layernorm_graph(xt, gt, bt, eps, axis)
    for node in nodes.values():
        node.retain_grad()
    y.backward(ad.tensor(g))
    grads = {k: v.grad.data for k, v in nodes.items()}
    grads.update(x=xt.grad.data, gamma=gt.grad.data, beta=bt.grad.data)
    return y.data, grads


def _call(what, fn):
    """Run fn(); an unexpected exception becomes a GradingError naming the call."""
    try:
        return fn()
    except (NotImplementedError, grading.GradingError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise grading.GradingError(f"{what} raised {type(exc).__name__}: {exc}") from None


@contextlib.contextmanager
def _without_staged(what):
    """Inside the block, calling norm_staged fails: a fused exercise must not use it."""
    global norm_staged
    saved = norm_staged

    def forbidden(*args, **kwargs):
        raise grading.GradingError(
            f"{what} calls norm_staged: write the fused expression instead.")

    norm_staged = forbidden
    try:
        yield
    finally:
        norm_staged = saved


def _random_eps(count, rng):
    """0, 1e-5 or 0.1, but 0.1 when only two numbers are normalized together: then
    the output is +-1 whatever the input (for eps = 0), the gradient is pure
    rounding noise, and nothing can be compared to eleven digits."""
    return 0.1 if count == 2 else float(rng.choice([0.0, 1e-5, 0.1]))


def _check_staged(shape, axis, rng, eps, rtol, atol):
    """norm_staged against the reference, every stage, for a random input."""
    n, d = shape
    x, g = rng.normal(1.0, 2.0, shape), rng.standard_normal(shape)
    gamma, beta = rng.normal(1.0, 0.5, d), rng.standard_normal(d)
    y, grads = _call(f"norm_staged(..., axis={axis})", lambda: norm_staged(
        x.copy(), gamma.copy(), beta.copy(), g.copy(), eps, axis))
    y_ref, ref = _layernorm_reference(x, gamma, beta, g, eps, axis)
    shape = f"{shape}, axis={axis}"
    grading.assert_close(y, y_ref, rtol=rtol, atol=atol, name=f"y for x of shape {shape}")
    if not isinstance(grads, dict) or set(grads) != set(ref):
        raise grading.GradingError(f"grads should be a dict with keys {sorted(ref)}, got "
                                   f"{sorted(grads) if isinstance(grads, dict) else grads}.")
    for key in ("xhat", "inv", "std", "var", "sq", "xc", "mu", "x", "gamma", "beta"):
        grading.assert_close(grads[key], ref[key], rtol=rtol, atol=atol,
                             name=f'grads["{key}"] (x of shape {shape}, random g)')


# %% test="test_norm_staged" points=3
with grading.exercise(1, "norm_staged"):
    # the worked example: x = (1, 2, 4), gamma = 1, beta = 0, eps = 0, g = (1, 0, 0)
    y, grads = norm_staged(np.array([[1.0, 2.0, 4.0]]), np.ones(3), np.zeros(3),
                           np.array([[1.0, 0.0, 0.0]]), eps=0.0)
    grading.assert_close(y, np.array([[-4.0, -1.0, 5.0]]) / np.sqrt(14), rtol=1e-12,
                         name="y of the worked example")
    grading.assert_close(grads["x"], np.array([[6.0, -9.0, 3.0]]) / (7 * np.sqrt(14)),
                         rtol=1e-12, name='grads["x"] of the worked example')
    # every stage, on a random batch, against the reference engine: layer norm, batch norm
    for axis in (1, 0):
        _check_staged((4, 5), axis, np.random.default_rng(0), 1e-5, rtol=1e-10, atol=1e-12)
grading.passed("norm_staged")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(1, 6)), int(_rng.integers(2, 7))), (3, 2), (6, 9)]:
    _check_staged(_shape, 1, _rng, _random_eps(_shape[1], _rng), rtol=1e-10, atol=1e-13)
    _check_staged(_shape[::-1], 0, _rng, _random_eps(_shape[1], _rng), rtol=1e-10, atol=1e-13)


def _staged_inputs(g, x, gamma, beta):
    grads = norm_staged(x, gamma, beta, g, 1e-3, 1)[1]
    return grads["x"], grads["gamma"], grads["beta"]


# the gradients of the inputs also against finite differences (layer norm)
grading.check_vjp(_staged_inputs, lambda x, ga, be: _layernorm_numpy(x, ga, be, 1e-3),
                  [(3, 4), (4,), (4,)], rng=_rng,
                  names=['grads["x"]', 'grads["gamma"]', 'grads["beta"]'])
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Fusing the stages into one expression
#
# The staged version allocates a dozen arrays and is easy to get right.
# Frameworks ship a **fused** backward: one expression for $\bar x$ in
# terms of $\hat x$, $r = 1/\sigma$ and $\bar{\hat x} = g\,\gamma$. To get
# it, take your staged adjoints and substitute them into each other from the
# bottom up:
#
# 1. write $\bar\sigma$, then $\bar v$, in terms of
#    $\sum_j \bar{\hat x}_j\,x_{c,j}$, and rewrite that sum with
#    $x_c = \hat x / r$;
# 2. collect the two contributions to $\bar x_c$ (through `xhat` and through
#    `sq`) into one expression;
# 3. the mean's adjoint subtracts the row mean of $\bar x_c$; use
#    $\sum_j \hat x_j = 0$ to simplify it;
# 4. check the result on the worked example, and check that it has the two
#    properties of section 1 (entries summing to zero, and orthogonal to
#    $\hat x$ when $\epsilon = 0$).
#
# You should end with a single line for $\bar x$ containing two row sums.
# Computing those two sums once per row, instead of a dozen arrays, is what
# makes the fused version faster (measured below).
#
# ### Exercise 2 (2 points): layer norm, fused
#
# Write `layernorm_backward(g, x, gamma, eps)` computing the forward
# quantities it needs and then $\bar x$ with your fused expression. It may not
# call `norm_staged` (the test checks).

# %% solution="layernorm_backward" exact=true
def layernorm_backward(g, x, gamma, eps=1e-5):
    """Backward of layer normalization (each row of x normalized) in one expression.

    g: the upstream gradient dL/dy, (N, D); x: (N, D); gamma: (D,).
    Returns (dx, dgamma, dbeta) with shapes (N, D), (D,), (D,).
    """
    ### BEGIN SOLUTION
    D = x.shape[1]
    xc = x - x.mean(axis=1, keepdims=True)
    inv = 1.0 / np.sqrt((xc ** 2).mean(axis=1, keepdims=True) + eps)
    xhat = xc * inv
    d_xhat = g * gamma
    dx = inv / D * (D * d_xhat - d_xhat.sum(axis=1, keepdims=True)
                    - xhat * (d_xhat * xhat).sum(axis=1, keepdims=True))
    return dx, (g * xhat).sum(axis=0), g.sum(axis=0)
    ### END SOLUTION


# %% test="test_layernorm_backward" points=2
with grading.exercise(2, "layernorm_backward"), _without_staged("layernorm_backward"):
    dx, dgamma, dbeta = layernorm_backward(np.array([[1.0, 0.0, 0.0]]),
                                           np.array([[1.0, 2.0, 4.0]]), np.ones(3), eps=0.0)
    grading.assert_close(dx, np.array([[6.0, -9.0, 3.0]]) / (7 * np.sqrt(14)), rtol=1e-12,
                         name="dx of the worked example")
    grading.check_vjp(lambda g, x, ga, be: layernorm_backward(g, x, ga, 1e-5),
                      lambda x, ga, be: _layernorm_numpy(x, ga, be, 1e-5),
                      [(3, 5), (5,), (5,)], rng=np.random.default_rng(1),
                      reference=lambda x, ga, be: _layernorm_graph(x, ga, be, 1e-5)[0],
                      names=["dx", "dgamma", "dbeta"])
grading.passed("layernorm_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
with _without_staged("layernorm_backward"):
    for _shape in [(int(_rng.integers(1, 6)), int(_rng.integers(2, 7))), (2, 2), (5, 8)]:
        _eps = _random_eps(_shape[1], _rng)
        _x, _g = _rng.normal(-1.0, 3.0, _shape), _rng.standard_normal(_shape)
        _ga, _be = _rng.normal(1.0, 0.5, _shape[1]), _rng.standard_normal(_shape[1])
        _, _ref = _layernorm_reference(_x, _ga, _be, _g, _eps)
        _got = _call("layernorm_backward", lambda: layernorm_backward(_g.copy(), _x.copy(),
                                                                      _ga.copy(), _eps))
        for _k, _r in zip(("x", "gamma", "beta"), _got):
            grading.assert_close(_r, _ref[_k], rtol=1e-10, atol=1e-13,
                                 name=f"d{_k} of layernorm_backward, x of shape {_shape}, "
                                      f"eps = {_eps}")
### END HIDDEN TESTS

# %% [markdown]
# The two versions should agree to rounding, and the fused one should be
# faster. Compared on a batch of 256 rows of 512 features:

# %%
try:
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((256, 512)), rng.standard_normal((256, 512))
    gamma, beta = rng.normal(1.0, 0.2, 512), rng.standard_normal(512)
    staged = norm_staged(x, gamma, beta, g)[1]["x"]
    fused = layernorm_backward(g, x, gamma)[0]
    print(f"largest difference staged vs fused: {np.max(np.abs(staged - fused)):.1e}")
    for name, fn in [("staged", lambda: norm_staged(x, gamma, beta, g)),
                     ("fused", lambda: layernorm_backward(g, x, gamma))]:
        start = time.perf_counter()
        for _ in range(10):
            fn()
        print(f"{name:7s}: {(time.perf_counter() - start) / 10 * 1e3:.2f} ms per call "
              "(forward quantities and backward)")
except NotImplementedError:
    print("Finish exercises 1 and 2 to compare them.")

# %% [markdown]
# ## 3. Batch normalization: training and evaluation mode
#
# Batch normalization normalizes each **feature (column)** over the
# **batch** instead of each example over its features: the same graph with
# the reductions over axis 0. That one change has a consequence layer norm
# does not have: the output for one example depends on the other examples of
# the batch. At test time there may be a single example, so a batch-norm
# layer keeps **running statistics**, exponential moving averages of the
# batch means and variances seen in training,
#
# $$
# m \leftarrow (1-\alpha)\, m + \alpha\, \mu_B, \qquad
# s \leftarrow (1-\alpha)\, s + \alpha\, \tfrac{N}{N-1}\,\sigma_B^2 ,
# $$
#
# with momentum $\alpha$ (0.1 in PyTorch). The batch variance $\sigma^2_B$
# divides by $N$ in the normalization, but the running variance is fed the
# **unbiased** estimate (dividing by $N - 1$), as PyTorch does. In
# **evaluation mode** the layer normalizes with $m$ and $s$ instead:
# $y = \gamma\,(x - m)/\sqrt{s + \epsilon} + \beta$, and the running
# statistics do not change.
#
# In evaluation mode $m$ and $s$ are constants: they do not depend on the
# current batch. So the graph of evaluation mode is much smaller than the
# graph of training mode, and so is its gradient. Derive both.
#
# **Worked example** (one feature, $N = 3$, $\gamma = 1$, $\beta = 0$,
# $\epsilon = 0$, $\alpha = 0.1$, starting from $m = 0$, $s = 1$): the column
# $x = (1, 2, 4)$ is the row of section 1 standing up, so in training mode
# $y = (-4, -1, 5)/\sqrt{14}$, and $g = (1, 0, 0)$ gives
# $\bar x = (6, -9, 3)/(7\sqrt{14})$ again. The running statistics become
# $m = 0.1 \cdot 7/3 \approx 0.2333$ and
# $s = 0.9 + 0.1 \cdot 7/3 \approx 1.1333$ (the unbiased variance is
# $42/18 = 7/3$). In evaluation mode with $m = 0$ and $s = 1$: $y = x$ and
# $\bar x = g$.
#
# **Common mistake:** using the running statistics in training mode, or
# updating them in evaluation mode. Another: differentiating evaluation mode
# with the training-mode formula; it has terms for $\mu$ and $\sigma$ that
# are not there, because $m$ and $s$ do not depend on $x$.
#
# ### Exercise 3 (1 point): batch norm forward
#
# `batchnorm_forward` returns a `cache` (anything you like: a tuple, a
# dict) that your `batchnorm_backward` of exercise 4 receives. It must not
# change its input arrays.

# %% solution="batchnorm_forward"
def batchnorm_forward(x, gamma, beta, running_mean, running_var, training,
                      momentum=0.1, eps=1e-5):
    """Batch normalization of each column of x.

    x: (N, D), N >= 2; gamma, beta, running_mean, running_var: (D,);
    training: True (normalize with the batch mean and the batch variance
    dividing by N; update the running statistics as in the text, the
    variance with its unbiased estimate) or False (normalize with
    running_mean and running_var; return them unchanged).
    Returns (y, new_running_mean, new_running_var, cache): y of shape (N, D),
    the running statistics of shape (D,) (new arrays), and whatever
    batchnorm_backward needs.
    """
    ### BEGIN SOLUTION
    if training:
        n = x.shape[0]
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * inv
    cache = (training, xhat, inv, gamma)
    return gamma * xhat + beta, new_mean, new_var, cache
    ### END SOLUTION


# %%
def _bn_reference(x, gamma, beta, g, mean, var, training, eps):
    """Batch norm through autodiff_ref: (y, dx, dgamma, dbeta)."""
    if training:
        y, grads = _layernorm_reference(x, gamma, beta, g, eps, axis=0)
        return y, grads["x"], grads["gamma"], grads["beta"]
    xt, gt, bt = (ad.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    y = gt * (xt - mean) / np.sqrt(var + eps) + bt
    y.backward(ad.tensor(g))
    return y.data, xt.grad.data, gt.grad.data, bt.grad.data


def _random_bn(shape, rng):
    """A random batch, parameters and running statistics."""
    return (rng.normal(0.5, 2.0, shape), rng.normal(1.0, 0.5, shape[1]),
            rng.standard_normal(shape[1]), rng.standard_normal(shape[1]),
            rng.uniform(0.5, 2.0, shape[1]))


# %% test="test_batchnorm_forward" points=1
with grading.exercise(3, "batchnorm_forward"):
    x, one, zero = np.array([[1.0], [2.0], [4.0]]), np.ones(1), np.zeros(1)
    y, m, s, _ = batchnorm_forward(x.copy(), one, zero, zero.copy(), one.copy(), True, eps=0.0)
    grading.assert_close(y, np.array([[-4.0], [-1.0], [5.0]]) / np.sqrt(14), rtol=1e-12,
                         name="y of the worked example, training mode")
    grading.assert_close(m, [0.7 / 3], rtol=1e-12, name="the new running mean (worked example)")
    grading.assert_close(s, [0.9 + 0.7 / 3], rtol=1e-12,
                         name="the new running variance (worked example: unbiased, 7/3)")
    y, m, s, _ = batchnorm_forward(x.copy(), one, zero, zero.copy(), one.copy(), False, eps=0.0)
    grading.assert_close(y, x, rtol=1e-12, name="y in evaluation mode with m = 0, s = 1")
    grading.assert_close(np.r_[m, s], [0.0, 1.0], rtol=0, atol=0,
                         name="the running statistics after evaluation mode (unchanged)")
grading.passed("batchnorm_forward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _training in (True, False):
    _shape = (int(_rng.integers(2, 7)), int(_rng.integers(1, 6)))
    _x, _ga, _be, _m, _s = _random_bn(_shape, _rng)
    _mom, _eps = float(_rng.uniform(0.05, 0.5)), float(_rng.choice([1e-5, 0.1]))
    _args = [a.copy() for a in (_x, _ga, _be, _m, _s)]
    _y, _m2, _s2, _ = _call("batchnorm_forward", lambda: batchnorm_forward(
        *_args, _training, momentum=_mom, eps=_eps))
    for _a, _b in zip(_args, (_x, _ga, _be, _m, _s)):
        if not np.array_equal(_a, _b):
            raise grading.GradingError("batchnorm_forward changed one of its input arrays.")
    _mean = _x.mean(axis=0) if _training else _m
    _var = _x.var(axis=0) if _training else _s
    _yr = _bn_reference(_x, _ga, _be, np.zeros(_shape), _mean, _var, _training, _eps)[0]
    _mode = "training" if _training else "evaluation"
    grading.assert_close(_y, _yr, rtol=1e-10, atol=1e-12,
                         name=f"y in {_mode} mode, x of shape {_shape}")
    _em = (1 - _mom) * _m + _mom * _x.mean(axis=0) if _training else _m
    _es = (1 - _mom) * _s + _mom * _x.var(axis=0, ddof=1) if _training else _s
    grading.assert_close(_m2, _em, rtol=1e-10, atol=1e-12,
                         name=f"the new running mean in {_mode} mode, momentum {_mom:.3f}")
    grading.assert_close(_s2, _es, rtol=1e-10, atol=1e-12,
                         name=f"the new running variance in {_mode} mode, momentum {_mom:.3f}")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (2 points): batch norm backward, both modes
#
# Write `batchnorm_backward(g, cache)` for the `cache` of your forward pass:
# in training mode a fused expression (section 2 with the reductions down
# the columns: your `norm_staged(..., axis=0)` is the staged version to
# check it against), in evaluation mode the gradient of the smaller graph.
# It may not call `norm_staged`.

# %% solution="batchnorm_backward" exact=true
def batchnorm_backward(g, cache):
    """Backward of batchnorm_forward, in the mode of the call that made cache.

    g: the upstream gradient dL/dy, (N, D); cache: from batchnorm_forward.
    Returns (dx, dgamma, dbeta) with shapes (N, D), (D,), (D,).
    """
    ### BEGIN SOLUTION
    training, xhat, inv, gamma = cache
    d_xhat = g * gamma
    if training:
        n = g.shape[0]
        dx = inv / n * (n * d_xhat - d_xhat.sum(axis=0)
                        - xhat * (d_xhat * xhat).sum(axis=0))
    else:
        dx = d_xhat * inv
    return dx, (g * xhat).sum(axis=0), g.sum(axis=0)
    ### END SOLUTION


# %%
def _check_bn_backward(shape, training, rng, eps, rtol, atol):
    x, gamma, beta, m, s = _random_bn(shape, rng)
    g = rng.standard_normal(shape)
    cache = _call("batchnorm_forward", lambda: batchnorm_forward(
        x.copy(), gamma.copy(), beta.copy(), m.copy(), s.copy(), training, eps=eps)[3])
    got = _call("batchnorm_backward", lambda: batchnorm_backward(g.copy(), cache))
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise grading.GradingError("batchnorm_backward should return (dx, dgamma, dbeta).")
    mean, var = (x.mean(axis=0), x.var(axis=0)) if training else (m, s)
    ref = _bn_reference(x, gamma, beta, g, mean, var, training, eps)[1:]
    mode = "training" if training else "evaluation"
    for name, r, e in zip(("dx", "dgamma", "dbeta"), got, ref):
        grading.assert_close(r, e, rtol=rtol, atol=atol,
                             name=f"{name} in {mode} mode, x of shape {shape}")


# %% test="test_batchnorm_backward" points=2
with grading.exercise(4, "batchnorm_backward", needs=[(3, "batchnorm_forward")]), \
        _without_staged("batchnorm_backward"):
    x, one, zero = np.array([[1.0], [2.0], [4.0]]), np.ones(1), np.zeros(1)
    g = np.array([[1.0], [0.0], [0.0]])
    for training, expected in [(True, np.array([[6.0], [-9.0], [3.0]]) / (7 * np.sqrt(14))),
                               (False, g)]:
        cache = batchnorm_forward(x, one, zero, zero, one, training, eps=0.0)[3]
        grading.assert_close(batchnorm_backward(g.copy(), cache)[0], expected, rtol=1e-12,
                             name=f"dx of the worked example, training={training}")
    for training in (True, False):
        _check_bn_backward((4, 3), training, np.random.default_rng(2), 1e-5, 1e-10, 1e-12)
grading.passed("batchnorm_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
with _without_staged("batchnorm_backward"):
    for _training in (True, False, True, False):
        _shape = (int(_rng.integers(2, 8)), int(_rng.integers(1, 6)))
        _check_bn_backward(_shape, _training, _rng, max(_random_eps(_shape[0], _rng), 1e-5),
                           1e-10, 1e-13)
### END HIDDEN TESTS

# %% [markdown]
# ### A prediction before the run
#
# Take $\gamma = 1$, $\beta = 0$ and the loss $L = \sum_{n,j} y_{nj}$, the
# sum of all outputs of a batch-norm layer, for a random batch.
#
# **Written answer (1 point).** Before running the next cells, predict
# $\bar x$ in training mode and in evaluation mode (running statistics
# $m$, $s$), and explain in one or two sentences why the two differ.

# %% [markdown] answer="predict_bn_sum" points=1
# ### BEGIN SOLUTION
# **Model answer.** In training mode $\bar x = 0$ exactly: each column of
# $\hat x$ has mean zero by construction, so with $\gamma = 1$, $\beta = 0$
# the sum of the outputs is $0$ for *every* input; $L$ is constant and its
# gradient vanishes (the fused formula gives $r/N\,(N\cdot 1 - N - \hat x
# \sum_n \hat x_n) = 0$). In evaluation mode $y = (x - m)/\sqrt{s+\epsilon}$
# is an affine function of $x$ with constant $m$, $s$, so every entry of
# $\bar x$ in column $j$ is $1/\sqrt{s_j + \epsilon}$, nonzero. The
# difference: in training the mean and variance depend on the batch, and
# moving all of a column's inputs together moves the mean along with them;
# in evaluation they are fixed numbers.
#
# **Rubric.** 1 point: both predictions right (zero; $1/\sqrt{s+\epsilon}$ per
# column, or "constant nonzero") with a reason that names the dependence of
# the batch statistics on $x$ (or that the column sums of $\hat x$ are
# always 0). 0.5: both predictions right without a reason, or one right with
# a reason.
# ### END SOLUTION

# %%
try:
    rng = np.random.default_rng(3)
    x, m, s = rng.normal(1.0, 2.0, (5, 3)), rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    for training in (True, False):
        y, _, _, cache = batchnorm_forward(x, np.ones(3), np.zeros(3), m, s, training)
        dx = batchnorm_backward(np.ones_like(y), cache)[0]
        print(f"training={training!s:5}: L = {y.sum():+.3e}, dL/dx =\n{dx.round(6)}")
    print("1 / sqrt(s + eps) =", (1 / np.sqrt(s + 1e-5)).round(6))
    # and the fused training-mode backward against the staged one, for a random g
    g, gamma, beta = rng.standard_normal((5, 3)), rng.normal(1.0, 0.5, 3), np.zeros(3)
    fused = batchnorm_backward(g, batchnorm_forward(x, gamma, beta, m, s, True)[3])[0]
    staged = norm_staged(x, gamma, beta, g, 1e-5, axis=0)[1]["x"]
    print(f"batchnorm_backward vs norm_staged(axis=0): largest difference "
          f"{np.max(np.abs(fused - staged)):.1e}")
except NotImplementedError:
    print("Finish exercises 1, 3 and 4 to see the answer.")

# %% [markdown]
# ## 4. Embedding lookup and its adjoint
#
# A language model starts by turning each token id into a vector: row
# `idx` of an embedding table $E$ of shape $(V, D)$ (vocabulary size $V$).
# For a batch of token ids `idx` of shape $(B, T)$ the lookup `E[idx]`
# **gathers** rows into an array of shape $(B, T, D)$. One entry:
# $\text{out}_{bt,:} = E_{\text{idx}_{bt},:}$.
#
# Follow the recipe of notebook 05: row $v$ of $E$ reaches every position
# $(b, t)$ where $\text{idx}_{bt} = v$, with derivative $1$. So
# $\bar E_v$ is the **sum** of $g_{bt}$ over those positions: the adjoint
# of a gather is a **scatter-add**. A token that occurs three times in the
# batch gets three contributions, and a token that does not occur gets
# zero.
#
# **Worked example.** $V = 5$, $D = 2$, `idx = [[1, 3], [1, 1]]`,
# $g = \bigl[[(1, 2), (3, 4)], [(5, 6), (7, 8)]\bigr]$: row 1 of $\bar E$ is
# $(1, 2) + (5, 6) + (7, 8) = (13, 16)$, row 3 is $(3, 4)$, rows 0, 2 and 4
# are zero.
#
# **Common mistake:** `dE[idx] += g`. NumPy evaluates this as
# `dE[idx] = dE[idx] + g`: it reads each row once, adds, and writes back, so
# for a repeated index the *last* write wins and the other contributions are
# lost (no error, no warning). The unbuffered scatter-add is `np.add.at`:

# %%
dE_wrong = np.zeros((5, 2))
idx = np.array([[1, 3], [1, 1]])
g = np.arange(1.0, 9.0).reshape(2, 2, 2)
dE_wrong[idx] += g
dE_right = np.zeros((5, 2))
np.add.at(dE_right, idx, g)
print("dE[idx] += g        gives row 1 =", dE_wrong[1], " (the last write won)")
print("np.add.at(dE, idx, g) gives row 1 =", dE_right[1])
E = ad.tensor(np.zeros((5, 2)), requires_grad=True)
E[idx].backward(ad.tensor(g))
print("autodiff_ref        gives row 1 =", E.grad.data[1])

# %% [markdown]
# Models often reserve one id for **padding** (filling short sentences up
# to the batch length). Its vector should never be trained, so its row of
# $\bar E$ is set to zero (PyTorch's `padding_idx`).
#
# ### Exercise 5 (1 point): the embedding backward

# %% solution="embedding_backward" exact=true
def embedding_backward(g, idx, num_embeddings, padding_idx=None):
    """Gradient of the embedding table for the lookup out = E[idx].

    g: the upstream gradient dL/dout, shape idx.shape + (D,); idx: an integer
    array of any shape with values in [0, num_embeddings); padding_idx: None
    or one id whose row gets no gradient.
    Returns dE of shape (num_embeddings, D).
    """
    ### BEGIN SOLUTION
    D = g.shape[-1]
    dE = np.zeros((num_embeddings, D))
    np.add.at(dE, idx.ravel(), g.reshape(idx.size, D))
    if padding_idx is not None:
        dE[padding_idx] = 0.0
    return dE
    ### END SOLUTION


# %%
def _embedding_reference(g, idx, v, padding_idx=None):
    E = ad.tensor(np.zeros((v, g.shape[-1])), requires_grad=True)
    E[idx].backward(ad.tensor(g))
    dE = E.grad.data.copy()
    if padding_idx is not None:
        dE[padding_idx] = 0.0
    return dE


# %% test="test_embedding_backward" points=1
with grading.exercise(5, "embedding_backward"):
    idx, g = np.array([[1, 3], [1, 1]]), np.arange(1.0, 9.0).reshape(2, 2, 2)
    expected = np.array([[0, 0], [13, 16], [0, 0], [3, 4], [0, 0]], dtype=float)
    grading.assert_close(embedding_backward(g.copy(), idx.copy(), 5), expected, rtol=1e-12,
                         name="embedding_backward of the worked example")
    expected[1] = 0.0
    grading.assert_close(embedding_backward(g.copy(), idx.copy(), 5, padding_idx=1), expected,
                         rtol=1e-12, name="the worked example with padding_idx=1")
grading.passed("embedding_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
# D (1 or 2) differs from the other axes of g (3 or more), so they cannot be confused
for _ishape in [(int(_rng.integers(1, 5)), int(_rng.integers(3, 7))), (9,), (2, 3, 4)]:
    _v, _d = int(_rng.integers(2, 6)), int(_rng.integers(1, 3))
    _idx = _rng.integers(0, _v, _ishape)
    _g = _rng.standard_normal(_ishape + (_d,))
    for _pad in (None, int(_rng.integers(0, _v))):
        grading.assert_close(_call("embedding_backward", lambda: embedding_backward(
                                 _g.copy(), _idx.copy(), _v, padding_idx=_pad)),
                             _embedding_reference(_g, _idx, _v, _pad), rtol=1e-12, atol=1e-14,
                             name=f"embedding_backward for idx of shape {_ishape}, "
                                  f"V = {_v}, D = {_d}, padding_idx = {_pad}")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Broadcasting in both arguments: `x ** y` and batched matrix products
#
# Notebook 05 showed that an input broadcast in the forward pass gets its
# gradient **summed** over the broadcast axes (leading axes it lacks, and
# axes where it has size 1). Two operations where this matters and both
# arguments are broadcast.
#
# **Power with a tensor exponent.** $z = x^y$ element-wise, with $x > 0$
# (the domain where $x^y$ is real and differentiable in $y$). Derive
# $\partial z/\partial x$ (the power rule, with $y$ held fixed) and
# $\partial z/\partial y$ (write $x^y = e^{y \ln x}$). Then sum each
# gradient down to its input's shape. **Worked numbers:** $x = 2$, $y = 3$:
# $z = 8$, $\partial z/\partial x = 12$, $\partial z/\partial y = 8\ln 2
# \approx 5.5452$. With $x$ of shape $(3, 1)$ and $y$ of shape $(1, 4)$ the
# result is $(3, 4)$: each $x_i$ is used 4 times, each $y_j$ 3 times.
#
# ### Exercise 6 (1 point): power backward

# %% solution="pow_backward" exact=true
def pow_backward(g, x, y):
    """Backward of z = x ** y with NumPy broadcasting of x and y.

    g: the upstream gradient dL/dz (the broadcast shape); x: positive
    array; y: array; the shapes of x and y broadcast together.
    Returns (dx, dy) with the shapes of x and y.
    """
    ### BEGIN SOLUTION
    z = x ** y
    return unbroadcast(g * y * x ** (y - 1), x.shape), unbroadcast(g * z * np.log(x), y.shape)


def unbroadcast(grad, shape):
    """Sum grad down to shape (undo NumPy broadcasting)."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1)
    return grad.sum(axis=stretched, keepdims=True)
    ### END SOLUTION


# %% test="test_pow_backward" points=1
with grading.exercise(6, "pow_backward"):
    dx, dy = pow_backward(np.array(1.0), np.array(2.0), np.array(3.0))
    grading.assert_close(dx, 12.0, rtol=1e-12, name="dx of 2 ** 3")
    grading.assert_close(dy, 8 * np.log(2), rtol=1e-12, name="dy of 2 ** 3")
    grading.check_vjp(pow_backward, lambda a, b: a ** b, [(3, 1), (1, 4)], positive=True,
                      reference=lambda a, b: a ** b, rng=np.random.default_rng(4),
                      names=["dx of pow_backward(g, x, y)", "dy of pow_backward(g, x, y)"])
grading.passed("pow_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _sx, _sy in [((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((2, 1, 3), (4, 1)), ((), (2, 3)),
                 ((2, 3), ()), ((2, 3), (2, 3))]:
    _x, _y = _rng.uniform(0.3, 2.5, _sx), _rng.uniform(-2.0, 2.0, _sy)
    _g = _rng.standard_normal(np.broadcast_shapes(_sx, _sy))
    _xt, _yt = ad.tensor(_x, requires_grad=True), ad.tensor(_y, requires_grad=True)
    (_xt ** _yt).backward(ad.tensor(_g))
    _got = _call("pow_backward", lambda: pow_backward(_g.copy(), _x.copy(), _y.copy()))
    for _name, _r, _e in zip(("dx", "dy"), _got, (_xt.grad.data, _yt.grad.data)):
        grading.assert_close(_r, _e, rtol=1e-10, atol=1e-13,
                             name=f"{_name} of pow_backward, x {_sx}, y {_sy}")
### END HIDDEN TESTS

# %% [markdown]
# **Batched matrix products.** `a @ b` with arrays of more than two axes
# multiplies the last two axes as matrices and **broadcasts the leading
# (batch) axes**. Multi-head attention multiplies, for instance, a batch of
# queries of shape $(B, 1, n, k)$ (the same for every head) with per-head
# weights of shape $(1, H, k, m)$: the product has shape $(B, H, n, m)$.
# For each batch position the rule of notebook 05 holds, $\bar A = \bar Z
# B^\top$ and $\bar B = A^\top \bar Z$ (transposing the *last two* axes);
# then each gradient is summed over the batch axes along which its input was
# broadcast.
#
# **Worked example.** $a = (2)$ of shape $(1, 1)$ times $b$ of shape
# $(3, 1, 1)$ holding $1, 2, 3$: $z = (2, 4, 6)$ of shape $(3, 1, 1)$. With
# $g = 1$ everywhere, $\bar a = 1 + 2 + 3 = 6$ (shape $(1, 1)$: $a$ was used
# by all three products) and $\bar b = (2, 2, 2)$.
#
# NumPy's `@` also takes a **vector** on either side: a 1-D `a` of shape
# $(k,)$ is used as the one-row matrix $(1, k)$, a 1-D `b` as the one-column
# matrix $(k, 1)$, and that added axis is dropped from the result (so
# $(k,)$ `@` $(2, k, m)$ has shape $(2, m)$, and vector `@` vector is a
# number). In the backward pass, put the dropped axis back into $g$, apply
# the matrix rule, sum away the broadcast, and remove the added axis from
# the vector's gradient.
#
# **Common mistake:** `.T` on a stack of matrices reverses *all* axes
# (shape $(B, H, n, k)$ becomes $(k, n, H, B)$); transpose only the last two
# (`np.swapaxes(a, -1, -2)`).
#
# ### Exercise 7 (1 point): batched matmul backward
#
# If you wrote a helper for exercise 6 that sums a gradient down to a shape,
# use it again here.

# %% solution="bmm_backward" exact=true
def bmm_backward(g, a, b):
    """Backward of z = a @ b with NumPy's rules for matmul.

    a: (..., n, k) or a vector (k,); b: (..., k, m) or a vector (k,); the
    leading (batch) axes broadcast together, so z has shape batch + (n, m),
    without the n axis if a is a vector and without the m axis if b is one;
    g: the upstream gradient, z's shape.
    Returns (da, db) with the shapes of a and b.
    """
    ### BEGIN SOLUTION
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g[..., None] if b.ndim == 1 else g
    g2 = g2[..., None, :] if a.ndim == 1 else g2
    da = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape)
    db = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape)
    return da.reshape(a.shape), db.reshape(b.shape)
    ### END SOLUTION


# %% test="test_bmm_backward" points=1
with grading.exercise(7, "bmm_backward"):
    da, db = bmm_backward(np.ones((3, 1, 1)), np.array([[2.0]]),
                          np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1))
    grading.assert_close(da, [[6.0]], rtol=1e-12, name="da of the worked example")
    grading.assert_close(db, np.full((3, 1, 1), 2.0), rtol=1e-12, name="db of the worked example")
    # the attention shapes (B, 1, n, k) @ (1, H, k, m), and a vector times a stack
    for sa, sb in [((2, 1, 3, 4), (1, 3, 4, 2)), ((4,), (2, 4, 3))]:
        grading.check_vjp(bmm_backward, np.matmul, [sa, sb], reference=lambda a, b: a @ b,
                          rng=np.random.default_rng(5),
                          names=[f"da of bmm_backward, a {sa} @ b {sb}",
                                 f"db of bmm_backward, a {sa} @ b {sb}"])
grading.passed("bmm_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
_n, _k, _m = (int(s) for s in _rng.choice(np.arange(2, 7), 3, replace=False))
for _sa, _sb in [((2, 1, _n, _k), (1, 3, _k, _m)), ((_n, _k), (4, _k, _m)),
                 ((5, _n, _k), (_k, _m)), ((2, 3, _n, _k), (3, _k, _m)),
                 ((3, 1, _n, _k), (2, _k, _m)), ((_k, _k), (2, _k, _k)),
                 ((_k,), (2, _k, _m)), ((3, _n, _k), (_k,)), ((_k,), (_k,)), ((_k,), (_k, _m)),
                 ((1, _n, _k), (2, 1, _k, _m))]:
    grading.check_vjp(bmm_backward, np.matmul, [_sa, _sb], reference=lambda a, b: a @ b,
                      rng=_rng, rtol=1e-10, atol=1e-13, trials=1,
                      names=[f"da of bmm_backward, a {_sa} @ b {_sb}",
                             f"db of bmm_backward, a {_sa} @ b {_sb}"])
### END HIDDEN TESTS

# %% [markdown]
# ### Attention, by composition
#
# Scaled dot-product attention mixes values $V$ with weights that compare
# queries $Q$ with keys $K$ (the last two axes are matrices; all leading
# axes are batch axes):
#
# $$
# S = \frac{Q K^\top}{\sqrt d}, \qquad P = \operatorname{softmax}(S)
# \ \text{(along the last axis)}, \qquad O = P\,V ,
# $$
#
# with $Q$ of shape $(\dots, n, d)$ ($n$ queries), $K$ of shape
# $(\dots, m, d)$ and $V$ of shape $(\dots, m, d_v)$ ($m$ keys and values).
# In **multi-query attention** (used to make large language models cheaper
# to run) the $H$ heads have their own queries, $(B, H, n, d)$, but **share**
# one set of keys and values, $(B, 1, m, d)$ and $(B, 1, m, d_v)$: a
# broadcast over the head axis.
#
# No new rule is needed: stage the forward pass (three lines), and walk it
# backwards with the rules you already have: `bmm_backward` for the two
# products (for $QK^\top$, differentiate with respect to $K^\top$ and
# transpose the last two axes back), the softmax VJP of notebook 05 along
# the last axis, and the constant factor $1/\sqrt d$. The broadcast over
# heads is taken care of by `bmm_backward`.
#
# **Worked example.** With a single key ($m = 1$) every softmax row is
# $(1)$ whatever the scores, so $O = V$ (copied to every query):
# $\bar Q = 0$, $\bar K = 0$, and $\bar V$ is the sum of $g$ over the
# queries (and over the heads that share it).
#
# **Common mistake:** forgetting the factor $1/\sqrt d$ on the way back
# (the tests say "off by a constant factor"), or returning the gradient of
# $K^\top$ instead of $K$.
#
# ### Exercise 8 (2 points): attention backward
#
# `softmax` (along the last axis, stable) is given in the next cell. Use
# your `bmm_backward`.

# %%
def softmax(s):
    """Softmax along the last axis, shifted by the row maximum (no overflow)."""
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def attention(q, k, v):
    """softmax(q @ k^T / sqrt(d)) @ v, batch axes broadcast (NumPy forward)."""
    return softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])) @ v


# %% solution="attention_backward" exact=true
def attention_backward(g, q, k, v):
    """Backward of attention(q, k, v) = softmax(q @ k^T / sqrt(d)) @ v.

    q: (..., n, d); k: (..., m, d); v: (..., m, dv); their batch axes
    broadcast together (for multi-query attention k and v have a head axis of
    size 1); g: the upstream gradient, shape batch + (n, dv).
    Returns (dq, dk, dv) with the shapes of q, k and v.
    """
    ### BEGIN SOLUTION
    scale = 1.0 / np.sqrt(q.shape[-1])
    kT = np.swapaxes(k, -1, -2)
    p = softmax(q @ kT * scale)
    dp, dv = bmm_backward(g, p, v)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq, dkT = bmm_backward(ds * scale, q, kT)
    return dq, np.swapaxes(dkT, -1, -2), dv
    ### END SOLUTION


# %%
def _attention_graph(q, k, v):
    """The same attention from ad operations, for the reference gradients."""
    return ad.softmax(q @ k.transpose(-1, -2) / np.sqrt(q.shape[-1])) @ v


# %% test="test_attention_backward" points=2
with grading.exercise(8, "attention_backward", needs=[(7, "bmm_backward")]):
    # one key: O = V whatever q and k, so dq = dk = 0 and dv sums g over the 3 queries
    rng = np.random.default_rng(9)
    q, k, v, g = (rng.standard_normal(s) for s in [(3, 2), (1, 2), (1, 4), (3, 4)])
    dq, dk, dv = attention_backward(g, q, k, v)
    grading.assert_close(dq, np.zeros((3, 2)), atol=1e-12, name="dq with a single key")
    grading.assert_close(dk, np.zeros((1, 2)), atol=1e-12, name="dk with a single key")
    grading.assert_close(dv, g.sum(axis=0, keepdims=True), rtol=1e-12, name="dv with a single key")
    # multi-query attention: B = 2, H = 3 heads sharing k and v
    shapes = [(2, 3, 4, 5), (2, 1, 6, 5), (2, 1, 6, 3)]
    grading.check_vjp(attention_backward, attention, shapes, reference=_attention_graph,
                      rng=np.random.default_rng(10), names=[f"d{x} of attention_backward, "
                      f"q {shapes[0]}, k {shapes[1]}, v {shapes[2]}" for x in "qkv"])
grading.passed("attention_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
_n, _m, _d, _dv = (int(s) for s in _rng.integers(2, 6, 4))
for _shapes in [[(2, 3, _n, _d), (2, 1, _m, _d), (2, 1, _m, _dv)],
                [(_n, _d), (_m, _d), (_m, _dv)],
                [(3, _n, _d), (_m, _d), (3, _m, _dv)]]:
    grading.check_vjp(attention_backward, attention, _shapes, reference=_attention_graph,
                      rng=_rng, rtol=1e-10, atol=1e-12, trials=1,
                      names=[f"d{_x} of attention_backward, q {_shapes[0]}, k {_shapes[1]}, "
                             f"v {_shapes[2]}" for _x in "qkv"])
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Debugging a custom Function
#
# Here is a custom `ad.Function` (notebook 07) for a small residual block
# with batch centering:
#
# $$
# y = x + (x - \mathbf 1\mu^\top)\, W, \qquad \mu = \tfrac1N \textstyle\sum_n x_{n,:}^\top,
# $$
#
# with a batch $x$ of shape $(N, D)$, a square weight $W$ of shape
# $(D, D)$ and $\mathbf 1$ a column of $N$ ones; $x - \mathbf 1\mu^\top$
# (in code `x - x.mean(axis=0, keepdims=True)`) subtracts the batch mean of
# each feature, the first half of batch norm. Its `backward` has **three bugs**. Each one is a classic:
# none of them raises an error, and with a square $W$ every gradient even
# has the right shape.

# %%
class BuggyCenteredResidual(ad.Function):
    """y = x + (x - mean over the batch of x) @ W, for x (N, D) and W (D, D)."""

    @staticmethod
    def forward(ctx, x, W):
        ctx.save_for_backward(x, W)
        xc = x.data - x.data.mean(axis=0, keepdims=True)
        return x.data + xc @ W.data

    @staticmethod
    def backward(ctx, grad_output):
        x, W = ctx.saved_tensors
        n = x.shape[0]
        xc = x - x.mean(axis=0, keepdims=True)
        grad_x = grad_output                    # the residual path y = x + ...
        grad_xc = grad_output @ W.T             # through xc @ W
        grad_mean = -grad_xc / n                # through the batch mean
        grad_x = grad_xc + grad_mean
        grad_W = grad_output.T @ xc
        return grad_x, grad_W


# %% [markdown]
# Your tools: `ad.gradcheck` compares the whole Jacobian with finite
# differences and stops at the first disagreement. To look at one input at a
# time, give only that input `requires_grad=True`. `explain(Fn)` below
# compares the gradient of each input with finite differences for a random
# upstream gradient and prints the grading helper's diagnosis (a transpose,
# a factor, a missing sum, ...). Use a scratch cell to test hypotheses: a
# patched copy of the class (`class Try(BuggyCenteredResidual)` with a new
# `backward`) can be checked the same way.

# %%
def explain(fn_class, shape=(4, 3), seed=0):
    """For each input of fn_class.apply(x, W), x of `shape` and W square, print
    whether its gradient matches finite differences and, if not, why."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape), rng.standard_normal((shape[1], shape[1]))]
    g = rng.standard_normal(shape)
    expected = grading.numerical_vjp(
        lambda *a: fn_class.apply(*(ad.tensor(v) for v in a)).data, arrays, g)
    for i, name in enumerate(("x", "W")):
        inputs = [ad.tensor(a, requires_grad=(j == i)) for j, a in enumerate(arrays)]
        fn_class.apply(*inputs).backward(ad.tensor(g))
        problem = grading.diagnose(inputs[i].grad, expected[i], rtol=1e-5, atol=1e-7,
                                   name=f"the gradient of {name}")
        print(f"{name}: {problem or 'matches finite differences'}")


x = ad.tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
W = ad.tensor(np.random.default_rng(2).standard_normal((3, 3)), requires_grad=True)
try:
    ad.gradcheck(BuggyCenteredResidual.apply, (x, W))
except ad.GradcheckError as error:
    print("gradcheck:", str(error).splitlines()[0], "\n")
explain(BuggyCenteredResidual)

# %% scratch=true
# Try hypotheses here.

# %% [markdown]
# ### Exercise 9 (2 points): fix the Function
#
# Write `CenteredResidual`: the same `forward` (inherited), and a `backward`
# with the three bugs fixed (copy the buggy `backward` into the answer cell
# and correct it). Like the buggy version, it may compute with Tensor
# operations on `grad_output` and the saved tensors (and `ad.tensor`,
# `ad.Tensor`), or with NumPy on their `.data`. The test runs `ad.gradcheck` on it and compares
# it with the same function composed from `ad` operations, on random shapes.

# %% solution="centered_residual" allow="Function,Tensor,tensor"
class CenteredResidual(BuggyCenteredResidual):
    """BuggyCenteredResidual with a correct backward: returns (grad_x, grad_W)
    with the shapes (N, D) and (D, D) of x and W."""

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        x, W = ctx.saved_tensors
        n = x.shape[0]
        xc = x - x.mean(axis=0, keepdims=True)
        grad_x = grad_output
        grad_xc = grad_output @ W.T
        grad_mean = -grad_xc.sum(axis=0, keepdims=True) / n
        grad_x = grad_x + grad_xc + grad_mean
        grad_W = xc.T @ grad_output
        return grad_x, grad_W
        ### END SOLUTION


# %%
def _check_residual(shape, rng, rtol, atol):
    x, W = rng.standard_normal(shape), rng.standard_normal((shape[1], shape[1]))
    g = rng.standard_normal(shape)
    xs = [ad.tensor(x, requires_grad=True), ad.tensor(W, requires_grad=True)]
    refs = [ad.tensor(x, requires_grad=True), ad.tensor(W, requires_grad=True)]
    _call("CenteredResidual", lambda: CenteredResidual.apply(*xs).backward(ad.tensor(g)))
    (refs[0] + (refs[0] - refs[0].mean(axis=0, keepdims=True)) @ refs[1]).backward(ad.tensor(g))
    for name, t, r in zip(("x", "W"), xs, refs):
        grading.assert_close(t.grad, r.grad, rtol=rtol, atol=atol,
                             name=f"the gradient of {name}, x of shape {shape}, random "
                                  "upstream gradient")


# %% test="test_centered_residual" points=2
with grading.exercise(9, "CenteredResidual.backward"):
    _check_residual((4, 3), np.random.default_rng(6), 1e-10, 1e-12)
    x = ad.tensor(np.random.default_rng(7).standard_normal((5, 2)), requires_grad=True)
    W = ad.tensor(np.random.default_rng(8).standard_normal((2, 2)), requires_grad=True)
    if not _call("ad.gradcheck(CenteredResidual.apply, (x, W))",
                 lambda: ad.gradcheck(CenteredResidual.apply, (x, W), raise_exception=False)):
        raise grading.GradingError("ad.gradcheck(CenteredResidual.apply, (x, W)) fails.")
grading.passed("CenteredResidual")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(2, 7)), int(_rng.integers(2, 5))), (1, 3), (6, 1)]:
    _check_residual(_shape, _rng, 1e-10, 1e-12)
### END HIDDEN TESTS

# %% [markdown]
# **Written answer (1 point).** Name the three bugs: for each, the line, what
# was wrong, the correct line, and which check pointed you to it.

# %% [markdown] answer="name_the_bugs" points=1
# ### BEGIN SOLUTION
# **Model answer.**
# 1. `grad_W = grad_output.T @ xc` is **transposed**: $y$ contains
#    $x_c W$, so $\bar W = x_c^\top \bar y$ (`xc.T @ grad_output`). With a
#    square $W$ the shape hides it; `explain` says "the gradient of W is
#    transposed", and gradcheck with only `W` requiring a gradient fails.
# 2. `grad_mean = -grad_xc / n` is **missing the sum over the broadcast
#    axis**: the mean $\mu$ (shape $(1, D)$) was broadcast to all $N$ rows,
#    so its adjoint is $-\sum_n \bar x_{c,n}$, and each row of $x$ gets
#    $1/N$ of it: `-grad_xc.sum(axis=0, keepdims=True) / n`.
# 3. `grad_x = grad_xc + grad_mean` **assigns where it should accumulate**:
#    $x$ has two consumers (the residual path and the centering), and the
#    `=` throws away the residual's contribution `grad_output`; it should be
#    `grad_x = grad_x + grad_xc + grad_mean` (or `+=`). Found with gradcheck
#    on `x` alone, and by the fact that after fixing bug 2 the error of
#    `grad_x` is exactly the upstream gradient.
#
# **Rubric.** 1 point: all three bugs located and named (transpose, missing
# sum over the batch axis / broadcast, overwriting instead of accumulating);
# 0.5 for two of them. The "which check" part is not required for full
# marks.
# ### END SOLUTION

# %% [markdown]
# ## 7. Minibatch SGD on real data
#
# Time to train. `sklearn.datasets.load_digits` ships with scikit-learn (no
# download): 1,797 grey-scale images of handwritten digits, 8×8 pixels with
# values 0 to 16, labelled 0 to 9. We scale the pixels to $[0, 1]$, flatten
# each image into 64 numbers, and split the images at random (fixed seed)
# into 1,297 for **training** and 500 for **validation**: the validation set
# is never used to compute a gradient, only to measure how well the model
# does on images it has not seen.

# %%
digits = load_digits()
X_all, y_all = digits.data / 16.0, digits.target
order = np.random.default_rng(0).permutation(len(y_all))
X_train, y_train = X_all[order[:1297]], y_all[order[:1297]]
X_val, y_val = X_all[order[1297:]], y_all[order[1297:]]
print("training:", X_train.shape, " validation:", X_val.shape,
      " images per class in training:", np.bincount(y_train))

fig, axes = plt.subplots(1, 10, figsize=(10, 1.6))
for digit, ax in enumerate(axes):
    ax.imshow(X_train[y_train == digit][0].reshape(8, 8), cmap="gray_r")
    ax.set_title(f"label {digit}", fontsize=9)
    ax.axis("off")
fig.suptitle("One training image per class (8×8 pixels)", y=1.05)
plt.show()

# %% [markdown]
# The model is the network of notebook 06, for a batch of rows: a hidden
# layer of ReLUs and a softmax output,
#
# $$
# z = X W_1 + b_1,\quad h = \operatorname{ReLU}(z),\quad
# \theta = h W_2 + b_2,\quad J = \frac1B\sum_{n} \operatorname{CE}(y_n,
# \operatorname{softmax}(\theta_n)).
# $$
#
# The forward pass and the evaluation (mean cross-entropy and accuracy) are
# given:

# %%
def init_params(hidden=32, seed=0, n_in=64, n_out=10):
    """Weights ~ N(0, 1/fan_in), biases 0."""
    rng = np.random.default_rng(seed)
    return {"W1": rng.standard_normal((n_in, hidden)) / np.sqrt(n_in), "b1": np.zeros(hidden),
            "W2": rng.standard_normal((hidden, n_out)) / np.sqrt(hidden), "b2": np.zeros(n_out)}


def mlp_forward(params, X):
    """Returns (logits, z, h): logits (B, 10), pre-activations z and hidden h (B, hidden)."""
    z = X @ params["W1"] + params["b1"]
    h = np.maximum(z, 0.0)
    return h @ params["W2"] + params["b2"], z, h


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def evaluate(params, X, y):
    """(mean cross-entropy, accuracy) of the model on X, y, without weight decay."""
    logits = mlp_forward(params, X)[0]
    return (-log_softmax(logits)[np.arange(len(y)), y].mean(),
            float(np.mean(logits.argmax(axis=1) == y)))


loss, accuracy = evaluate(init_params(), X_val, y_val)
print(f"untrained: loss {loss:.4f} (log 10 = {np.log(10):.4f}), accuracy {accuracy:.3f}")

# %% [markdown]
# **Weight decay.** A large network can fit the training images perfectly,
# noise included, and then do worse on new ones (**overfitting**). The
# oldest cure is to penalize large weights: minimize
#
# $$
# J_\lambda = J + \frac{\lambda}{2}\bigl(\lVert W_1\rVert^2 + \lVert W_2\rVert^2\bigr),
# $$
#
# with $\lVert W\rVert^2 = \sum_{ij} W_{ij}^2$ and a small $\lambda \ge 0$
# (the biases are not penalized). Derive what the penalty adds to
# $\bar W_1$ and $\bar W_2$, and what an SGD step $W \leftarrow W - \eta\,\bar
# W$ then does to a weight that gets no gradient from the data. That is
# where the name comes from.
#
# ### Exercise 10 (2 points): loss and gradients with weight decay

# %% solution="loss_and_grads" exact=true
def loss_and_grads(params, X, y, weight_decay=0.0):
    """The penalized loss J_lambda of a minibatch and its gradients.

    params: dict with "W1" (64, H), "b1" (H,), "W2" (H, 10), "b2" (10,);
    X: (B, 64); y: (B,) integer labels; weight_decay: lambda >= 0.
    Returns (loss, grads): loss the number J_lambda (mean cross-entropy over
    the batch plus the penalty), grads a dict with the same keys as params
    holding dJ_lambda / d(parameter), each with its parameter's shape.
    Does not modify params.
    """
    ### BEGIN SOLUTION
    B = X.shape[0]
    logits, z, h = mlp_forward(params, X)
    logp = log_softmax(logits)
    W1, W2 = params["W1"], params["W2"]
    penalty = 0.5 * weight_decay * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    loss = -logp[np.arange(B), y].mean() + penalty
    d_logits = np.exp(logp)
    d_logits[np.arange(B), y] -= 1.0
    d_logits /= B
    d_h = d_logits @ W2.T
    d_z = d_h * (z > 0)
    grads = {"W2": h.T @ d_logits + weight_decay * W2, "b2": d_logits.sum(axis=0),
             "W1": X.T @ d_z + weight_decay * W1, "b1": d_z.sum(axis=0)}
    return loss, grads
    ### END SOLUTION


# %%
def _loss_reference(params, X, y, weight_decay):
    """The same loss composed from ad operations: (loss, {name: gradient})."""
    p = {k: ad.tensor(v, requires_grad=True) for k, v in params.items()}
    logits = (X @ p["W1"] + p["b1"]).relu() @ p["W2"] + p["b2"]
    loss = ad.cross_entropy(logits, y) + 0.5 * weight_decay * (
        (p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())
    loss.backward()
    return loss.item(), {k: v.grad.data for k, v in p.items()}


def _check_loss(params, X, y, wd, rtol, atol, what):
    copies = {k: v.copy() for k, v in params.items()}
    loss, grads = _call("loss_and_grads", lambda: loss_and_grads(copies, X.copy(), y.copy(), wd))
    if any(not np.array_equal(copies[k], params[k]) for k in params):
        raise grading.GradingError("loss_and_grads modified params: compute new arrays.")
    ref_loss, ref = _loss_reference(params, X, y, wd)
    grading.assert_close(loss, ref_loss, rtol=rtol, atol=atol, name=f"the loss ({what})")
    if not isinstance(grads, dict) or set(grads) != set(ref):
        raise grading.GradingError(f"grads should be a dict with the keys {sorted(ref)}.")
    for k in ("W1", "b1", "W2", "b2"):
        grading.assert_close(grads[k], ref[k], rtol=rtol, atol=atol, name=f'grads["{k}"] ({what})')


# %% test="test_loss_and_grads" points=2
with grading.exercise(10, "loss_and_grads"):
    loss, grads = loss_and_grads(init_params(seed=1), X_train[:5], y_train[:5], 0.0)
    grading.assert_close(loss, _loss_reference(init_params(seed=1), X_train[:5], y_train[:5],
                                               0.0)[0], rtol=1e-12, name="the loss of 5 images")
    for wd in (0.0, 0.1):
        _check_loss(init_params(hidden=6, seed=2), X_train[:8], y_train[:8], wd, 1e-10, 1e-12,
                    f"8 images, hidden 6, weight_decay {wd}")
grading.passed("loss_and_grads")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _b, _h = int(_rng.integers(1, 20)), int(_rng.integers(2, 12))
    _p = init_params(hidden=_h, seed=int(_rng.integers(1000)))
    _p = {k: v + 0.1 * _rng.standard_normal(v.shape) for k, v in _p.items()}
    _rows = _rng.choice(len(y_train), _b, replace=False)
    _wd = float(_rng.choice([0.0, _rng.uniform(1e-4, 1.0)]))
    _check_loss(_p, X_train[_rows], y_train[_rows], _wd, 1e-10, 1e-12,
                f"{_b} random images, hidden {_h}, weight_decay {_wd:.4g}")
### END HIDDEN TESTS

# %% [markdown]
# **Minibatch SGD.** One **epoch** is one pass over the training set in a
# random order, cut into minibatches of `batch_size` examples; after each
# minibatch, every parameter takes one step $p \leftarrow p - \eta\,\bar p$
# along the gradient of that minibatch's penalized loss. The gradient of a
# random minibatch is a noisy, cheap estimate of the gradient on the whole
# training set; many cheap noisy steps beat a few exact ones.
#
# ### Exercise 11 (1 point): the training loop
#
# The order is fixed by the contract so that the test can replay your
# training step by step.

# %% solution="train"
def train(params, X_train, y_train, X_val, y_val, *, lr=0.1, batch_size=32,
          weight_decay=0.0, epochs=10, seed=0):
    """Minibatch SGD on loss_and_grads; returns (trained params, history).

    Does not modify params (trains a copy). rng = np.random.default_rng(seed)
    is created once; each epoch takes order = rng.permutation(len(y_train))
    and the minibatches order[0:batch_size], order[batch_size:2*batch_size],
    ... (the last one may be smaller); each minibatch updates every
    parameter p -= lr * (its gradient, with weight_decay). After each epoch,
    history["train_loss"], ["train_acc"], ["val_loss"], ["val_acc"] (lists)
    get the values of evaluate(params, ...) on the whole training and
    validation sets.
    """
    ### BEGIN SOLUTION
    params = {k: v.copy() for k, v in params.items()}
    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    rng = np.random.default_rng(seed)
    n = len(y_train)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            grads = loss_and_grads(params, X_train[rows], y_train[rows], weight_decay)[1]
            for k in params:
                params[k] = params[k] - lr * grads[k]
        for split, X, y in (("train", X_train, y_train), ("val", X_val, y_val)):
            loss, acc = evaluate(params, X, y)
            history[split + "_loss"].append(loss)
            history[split + "_acc"].append(acc)
    return params, history
    ### END SOLUTION


# %%
def _replay(params, X, y, lr, batch_size, weight_decay, epochs, seed):
    """The contract of train, with gradients from the reference engine."""
    params = {k: v.copy() for k, v in params.items()}
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            rows = order[start:start + batch_size]
            grads = _loss_reference(params, X[rows], y[rows], weight_decay)[1]
            params = {k: params[k] - lr * grads[k] for k in params}
    return params


def _check_train(n, hidden, lr, batch_size, wd, epochs, seed, rtol):
    p0 = init_params(hidden=hidden, seed=seed)
    copies = {k: v.copy() for k, v in p0.items()}
    X, y = X_train[:n], y_train[:n]
    got, history = _call("train", lambda: train(copies, X, y, X_val[:50], y_val[:50], lr=lr,
                                                batch_size=batch_size, weight_decay=wd,
                                                epochs=epochs, seed=seed))
    if any(not np.array_equal(copies[k], p0[k]) for k in p0):
        raise grading.GradingError("train modified the params it was given: train a copy.")
    expected = _replay(p0, X, y, lr, batch_size, wd, epochs, seed)
    what = (f"{n} images, batch_size {batch_size}, lr {lr}, weight_decay {wd}, {epochs} "
            f"epoch(s), seed {seed}")
    for k in p0:
        grading.assert_close(got[k], expected[k], rtol=rtol, atol=1e-12,
                             name=f'the trained params["{k}"] ({what})')
    for key, (X_, y_, i) in {"train_loss": (X, y, 0), "train_acc": (X, y, 1),
                             "val_loss": (X_val[:50], y_val[:50], 0),
                             "val_acc": (X_val[:50], y_val[:50], 1)}.items():
        if not isinstance(history.get(key), list) or len(history[key]) != epochs:
            raise grading.GradingError(f'history["{key}"] should be a list with one value per '
                                       f"epoch ({epochs}).")
        grading.assert_close(history[key][-1], evaluate(expected, X_, y_)[i], rtol=1e-8,
                             name=f'history["{key}"][-1] ({what})')


# %% test="test_train" points=1
with grading.exercise(11, "train", needs=[(10, "loss_and_grads")]):
    _check_train(20, 8, 0.5, 8, 0.01, 2, 0, rtol=1e-9)   # 3 minibatches per epoch: 8, 8, 4
grading.passed("train")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
_check_train(int(_rng.integers(10, 40)), int(_rng.integers(3, 10)),
             float(_rng.uniform(0.05, 1.0)), int(_rng.integers(1, 12)),
             float(_rng.choice([0.0, 0.03])), int(_rng.integers(1, 4)),
             int(_rng.integers(1000)), rtol=1e-9)
# training on the full set for a few epochs works (the best epoch: the last one is noisier)
_p, _h = _call("train", lambda: train(init_params(), X_train, y_train, X_val, y_val, lr=0.3,
                                      batch_size=32, epochs=6, seed=int(_rng.integers(1000))))
grading.assert_greater(max(_h["val_acc"]), 0.85,
                       name="the best validation accuracy in 6 epochs (lr 0.3, batch 32)")
### END HIDDEN TESTS

# %% [markdown]
# Trained on all 1,297 training images for 20 epochs (well under a second):

# %%
def plot_history(runs, title):
    """Loss and accuracy per epoch; runs maps a label ("" for one run) to a history."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for color, (run, history) in zip(("C0", "C3", "C2"), runs.items()):
        epochs = np.arange(1, len(history["train_loss"]) + 1)
        for split, style in (("train", "-"), ("val", "--")):
            label = ("training" if split == "train" else "validation") + (f", {run}" if run else "")
            left.plot(epochs, history[split + "_loss"], style, color=color, label=label)
            right.plot(epochs, history[split + "_acc"], style, color=color, label=label)
    left.set_xlabel("epoch")
    left.set_ylabel("mean cross-entropy")
    left.set_title("Loss")
    left.legend(loc="upper right", fontsize=8)
    right.set_xlabel("epoch")
    right.set_ylabel("accuracy")
    right.set_ylim(0, 1.02)
    right.set_title("Accuracy")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    plt.show()


try:
    start = time.perf_counter()
    trained, history = train(init_params(), X_train, y_train, X_val, y_val, lr=0.3,
                             batch_size=32, epochs=20)
    print(f"trained in {time.perf_counter() - start:.2f} s; validation accuracy "
          f"{history['val_acc'][-1]:.3f}")
    plot_history({"": history}, "All 1,297 training images, batch 32, lr 0.3, no weight decay")
except NotImplementedError:
    print("Finish exercises 10 and 11 to train.")

# %% [markdown]
# ### Overfitting on 50 images
#
# Now train a wider network (64 hidden units, about 4,800 parameters) on
# only the **first 50** training images (about five per digit), for 150
# epochs, with batch size 10, learning rate 0.2 and **no weight decay**.
#
# **Written answer (1 point).** Before running the next cell, predict: what
# will the training accuracy and the training loss be at the end? The
# validation accuracy (a rough number: the full training set gave about
# 98%)? Explain the difference in one or two sentences.

# %% [markdown] answer="predict_overfit" points=1
# ### BEGIN SOLUTION
# **Model answer.** With about 4,800 parameters and 50 images the network
# can memorize the training set: training accuracy reaches 100% within a few
# tens of epochs and the training loss keeps falling towards 0 (about 0.006
# at the end). Validation accuracy stays far lower, around 85% (it stops
# improving once the training set is fitted): five examples per digit do not
# show the many ways each digit is written, and a network that fits them
# exactly has learned their peculiarities too. The validation loss stops
# falling around the middle of the run and creeps up afterwards, as the
# network grows more confident. The gap between the two splits is
# overfitting.
#
# **Rubric.** 1 point: training accuracy 100% (or nearly) with a training
# loss near 0, a validation accuracy clearly lower (anything from 60 to 92%
# is fine), and an explanation that names memorizing / fitting the few
# training examples (too few examples for the number of parameters).
# 0.5: the gap predicted without an explanation, or the explanation with a
# wrong prediction.
# ### END SOLUTION

# %%
try:
    runs = {}
    for wd in (0.0, 0.01):
        start = time.perf_counter()
        _, small = train(init_params(hidden=64, seed=1), X_train[:50], y_train[:50], X_val,
                         y_val, lr=0.2, batch_size=10, weight_decay=wd, epochs=150)
        print(f"weight decay {wd}: final training loss {small['train_loss'][-1]:.3f}, "
              f"accuracy {small['train_acc'][-1]:.2f}; validation accuracy "
              f"{small['val_acc'][-1]:.3f} (best {max(small['val_acc']):.3f}), "
              f"{time.perf_counter() - start:.1f} s")
        runs[f"weight decay {wd}"] = small
    plot_history(runs, "50 training images, 64 hidden units, batch 10, lr 0.2")
except NotImplementedError:
    print("Finish exercises 10 and 11 to run the experiment.")

# %% [markdown]
# The red curves add weight decay $\lambda = 0.01$. The training loss can no
# longer reach 0 (the penalty keeps the weights, and so the confidence, from
# growing), but validation accuracy hardly moves (here it even drops a
# little): a regularizer can stop a network from becoming overconfident, it
# cannot supply the handwriting styles that 50 images do not show. The cure
# for this gap is more data (the full training set gave about 98%).

# %% [markdown]
# ### Retrain with other settings
#
# Release a slider to retrain (a second or two). Things to try: a batch size
# of 4 against 256 at the same learning rate (more steps per epoch, noisier
# ones); a learning rate of 3 (divergence); weight decay 0.1 (the weights
# cannot grow enough to fit even the training set); 50 training images with
# and without weight decay.

# %%
def retrain(n_train=1297, batch_size=32, lr=0.3, weight_decay=0.0, epochs=20):
    try:
        start = time.perf_counter()
        _, hist = train(init_params(), X_train[:n_train], y_train[:n_train], X_val, y_val,
                        lr=lr, batch_size=batch_size, weight_decay=weight_decay, epochs=epochs)
    except NotImplementedError:
        print("Finish exercises 10 and 11 first.")
        return
    print(f"{time.perf_counter() - start:.1f} s; final validation accuracy "
          f"{hist['val_acc'][-1]:.3f}, training accuracy {hist['train_acc'][-1]:.3f}")
    plot_history({"": hist}, f"{n_train} images, batch {batch_size}, lr {lr:g}, "
                             f"weight decay {weight_decay:g}")


style = {"description_width": "initial"}
display(widgets.interactive(
    retrain,
    n_train=widgets.SelectionSlider(options=[50, 100, 200, 400, 800, 1297], value=1297,
                                    description="training images", style=style,
                                    continuous_update=False),
    batch_size=widgets.SelectionSlider(options=[4, 8, 16, 32, 64, 128, 256], value=32,
                                       description="batch size", style=style,
                                       continuous_update=False),
    lr=widgets.SelectionSlider(options=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0], value=0.3,
                               description="learning rate", style=style,
                               continuous_update=False),
    weight_decay=widgets.SelectionSlider(options=[0.0, 0.0001, 0.001, 0.01, 0.1], value=0.0,
                                         description="weight decay", style=style,
                                         continuous_update=False),
    epochs=widgets.IntSlider(value=20, min=5, max=60, step=5, description="epochs",
                             style=style, continuous_update=False),
))

# %% [markdown]
# ## Summary
#
# * An operation without a formula is differentiated by **staging** it: one
#   line per intermediate, one adjoint per line, in reverse; sum the
#   contributions of a node with several consumers, and sum over the axes a
#   node was broadcast along. Check every stage against a reference.
#   **Fusing** the stages (substituting them into each other) gives one
#   expression, cheaper to run. Layer norm's $\bar x$ is orthogonal to
#   $\mathbf 1$ (and, for $\epsilon = 0$, to $\hat x$) because the output
#   does not change when a row is shifted (or scaled).
# * **Batch norm** normalizes over the batch; in training mode its gradient
#   flows through the batch statistics, in evaluation mode the running
#   statistics are constants and the gradient is a per-feature scaling.
# * The adjoint of a **gather** is a **scatter-add** (`np.add.at`): repeated
#   indices accumulate, and `dE[idx] += g` silently loses them. Broadcast
#   batch axes of `@` and of `x ** y` are summed in the backward pass;
#   $\partial x^y/\partial y = x^y \ln x$ needs $x > 0$.
# * **Debugging** a backward: check one input at a time, read what the error
#   looks like (a transpose, a missing sum, a missing contribution), fix one
#   bug, check again.
# * **Weight decay** $\frac\lambda2\lVert W\rVert^2$ adds $\lambda W$ to the
#   gradient: each SGD step shrinks the weights by a factor $1 - \eta\lambda$
#   before the data's gradient acts. On 50 images a large network memorizes
#   the training set; validation accuracy shows the price.
