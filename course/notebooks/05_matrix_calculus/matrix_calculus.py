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
# # 05 · Matrix calculus for backprop
#
# Notebook 04 built the backward pass: walk the graph in reverse topological
# order and, at every node, turn the gradient of the loss with respect to the
# node's *output* into gradients with respect to its *inputs*. That last step,
# the node's **backward rule**, was easy for scalars. A real network is made
# of array operations (matrix products, a bias added to every row of a
# batch, sums and means, softmax), and each of them needs a backward rule that
# works on whole arrays at once. This notebook derives them.
#
# You will learn a recipe that produces any such rule in a few lines, and
# use it for every operation a small network needs:
#
# 1. two ways to write a derivative: the **Jacobian** of the chain rule, and
#    the **gradient with the shape of the parameter** that training code uses;
# 2. a table of identities for vectors and matrices, checked numerically, and
#    **dimension analysis**, the quickest way to get a matrix formula right;
# 3. the backward rule of a **matrix product**, derived from its scalar form,
#    and why frameworks never build the Jacobian (measured: bytes and ms);
# 4. **broadcasting** and its adjoint (a sum), **reductions** (sum, mean,
#    max), **element-wise** functions, **softmax**, **log-softmax**, and the
#    fused **softmax cross-entropy**.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are nine exercises (16 points); each asks for a
# backward rule `<op>_backward(g, <inputs>)` that receives the upstream
# gradient `g` and the operation's inputs, and returns the gradient with
# respect to each input. Replace `raise NotImplementedError()` with your code,
# then run the test cell right below it. The tests feed random upstream
# gradients and random shapes, compare with the reference engine
# `autodiff_ref` and with finite differences, and tell you in words what is
# wrong (transposed, a missing sum over a broadcast axis, off by a factor,
# the upstream gradient ignored, ...). The hidden tests compare to about ten
# significant digits, so the rules must come from formulas, not from finite
# differences. Every other cell runs without your code.

# %%
# %matplotlib inline
import time

import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import autodiff_ref as ad
from autodiff_ref import grading

# %% [markdown]
# Some forward functions, written once in NumPy, that the text, the tests and
# your answers may call. Softmax and its relatives subtract the maximum of each
# row before exponentiating: the result is the same (softmax does not change
# when a constant is added to all its inputs) and `np.exp` cannot overflow.

# %%
def sigmoid(x):
    """The logistic function 1 / (1 + exp(-x)), element-wise, without overflow."""
    return np.exp(-np.logaddexp(0.0, -x))


def softmax(x):
    """Softmax along the last axis: exp(x) / sum(exp(x)), shifted for stability."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(x):
    """log(softmax(x)) along the last axis: x - log(sum(exp(x))), computed stably."""
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def cross_entropy(logits, targets):
    """Mean over the batch of -log softmax(logits[n])[targets[n]].

    logits: (N, C) floats; targets: (N,) integer classes in [0, C).
    """
    n = logits.shape[0]
    return -np.mean(log_softmax(logits)[np.arange(n), targets])


# %% [markdown]
# ## 1. Two ways to write a derivative
#
# Let $J$ be a scalar loss that depends on a vector $z \in \mathbb{R}^n$,
# which depends on $x \in \mathbb{R}^m$. The chain rule of notebook 03 is a
# product of Jacobians (numerator layout: one row per output, one column per
# input):
#
# $$
# \underbrace{\frac{\partial J}{\partial x}}_{1\times m}
# = \underbrace{\frac{\partial J}{\partial z}}_{1\times n}\;
#   \underbrace{\frac{\partial z}{\partial x}}_{n\times m},
# \qquad
# \left(\frac{\partial z}{\partial x}\right)_{ij} = \frac{\partial z_i}{\partial x_j}.
# $$
#
# This **Jacobian form** is the clean way to *derive* things: shapes chain like
# matrix products, and the derivative of a scalar with respect to a vector is
# a row. It is awkward for a matrix parameter: the Jacobian of $J$ with
# respect to a $5\times10$ matrix $W$ is a $1\times 50$ row, or a
# $1\times5\times10$ array, and neither can be subtracted from $W$.
#
# Training code therefore uses the **shape convention**: the gradient with
# respect to a parameter has the *shape of the parameter*,
#
# $$
# \left(\frac{\partial J}{\partial W}\right)_{ij} = \frac{\partial J}{\partial W_{ij}},
# \qquad \text{so that} \qquad W \leftarrow W - \eta\, \frac{\partial J}{\partial W}
# \quad(\texttt{W -= lr * dW})
# $$
#
# works entry by entry. Every framework stores gradients this way (PyTorch's
# `W.grad` has `W.shape`). For a column vector $x$ it is the transpose of the
# Jacobian form: $\nabla_x J = (\partial J/\partial x)^\top$. When you switch
# from one form to the other you transpose; when in doubt, check shapes.
#
# From now on we write $\bar A$ (read "A bar", the *adjoint* of $A$) for
# $\partial J / \partial A$ in the shape convention: an array with the shape
# of $A$, whatever $A$ is. In code it is `grad_a` or `g`.
#
# **A backward rule is a vector-Jacobian product.** Let an operation compute
# $y = f(x)$ with arrays $x$ and $y$. Its backward rule receives $\bar y$
# (the *upstream gradient*) and returns $\bar x$. By the chain rule, summing
# over every output entry that $x_i$ influences,
#
# $$
# \bar x_i \;=\; \sum_j \bar y_j\, \frac{\partial y_j}{\partial x_i},
# \qquad\text{that is}\qquad
# \bar x = \bar y^{\top} \frac{\partial y}{\partial x}
# \ \text{(flattened)},
# $$
#
# a vector-Jacobian product (VJP). The Jacobian appears in the derivation,
# never in the code: as we will see, it is mostly zeros and far too big.
#
# **The recipe** for every rule in this notebook:
#
# 1. write *one entry* of the output as a scalar formula of input entries;
# 2. for one input entry, add up $\bar y_j\,\partial y_j/\partial x_i$ over the
#    outputs it touches (the chain rule sums over paths);
# 3. recognise the sum as an array expression, and check that it has the
#    input's shape.

# %% [markdown]
# ## 2. A table of identities
#
# With $x$ a column vector in $z = Wx$ and a row vector in $z = xW$, $f$ a
# scalar function applied entry by entry, and $\delta = \partial J/\partial z$
# the upstream gradient as a row (Jacobian form):
#
# | | forward | derivative | why (one entry) |
# |---|---|---|---|
# | (1) | $z = Wx$, $W$ of size $n\times m$ | $\dfrac{\partial z}{\partial x} = W$ | $z_i = \sum_k W_{ik}x_k$, so $\partial z_i/\partial x_j = W_{ij}$ |
# | (2) | $z = xW$, $x$ a $1\times m$ row | $\dfrac{\partial z}{\partial x} = W^\top$ | $z_j = \sum_k x_k W_{kj}$, so $\partial z_j/\partial x_k = W_{kj}$ |
# | (3) | $z = x$ | $\dfrac{\partial z}{\partial x} = I$ | $\partial x_i/\partial x_j = 1$ if $i=j$, else $0$ |
# | (4) | $z = f(x)$ element-wise | $\dfrac{\partial z}{\partial x} = \operatorname{diag}(f'(x))$ | $z_i$ depends on $x_i$ only |
# | (5) | $z = Wx$ | $\dfrac{\partial J}{\partial W} = \delta^\top x^\top$ | $\partial J/\partial W_{ij} = \delta_i\, x_j$ |
# | (6) | $z = xW$ | $\dfrac{\partial J}{\partial W} = x^\top \delta$ | $\partial J/\partial W_{kj} = x_k\, \delta_j$ |
# | (7) | $\hat y = \operatorname{softmax}(\theta)$, $J = \operatorname{CE}(y, \hat y)$ | $\dfrac{\partial J}{\partial \theta} = \hat y - y$ | $J = -\theta_t + \log\sum_c e^{\theta_c}$ for the true class $t$ |
#
# Rows (5) and (6) are the first results in the shape convention: $\delta^\top
# x^\top$ is $(n\times1)(1\times m) = n\times m$, the shape of $W$. The
# derivation of (5) is the recipe in one line: $J$ depends on $W_{ij}$ only
# through $z_i = \sum_k W_{ik}x_k$, so $\partial J/\partial W_{ij} =
# \delta_i \cdot \partial z_i/\partial W_{ij} = \delta_i x_j$, which is the
# outer product of $\delta$ and $x$. Row (4) says that the VJP of an
# element-wise function is an element-wise product, $\delta \circ f'(x)$: the
# diagonal matrix is never built. In row (7), $y$ is the one-hot vector of the
# true class $t$ (for a column $\theta$ the Jacobian form is the row
# $(\hat y - y)^\top$); section 9 derives it.
#
# **Worked example for (7).** Logits $\theta = (2.0, 1.0, 0.1)$ and true class
# $t = 0$: $\hat y = (0.6590, 0.2424, 0.0986)$, $J = -\log 0.6590 = 0.4170$
# and $\partial J / \partial\theta = \hat y - y = (-0.3410, 0.2424, 0.0986)$:
# the score of the true class is pushed up, every other score down, each in
# proportion to the probability it wrongly received.
#
# The next cell checks every row against `autodiff_ref` on random numbers
# (`ad.functional.jacobian` builds a full Jacobian; `backward(gradient=...)`
# computes a VJP).

# %%
rng = np.random.default_rng(5)
n, m = 3, 4
W = rng.standard_normal((n, m))
x_col = rng.standard_normal(m)          # x as a column (a 1-D array)
x_row = rng.standard_normal((1, n))     # x as a 1 x n row, for z = x W
delta = rng.standard_normal(m)          # an upstream gradient dJ/dz

J1 = ad.functional.jacobian(lambda x: ad.matmul(W, x), ad.tensor(x_col)).numpy()
J2 = ad.functional.jacobian(lambda x: ad.matmul(x, W), ad.tensor(x_row)).numpy()
J3 = ad.functional.jacobian(lambda x: x * 1.0, ad.tensor(x_col)).numpy()
J4 = ad.functional.jacobian(lambda x: ad.tanh(x), ad.tensor(x_col)).numpy()
assert np.allclose(J1, W)                                    # (1) z = W x
assert np.allclose(J2.reshape(m, n), W.T)                    # (2) z = x W
assert np.allclose(J3, np.eye(m))                            # (3) z = x
assert np.allclose(J4, np.diag(1 - np.tanh(x_col) ** 2))     # (4) tanh

Wt = ad.tensor(W, requires_grad=True)                        # (5) z = W x
delta_n = rng.standard_normal(n)                             # dJ/dz for z in R^n
ad.matmul(Wt, x_col).backward(ad.tensor(delta_n))
assert np.allclose(Wt.grad.numpy(), np.outer(delta_n, x_col))
Wt.grad = None                                               # (6) z = x W
ad.matmul(x_row, Wt).backward(ad.tensor(delta.reshape(1, m)))
assert np.allclose(Wt.grad.numpy(), x_row.T @ delta.reshape(1, m))

theta = ad.tensor([[2.0, 1.0, 0.1]], requires_grad=True)     # (7) softmax + CE
loss = ad.cross_entropy(theta, np.array([0]))
loss.backward()
y_hat = softmax(np.array([2.0, 1.0, 0.1]))
print("y_hat       =", y_hat.round(4), "  J =", round(loss.item(), 4))
print("dJ/dtheta   =", theta.grad.numpy().round(4), "  y_hat - y =", (y_hat - [1, 0, 0]).round(4))
assert np.allclose(theta.grad.numpy(), y_hat - np.array([1.0, 0.0, 0.0]))
print("all seven identities agree with autodiff_ref")

# %% [markdown]
# ## 3. Dimension analysis
#
# You do not need to memorise where the transposes go. The gradient of each
# matrix has that matrix's shape, and there is usually only one way to
# multiply the available matrices to get it.
#
# **Worked example.** $W$ is $5\times10$, $X$ is $10\times3$ and $D = WX$ is
# $5\times3$. The backward pass hands us $dD = \bar D$, also $5\times3$.
#
# * $dW$ must be $5\times10$ and can only be built from $dD$ ($5\times3$) and
#   $X$ ($10\times3$). The one product that works is
#   $dD\,X^\top$: $(5\times3)(3\times10) = 5\times10$.
# * $dX$ must be $10\times3$, from $W$ ($5\times10$) and $dD$ ($5\times3$):
#   $W^\top dD$, $(10\times5)(5\times3) = 10\times3$.
#
# Shapes alone leave a choice when dimensions coincide (a square matrix can be
# transposed without changing its shape), so use them as a check on a
# derivation, not as a replacement for it. The cell below compares both
# formulas with `autodiff_ref`.

# %%
rng = np.random.default_rng(0)
W = rng.standard_normal((5, 10))
X = rng.standard_normal((10, 3))
dD = rng.standard_normal((5, 3))            # the upstream gradient, shaped like D

dW = dD @ X.T
dX = W.T @ dD
print("W", W.shape, " X", X.shape, " D", (W @ X).shape, " dD", dD.shape,
      " ->  dW", dW.shape, " dX", dX.shape)

Wt, Xt = ad.tensor(W, requires_grad=True), ad.tensor(X, requires_grad=True)
(Wt @ Xt).backward(ad.tensor(dD))
assert np.allclose(Wt.grad.numpy(), dW) and np.allclose(Xt.grad.numpy(), dX)
print("dW = dD @ X.T and dX = W.T @ dD agree with autodiff_ref")

# %% [markdown]
# ## 4. The matrix product, from its scalar form
#
# A linear layer applied to a batch stores one example per row:
# $Z = XW$ with $X$ of size $N\times D$ (N examples), $W$ of size $D\times M$
# and $Z$ of size $N\times M$. Follow the recipe.
#
# **Step 1**, one entry: $Z_{ij} = \sum_k X_{ik} W_{kj}$.
#
# **Step 2**, one input entry at a time. $X_{ab}$ appears in $Z_{ij}$ only when
# $i = a$ (then with factor $W_{bj}$), so
#
# $$
# \bar X_{ab} = \sum_{i,j} \bar Z_{ij}\,\frac{\partial Z_{ij}}{\partial X_{ab}}
# = \sum_{j} \bar Z_{aj}\, W_{bj}.
# $$
#
# $W_{ab}$ appears in $Z_{ij}$ only when $j = b$ (with factor $X_{ia}$), so
# $\bar W_{ab} = \sum_i X_{ia}\,\bar Z_{ib}$.
#
# **Step 3**, recognise the products. $\sum_j \bar Z_{aj} W_{bj}$ multiplies row
# $a$ of $\bar Z$ with row $b$ of $W$: it is entry $(a, b)$ of $\bar Z W^\top$.
# $\sum_i X_{ia}\bar Z_{ib}$ multiplies column $a$ of $X$ with column $b$ of
# $\bar Z$: entry $(a, b)$ of $X^\top \bar Z$. So
#
# $$
# \boxed{\;Z = XW \quad\Longrightarrow\quad \bar X = \bar Z\, W^\top,
# \qquad \bar W = X^\top \bar Z\;}
# $$
#
# and the shapes check out: $(N\times M)(M\times D) = N\times D$ and
# $(D\times N)(N\times M) = D\times M$. With $N = 1$ these are rows (2) and
# (6) of the table. Each input's gradient is the upstream gradient multiplied
# by the *other* input, transposed, on the same side as in the forward
# product: "multiplication swaps its inputs", the rule of notebook 03 for
# $f = xy$, in matrix form. Note also that $\bar W = X^\top \bar Z =
# \sum_i X_{i,:}^\top \bar Z_{i,:}$ is a sum of one outer product per example:
# the batch gradient adds up the examples' gradients.
#
# **Worked example** with a single example ($N = 1$): $z = xw$, $x$ of size
# $1\times2$, $w$ of size $2\times3$. Take $x = (1, 2)$ and
# $w = \begin{pmatrix} 1 & 0 & -1\\ 2 & 1 & 0\end{pmatrix}$, so
# $z = (5, 2, -1)$. With upstream gradient $\bar z = (1, -1, 2)$:
#
# $$
# \bar x = \bar z\, w^\top = (1\cdot1 - 1\cdot0 + 2\cdot(-1),\; 1\cdot2 - 1\cdot1 + 2\cdot0)
# = (-1, 1),
# \qquad
# \bar w = x^\top \bar z = \begin{pmatrix} 1 & -1 & 2\\ 2 & -2 & 4\end{pmatrix}.
# $$
#
# ### Exercise 1 (2 points): matmul backward
#
# Write `matmul_backward(g, x, w)` for $z = x\,w$ with 2-D arrays. It returns
# the tuple `(grad_x, grad_w)`.

# %% solution="matmul_backward" exact=true deny="backward,vjp,jacobian"
def matmul_backward(g, x, w):
    """Backward rule of z = x @ w for 2-D arrays.

    g: the upstream gradient dJ/dz, shape (N, M); x: shape (N, D);
    w: shape (D, M).
    Returns (grad_x, grad_w): dJ/dx of shape (N, D) and dJ/dw of shape (D, M).
    """
    ### BEGIN SOLUTION
    return g @ w.T, x.T @ g
    ### END SOLUTION


# %% test="test_matmul_backward" points=2
# the worked example: x = (1, 2), w = [[1, 0, -1], [2, 1, 0]], upstream (1, -1, 2)
result = matmul_backward(np.array([[1.0, -1.0, 2.0]]), np.array([[1.0, 2.0]]),
                         np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]]))
if not isinstance(result, (tuple, list)) or len(result) != 2:
    raise grading.GradingError("matmul_backward should return a tuple (grad_x, grad_w), got "
                               f"{type(result).__name__}.")
grading.assert_close(result[0], np.array([[-1.0, 1.0]]), rtol=1e-12,
                     without_upstream=np.array([[0.0, 3.0]]),
                     name="grad_x of the worked example (expected g @ w.T = [[-1, 1]])")
grading.assert_close(result[1], np.array([[1.0, -1.0, 2.0], [2.0, -2.0, 4.0]]), rtol=1e-12,
                     without_upstream=np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]),
                     name="grad_w of the worked example (expected x.T @ g)")
# the dimension-analysis example: w (5, 10) @ x (10, 3), random upstream gradient
grading.check_vjp(matmul_backward, lambda a, b: a @ b, [(5, 10), (10, 3)],
                  reference=lambda a, b: a @ b, rng=np.random.default_rng(1),
                  names=["grad_x of matmul_backward(g, x, w)",
                         "grad_w of matmul_backward(g, x, w)"])
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    # three different sizes (1 allowed), so a transposed or swapped product has the wrong shape
    _n, _k, _m = (int(s) for s in _rng.choice(np.arange(1, 7), 3, replace=False))
    grading.check_vjp(matmul_backward, lambda a, b: a @ b, [(_n, _k), (_k, _m)],
                      reference=lambda a, b: a @ b, rng=_rng, rtol=1e-10, atol=1e-12,
                      names=[f"grad_x of matmul_backward(g, x, w), x ({_n}, {_k}) @ w ({_k}, "
                             f"{_m})",
                             f"grad_w of matmul_backward(g, x, w), x ({_n}, {_k}) @ w ({_k}, "
                             f"{_m})"])
# square matrices: shapes cannot reveal a missing transpose, the values must
_k = int(_rng.integers(2, 6))
grading.check_vjp(matmul_backward, lambda a, b: a @ b, [(_k, _k), (_k, _k)],
                  reference=lambda a, b: a @ b, rng=_rng, rtol=1e-10, atol=1e-12,
                  names=[f"grad_x of matmul_backward(g, x, w), square ({_k}, {_k}) matrices",
                         f"grad_w of matmul_backward(g, x, w), square ({_k}, {_k}) matrices"])
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Why frameworks never build the Jacobian
#
# The Jacobian of $Z = XW$ with respect to $X$ is a 4-D array of shape
# $N\times M\times N\times D$ with entries
# $\partial Z_{ij}/\partial X_{ab} = [i = a]\, W_{bj}$. Flatten $Z$ and $X$
# row by row and it is an $(NM)\times(ND)$ matrix, block diagonal with $N$
# copies of $W^\top$ (a Kronecker product $I_N \otimes W^\top$): a fraction
# $1/N$ of its entries are nonzero, and those few are copies of $W$.
#
# Its size grows like $N^2 M D$. For a realistic layer, a batch of
# $N = 64$ through a layer with $D = M = 4096$ has a Jacobian of
# $64\cdot4096\cdot64\cdot4096 = 2^{36}$ numbers, which in float32
# ($4$ bytes) is $2^{38}$ bytes $= \mathbf{256}$ **GiB**. The gradient
# $\bar X = \bar Z W^\top$ it would be used for holds $64\cdot4096$ numbers,
# **1 MiB**. Multiplying by the Jacobian also costs $O(N^2MD)$ operations
# instead of the $O(NMD)$ of one matrix product.
#
# Move the sliders to see the pattern of the Jacobian for small sizes (white:
# zero).

# %%
def show_linear_jacobian(N=3, D=4, M=5):
    W = np.random.default_rng(0).standard_normal((D, M))
    # J[i, j, a, b] = dZ[i, j] / dX[a, b] = [i == a] * W[b, j]
    J = np.einsum("ia,bj->ijab", np.eye(N), W).reshape(N * M, N * D)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(np.where(J == 0, np.nan, J), cmap="coolwarm", vmin=-2.5, vmax=2.5,
              interpolation="nearest")
    ax.set_xlabel(f"entries of X, flattened ({N * D})")
    ax.set_ylabel(f"entries of Z = XW, flattened ({N * M})")
    nonzero = np.count_nonzero(J)
    ax.set_title(f"dZ/dX: {J.size} entries, {nonzero} nonzero ({nonzero / J.size:.0%}),\n"
                 f"while W has {W.size} and X̄ has {N * D}")
    plt.show()


display(widgets.interactive(
    show_linear_jacobian,
    N=widgets.IntSlider(value=3, min=1, max=8, description="batch N"),
    D=widgets.IntSlider(value=4, min=1, max=8, description="inputs D"),
    M=widgets.IntSlider(value=5, min=1, max=8, description="outputs M"),
))

# %% [markdown]
# **Measured.** The next cell takes a batch of $N = 16$ and a square layer
# $D = M = n$ for growing $n$, and computes $\bar X$ three ways:
#
# * **one VJP**: $\bar Z W^\top$, one matrix product;
# * **through the Jacobian**, built by hand (`np.einsum` of the formula above)
#   and contracted with $\bar Z$ (`np.tensordot`);
# * **`ad.functional.jacobian`**, which builds the Jacobian as a framework
#   would have to: one backward pass per output entry, $NM$ of them (only for
#   the small sizes).
#
# It checks that all three agree and plots memory and time against $n$.

# %%
def best_ms(f, repeat):
    """The fastest of `repeat` runs of f(), in milliseconds, and f's result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3, result


N = 16
sizes = [8, 16, 32, 64, 128]
rows = []
for n in sizes:
    rng = np.random.default_rng(n)
    X, W, G = rng.standard_normal((N, n)), rng.standard_normal((n, n)), rng.standard_normal((N, n))

    t_vjp, vjp = best_ms(lambda: G @ W.T, repeat=20)

    def via_jacobian():
        J = np.einsum("ia,bj->ijab", np.eye(N), W)      # J[i, j, a, b] = dZ[i, j] / dX[a, b]
        return J, np.tensordot(G, J, axes=2)            # sum over i, j of G[i, j] * J[i, j]

    t_jac, (J, through_jacobian) = best_ms(via_jacobian, repeat=3)
    assert np.allclose(through_jacobian, vjp)

    t_ad = np.nan
    if n <= 32:
        t_ad, J_ad = best_ms(lambda: ad.functional.jacobian(lambda x: x @ W, ad.tensor(X)), 1)
        assert np.allclose(J_ad.numpy(), J)
    rows.append((n, J.nbytes, G.nbytes + vjp.nbytes, t_jac, t_vjp, t_ad))

print(f"{'n':>4} {'Jacobian':>12} {'VJP memory':>11} {'via Jacobian':>13} {'one VJP':>9} "
      f"{'ad.functional.jacobian':>23}")
for n, jb, vb, tj, tv, ta in rows:
    print(f"{n:4d} {jb / 2**20:9.2f} MiB {vb / 2**10:7.1f} KiB {tj:10.2f} ms {tv:6.3f} ms "
          f"{'' if np.isnan(ta) else f'{ta:20.1f} ms'}")

table = np.array(rows)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
left.loglog(table[:, 0], table[:, 1], "o-", label="full Jacobian dZ/dX")
left.loglog(table[:, 0], table[:, 2], "s-", label="one VJP (Z̄ and X̄)")
left.set_xlabel("layer width n (D = M = n), batch N = 16")
left.set_ylabel("bytes (float64)")
left.set_title("Memory")
left.legend()
right.loglog(table[:, 0], table[:, 3], "o-", label="via the Jacobian (einsum + tensordot)")
right.loglog(table[:, 0], table[:, 4], "s-", label="one VJP: Z̄ @ W.T")
right.loglog(table[:, 0], table[:, 5], "^-", label="ad.functional.jacobian")
right.set_xlabel("layer width n (D = M = n), batch N = 16")
right.set_ylabel("ms")
right.set_title("Time to get X̄")
right.legend(fontsize=8)
plt.show()

# %% [markdown]
# The Jacobian's memory grows like $n^2$ here (like $N^2n^2$ in general),
# the VJP's like $n$; the times follow (timings of tiny products are noisy,
# but the gap of orders of magnitude is not). Building the Jacobian one
# backward pass at a time is slower still, since it repeats a whole backward
# pass for every entry of $Z$. This is why an autodiff engine stores, for
# each operation, a function that *computes* $\bar y \mapsto \bar x$ rather
# than a matrix: the VJPs you write in this notebook.

# %% [markdown]
# ## 6. Broadcasting and its adjoint
#
# A bias is added to every row of a batch: $Y = X + b$ with $X$ of shape
# $(N, D)$ and $b$ of shape $(D,)$. NumPy *broadcasts* $b$: it behaves as if
# $b$ were copied into each of the $N$ rows. One entry:
# $Y_{ij} = X_{ij} + b_j$. The recipe gives
#
# $$
# \bar X_{ij} = \bar Y_{ij},
# \qquad
# \bar b_j = \sum_i \bar Y_{ij}\,\frac{\partial Y_{ij}}{\partial b_j} = \sum_i \bar Y_{ij}.
# $$
#
# $b_j$ is used $N$ times, once per row, and its gradient is the sum of the
# gradients of its copies. In general: **broadcasting copies, and the
# adjoint of copying is summing**. (Table row (3), $z = x$ gives $I$, is the
# one-copy case.)
#
# **Worked example.** $X = \begin{pmatrix}1&2&3\\4&5&6\end{pmatrix}$,
# $b = (10, 20, 30)$, upstream
# $\bar Y = \begin{pmatrix}1&0&2\\-1&1&1\end{pmatrix}$:
# $\bar X = \bar Y$ and $\bar b = (1 - 1,\ 0 + 1,\ 2 + 1) = (0, 1, 3)$.
#
# ### Exercise 2 (1 point): the bias add
#
# Write `add_backward(g, x, b)` for $y = x + b$, $x$ of shape `(N, D)` and
# $b$ of shape `(D,)`.

# %% solution="add_backward" exact=true deny="backward,vjp,sum_to_shape"
def add_backward(g, x, b):
    """Backward rule of y = x + b, x of shape (N, D), b of shape (D,) (broadcast over rows).

    g: the upstream gradient, shape (N, D).
    Returns (grad_x, grad_b) with shapes (N, D) and (D,).
    """
    ### BEGIN SOLUTION
    return g.copy(), np.sum(g, axis=0)
    ### END SOLUTION


# %% test="test_add_backward" points=1
# the worked example
result = add_backward(np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 1.0]]),
                      np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([10.0, 20.0, 30.0]))
if not isinstance(result, (tuple, list)) or len(result) != 2:
    raise grading.GradingError("add_backward should return a tuple (grad_x, grad_b), got "
                               f"{type(result).__name__}.")
grading.assert_close(result[0], np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 1.0]]), rtol=1e-12,
                     name="grad_x of the worked example (the upstream gradient itself)")
grading.assert_close(result[1], np.array([0.0, 1.0, 3.0]), rtol=1e-12,
                     name="grad_b of the worked example (sum of the rows of g: [0, 1, 3])")
grading.check_vjp(add_backward, lambda a, b: a + b, [(4, 3), (3,)], reference=lambda a, b: a + b,
                  rng=np.random.default_rng(2),
                  names=["grad_x of add_backward(g, x, b)", "grad_b of add_backward(g, x, b)"])
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _n, _d = (int(s) for s in _rng.choice(np.arange(1, 8), 2, replace=False))
    grading.check_vjp(add_backward, lambda a, b: a + b, [(_n, _d), (_d,)],
                      reference=lambda a, b: a + b, rng=_rng, rtol=1e-10, atol=1e-12,
                      names=[f"grad_x of add_backward(g, x, b), x ({_n}, {_d}), b ({_d},)",
                             f"grad_b of add_backward(g, x, b), x ({_n}, {_d}), b ({_d},)"])
### END HIDDEN TESTS

# %% [markdown]
# ### Broadcasting in general
#
# NumPy's rule: line the two shapes up **from the right**; where one shape is
# shorter, it gets new leading axes of size 1; then along every axis the sizes
# must be equal, or one of them must be $1$, which is stretched (copied) to
# the other size. So an input of shape $s$ broadcast to a result of shape $S$
# was copied along
#
# * the **leading axes** of $S$ that $s$ does not have, and
# * every axis where $s$ has size $1$ and $S$ does not.
#
# Its gradient is $\bar Y$ summed over the leading axes (they disappear) and
# over the stretched axes *keeping them as size 1* (`keepdims=True`), which
# brings it back to shape $s$. Examples, for $\bar Y$ of the result's shape:
#
# | input shape | other input | result shape | the input's gradient |
# |---|---|---|---|
# | $(3,)$ | $(4, 3)$ | $(4, 3)$ | `g.sum(axis=0)` |
# | $(4, 1)$ | $(4, 3)$ | $(4, 3)$ | `g.sum(axis=1, keepdims=True)` |
# | $(4, 1)$ | $(2, 1, 3)$ | $(2, 4, 3)$ | `g.sum(axis=0).sum(axis=1, keepdims=True)` |
# | $()$ (a scalar) | $(2, 3)$ | $(2, 3)$ | `g.sum()` |
#
# This holds for every operation that broadcasts, not only `+`: for
# $y = a \cdot b$ the gradient of $a$ is $\bar y\, b$ (in the broadcast
# shape) summed back to $a$'s shape. Engines undo broadcasting in one place
# (`autodiff_ref` calls it `sum_to_shape`, HIPS autograd `unbroadcast`) so that
# no backward rule has to think about it.
#
# ### Exercise 3 (2 points): undo broadcasting
#
# Write `unbroadcast(g, shape)`: sum `g` (shaped like a broadcast result)
# down to `shape`, the shape of an input that was broadcast to `g.shape`.

# %% solution="unbroadcast" exact=true deny="backward,vjp,sum_to_shape"
def unbroadcast(g, shape):
    """Sum g over the axes along which an input of shape `shape` was broadcast.

    g: an array whose shape is the broadcast of `shape` with other shapes;
    shape: a tuple (possibly shorter than g.shape, possibly with entries 1
    where g has more).
    Returns an array of shape `shape`: g summed over the leading axes that
    `shape` lacks, and over the axes where `shape` has size 1 and g does not
    (kept as size 1).
    """
    ### BEGIN SOLUTION
    g = np.asarray(g, dtype=np.float64)
    extra = g.ndim - len(shape)
    g = np.sum(g, axis=tuple(range(extra)))
    # axes of size 1 in `shape` (summing one that g also has as size 1 changes nothing)
    stretched = tuple(i for i, size in enumerate(shape) if size == 1)
    return np.sum(g, axis=stretched, keepdims=True)
    ### END SOLUTION


# %% test="test_unbroadcast" points=2
g = np.arange(12.0).reshape(4, 3)             # [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
grading.assert_close(unbroadcast(g.copy(), (3,)), np.array([18.0, 22.0, 26.0]), rtol=1e-12,
                     name="unbroadcast(g of shape (4, 3), (3,)) (sum over the new axis 0)")
grading.assert_close(unbroadcast(g.copy(), (4, 1)), np.array([[3.0], [12.0], [21.0], [30.0]]),
                     rtol=1e-12, name="unbroadcast(g of shape (4, 3), (4, 1)) (sum over the "
                                      "stretched axis 1, kept as size 1)")
grading.assert_close(unbroadcast(g.copy(), (4, 3)), g, rtol=1e-12,
                     name="unbroadcast(g of shape (4, 3), (4, 3)) (nothing was broadcast)")
grading.assert_close(unbroadcast(g.copy(), ()), np.array(66.0), rtol=1e-12,
                     name="unbroadcast(g of shape (4, 3), ()) (a scalar: sum everything)")
g3 = np.arange(24.0).reshape(2, 4, 3)
grading.assert_close(unbroadcast(g3.copy(), (4, 1)), g3.sum(axis=0).sum(axis=1, keepdims=True),
                     rtol=1e-12, name="unbroadcast(g of shape (2, 4, 3), (4, 1))")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _random_pair(rng):
    """Two random shapes that broadcast together to a result with 1 to 4 axes."""
    out = tuple(int(s) for s in rng.integers(2, 5, int(rng.integers(1, 5))))
    pair = []
    for _ in range(2):
        s = list(out[int(rng.integers(0, len(out) + 1)):])   # drop some leading axes
        for i in range(len(s)):
            if rng.random() < 0.4:
                s[i] = 1                                      # stretch some axes
        pair.append(tuple(s))
    return pair


for _ in range(5):
    _sa, _sb = _random_pair(_rng)
    grading.check_vjp(lambda g, a, b: (unbroadcast(g.copy(), a.shape),
                                       unbroadcast(g.copy(), b.shape)),
                      lambda a, b: a + b, [_sa, _sb], reference=lambda a, b: a + b, rng=_rng,
                      rtol=1e-10, atol=1e-12, trials=1,
                      names=[f"unbroadcast(g, {_sa}) for a + b, a {_sa}, b {_sb}",
                             f"unbroadcast(g, {_sb}) for a + b, a {_sa}, b {_sb}"])
    # a product: the gradient of a is unbroadcast(g * b, a.shape)
    grading.check_vjp(lambda g, a, b: (unbroadcast(g * b, a.shape), unbroadcast(g * a, b.shape)),
                      lambda a, b: a * b, [_sa, _sb], reference=lambda a, b: a * b, rng=_rng,
                      rtol=1e-10, atol=1e-12, trials=1,
                      names=[f"unbroadcast(g * b, {_sa}) for a * b, a {_sa}, b {_sb}",
                             f"unbroadcast(g * a, {_sb}) for a * b, a {_sa}, b {_sb}"])
# a stretched axis of size 2, and every axis stretched
_g = _rng.standard_normal((2, 3))
grading.assert_close(unbroadcast(_g.copy(), (1, 3)), _g.sum(axis=0, keepdims=True), rtol=1e-10,
                     atol=1e-12, name="unbroadcast(g of shape (2, 3), (1, 3))")
_g = _rng.standard_normal((3, 4))
grading.assert_close(unbroadcast(_g.copy(), (1, 1)), _g.sum(keepdims=True), rtol=1e-10,
                     atol=1e-12, name="unbroadcast(g of shape (3, 4), (1, 1))")
grading.assert_close(unbroadcast(_g.copy(), (1,)), _g.sum(axis=0).sum(keepdims=True),
                     rtol=1e-10, atol=1e-12, name="unbroadcast(g of shape (3, 4), (1,))")
_g = _rng.standard_normal((2, 3, 2))
grading.assert_close(unbroadcast(_g.copy(), ()), np.array(_g.sum()), rtol=1e-10, atol=1e-12,
                     name="unbroadcast(g of shape (2, 3, 2), ()) (a scalar)")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Reductions: sum, mean, max
#
# **Sum.** $y_i = \sum_j x_{ij}$ (a sum over axis 1). Each $x_{ij}$ enters
# exactly one output, $y_i$, with derivative $1$, so $\bar x_{ij} = \bar y_i$:
# the upstream gradient is **copied back along the summed axis**. Sum and
# broadcast are each other's adjoints: the backward of a broadcast is a sum
# (section 6), the backward of a sum is a broadcast.
#
# Two details of shape. With `keepdims=False` the summed axis is gone from
# $\bar y$: put it back as an axis of size 1 (`np.expand_dims`) before
# broadcasting to $x$'s shape (`np.broadcast_to`). With `axis=None` everything
# is summed and $\bar y$ is a single number, copied to every entry.
#
# **Mean.** The mean over the reduced axes is the sum divided by their number
# of entries $n$, so $\bar x = (\text{the sum's } \bar x) / n$. Note that
# $n$ = `x.size / y.size`.
#
# **Worked example.** $x = \begin{pmatrix}1&3&3\\2&0&1\end{pmatrix}$. For
# $y$ = `x.sum(axis=1)` $= (7, 3)$ and $\bar y = (1, 2)$:
# $\bar x = \begin{pmatrix}1&1&1\\2&2&2\end{pmatrix}$. For
# $y$ = `x.mean(axis=0)` $= (1.5, 1.5, 2)$ and $\bar y = (3, 6, 9)$:
# $\bar x = \begin{pmatrix}1.5&3&4.5\\1.5&3&4.5\end{pmatrix}$.
#
# ### Exercise 4 (2 points): sum and mean backward
#
# `axis` is `None` (all axes), an int (negative counts from the end) or a tuple
# of ints, as in NumPy.

# %% solution="sum_mean_backward" exact=true deny="backward,vjp"
def sum_backward(g, x, axis=None, keepdims=False):
    """Backward rule of y = np.sum(x, axis=axis, keepdims=keepdims).

    g: the upstream gradient, with y's shape (a 0-d array or float if axis is
    None and keepdims is False).
    Returns grad_x, an array of x's shape.
    """
    ### BEGIN SOLUTION
    g = np.asarray(g, dtype=np.float64)
    if not keepdims:
        axes = tuple(range(x.ndim)) if axis is None else axis
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, x.shape).copy()
    ### END SOLUTION


def mean_backward(g, x, axis=None, keepdims=False):
    """Backward rule of y = np.mean(x, axis=axis, keepdims=keepdims).

    Same arguments as sum_backward. Returns grad_x, an array of x's shape.
    """
    ### BEGIN SOLUTION
    return sum_backward(g, x, axis, keepdims) * np.size(g) / x.size
    ### END SOLUTION


# %% test="test_sum_mean_backward" points=2
x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
grading.assert_close(sum_backward(np.array([1.0, 2.0]), x.copy(), axis=1),
                     np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]), rtol=1e-12,
                     name="sum_backward(g=[1, 2], x of shape (2, 3), axis=1)")
try:
    result = sum_backward(np.array([[1.0], [2.0]]), x.copy(), axis=1, keepdims=True)
except ValueError as error:
    raise grading.GradingError(
        f"sum_backward(g=[[1], [2]], x of shape (2, 3), axis=1, keepdims=True) raised "
        f"ValueError: {error}. With keepdims=True, g already has the reduced axis (as size "
        "1): do not insert it again.") from None
grading.assert_close(result, np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]), rtol=1e-12,
                     name="sum_backward(g=[[1], [2]], x of shape (2, 3), axis=1, keepdims=True)")
grading.assert_close(sum_backward(np.array(5.0), x.copy()), np.full((2, 3), 5.0), rtol=1e-12,
                     name="sum_backward(g=5.0, x of shape (2, 3), axis=None)")
grading.assert_close(mean_backward(np.array([3.0, 6.0, 9.0]), x.copy(), axis=0),
                     np.array([[1.5, 3.0, 4.5], [1.5, 3.0, 4.5]]), rtol=1e-12,
                     name="mean_backward(g=[3, 6, 9], x of shape (2, 3), axis=0)")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
_cases = [((3, 4), 0, False), ((3, 4), -1, True), ((2, 3, 4), (0, 2), False),
          ((2, 3, 4), 1, True), ((4, 2, 3), None, False), ((2, 3), None, True),
          ((5,), 0, False), ((2, 3, 4), -2, False)]
for _shape, _axis, _keep in _cases:
    for _name, _fn, _np_fn, _ref in [
            ("sum_backward", sum_backward, np.sum, lambda t, a=_axis, k=_keep: ad.sum(t, a, k)),
            ("mean_backward", mean_backward, np.mean,
             lambda t, a=_axis, k=_keep: ad.mean(t, a, k))]:
        grading.check_vjp(lambda g, x, f=_fn, a=_axis, k=_keep: f(g, x, axis=a, keepdims=k),
                          lambda x, f=_np_fn, a=_axis, k=_keep: f(x, axis=a, keepdims=k),
                          [_shape], reference=_ref, rng=_rng, rtol=1e-10, atol=1e-12, trials=1,
                          names=[f"{_name}(g, x of shape {_shape}, axis={_axis}, "
                                 f"keepdims={_keep})"])
### END HIDDEN TESTS

# %% [markdown]
# **Max.** $y_i = \max_j x_{ij}$. Near a point where one entry $x_{ik}$ is
# strictly the largest, $y_i = x_{ik}$ and small changes of the other entries
# do not matter: the derivative is $1$ for the winner and $0$ for the rest.
# The max gate *routes* the whole upstream gradient to the entry that won
# (notebook 03's "max routes").
#
# **Ties.** Where several entries share the maximum, max is not
# differentiable (it has a kink), and a framework must choose. We split
# $\bar y_i$ **equally** among the $k$ tied entries: each gets $\bar y_i / k$.
# That is what `autodiff_ref` does (and PyTorch's `amax`); the gradients
# along the reduced axis still add up to $\bar y_i$, and the rule treats the
# tied entries symmetrically. (PyTorch's `max(dim=...)`, which also returns
# indices, sends everything to one index instead. Both are valid
# subgradient-style choices; ours is the one the tests expect.)
#
# **Worked example.** The same $x$, $y$ = `x.max(axis=1)` $= (3, 2)$, with a
# tie between the two 3s in row 0. For $\bar y = (6, 4)$:
# $\bar x = \begin{pmatrix}0&3&3\\4&0&0\end{pmatrix}$.
#
# ### Exercise 5 (2 points): max backward, with ties
#
# Hint: `x == np.max(x, axis=axis, keepdims=True)` marks the winners, and your
# `sum_backward` brings `g` back to `x`'s shape.

# %% solution="max_backward" exact=true deny="backward,vjp"
def max_backward(g, x, axis=None, keepdims=False):
    """Backward rule of y = np.max(x, axis=axis, keepdims=keepdims).

    g: the upstream gradient, with y's shape. axis: None, an int or a tuple.
    Returns grad_x of x's shape: each maximum gets the upstream gradient of
    its output; k entries tied for the same maximum get 1/k of it each; all
    other entries get 0.
    """
    ### BEGIN SOLUTION
    top = np.max(x, axis=axis, keepdims=True)
    winners = (x == top).astype(np.float64)
    share = winners / np.sum(winners, axis=axis, keepdims=True)
    return sum_backward(g, x, axis, keepdims) * share
    ### END SOLUTION


# %% test="test_max_backward" points=2
x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
grading.assert_close(max_backward(np.array([6.0, 4.0]), x.copy(), axis=1),
                     np.array([[0.0, 3.0, 3.0], [4.0, 0.0, 0.0]]), rtol=1e-12,
                     name="max_backward(g=[6, 4], x=[[1, 3, 3], [2, 0, 1]], axis=1) "
                          "(the tied 3s share 6 equally)")
grading.assert_close(max_backward(np.array([[1.0, 2.0, 5.0]]), x.copy(), axis=0, keepdims=True),
                     np.array([[0.0, 2.0, 5.0], [1.0, 0.0, 0.0]]), rtol=1e-12,
                     name="max_backward(g=[[1, 2, 5]], x=[[1, 3, 3], [2, 0, 1]], axis=0, "
                          "keepdims=True)")
grading.check_vjp(lambda g, x: max_backward(g, x, axis=1), lambda x: np.max(x, axis=1), [(3, 4)],
                  reference=lambda t: ad.max(t, 1), rng=np.random.default_rng(3),
                  names=["max_backward(g, x of shape (3, 4), axis=1)"])
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape, _axis, _keep in [((3, 4), 0, False), ((4, 3), -1, True), ((2, 3, 4), (0, 2), False),
                             ((3, 2, 4), None, False), ((6,), 0, True)]:
    grading.check_vjp(lambda g, x, a=_axis, k=_keep: max_backward(g, x, axis=a, keepdims=k),
                      lambda x, a=_axis, k=_keep: np.max(x, axis=a, keepdims=k), [_shape],
                      reference=lambda t, a=_axis, k=_keep: ad.max(t, a, k), rng=_rng,
                      rtol=1e-10, atol=1e-12, trials=1,
                      names=[f"max_backward(g, x of shape {_shape}, axis={_axis}, "
                             f"keepdims={_keep})"])


def _check_ties(shape, axis, keep):
    # small integers: many ties; the reference splits each upstream value equally
    x = _rng.integers(0, 3, shape).astype(np.float64)
    t = ad.tensor(x.copy(), requires_grad=True)
    y = ad.max(t, axis, keep)
    g = _rng.uniform(1.0, 2.0, y.shape)
    y.backward(ad.tensor(g))
    got = max_backward(g.copy(), x.copy(), axis=axis, keepdims=keep)
    name = (f"max_backward(g, x of shape {shape} with ties, axis={axis}, keepdims={keep}) "
            "(k tied maxima get g / k each)")
    if got is not None and np.shape(got) == x.shape:
        totals = np.sum(got, axis=axis, keepdims=keep)
        if not np.allclose(totals, g, rtol=1e-10, atol=1e-12):
            ratio = float(np.max(totals / g))
            raise grading.GradingError(
                f"{name}: along the reduced axis the gradient adds up to {ratio:.3g} times "
                "the upstream gradient somewhere; it must add up to exactly g. With k tied "
                "maxima, give each g / k (not g to each, not g to the first one only).")
    grading.assert_close(got, t.grad.numpy(), rtol=1e-10, atol=1e-12, name=name)


for _shape, _axis, _keep in [((4, 5), 1, False), ((5, 4), 0, True), ((3, 2, 4), (1, 2), False),
                             ((2, 3), None, False), ((3, 4, 2), -1, True)]:
    _check_ties(_shape, _axis, _keep)
### END HIDDEN TESTS

# %% [markdown]
# ### Reshape and transpose
#
# Two operations only move entries around. A **reshape** keeps the entries in
# the same (row-major) order, so the gradient of the input is the upstream
# gradient reshaped back: $\bar x$ = `g.reshape(x.shape)`. A **transpose**
# (a permutation of axes `p`) sends entry $x[a_0, a_1, \dots]$ to a new
# position; its adjoint puts every gradient entry back where it came from,
# which is the transpose by the *inverse* permutation, `np.argsort(p)`. For a
# matrix, $\bar x = \bar y^\top$. The cell checks both against the reference.

# %%
rng = np.random.default_rng(4)
x = rng.standard_normal((2, 3, 4))
perm = (2, 0, 1)
g = rng.standard_normal(np.transpose(x, perm).shape)         # shape (4, 2, 3)
xt = ad.tensor(x, requires_grad=True)
xt.permute(*perm).backward(ad.tensor(g))
print("permute", perm, "-> inverse", tuple(int(i) for i in np.argsort(perm)))
assert np.allclose(xt.grad.numpy(), np.transpose(g, np.argsort(perm)))
xt.grad = None
xt.reshape(6, 4).backward(ad.tensor(g.reshape(6, 4)))
assert np.allclose(xt.grad.numpy(), g.reshape(6, 4).reshape(x.shape))
print("reshape back and inverse-permute agree with autodiff_ref")

# %% [markdown]
# ## 8. Element-wise functions
#
# If $y_i = f(x_i)$ for every entry, the Jacobian is diagonal (table row (4)),
# and the VJP is an element-wise product, for arrays of any shape:
#
# $$
# \bar x = \bar y \circ f'(x).
# $$
#
# The three activation functions of this course and their derivatives:
#
# | $f$ | $f(x)$ | $f'(x)$ | |
# |---|---|---|---|
# | ReLU | $\max(x, 0)$ | $1$ if $x > 0$, else $0$ | at exactly $x = 0$ we take $0$ (as PyTorch) |
# | sigmoid | $\sigma(x) = 1/(1 + e^{-x})$ | $\sigma(x)\,(1 - \sigma(x))$ | at most $1/4$, at $x = 0$ |
# | tanh | $\tanh x$ | $1 - \tanh^2 x$ | at most $1$, at $x = 0$ |
#
# Both $\sigma'$ and $\tanh'$ are written in terms of the function's own
# value, so a backward rule can reuse the forward output instead of
# recomputing anything. Both vanish for large $|x|$ (saturation): the plot
# shows why deep stacks of sigmoids pass back tiny gradients, a theme of
# notebook 06.

# %%
xs = np.linspace(-5, 5, 401)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, (name, f, df) in zip(axes, [
        ("ReLU", lambda t: np.maximum(t, 0), lambda t: (t > 0).astype(float)),
        ("sigmoid", sigmoid, lambda t: sigmoid(t) * (1 - sigmoid(t))),
        ("tanh", np.tanh, lambda t: 1 - np.tanh(t) ** 2)]):
    ax.plot(xs, f(xs), label=name)
    ax.plot(xs, df(xs), "--", label=f"{name}'")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.set_xlabel("x")
    ax.set_title(f"{name} and its derivative")
    ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# ### Exercise 6 (2 points): ReLU, sigmoid and tanh backward
#
# Write the three rules. `x` has any shape; `g` has the same shape. You may
# call `sigmoid` (defined at the top) and `np.tanh`.

# %% solution="elementwise_backward" exact=true deny="backward,vjp,relu"
def relu_backward(g, x):
    """Backward rule of y = max(x, 0): returns g * relu'(x), relu'(0) = 0; x's shape."""
    ### BEGIN SOLUTION
    return g * (x > 0)
    ### END SOLUTION


def sigmoid_backward(g, x):
    """Backward rule of y = sigmoid(x): returns g * sigmoid'(x), x's shape."""
    ### BEGIN SOLUTION
    s = sigmoid(x)
    return g * s * (1 - s)
    ### END SOLUTION


def tanh_backward(g, x):
    """Backward rule of y = tanh(x): returns g * tanh'(x), x's shape."""
    ### BEGIN SOLUTION
    return g * (1 - np.tanh(x) ** 2)
    ### END SOLUTION


# %% test="test_elementwise_backward" points=2
x = np.array([-2.0, 0.0, 0.5, 3.0])
g = np.array([1.0, 2.0, 3.0, 4.0])
grading.assert_close(relu_backward(g.copy(), x.copy()), np.array([0.0, 0.0, 3.0, 4.0]),
                     rtol=1e-12, name="relu_backward(g=[1, 2, 3, 4], x=[-2, 0, 0.5, 3]) "
                                      "(relu'(0) = 0)")
grading.assert_close(sigmoid_backward(np.array([2.0]), np.array([0.0])), np.array([0.5]),
                     rtol=1e-12, without_upstream=np.array([0.25]),
                     name="sigmoid_backward(g=[2], x=[0]) (sigmoid'(0) = 1/4)")
grading.assert_close(tanh_backward(np.array([2.0]), np.array([0.0])), np.array([2.0]),
                     rtol=1e-12, without_upstream=np.array([1.0]),
                     name="tanh_backward(g=[2], x=[0]) (tanh'(0) = 1)")
for _name, _fn, _np_fn, _ref in [("relu_backward", relu_backward, lambda t: np.maximum(t, 0),
                                  ad.relu),
                                 ("sigmoid_backward", sigmoid_backward, sigmoid, ad.sigmoid),
                                 ("tanh_backward", tanh_backward, np.tanh, ad.tanh)]:
    grading.check_vjp(_fn, _np_fn, [(2, 3)], reference=_ref, rng=np.random.default_rng(6),
                      names=[f"{_name}(g, x of shape (2, 3))"])
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _sigmoid_np(t):
    return 1.0 / (1.0 + np.exp(-t))


for _name, _fn, _np_fn, _ref in [("relu_backward", relu_backward, lambda t: np.maximum(t, 0),
                                  ad.relu),
                                 ("sigmoid_backward", sigmoid_backward, _sigmoid_np, ad.sigmoid),
                                 ("tanh_backward", tanh_backward, np.tanh, ad.tanh)]:
    for _shape in [(int(_rng.integers(2, 9)),), (3, 4), (2, 3, 2)]:
        grading.check_vjp(_fn, _np_fn, [_shape], reference=_ref, rng=_rng, rtol=1e-10,
                          atol=1e-12, low=-4.0, high=4.0, trials=1,
                          names=[f"{_name}(g, x of shape {_shape})"])
# ReLU at exactly 0 (and at both signs), against the reference
_x = _rng.choice([-1.5, 0.0, 0.0, 2.0], (3, 5))
_g = _rng.uniform(0.5, 2.0, (3, 5))
_t = ad.tensor(_x.copy(), requires_grad=True)
ad.relu(_t).backward(ad.tensor(_g))
grading.assert_close(relu_backward(_g.copy(), _x.copy()), _t.grad.numpy(), rtol=1e-12,
                     atol=0, name="relu_backward(g, x) where x has exact zeros (relu'(0) = 0)")
### END HIDDEN TESTS

# %% [markdown]
# ## 9. Softmax and log-softmax
#
# **Softmax** turns a row of scores into probabilities,
# $s_i = e^{x_i} / \sum_k e^{x_k}$, along the last axis. Every output depends
# on every input, so its Jacobian is full:
#
# $$
# \frac{\partial s_i}{\partial x_j} = s_i\,([i = j] - s_j),
# \qquad
# \frac{\partial s}{\partial x} = \operatorname{diag}(s) - s\,s^\top.
# $$
#
# (For $i = j$ the quotient rule gives $s_i - s_i^2$; for $i \ne j$ only the
# denominator depends on $x_j$, giving $-s_i s_j$.) The VJP never needs this
# $C\times C$ matrix:
#
# $$
# \bar x_j = \sum_i \bar s_i\, s_i\,([i = j] - s_j)
# = s_j\Big(\bar s_j - \sum_i \bar s_i s_i\Big),
# \qquad
# \bar x = s \circ \big(\bar s - \langle \bar s, s\rangle\big),
# $$
#
# one dot product per row: $O(C)$ work instead of $O(C^2)$. In a batch (or any
# array) the dot product is taken along the last axis, separately for every
# row, and kept as a column so that it broadcasts back
# (`np.sum(..., axis=-1, keepdims=True)`). A check: an upstream gradient that
# is the same in every entry gives $\bar x = 0$, because softmax does not change
# when the same number is added to all its inputs.
#
# **Log-softmax**, $\ell_i = x_i - \log\sum_k e^{x_k}$, is what a classifier's
# loss actually needs (it stays accurate where softmax underflows to 0). Its
# Jacobian is $\partial \ell_i / \partial x_j = [i = j] - s_j$, so
#
# $$
# \bar x_j = \bar\ell_j - s_j \sum_i \bar\ell_i,
# \qquad
# \bar x = \bar\ell - s \textstyle\sum_i \bar\ell_i .
# $$
#
# **Worked example.** $x = (2.0, 1.0, 0.1)$, $s = (0.6590, 0.2424, 0.0986)$.
# With upstream $(1, 0, 0)$, softmax's VJP is
# $s \circ ((1, 0, 0) - 0.6590) = (0.2247, -0.1598, -0.0650)$ and
# log-softmax's is $(1, 0, 0) - s = (0.3410, -0.2424, -0.0986)$: exactly
# minus the cross-entropy gradient of table row (7), since the loss for class
# 0 is $-\ell_0$.
#
# ### Exercise 7 (2 points): softmax backward
#
# You may call `softmax` (defined at the top).

# %% solution="softmax_backward" exact=true deny="backward,vjp,log_softmax"
def softmax_backward(g, x):
    """Backward rule of s = softmax(x) along the last axis.

    g: the upstream gradient, x's shape; x: any shape with at least one axis.
    Returns grad_x = s * (g - sum(g * s along the last axis)), x's shape.
    """
    ### BEGIN SOLUTION
    s = softmax(x)
    return s * (g - np.sum(g * s, axis=-1, keepdims=True))
    ### END SOLUTION


# %% test="test_softmax_backward" points=2
grading.assert_close(softmax_backward(np.array([1.0, 0.0, 0.0]), np.array([2.0, 1.0, 0.1])),
                     np.array([0.224719, -0.159764, -0.064955]), rtol=1e-5,
                     name="softmax_backward(g=[1, 0, 0], x=[2, 1, 0.1])")
grading.assert_close(softmax_backward(np.full((2, 3), 7.0), np.array([[2.0, 1.0, 0.1],
                                                                       [0.0, -1.0, 3.0]])),
                     np.zeros((2, 3)), atol=1e-12,
                     name="softmax_backward(g = 7 everywhere, x of shape (2, 3)) (a constant "
                          "upstream gradient gives 0)")
grading.check_vjp(softmax_backward, softmax, [(3, 4)], reference=lambda t: ad.softmax(t),
                  rng=np.random.default_rng(7), names=["softmax_backward(g, x of shape (3, 4))"])
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _softmax_np(t):
    e = np.exp(t - np.max(t, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


for _shape in [(int(_rng.integers(2, 7)),), (3, 5), (4, 2), (2, 3, 4)]:
    grading.check_vjp(softmax_backward, _softmax_np, [_shape], reference=lambda t: ad.softmax(t),
                      rng=_rng, rtol=1e-10, atol=1e-12, low=-3.0, high=3.0,
                      names=[f"softmax_backward(g, x of shape {_shape})"])
# large logits: no overflow
_x = _rng.uniform(-3, 3, (3, 4)) + _rng.choice([-800.0, 800.0], (3, 1))
_g = _rng.standard_normal((3, 4))
_t = ad.tensor(_x.copy(), requires_grad=True)
ad.softmax(_t).backward(ad.tensor(_g))
grading.assert_close(softmax_backward(_g.copy(), _x.copy()), _t.grad.numpy(), rtol=1e-10,
                     atol=1e-12, name="softmax_backward(g, x) for logits near +-800 (use the "
                                      "stable softmax)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 8 (1 point): log-softmax backward

# %% solution="log_softmax_backward" exact=true deny="backward,vjp"
def log_softmax_backward(g, x):
    """Backward rule of l = log_softmax(x) along the last axis.

    g: the upstream gradient, x's shape; x: any shape with at least one axis.
    Returns grad_x = g - softmax(x) * sum(g along the last axis), x's shape.
    """
    ### BEGIN SOLUTION
    return g - softmax(x) * np.sum(g, axis=-1, keepdims=True)
    ### END SOLUTION


# %% test="test_log_softmax_backward" points=1
grading.assert_close(log_softmax_backward(np.array([1.0, 0.0, 0.0]), np.array([2.0, 1.0, 0.1])),
                     np.array([0.340999, -0.242433, -0.098566]), rtol=1e-5,
                     name="log_softmax_backward(g=[1, 0, 0], x=[2, 1, 0.1])")
grading.check_vjp(log_softmax_backward, log_softmax, [(3, 4)],
                  reference=lambda t: ad.log_softmax(t), rng=np.random.default_rng(8),
                  names=["log_softmax_backward(g, x of shape (3, 4))"])
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _log_softmax_np(t):
    shifted = t - np.max(t, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


for _shape in [(int(_rng.integers(2, 7)),), (3, 5), (4, 2), (2, 3, 4)]:
    grading.check_vjp(log_softmax_backward, _log_softmax_np, [_shape],
                      reference=lambda t: ad.log_softmax(t), rng=_rng, rtol=1e-10, atol=1e-12,
                      low=-3.0, high=3.0, names=[f"log_softmax_backward(g, x of shape {_shape})"])
_x = _rng.uniform(-3, 3, (4, 3)) + _rng.choice([-900.0, 900.0], (4, 1))
_g = _rng.standard_normal((4, 3))
_t = ad.tensor(_x.copy(), requires_grad=True)
ad.log_softmax(_t).backward(ad.tensor(_g))
grading.assert_close(log_softmax_backward(_g.copy(), _x.copy()), _t.grad.numpy(), rtol=1e-10,
                     atol=1e-12, name="log_softmax_backward(g, x) for logits near +-900 (use "
                                      "the stable softmax)")
### END HIDDEN TESTS

# %% [markdown]
# ## 10. Softmax cross-entropy
#
# A classifier produces a row of logits $x_n \in \mathbb{R}^C$ for each of the
# $N$ examples of a batch, with integer true classes $t_n$. The loss is the
# mean cross-entropy,
#
# $$
# L = \frac1N \sum_{n} \Big(-x_{n,t_n} + \log\sum_c e^{x_{n,c}}\Big)
#   = -\frac1N\sum_n \ell_{n, t_n},
# $$
#
# with $\ell$ the log-softmax of each row. One row's term depends on $x_{n,c}$
# through $-x_{n,t_n}$ (only if $c = t_n$) and through the log-sum-exp (whose
# derivative is $s_{n,c}$), so
#
# $$
# \frac{\partial L}{\partial x_{n,c}} = \frac{s_{n,c} - [c = t_n]}{N},
# \qquad
# \bar x = \bar L\;\frac{\operatorname{softmax}(x) - \operatorname{onehot}(t)}{N},
# $$
#
# table row (7) for a batch, with $\bar L$ the upstream gradient (a single
# number, $1$ when $L$ is the final loss). Frameworks fuse the two steps into
# one operation (`ad.cross_entropy`, PyTorch's `F.cross_entropy`): the
# gradient is this simple, and the forward pass is computed from
# log-sum-exp, which never takes the log of an underflowed $0$.
#
# **Worked example.** Logits
# $\begin{pmatrix}2.0&1.0&0.1\\0.5&2.5&-1.0\end{pmatrix}$, classes $t = (0, 1)$:
# the softmax rows are $(0.6590, 0.2424, 0.0986)$ and $(0.1161, 0.8580,
# 0.0259)$, $L = 0.2851$, and
#
# $$
# \bar x = \tfrac12\begin{pmatrix}0.6590 - 1 & 0.2424 & 0.0986\\
# 0.1161 & 0.8580 - 1 & 0.0259\end{pmatrix}
# = \begin{pmatrix}-0.1705 & 0.1212 & 0.0493\\ 0.0581 & -0.0710 & 0.0130\end{pmatrix}.
# $$
#
# ### Exercise 9 (2 points): softmax cross-entropy backward
#
# You may call `softmax`. Do not modify `logits` in place.

# %% solution="cross_entropy_backward" exact=true deny="backward,vjp,cross_entropy"
def cross_entropy_backward(g, logits, targets):
    """Backward rule of L = cross_entropy(logits, targets) (mean over the batch).

    g: the upstream gradient dJ/dL, a float or a 0-d array; logits: (N, C)
    floats; targets: (N,) integer classes in [0, C).
    Returns grad_logits = g * (softmax(logits) - onehot(targets)) / N, of
    shape (N, C). (targets are integers: they get no gradient.)
    """
    ### BEGIN SOLUTION
    n = logits.shape[0]
    p = softmax(logits)
    p[np.arange(n), targets] -= 1.0
    return g * p / n
    ### END SOLUTION


# %% test="test_cross_entropy_backward" points=2
logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
targets = np.array([0, 1])
grading.assert_close(cross_entropy_backward(1.0, logits.copy(), targets.copy()),
                     np.array([[-0.170499, 0.121216, 0.049283], [0.058057, -0.071012, 0.012954]]),
                     rtol=1e-4, name="cross_entropy_backward(1.0, the worked example's logits, "
                                     "targets=[0, 1])")
grading.assert_close(cross_entropy_backward(1.0, logits[:1].copy(), targets[:1].copy()),
                     np.array([[-0.340999, 0.242433, 0.098566]]), rtol=1e-4,
                     name="cross_entropy_backward(1.0, [[2, 1, 0.1]], [0]) (y_hat - y)")
_before = logits.copy()
cross_entropy_backward(1.0, logits, targets)
if not np.array_equal(logits, _before):
    raise grading.GradingError("cross_entropy_backward changed its argument logits in place: "
                               "work on a new array (softmax(logits) is one).")
grading.check_vjp(lambda g, x: cross_entropy_backward(g, x, np.array([2, 0, 1, 2])),
                  lambda x: cross_entropy(x, np.array([2, 0, 1, 2])), [(4, 3)],
                  reference=lambda t: ad.cross_entropy(t, np.array([2, 0, 1, 2])),
                  rng=np.random.default_rng(9),
                  names=["cross_entropy_backward(g, logits of shape (4, 3), targets [2, 0, 1, 2])"])
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _ce_np(x, t):
    shifted = x - np.max(x, axis=1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(x.shape[0]), t])


for _ in range(3):
    _n, _c = (int(s) for s in _rng.choice(np.arange(2, 8), 2, replace=False))
    _tg = _rng.integers(0, _c, _n)
    grading.check_vjp(lambda g, x, t=_tg: cross_entropy_backward(g, x, t.copy()),
                      lambda x, t=_tg: _ce_np(x, t), [(_n, _c)],
                      reference=lambda x, t=_tg: ad.cross_entropy(x, t), rng=_rng,
                      rtol=1e-10, atol=1e-12, low=-3.0, high=3.0,
                      names=[f"cross_entropy_backward(g, logits of shape ({_n}, {_c}), "
                             f"targets {_tg.tolist()})"])
# large logits: no overflow
_x = _rng.uniform(-3, 3, (5, 4)) + _rng.choice([-1000.0, 1000.0], (5, 1))
_tg = _rng.integers(0, 4, 5)
_t = ad.tensor(_x.copy(), requires_grad=True)
ad.cross_entropy(_t, _tg).backward()
grading.assert_close(cross_entropy_backward(np.array(1.0), _x.copy(), _tg.copy()), _t.grad.numpy(),
                     rtol=1e-10, atol=1e-12, name="cross_entropy_backward(1.0, logits near "
                                                  "+-1000, targets) (use the stable softmax)")
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# * The **Jacobian form** ($\partial J/\partial x$ a row, chain rule = matrix
#   products) is for deriving; the **shape convention** ($\bar A$ has $A$'s
#   shape) is what training code stores and what `W -= lr * dW` needs.
# * A backward rule is a **vector-Jacobian product**
#   $\bar x_i = \sum_j \bar y_j\,\partial y_j/\partial x_i$. Derive it from one
#   scalar entry, sum over the outputs an input touches, recognise the array
#   expression, check the shape. Never build the Jacobian: for a linear layer
#   it is $N^2MD$ numbers (256 GiB for $N = 64$, $D = M = 4096$ in float32),
#   mostly zeros.
# * Identities: $z = Wx$: $\partial z/\partial x = W$, $\partial J/\partial W =
#   \delta^\top x^\top$; $z = xW$: $W^\top$ and $x^\top\delta$; $z = x$: $I$;
#   element-wise: $\operatorname{diag}(f'(x))$, i.e. $\bar x = \bar y \circ f'(x)$;
#   softmax + cross-entropy: $\hat y - y$.
# * **Matrix product** $Z = XW$: $\bar X = \bar Z W^\top$, $\bar W = X^\top \bar Z$;
#   dimension analysis ($W$ $5\times10$, $X$ $10\times3$: $dW = dD\,X^\top$,
#   $dX = W^\top dD$) confirms it.
# * **Broadcasting** copies, so its adjoint sums: over new leading axes and
#   over stretched size-1 axes (kept). **Sum** copies the gradient back along
#   the reduced axes; **mean** also divides by the count; **max** routes it to
#   the maximum, split equally among ties. Reshape and transpose only move
#   entries: reshape back, transpose by the inverse permutation.
# * **Softmax**: $\bar x = s\circ(\bar s - \langle\bar s, s\rangle)$;
#   **log-softmax**: $\bar x = \bar\ell - s\sum\bar\ell$; **softmax
#   cross-entropy**: $\bar L\,(s - \operatorname{onehot}(t))/N$.
#
# Notebook 06 puts these rules together into the backward pass of a
# one-hidden-layer network, written by hand and trained.
