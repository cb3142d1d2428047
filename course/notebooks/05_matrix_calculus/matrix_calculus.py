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
# batch, sums and means, softmax, normalisation), and each of them needs a
# backward rule that works on whole arrays at once. In this notebook you
# derive them yourself.
#
# You will learn one recipe that produces any such rule, see it worked out
# once in full (the matrix product), and then use it on your own for every
# operation a small network needs:
#
# 1. two ways to write a derivative: the **Jacobian** of the chain rule, and
#    the **gradient with the shape of the parameter** that training code uses;
# 2. a table of identities for vectors and matrices, checked numerically, and
#    **dimension analysis**, the quickest check of a matrix formula;
# 3. the backward rule of a **matrix product**, derived from its scalar form
#    (the model derivation), a linear layer, and why frameworks never build
#    the Jacobian (measured: bytes and milliseconds);
# 4. **broadcasting** and its adjoint, division, batched matrix products,
#    **reductions** (sum, mean, max), transposes and row lookups,
#    **element-wise** functions, **softmax**, **log-softmax**, the fused
#    **softmax cross-entropy** (with label smoothing) and, to finish,
#    **layer normalisation**, assembled from the rules before it.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are thirteen autograded exercises (25 points) and two
# written answers (2 points, graded by hand). Each exercise asks for a
# backward rule `<op>_backward(g, <inputs>)`: it receives the upstream
# gradient `g` and the operation's inputs and returns the gradient with
# respect to each input. The docstring says what goes in and what comes out;
# the formula is yours to derive with the recipe of section 1. Replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The tests feed random upstream gradients and random shapes,
# compare with the reference engine `autodiff_ref` and with finite
# differences, and tell you in words what is wrong (transposed, a missing sum
# over a broadcast axis, off by a factor, the upstream gradient ignored, ...);
# a passing test prints one line starting with ✓. The hidden tests used for
# grading compare to about ten significant digits, so the rules must come
# from formulas, not from finite differences. A written answer goes in the
# markdown cell marked "YOUR ANSWER HERE"; write it *before* you run the cells
# below it, since they reveal the answer.
#
# **Run All stops at the first unfinished exercise**: its test cell raises an
# error, and Jupyter stops there. Either work through the exercises in order,
# or run cells one at a time (Shift-Enter), or use *Run → Run All Above
# Selected Cell* to catch up to where you are. Every cell that is not a test
# runs without your code.
#
# Symbols and conventions used throughout the course are collected on the
# [notation card](../notation.md).

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


def smoothed_targets(targets, num_classes, label_smoothing=0.0):
    """The target distributions q, shape (N, C): 1 - eps + eps / C on the true
    class of each row and eps / C everywhere else (eps = label_smoothing)."""
    q = np.full((len(targets), num_classes), label_smoothing / num_classes)
    q[np.arange(len(targets)), targets] += 1.0 - label_smoothing
    return q


def cross_entropy(logits, targets, label_smoothing=0.0):
    """Mean over the batch of -sum_c q[n, c] * log_softmax(logits)[n, c].

    logits: (N, C) floats; targets: (N,) integer classes in [0, C);
    q = smoothed_targets(targets, C, label_smoothing) (one-hot when the
    smoothing is 0, as in PyTorch's F.cross_entropy(label_smoothing=...)).
    """
    q = smoothed_targets(targets, logits.shape[1], label_smoothing)
    return -np.mean(np.sum(q * log_softmax(logits), axis=1))


def layer_norm(x, gamma, beta, eps=1e-5):
    """Normalise every row (the last axis) of x to mean 0 and variance 1, then
    scale by gamma and shift by beta (both of shape (D,), D = x.shape[-1])."""
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


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
# Jacobian form: $\nabla_x J = (\partial J/\partial x)^\top$.
#
# From now on we write $\bar A$ (read "A bar", the *adjoint* of $A$) for
# $\partial J / \partial A$ in the shape convention: an array with the shape
# of $A$, whatever $A$ is. In code it is `grad_a`, or `g` for the upstream
# gradient.
#
# > **Common mistake: mixing the two layouts.** For $z = Wx$ with a square
# > $W$ and 1-D arrays, `dz @ W` and `W @ dz` both run and return arrays of
# > the same shape, and only the first is right: it is the Jacobian-form row
# > $\frac{\partial J}{\partial z}W$, whose transpose is the gradient
# > $\bar x = W^\top \bar z$. A Jacobian is always in
# > numerator layout; a *gradient* that you store or return always has the
# > shape of its variable. Derive in one of them, convert at the very end (a
# > transpose), and check the shape. Notebook 02, section 1, has the table of
# > both layouts.
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
# 2. for one input entry, find the outputs it touches and add up
#    $\bar y_j\,\partial y_j/\partial x_i$ over them (the chain rule sums over
#    paths);
# 3. recognise the sum as an array expression (a matrix product, a sum over
#    an axis, an element-wise product, ...);
# 4. check that the result has the input's shape, and test it on a small
#    case you can do by hand.

# %% [markdown]
# ## 2. A table of identities
#
# Take $W$ of size $n\times m$. In rows (1) and (5), $x \in \mathbb{R}^m$ is
# a column and $z = Wx \in \mathbb{R}^n$; in rows (2) and (6), $x$ is a
# $1\times n$ row and $z = xW$ is a $1\times m$ row. $f$ is a scalar function
# applied entry by entry, and $\delta = \partial J/\partial z$ is the upstream
# gradient in Jacobian form, a row with one entry per entry of $z$ ($1\times
# n$ in row (5), $1\times m$ in row (6)).
#
# | | forward | derivative | shape | why (one entry) |
# |---|---|---|---|---|
# | (1) | $z = Wx$ | $\dfrac{\partial z}{\partial x} = W$ | $n\times m$ | $z_i = \sum_k W_{ik}x_k$, so $\partial z_i/\partial x_j = W_{ij}$ |
# | (2) | $z = xW$ | $\dfrac{\partial z}{\partial x} = W^\top$ | $m\times n$ | $z_j = \sum_k x_k W_{kj}$, so $\partial z_j/\partial x_k = W_{kj}$, entry $(j, k)$ of $W^\top$ |
# | (3) | $z = x$ | $\dfrac{\partial z}{\partial x} = I$ | $m\times m$ | $\partial x_i/\partial x_j = 1$ if $i=j$, else $0$ |
# | (4) | $z = f(x)$ element-wise | $\dfrac{\partial z}{\partial x} = \operatorname{diag}(f'(x))$ | $m\times m$ | $z_i$ depends on $x_i$ only |
# | (5) | $z = Wx$ | $\dfrac{\partial J}{\partial W} = \delta^\top x^\top$ | $n\times m$ | $W_{ij}$ enters only $z_i$, with factor $x_j$: $\partial J/\partial W_{ij} = \delta_i\, x_j$ |
# | (6) | $z = xW$ | $\dfrac{\partial J}{\partial W} = x^\top \delta$ | $n\times m$ | $W_{kj}$ enters only $z_j$, with factor $x_k$: $\partial J/\partial W_{kj} = x_k\, \delta_j$ |
# | (7) | $\hat y = \operatorname{softmax}(\theta)$, $J = \operatorname{CE}(y, \hat y)$ | $\dfrac{\partial J}{\partial \theta} = \hat y - y$ | like $\theta$ | $J = -\theta_t + \log\sum_c e^{\theta_c}$ for the true class $t$ |
#
# Rows (1) to (4) are Jacobians (numerator layout: rows follow $z$, columns
# follow $x$). Rows (5) and (6) are the first results in the shape convention:
# $\delta^\top x^\top$ is $(n\times1)(1\times m) = n\times m$, and $x^\top
# \delta$ is $(n\times 1)(1\times m) = n\times m$, the shape of $W$ both times.
# Each is the recipe in one line: $J$ depends on $W_{ij}$ only through one
# entry of $z$, so its derivative is that entry's $\delta$ times the factor
# multiplying $W_{ij}$, and collecting these products over $(i, j)$ gives an
# outer product. Row (4) says that the VJP of an element-wise function is an
# element-wise product, $\delta \circ f'(x)$: the diagonal matrix is never
# built. In row (7), $y$ is the one-hot vector of the true class $t$ (for a
# column $\theta$ the Jacobian form is the row $(\hat y - y)^\top$); you will
# derive it, and more, in section 11.
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
W = rng.standard_normal((n, m))         # n x m in every row of the table
x_col = rng.standard_normal(m)          # x as a column (a 1-D array of length m), z = W x
x_row = rng.standard_normal((1, n))     # x as a 1 x n row, z = x W

J1 = ad.functional.jacobian(lambda x: ad.matmul(W, x), ad.tensor(x_col)).numpy()
J2 = ad.functional.jacobian(lambda x: ad.matmul(x, W), ad.tensor(x_row)).numpy()
J3 = ad.functional.jacobian(lambda x: x * 1.0, ad.tensor(x_col)).numpy()
J4 = ad.functional.jacobian(lambda x: ad.tanh(x), ad.tensor(x_col)).numpy()
assert J1.shape == (n, m) and np.allclose(J1, W)             # (1) z = W x
assert J2.shape == (1, m, 1, n)                              # (2) z = x W: (1 x m) by (1 x n)
assert np.allclose(J2.reshape(m, n), W.T)
assert np.allclose(J3, np.eye(m))                            # (3) z = x
assert np.allclose(J4, np.diag(1 - np.tanh(x_col) ** 2))     # (4) tanh

Wt = ad.tensor(W, requires_grad=True)                        # (5) z = W x
delta_n = rng.standard_normal(n)                             # dJ/dz for z in R^n
ad.matmul(Wt, x_col).backward(ad.tensor(delta_n))
assert np.allclose(Wt.grad.numpy(), np.outer(delta_n, x_col))
Wt.grad = None                                               # (6) z = x W
delta_m = rng.standard_normal((1, m))                        # dJ/dz for z a 1 x m row
ad.matmul(x_row, Wt).backward(ad.tensor(delta_m))
assert np.allclose(Wt.grad.numpy(), x_row.T @ delta_m)

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
# This is the one derivation worked out in full; every later rule is yours,
# by the same four steps.
#
# A batch of examples stored one per row goes through a matrix:
# $Z = XW$ with $X$ of size $N\times D$ (N examples), $W$ of size $D\times M$
# and $Z$ of size $N\times M$.
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
# **Step 4**, shapes: $(N\times M)(M\times D) = N\times D$ and
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
# The next cell writes the rule as code, the way every later exercise will
# look, and checks it on the worked example and on random shapes with
# `grading.check_vjp` (random inputs, a random upstream gradient, compared
# with finite differences and with `autodiff_ref`).

# %%
def matmul_backward(g, x, w):
    """Backward rule of z = x @ w for 2-D arrays: returns (grad_x, grad_w)."""
    return g @ w.T, x.T @ g


grad_x, grad_w = matmul_backward(np.array([[1.0, -1.0, 2.0]]), np.array([[1.0, 2.0]]),
                                 np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]]))
print("worked example: grad_x =", grad_x, " grad_w =", grad_w.tolist())
grading.check_vjp(matmul_backward, lambda a, b: a @ b, [(5, 10), (10, 3)],
                  reference=lambda a, b: a @ b, rng=np.random.default_rng(1))
print("matmul_backward agrees with finite differences and autodiff_ref")

# %% [markdown]
# ### A linear layer, your turn
#
# PyTorch's `nn.Linear(D, M)` stores its weight the other way round, as an
# $M\times D$ matrix (one row per output), and adds a bias $b$ of length $M$
# to every row:
#
# $$
# Y = X W^\top + b, \qquad X: N\times D,\quad W: M\times D,\quad b: (M,),
# \quad Y: N\times M.
# $$
#
# It also accepts inputs with more leading axes, for instance a batch of $B$
# sentences of $T$ words each, $X$ of shape $(B, T, D)$: the same $W$ and
# $b$ act on each of the $B\cdot T$ rows, and $Y$ has shape $(B, T, M)$.
#
# Derive the backward rule with the recipe. Step 1: write $Y_{ij}$ with $W$'s
# indices in the order it is stored. Step 2: for $X_{ab}$, $W_{ab}$ and $b_a$
# in turn, ask which entries of $Y$ they appear in and with which factor; the
# bias asks the most interesting question. Step 3: recognise the products
# and sums. Step 4: shapes. For the leading axes, notice that $(B, T, D)$
# holds $B\cdot T$ rows that the layer treats exactly like the $N$ rows of a
# matrix (`x.reshape(-1, D)` lists them). Dimension analysis alone will not
# do: when $D = M$ it cannot tell $\bar W$ from $\bar W^\top$.
#
# ### Exercise 1 (2 points): linear layer backward

# %% solution="linear_backward" exact=true deny="backward,vjp,jacobian"
def linear_backward(g, x, w, b):
    """Backward rule of y = x @ w.T + b (the layout of PyTorch's nn.Linear).

    x: shape (..., D), any number (at least one) of leading axes;
    w: shape (M, D); b: shape (M,);
    g: the upstream gradient dJ/dy, shape (..., M) (y's shape).
    Returns the tuple (grad_x, grad_w, grad_b), each with the shape of its
    input: (..., D), (M, D) and (M,).
    """
    ### BEGIN SOLUTION
    m, d = w.shape
    n = x.size // d                    # every leading position is one example
    rows_x = x.reshape(n, d)
    rows_g = g.reshape(n, m)
    grad_x = g @ w
    grad_w = rows_g.T @ rows_x
    grad_b = np.sum(rows_g, axis=0)
    return grad_x, grad_w, grad_b
    ### END SOLUTION


# %% test="test_linear_backward" points=2
def _linear_np(x, w, b):
    return x @ w.T + b


def _linear_ad(x, w, b):
    return ad.matmul(x, ad.permute(w, 1, 0)) + b


with grading.exercise(1, "linear_backward"):
    # the worked example with w stored as (M, D) = (3, 2) and a bias
    result = linear_backward(np.array([[1.0, -1.0, 2.0]]), np.array([[1.0, 2.0]]),
                             np.array([[1.0, 2.0], [0.0, 1.0], [-1.0, 0.0]]),
                             np.array([0.5, 0.0, -1.0]))
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise grading.GradingError("linear_backward should return a tuple (grad_x, grad_w, "
                                   f"grad_b), got {type(result).__name__}.")
    grading.assert_close(result[0], np.array([[-1.0, 1.0]]), rtol=1e-12,
                         name="grad_x of the worked example (x = [[1, 2]], g = [[1, -1, 2]])")
    grading.assert_close(result[1], np.array([[1.0, 2.0], [-1.0, -2.0], [2.0, 4.0]]),
                         rtol=1e-12, name="grad_w of the worked example (shape (3, 2), like w)")
    grading.check_vjp(linear_backward, _linear_np, [(4, 3), (2, 3), (2,)], reference=_linear_ad,
                      rng=np.random.default_rng(11),
                      names=["grad_x (x (4, 3), w (2, 3))", "grad_w (x (4, 3), w (2, 3))",
                             "grad_b (x (4, 3), w (2, 3))"])
    grading.check_vjp(linear_backward, _linear_np, [(2, 3, 4), (5, 4), (5,)],
                      reference=_linear_ad, rng=np.random.default_rng(12),
                      names=["grad_x (x (2, 3, 4), w (5, 4))", "grad_w (x (2, 3, 4), w (5, 4))",
                             "grad_b (x (2, 3, 4), w (5, 4))"])
grading.passed("linear_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _lead in [(int(_rng.integers(1, 6)),), (2, 3), (2, 1, 3), ()]:
    if _lead == ():
        _d = _m = int(_rng.integers(2, 6))         # square w: shapes cannot reveal a transpose
        _lead = (3,)
    else:
        _d, _m = (int(s) for s in _rng.choice(np.arange(1, 7), 2, replace=False))
    _names = [f"{what} of linear_backward, x {_lead + (_d,)}, w ({_m}, {_d})"
              for what in ("grad_x", "grad_w", "grad_b")]
    grading.check_vjp(linear_backward, _linear_np, [_lead + (_d,), (_m, _d), (_m,)],
                      reference=_linear_ad, rng=_rng, rtol=1e-10, atol=1e-12, trials=1,
                      names=_names)
### END HIDDEN TESTS

# %% [markdown]
# ### Why a sum?
#
# In Exercise 1 the bias gradient came out as a **sum** over the rows of
# $\bar Y$. A classmate objects: "$b$ is shared by all $N$ examples, so each
# example should get an equal say: $\bar b$ ought to be the *mean* of the rows
# of $\bar Y$, or the sum only when the loss itself is a sum."
#
# **Question (1 point, written).** Who is right? Explain in two or three
# sentences, using what happens to the rows of $Y$ and to $J$ when one entry
# $b_j$ is nudged by a small $\varepsilon$. Write your answer before you run
# the cell below it.

# %% [markdown] answer="why_bias_sum" points=1
# ### BEGIN SOLUTION
# **Model answer.** The sum is right, whatever the loss. Nudging $b_j$ by
# $\varepsilon$ moves $Y_{ij}$ by $\varepsilon$ in *every* row $i$ at once,
# because the same $b_j$ is copied into each row. To first order each of those
# moves changes $J$ by $\bar Y_{ij}\varepsilon$, and the changes add up:
# $\Delta J \approx \varepsilon\sum_i \bar Y_{ij}$, so $\partial J/\partial b_j =
# \sum_i \bar Y_{ij}$. The mean would be $N$ times too small. How the loss
# weighs the examples (a mean over the batch, say) is already inside
# $\bar Y$; the backward rule of the bias must not divide again.
#
# **Rubric (1 point):** says "sum" (the classmate is wrong), and justifies it
# with the nudge: one $b_j$ changes all $N$ outputs $Y_{ij}$, and their
# first-order effects on $J$ add (chain rule summing over paths). Half a
# point for "sum" with only a shape argument or "because it is broadcast"
# without the first-order reason.
# ### END SOLUTION

# %% [markdown]
# The check: a loss $J = \sum_{ij} G_{ij} Y_{ij}$ with a fixed random $G$ has
# $\bar Y = G$ exactly. Nudge $b_0$ and compare the change of $J$ with the
# candidates.

# %%
rng = np.random.default_rng(21)
X, W_lin, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
G = rng.standard_normal((4, 2))                  # the upstream gradient dJ/dY of this loss


def loss_of_bias(b):
    return np.sum(G * (X @ W_lin.T + b))


eps = 1e-6
nudged = (loss_of_bias(b + [eps, 0.0]) - loss_of_bias(b - [eps, 0.0])) / (2 * eps)
print(f"dJ/db_0 by finite differences: {nudged:.6f}")
print(f"sum of column 0 of Y-bar:      {G[:, 0].sum():.6f}")
print(f"mean of column 0 of Y-bar:     {G[:, 0].mean():.6f}")

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
# **1 MiB**.
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


_slider = dict(min=1, max=8, style={"description_width": "initial"}, continuous_update=False)
display(widgets.interactive(
    show_linear_jacobian,
    N=widgets.IntSlider(value=3, description="batch N", **_slider),
    D=widgets.IntSlider(value=4, description="inputs D", **_slider),
    M=widgets.IntSlider(value=5, description="outputs M", **_slider),
))

# %% [markdown]
# **Measured.** The cell after the next question takes a batch of $N = 16$
# and a square layer $D = M = n$ for $n = 8, 16, 32, 64, 128$, and computes
# $\bar X$ three ways:
#
# * **one VJP**: $\bar Z W^\top$, one matrix product;
# * **through the Jacobian**, built by hand (`np.einsum` of the formula above)
#   and contracted with $\bar Z$ (`np.tensordot`);
# * **`ad.functional.jacobian`**, which builds the Jacobian as a framework
#   would have to: one backward pass per output entry, $NM$ of them (only for
#   the small sizes).
#
# **Question (1 point, written): predict before you measure.**
# (a) As a formula in $N$ and $n$, how many times more memory does the full
# Jacobian $\partial Z/\partial X$ take than the VJP's two arrays $\bar Z$
# and $\bar X$ together? What is the ratio at $N = 16$, $n = 128$?
# (b) Count multiply-adds: when $n$ doubles, by what factor should the time of
# each of the first two methods grow, and by roughly what factor (at least)
# is the Jacobian route slower than the VJP? Write your prediction, then run
# the measurement and compare.

# %% [markdown] answer="predict_jacobian_cost" points=1
# ### BEGIN SOLUTION
# **Model answer.** (a) The Jacobian has $N\cdot n\cdot N\cdot n = N^2n^2$
# entries; $\bar Z$ and $\bar X$ have $Nn$ each, $2Nn$ together. The ratio is
# $N^2n^2/(2Nn) = Nn/2$: $16\cdot128/2 = 1024$ at $n = 128$, and it doubles
# whenever $n$ doubles (the Jacobian's memory grows 4 times, the VJP's 2
# times). (b) The VJP $\bar Z W^\top$ costs $N n^2$ multiply-adds, so its time
# grows about 4 times per doubling of $n$ (less at tiny sizes, where the fixed
# cost of a NumPy call dominates). The Jacobian route writes $N^2n^2$ numbers
# and then contracts them with $\bar Z$, another $N^2 n^2$ multiply-adds:
# also about 4 times per doubling, but at least $N = 16$ times more work than
# the VJP at every size, and in practice much more, since it moves a large
# array through memory instead of running one optimised matrix product (the
# measurement shows factors from a few tens at $n = 8$ to over a thousand at
# $n = 128$; the exact numbers depend on the machine).
#
# **Rubric (1 point):** half a point for (a): the ratio $Nn/2$ (or an
# equivalent count such as $N^2n^2$ against $2Nn$) and 1024; half a point for
# (b): growth by about 4 per doubling for both, and the Jacobian route at
# least $N$ times slower (an argument from the extra factor $N$ in the work).
# A prediction that turned out wrong in detail but is reasoned from counts
# gets the point for (b) if the counts are right.
# ### END SOLUTION

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

print(f"{'n':>4} {'Jacobian':>12} {'VJP memory':>11} {'ratio':>6} {'via Jacobian':>13} "
      f"{'one VJP':>9} {'ad.functional.jacobian':>23}")
for n, jb, vb, tj, tv, ta in rows:
    print(f"{n:4d} {jb / 2**20:9.2f} MiB {vb / 2**10:7.1f} KiB {jb / vb:6.0f} {tj:10.2f} ms "
          f"{tv:6.3f} ms {'' if np.isnan(ta) else f'{ta:20.1f} ms'}")

table = np.array(rows)
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
left.loglog(table[:, 0], table[:, 1], "o-", label="full Jacobian dZ/dX")
left.loglog(table[:, 0], table[:, 2], "s-", label="one VJP (Z̄ and X̄)")
left.set_xlabel("layer width n (D = M = n), batch N = 16")
left.set_ylabel("bytes (float64)")
left.set_title("Memory")
left.legend(loc="upper left")
right.loglog(table[:, 0], table[:, 3], "o-", label="via the Jacobian\n(einsum + tensordot)")
right.loglog(table[:, 0], table[:, 4], "s-", label="one VJP: Z̄ @ W.T")
right.loglog(table[:, 0], table[:, 5], "^-", label="ad.functional.jacobian")
right.set_xlabel("layer width n (D = M = n), batch N = 16")
right.set_ylabel("ms")
right.set_title("Time to get X̄")
right.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# The Jacobian's memory grows like $n^2$ here (like $N^2n^2$ in general),
# the VJP's like $n$, and the ratio column is $Nn/2$. The times follow
# (timings of tiny products are noisy, but the gap of orders of magnitude is
# not). Building the Jacobian one backward pass at a time is slower still,
# since it repeats a whole backward pass for every entry of $Z$. This is why
# an autodiff engine stores, for each operation, a function that *computes*
# $\bar y \mapsto \bar x$ rather than a matrix: the VJPs you write in this
# notebook.

# %% [markdown]
# ## 6. Broadcasting and its adjoint
#
# The bias of Exercise 1 is the simplest case of **broadcasting**: in
# $Y = X + b$ with $X$ of shape $(N, D)$ and $b$ of shape $(D,)$, NumPy
# behaves as if $b$ were copied into each of the $N$ rows. Its gradient was
# the sum of the gradients of the copies, and that is the general rule:
# **broadcasting copies, and the adjoint of copying is summing**.
#
# NumPy's broadcasting rule: line the two shapes up **from the right**; where
# one shape is shorter, it gets new leading axes of size 1; then along every
# axis the sizes must be equal, or one of them must be $1$, which is stretched
# (copied) to the other size. So an input of shape $s$ broadcast to a result
# of shape $S$ was copied along
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
# This holds for every operation that broadcasts, not only `+`: first derive
# the rule as if the input had been copied to the full shape, then sum the
# result back to the input's shape. Engines undo broadcasting in one place
# (`autodiff_ref` calls it `sum_to_shape`, HIPS autograd `unbroadcast`) so that
# no backward rule has to think about it.
#
# ### Exercise 2 (2 points): undo broadcasting
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
with grading.exercise(2, "unbroadcast"):
    g = np.arange(12.0).reshape(4, 3)          # [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    grading.assert_close(unbroadcast(g.copy(), (3,)), np.array([18.0, 22.0, 26.0]), rtol=1e-12,
                         name="unbroadcast(g of shape (4, 3), (3,)) (sum over the new axis 0)")
    grading.assert_close(unbroadcast(g.copy(), (4, 1)), np.array([[3.0], [12.0], [21.0], [30.0]]),
                         rtol=1e-12, name="unbroadcast(g of shape (4, 3), (4, 1)) (sum over the "
                                          "stretched axis 1, kept as size 1)")
    grading.assert_close(unbroadcast(g.copy(), (4, 3)), g, rtol=1e-12,
                         name="unbroadcast(g of shape (4, 3), (4, 3)) (nothing was broadcast)")
    grading.assert_close(unbroadcast(g.copy(), ()), np.array(66.0), rtol=1e-12,
                         name="unbroadcast(g of shape (4, 3), ()) (a scalar: sum everything)")
    grading.assert_close(unbroadcast(np.ones((2, 4, 3)), (4, 1)), np.full((4, 1), 6.0),
                         rtol=1e-12, name="unbroadcast(ones of shape (2, 4, 3), (4, 1)) "
                                          "(each entry was copied 2 * 3 = 6 times)")
grading.passed("unbroadcast")
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
# > **Common mistake: a gradient with the wrong shape that still
# > broadcasts.** A backward rule for $y = x + b$ that returns $\bar Y$ itself,
# > shape $(N, D)$, as the gradient of $b$ (shape $(D,)$) has forgotten the sum.
# > Whether an engine tells you depends on its contract. PyTorch sums any
# > gradient that *could* have come from broadcasting back to the input's
# > shape without a word, even for an operation that never broadcast that
# > input (pytorch/pytorch issue #65244: a custom backward of a sum that
# > returns `ones(4, 3)` for an input of shape `(3,)` silently yields
# > `[4, 4, 4]`). `autodiff_ref`'s contract is narrower: a backward may return
# > the *output's* shape for an input that the operation broadcast, and the
# > engine sums over exactly those axes; a gradient with any other extra axes
# > (the #65244 case) or a shape that cannot come from broadcasting (a
# > transposed matrix) stops the engine with an error that names the Function
# > and both shapes. The rules you write in this notebook are plain functions
# > with no engine behind them, so they must return the input's shape
# > themselves, and the tests name a missing sum. The cell below shows all four
# > cases.

# %%
class ForgetfulBiasAdd(ad.Function):
    """y = x + b whose backward forgets to sum b's gradient over the rows."""

    @staticmethod
    def forward(ctx, x, b):
        return x.data + b.data

    @staticmethod
    def backward(ctx, g):
        return g, g                      # the second should have b's shape (D,)


class TransposingScale(ad.Function):
    """y = 2 x whose backward returns the transpose of the gradient."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x.data

    @staticmethod
    def backward(ctx, g):
        return (2 * g).T                 # shape (D, N) for an input of shape (N, D)


class SumWrongShape(ad.Function):
    """y = sum(x) whose backward returns a (4, 3) array for an x of shape (3,)."""

    @staticmethod
    def forward(ctx, x):
        return x.data.sum()

    @staticmethod
    def backward(ctx, g):
        return g * ad.tensor(np.ones((4, 3)))


x = ad.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
b = ad.tensor(np.zeros(3), requires_grad=True)
g = np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 1.0]])
ForgetfulBiasAdd.apply(x, b).backward(ad.tensor(g))
print("1. b was broadcast by this call: the engine summed the (2, 3) gradient to",
      b.grad.numpy())

try:
    SumWrongShape.apply(ad.tensor([1.0, 2.0, 3.0], requires_grad=True)).backward()
except RuntimeError as error:
    print("2. the #65244 case: extra axes the call did not broadcast are refused:\n  ", error)

try:
    TransposingScale.apply(x).backward(ad.tensor(g))
except RuntimeError as error:
    print("3. a shape that cannot come from broadcasting is refused:\n  ", error)

problem = grading.diagnose(g, g.sum(axis=0), name="the gradient of b")
print("4. the tests call your rule directly and say:\n  ", problem)

# %% [markdown]
# ### Division, with broadcasting
#
# Normalising is dividing: probabilities are scores divided by their row
# sums, a batch is divided by its per-feature scale. Take $y = a / b$ entry
# by entry, where $a$ and $b$ may have different shapes that broadcast
# together (for example $a$ of shape $(N, C)$ and $b$ of shape $(N, 1)$ or
# $(C,)$).
#
# Use the recipe twice: first pretend both inputs were already copied to the
# result's shape, so that $y_{\dots} = a_{\dots} / b_{\dots}$ entry by entry
# and each input entry touches exactly one output entry (an element-wise
# function of two variables); then undo the copying with Exercise 2.
#
# **Worked example.** $a = \begin{pmatrix}1&2&3\\4&5&6\end{pmatrix}$,
# $b = (1, 2, 4)$ broadcast over the rows, upstream
# $\bar y = \begin{pmatrix}1&0&2\\-1&1&1\end{pmatrix}$. The answer is
# $\bar a = \begin{pmatrix}1&0&0.5\\-1&0.5&0.25\end{pmatrix}$ and
# $\bar b = (3, -1.25, -0.75)$: check one entry of each by hand from your
# formula before you code it.
#
# ### Exercise 3 (1 point): division backward
#
# You may call your `unbroadcast`.

# %% solution="div_backward" exact=true deny="backward,vjp,sum_to_shape"
def div_backward(g, a, b):
    """Backward rule of y = a / b, element-wise with NumPy broadcasting.

    a, b: arrays (or floats) whose shapes broadcast together; b has no zeros;
    g: the upstream gradient, with the shape of the broadcast result.
    Returns (grad_a, grad_b) with the shapes of a and b.
    """
    ### BEGIN SOLUTION
    grad_a = unbroadcast(g / b, np.shape(a))
    grad_b = unbroadcast(-g * a / b**2, np.shape(b))
    return grad_a, grad_b
    ### END SOLUTION


# %% test="test_div_backward" points=1
with grading.exercise(3, "div_backward", needs=[(2, "unbroadcast")]):
    result = div_backward(np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 1.0]]),
                          np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([1.0, 2.0, 4.0]))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise grading.GradingError("div_backward should return a tuple (grad_a, grad_b), got "
                                   f"{type(result).__name__}.")
    grading.assert_close(result[0], np.array([[1.0, 0.0, 0.5], [-1.0, 0.5, 0.25]]), rtol=1e-12,
                         name="grad_a of the worked example")
    grading.assert_close(result[1], np.array([3.0, -1.25, -0.75]), rtol=1e-12,
                         name="grad_b of the worked example (b of shape (3,))")
    grading.check_vjp(div_backward, lambda a, b: a / b, [(3, 4), (3, 1)],
                      reference=lambda a, b: a / b, rng=np.random.default_rng(31), positive=True,
                      names=["grad_a (a (3, 4), b (3, 1))", "grad_b (a (3, 4), b (3, 1))"])
grading.passed("div_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _sa, _sb in [((4, 3), (4, 3)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((), (2, 3)),
                 ((2, 3, 4), (3, 1)), ((5,), ())]:
    for _ in range(2):
        _a = _rng.uniform(-2, 2, _sa)
        _b = _rng.uniform(0.5, 2, _sb) * _rng.choice([-1.0, 1.0], _sb)   # both signs, no zeros
        _g = _rng.standard_normal(np.broadcast_shapes(_sa, _sb))
        _ta = ad.tensor(_a.copy(), requires_grad=True)
        _tb = ad.tensor(_b.copy(), requires_grad=True)
        (_ta / _tb).backward(ad.tensor(_g))
        _got = div_backward(_g.copy(), _a.copy(), _b.copy())
        grading.assert_close(_got[0], _ta.grad.numpy(), rtol=1e-10, atol=1e-12,
                             name=f"grad_a of div_backward, a {_sa}, b {_sb}")
        grading.assert_close(_got[1], _tb.grad.numpy(), rtol=1e-10, atol=1e-12,
                             name=f"grad_b of div_backward, a {_sa}, b {_sb}")
### END HIDDEN TESTS

# %% [markdown]
# ### Matrix products of every shape
#
# `np.matmul` (the `@` operator) does more than the 2-D product of section 4:
#
# * **stacks of matrices**: for $A$ of shape $(\dots, N, D)$ and $B$ of shape
#   $(\dots, D, M)$, the last two axes are multiplied as matrices and every
#   leading (*batch*) position gets its own product; the batch axes broadcast
#   against each other (a single weight matrix $(D, M)$ times a batch
#   $(B, N, D)$, or attention scores $(B, H, T, T)$ times values $(B, H, T, E)$);
# * **vectors**: a 1-D $A$ of length $D$ is treated as a $1\times D$ row and a
#   1-D $B$ as a $D\times 1$ column, and the added axis is removed from the
#   result again (so `v @ M` is 1-D, and `u @ v` is a number).
#
# Derive the rule from what you already have. For one batch position the
# product is the 2-D product of section 4. A batch axis along which an input
# was broadcast means the input was copied; and turning a vector into a row
# or a column (and dropping that axis from the result) is a reshape, which
# only relabels entries, so its adjoint is the reshape back.
#
# ### Exercise 4 (3 points): `@` backward, with batches and vectors
#
# You may call `unbroadcast`. `np.swapaxes(a, -1, -2)` transposes the last two
# axes of a stack of matrices (`.T` would reverse *all* axes).

# %% solution="matmul_general_backward" exact=true deny="backward,vjp,sum_to_shape"
def matmul_general_backward(g, a, b):
    """Backward rule of y = a @ b (np.matmul) for arrays with at least one axis.

    a: shape (..., N, D) or (D,); b: shape (..., D, M) or (D,); the leading
    (batch) axes of a and b broadcast together, as in np.matmul.
    g: the upstream gradient, with the shape of a @ b.
    Returns (grad_a, grad_b) with the shapes of a and b.
    """
    ### BEGIN SOLUTION
    g = np.asarray(g, dtype=np.float64)
    a2 = a[np.newaxis, :] if a.ndim == 1 else a        # a vector on the left is a row
    b2 = b[:, np.newaxis] if b.ndim == 1 else b        # a vector on the right is a column
    if b.ndim == 1:
        g = g[..., np.newaxis]                           # put back the column axis
    if a.ndim == 1:
        g = np.expand_dims(g, -2)                        # put back the row axis
    grad_a = unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape)
    grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape)
    return grad_a.reshape(a.shape), grad_b.reshape(b.shape)
    ### END SOLUTION


# %% test="test_matmul_general_backward" points=3
with grading.exercise(4, "matmul_general_backward", needs=[(2, "unbroadcast")]):
    for _sa, _sb, _what in [((3, 4), (4, 2), "2-D"),
                            ((2, 3, 4), (2, 4, 5), "a stack of 2 products"),
                            ((2, 3, 4), (4, 5), "one b for every matrix of a (broadcast)"),
                            ((4,), (4, 3), "a vector on the left"),
                            ((3, 4), (4,), "a vector on the right")]:
        try:
            grading.check_vjp(matmul_general_backward, np.matmul, [_sa, _sb],
                              reference=ad.matmul, rng=np.random.default_rng(41),
                              names=[f"grad_a, a {_sa} @ b {_sb} ({_what})",
                                     f"grad_b, a {_sa} @ b {_sb} ({_what})"])
        except (ValueError, IndexError) as error:
            raise grading.GradingError(
                f"matmul_general_backward(g, a of shape {_sa}, b of shape {_sb}) ({_what}) "
                f"raised {type(error).__name__}: {error}") from error
grading.passed("matmul_general_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
_n, _d, _m, _k = (int(s) for s in _rng.choice(np.arange(2, 7), 4, replace=False))
for _sa, _sb in [((_n, _d), (_d, _m)), ((_d, _d), (_d, _d)), ((_k, _n, _d), (_d, _m)),
                 ((_n, _d), (_k, _d, _m)), ((2, 1, _n, _d), (_k, _d, _m)),
                 ((_d,), (_d, _m)), ((_n, _d), (_d,)), ((_d,), (_d,)),
                 ((_d,), (_k, _d, _m)), ((_k, _n, _d), (_d,)), ((1, _n, _d), (_k, _d, 1))]:
    grading.check_vjp(matmul_general_backward, np.matmul, [_sa, _sb], reference=ad.matmul,
                      rng=_rng, rtol=1e-10, atol=1e-12, trials=1,
                      names=[f"grad_a of matmul_general_backward, a {_sa} @ b {_sb}",
                             f"grad_b of matmul_general_backward, a {_sa} @ b {_sb}"])
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Reductions: sum, mean, max
#
# **Sum.** Take $y_i = \sum_j x_{ij}$ (a sum over axis 1) and run the recipe:
# which outputs does one $x_{ij}$ touch, and with which derivative? Sum and
# broadcast turn out to be each other's adjoints, a pair worth remembering.
#
# Two details of shape. With `keepdims=False` the summed axis is gone from
# $\bar y$: put it back as an axis of size 1 (`np.expand_dims`) before
# spreading it to $x$'s shape (`np.broadcast_to`, then `.copy()` for an
# array you may write to). With `axis=None` everything is summed and $\bar y$
# is a single number.
#
# **Mean.** The mean over the reduced axes is the sum divided by the number
# of entries that went into each output. Can you get that number from
# `x.size` and the size of $\bar y$?
#
# **Worked example.** $x = \begin{pmatrix}1&3&3\\2&0&1\end{pmatrix}$. For
# $y$ = `x.sum(axis=1)` $= (7, 3)$ and $\bar y = (1, 2)$:
# $\bar x = \begin{pmatrix}1&1&1\\2&2&2\end{pmatrix}$. For
# $y$ = `x.mean(axis=0)` $= (1.5, 1.5, 2)$ and $\bar y = (3, 6, 9)$:
# $\bar x = \begin{pmatrix}1.5&3&4.5\\1.5&3&4.5\end{pmatrix}$.
#
# ### Exercise 5 (2 points): sum and mean backward
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
with grading.exercise(5, "sum_backward and mean_backward"):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    grading.assert_close(sum_backward(np.array([1.0, 2.0]), x.copy(), axis=1),
                         np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]), rtol=1e-12,
                         name="sum_backward(g=[1, 2], x of shape (2, 3), axis=1)")
    try:
        result = sum_backward(np.array([[1.0], [2.0]]), x.copy(), axis=1, keepdims=True)
    except ValueError as error:
        raise grading.GradingError(
            f"sum_backward(g=[[1], [2]], x of shape (2, 3), axis=1, keepdims=True) raised "
            f"ValueError: {error}. With keepdims=True, g already has the reduced axis (as "
            "size 1): do not insert it again.") from None
    grading.assert_close(result, np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]), rtol=1e-12,
                         name="sum_backward(g=[[1], [2]], x of shape (2, 3), axis=1, "
                              "keepdims=True)")
    grading.assert_close(sum_backward(np.array(5.0), x.copy()), np.full((2, 3), 5.0),
                         rtol=1e-12, name="sum_backward(g=5.0, x of shape (2, 3), axis=None)")
    grading.assert_close(mean_backward(np.array([3.0, 6.0, 9.0]), x.copy(), axis=0),
                         np.array([[1.5, 3.0, 4.5], [1.5, 3.0, 4.5]]), rtol=1e-12,
                         name="mean_backward(g=[3, 6, 9], x of shape (2, 3), axis=0)")
grading.passed("Exercise 5 (sum_backward and mean_backward)")
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
# do not matter. So the max gate *routes* the upstream gradient (notebook
# 03's "max routes"): work out which entries get what.
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
# ### Exercise 6 (2 points): max backward, with ties
#
# Hint: compare `x` with its maximum kept as a size-1 axis to find the
# winners, count them, and let your `sum_backward` bring `g` back to `x`'s
# shape.

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
with grading.exercise(6, "max_backward", needs=[(5, "sum_backward")]):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    grading.assert_close(max_backward(np.array([6.0, 4.0]), x.copy(), axis=1),
                         np.array([[0.0, 3.0, 3.0], [4.0, 0.0, 0.0]]), rtol=1e-12,
                         name="max_backward(g=[6, 4], x=[[1, 3, 3], [2, 0, 1]], axis=1) "
                              "(the tied 3s share 6 equally)")
    grading.assert_close(max_backward(np.array([[1.0, 2.0, 5.0]]), x.copy(), axis=0,
                                      keepdims=True),
                         np.array([[0.0, 2.0, 5.0], [1.0, 0.0, 0.0]]), rtol=1e-12,
                         name="max_backward(g=[[1, 2, 5]], x=[[1, 3, 3], [2, 0, 1]], axis=0, "
                              "keepdims=True)")
    grading.check_vjp(lambda g, x: max_backward(g, x, axis=1), lambda x: np.max(x, axis=1),
                      [(3, 4)], reference=lambda t: ad.max(t, 1), rng=np.random.default_rng(3),
                      names=["max_backward(g, x of shape (3, 4), axis=1)"])
grading.passed("max_backward")
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
# ## 8. Operations that move entries: reshape, transpose, row lookup
#
# Some operations do no arithmetic: every output entry *is* some input entry.
# Then $\partial y_j / \partial x_i$ is $1$ when output $j$ was taken from
# input $i$ and $0$ otherwise, and the recipe says: **send each upstream
# gradient back to the entry it came from, and add where several outputs came
# from the same entry.**
#
# **Reshape** (worked). `x.reshape(s)` keeps the entries in the same
# (row-major) order and only changes how they are grouped into axes. Output
# entry number $k$ (counting in that order) is input entry number $k$, so
# $\bar x$ = `g.reshape(x.shape)`. The next cell checks it against the
# reference.

# %%
rng = np.random.default_rng(4)
x = rng.standard_normal((2, 3, 4))
g = rng.standard_normal((6, 4))
xt = ad.tensor(x, requires_grad=True)
xt.reshape(6, 4).backward(ad.tensor(g))
assert np.allclose(xt.grad.numpy(), g.reshape(x.shape))
print("reshape: the gradient is g reshaped back to", x.shape)

# %% [markdown]
# **Transpose** (a permutation of axes). `y = np.transpose(x, perm)` has
# `y.shape[k] == x.shape[perm[k]]`: axis $k$ of $y$ is axis `perm[k]` of $x$.
# Write where the entry $x[i_0, i_1, \dots]$ lands in $y$, then ask which
# permutation of $\bar y$'s axes puts every gradient back in place. (Try it
# on `perm = (2, 0, 1)` with a $(2, 3, 4)$ array: $y$ has shape $(4, 2, 3)$,
# and $\bar x$ must have shape $(2, 3, 4)$. Is the permutation that gets you
# back `perm` itself?)
#
# **Row lookup** (an embedding table, or picking examples of a batch).
# `y = x[idx]` with a 1-D integer array `idx` of length $K$ takes rows
# `idx[0], idx[1], ...` of $x$ (shape $(V, D)$), so $y$ has shape $(K, D)$
# and $y_{kj} = x_{\mathrm{idx}_k,\, j}$. A row may be taken several times,
# or never. Worked example: $V = 3$ rows, `idx = [2, 0, 2]`,
# $\bar y = \begin{pmatrix}1&1\\2&0\\3&-1\end{pmatrix}$ gives
# $\bar x = \begin{pmatrix}2&0\\0&0\\4&0\end{pmatrix}$: row 2 was used twice
# and collects both gradients, row 1 was never used.
#
# > **Common mistake: `grad[idx] += g` with repeated indices.** NumPy
# > evaluates it as `grad[idx] = grad[idx] + g`: it reads every selected row
# > once, adds, and writes back, so when an index repeats, the last write wins
# > and the other contributions are lost (in the example above row 2 would
# > get $(3, -1)$ instead of $(4, 0)$). Use `np.add.at(grad, idx, g)`, which
# > adds one contribution at a time, or a loop.
#
# ### Exercise 7 (2 points): transpose and row lookup backward

# %% solution="move_backward" exact=true deny="backward,vjp"
def permute_backward(g, x, perm):
    """Backward rule of y = np.transpose(x, perm).

    x: any shape; perm: a tuple, a permutation of range(x.ndim);
    g: the upstream gradient, with y's shape.
    Returns grad_x, with x's shape.
    """
    ### BEGIN SOLUTION
    inverse = np.argsort(perm)       # axis k of x is axis inverse[k] of y
    return np.transpose(g, inverse)
    ### END SOLUTION


def take_rows_backward(g, x, idx):
    """Backward rule of y = x[idx] (rows of x picked by an integer array).

    x: shape (V, ...) ; idx: a 1-D integer array of length K with values in
    [0, V), possibly repeated; g: the upstream gradient, shape (K, ...).
    Returns grad_x, with x's shape.
    """
    ### BEGIN SOLUTION
    grad = np.zeros(x.shape)
    np.add.at(grad, idx, g)          # a repeated index collects every contribution
    return grad
    ### END SOLUTION


# %% test="test_move_backward" points=2
with grading.exercise(7, "permute_backward and take_rows_backward"):
    grading.check_vjp(lambda g, x: permute_backward(g, x, (1, 0)), np.transpose, [(2, 3)],
                      reference=lambda t: t.permute(1, 0), rng=np.random.default_rng(71),
                      names=["permute_backward(g, x of shape (2, 3), (1, 0))"])
    grading.check_vjp(lambda g, x: permute_backward(g, x, (2, 0, 1)),
                      lambda x: np.transpose(x, (2, 0, 1)), [(2, 3, 4)],
                      reference=lambda t: t.permute(2, 0, 1), rng=np.random.default_rng(72),
                      names=["permute_backward(g, x of shape (2, 3, 4), (2, 0, 1))"])
    grading.assert_close(take_rows_backward(np.array([[1.0, 1.0], [2.0, 0.0], [3.0, -1.0]]),
                                            np.zeros((3, 2)), np.array([2, 0, 2])),
                         np.array([[2.0, 0.0], [0.0, 0.0], [4.0, 0.0]]), rtol=1e-12,
                         name="take_rows_backward of the worked example, idx = [2, 0, 2] "
                              "(row 2 must collect both of its gradients; grad[idx] += g "
                              "keeps only the last)")
    _idx = np.array([1, 3, 1, 1, 0])
    grading.check_vjp(lambda g, x: take_rows_backward(g, x, _idx.copy()), lambda x: x[_idx],
                      [(4, 3)], reference=lambda t: t[_idx], rng=np.random.default_rng(73),
                      names=["take_rows_backward(g, x of shape (4, 3), idx=[1, 3, 1, 1, 0])"])
grading.passed("Exercise 7 (permute_backward and take_rows_backward)")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _nd in [2, 3, 4, 4]:
    _shape = tuple(int(s) for s in _rng.choice(np.arange(2, 7), _nd, replace=False))
    _perm = tuple(int(p) for p in _rng.permutation(_nd))
    grading.check_vjp(lambda g, x, p=_perm: permute_backward(g, x, p),
                      lambda x, p=_perm: np.transpose(x, p), [_shape],
                      reference=lambda t, p=_perm: t.permute(*p), rng=_rng, rtol=1e-10,
                      atol=1e-12, trials=1,
                      names=[f"permute_backward(g, x of shape {_shape}, {_perm})"])
for _shape in [(5, 3), (4,), (3, 2, 2)]:
    _idx = _rng.integers(0, _shape[0], int(_rng.integers(3, 9)))
    grading.check_vjp(lambda g, x, i=_idx: take_rows_backward(g, x, i.copy()),
                      lambda x, i=_idx: x[i], [_shape], reference=lambda t, i=_idx: t[i],
                      rng=_rng, rtol=1e-10, atol=1e-12, trials=1,
                      names=[f"take_rows_backward(g, x of shape {_shape}, idx={_idx.tolist()})"])
### END HIDDEN TESTS

# %% [markdown]
# ## 9. Element-wise functions
#
# If $y_i = f(x_i)$ for every entry, the Jacobian is diagonal (table row (4)),
# and the VJP is an element-wise product, for arrays of any shape:
# $\bar x = \bar y \circ f'(x)$. What is left is $f'$:
#
# | $f$ | $f(x)$ | $f'(x)$ |
# |---|---|---|
# | ReLU | $\max(x, 0)$ | $1$ if $x > 0$, else $0$; at exactly $x = 0$ we take $0$ (as PyTorch) |
# | sigmoid | $\sigma(x) = 1/(1 + e^{-x})$ | derive it (chain rule on $(1 + e^{-x})^{-1}$), then write it using $\sigma(x)$ only |
# | tanh | $\tanh x = (e^x - e^{-x})/(e^x + e^{-x})$ | derive it (quotient rule), then write it using $\tanh x$ only |
#
# Written with the function's own value, $\sigma'$ and $\tanh'$ let a backward
# rule reuse the forward output instead of recomputing exponentials. The plot
# shows the derivatives, estimated by finite differences: check that your
# formulas have the same maxima ($\frac14$ and $1$, at $x = 0$), and notice
# that both vanish for large $|x|$ (saturation), a theme of notebook 06.

# %%
xs = np.linspace(-5, 5, 401)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
for ax, (name, f) in zip(axes, [("ReLU", lambda t: np.maximum(t, 0)), ("sigmoid", sigmoid),
                                ("tanh", np.tanh)]):
    ax.plot(xs, f(xs), label=name)
    ax.plot(xs, np.gradient(f(xs), xs), "--", label=f"{name}' (finite differences)")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.set_xlabel("x")
    ax.set_ylabel("value")
    ax.set_title(f"{name} and its derivative")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8)   # below the axes
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise 8 (1 point): ReLU, sigmoid and tanh backward
#
# `x` has any shape; `g` has the same shape. You may call `sigmoid` (defined
# at the top) and `np.tanh`.

# %% solution="elementwise_backward" exact=true deny="backward,vjp,relu"
def relu_backward(g, x):
    """Backward rule of y = max(x, 0), with relu'(0) = 0. Returns grad_x, x's shape."""
    ### BEGIN SOLUTION
    return g * (x > 0)
    ### END SOLUTION


def sigmoid_backward(g, x):
    """Backward rule of y = sigmoid(x). Returns grad_x, x's shape."""
    ### BEGIN SOLUTION
    s = sigmoid(x)
    return g * s * (1 - s)
    ### END SOLUTION


def tanh_backward(g, x):
    """Backward rule of y = tanh(x). Returns grad_x, x's shape."""
    ### BEGIN SOLUTION
    t = np.tanh(x)
    return g * (1 - t * t)
    ### END SOLUTION


# %% test="test_elementwise_backward" points=1
with grading.exercise(8, "relu_backward, sigmoid_backward and tanh_backward"):
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
    for _name, _fn, _np_fn, _ref in [("relu_backward", relu_backward,
                                      lambda t: np.maximum(t, 0), ad.relu),
                                     ("sigmoid_backward", sigmoid_backward, sigmoid, ad.sigmoid),
                                     ("tanh_backward", tanh_backward, np.tanh, ad.tanh)]:
        grading.check_vjp(_fn, _np_fn, [(2, 3)], reference=_ref, rng=np.random.default_rng(6),
                          names=[f"{_name}(g, x of shape (2, 3))"])
grading.passed("Exercise 8 (relu_backward, sigmoid_backward and tanh_backward)")
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
# ## 10. Softmax and log-softmax
#
# **Softmax** turns a row of scores into probabilities,
# $s_i = e^{x_i} / \sum_k e^{x_k}$, along the last axis. Every output depends
# on every input, so its Jacobian is full. You built it in notebook 02:
#
# $$
# \frac{\partial s_i}{\partial x_j} = s_i\,([i = j] - s_j),
# \qquad
# \frac{\partial s}{\partial x} = \operatorname{diag}(s) - s\,s^\top,
# $$
#
# a $C\times C$ matrix for a row of $C$ scores. In a batch (any array whose
# last axis holds the scores) every row is an independent softmax with its
# own Jacobian, and entries of different rows do not interact.
#
# **First, the slow way that is obviously right.** The VJP is
# $\bar x_j = \sum_i \bar s_i\, \partial s_i/\partial x_j$: build the Jacobian of
# every row, shape $(\dots, C, C)$, with broadcasting (`s[..., :, np.newaxis]`
# is a column per row, `s[..., np.newaxis, :]` a row per row), and contract
# it with $\bar s$ (`np.einsum`, or a product and a sum over the right axis).
#
# ### Exercise 9 (1 point): softmax backward through its Jacobian
#
# You may call `softmax`.

# %% solution="softmax_backward_via_jacobian" exact=true deny="backward,vjp"
def softmax_backward_via_jacobian(g, x):
    """Backward rule of s = softmax(x) (last axis), by building every row's Jacobian.

    x: any shape with at least one axis, scores along the last axis (C of
    them); g: the upstream gradient, x's shape.
    Returns grad_x, x's shape. Builds an array of shape x.shape + (C,).
    """
    ### BEGIN SOLUTION
    s = softmax(x)
    c = x.shape[-1]
    jac = s[..., :, np.newaxis] * (np.eye(c) - s[..., np.newaxis, :])   # [..., i, j] = ds_i/dx_j
    return np.einsum("...i,...ij->...j", g, jac)
    ### END SOLUTION


# %% test="test_softmax_backward_via_jacobian" points=1
with grading.exercise(9, "softmax_backward_via_jacobian"):
    grading.assert_close(softmax_backward_via_jacobian(np.array([1.0, 0.0, 0.0]),
                                                       np.array([2.0, 1.0, 0.1])),
                         np.array([0.224719, -0.159764, -0.064955]), rtol=1e-5,
                         name="softmax_backward_via_jacobian(g=[1, 0, 0], x=[2, 1, 0.1])")
    for _shape in [(4,), (3, 4), (2, 3, 2)]:
        grading.check_vjp(softmax_backward_via_jacobian, softmax, [_shape],
                          reference=lambda t: ad.softmax(t), rng=np.random.default_rng(91),
                          names=[f"softmax_backward_via_jacobian(g, x of shape {_shape})"])
grading.passed("softmax_backward_via_jacobian")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _shape in [(int(_rng.integers(2, 7)),), (int(_rng.integers(2, 5)), 5), (2, 3, 4)]:
    grading.check_vjp(softmax_backward_via_jacobian, softmax, [_shape],
                      reference=lambda t: ad.softmax(t), rng=_rng, rtol=1e-10, atol=1e-12,
                      low=-3.0, high=3.0, trials=1,
                      names=[f"softmax_backward_via_jacobian(g, x of shape {_shape})"])
### END HIDDEN TESTS

# %% [markdown]
# **Now without the Jacobian.** Write the sum
# $\bar x_j = \sum_i \bar s_i\, s_i\,([i = j] - s_j)$ out, split it into the
# term where $i = j$ and the rest, and pull out of the sum whatever does not
# depend on $i$. You should be left with element-wise products and *one
# number per row*, computed once: $O(C)$ work per row instead of $O(C^2)$.
# In code, keep that per-row number as a size-1 axis
# (`keepdims=True`) so that it broadcasts back over its row.
#
# Two checks for your formula before you code it: the worked example below,
# and this one. If $\bar s$ is the same number in every entry, what must
# $\bar x$ be? (Hint: what happens to $s$ when the same number is added to
# every score, and what does $\sum_i s_i$ equal?)
#
# **Worked example.** $x = (2.0, 1.0, 0.1)$, $s = (0.6590, 0.2424, 0.0986)$,
# upstream $\bar s = (1, 0, 0)$: $\bar x = (0.2247, -0.1598, -0.0650)$.
#
# ### Exercise 10 (2 points): softmax backward
#
# You may call `softmax`. No $C\times C$ arrays this time.

# %% solution="softmax_backward" exact=true deny="backward,vjp,log_softmax,einsum,eye,diag,outer"
def softmax_backward(g, x):
    """Backward rule of s = softmax(x) along the last axis, in O(x.size) work.

    g: the upstream gradient, x's shape; x: any shape with at least one axis.
    Returns grad_x, x's shape.
    """
    ### BEGIN SOLUTION
    s = softmax(x)
    per_row = np.sum(g * s, axis=-1, keepdims=True)     # one number per row
    return s * (g - per_row)
    ### END SOLUTION


# %% test="test_softmax_backward" points=2
with grading.exercise(10, "softmax_backward"):
    grading.assert_close(softmax_backward(np.array([1.0, 0.0, 0.0]), np.array([2.0, 1.0, 0.1])),
                         np.array([0.224719, -0.159764, -0.064955]), rtol=1e-5,
                         name="softmax_backward(g=[1, 0, 0], x=[2, 1, 0.1])")
    grading.assert_close(softmax_backward(np.full((2, 3), 7.0), np.array([[2.0, 1.0, 0.1],
                                                                           [0.0, -1.0, 3.0]])),
                         np.zeros((2, 3)), atol=1e-12,
                         name="softmax_backward(g = 7 everywhere, x of shape (2, 3)) (a "
                              "constant upstream gradient gives 0; each row needs its own "
                              "per-row number)")
    grading.check_vjp(softmax_backward, softmax, [(3, 4)], reference=lambda t: ad.softmax(t),
                      rng=np.random.default_rng(7),
                      names=["softmax_backward(g, x of shape (3, 4))"])
grading.passed("softmax_backward")
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
# Your two softmax rules side by side, on a batch of 4 rows with a growing
# number of classes $C$ (the cell runs once both exercises are done):

# %%
try:
    rng = np.random.default_rng(10)
    print(f"{'C':>6} {'via the Jacobian':>17} {'without it':>11} {'Jacobian bytes':>15}")
    for C in [10, 100, 1000]:
        x, g = rng.standard_normal((4, C)), rng.standard_normal((4, C))
        t_jac, slow = best_ms(lambda: softmax_backward_via_jacobian(g, x), repeat=3)
        t_fast, fast = best_ms(lambda: softmax_backward(g, x), repeat=10)
        agree = "yes" if np.allclose(slow, fast) else "NO: check your rules"
        print(f"{C:6d} {t_jac:14.3f} ms {t_fast:8.3f} ms {4 * C * C * 8 / 2**20:11.2f} MiB"
              f"   agree: {agree}")
except NotImplementedError:
    print("Finish Exercises 9 and 10 to compare the two softmax rules.")

# %% [markdown]
# **Log-softmax**, $\ell_i = x_i - \log\sum_k e^{x_k}$, is what a classifier's
# loss actually needs (it stays accurate where softmax underflows to 0).
# Derive its Jacobian first: the derivative of the log-sum-exp
# $\log\sum_k e^{x_k}$ with respect to $x_j$ is a quantity you already know
# (differentiate it). Then apply the recipe as for softmax; the per-row
# number is even simpler this time.
#
# **Worked example.** $x = (2.0, 1.0, 0.1)$ with upstream $(1, 0, 0)$:
# $\bar x = (0.3410, -0.2424, -0.0986)$, exactly minus the cross-entropy
# gradient of table row (7), since the loss for class 0 is $-\ell_0$.
#
# ### Exercise 11 (2 points): log-softmax backward

# %% solution="log_softmax_backward" exact=true deny="backward,vjp,einsum,eye,diag,outer"
def log_softmax_backward(g, x):
    """Backward rule of l = log_softmax(x) along the last axis, in O(x.size) work.

    g: the upstream gradient, x's shape; x: any shape with at least one axis.
    Returns grad_x, x's shape. You may call softmax.
    """
    ### BEGIN SOLUTION
    per_row = np.sum(g, axis=-1, keepdims=True)
    return g - softmax(x) * per_row
    ### END SOLUTION


# %% test="test_log_softmax_backward" points=2
with grading.exercise(11, "log_softmax_backward"):
    grading.assert_close(log_softmax_backward(np.array([1.0, 0.0, 0.0]),
                                              np.array([2.0, 1.0, 0.1])),
                         np.array([0.340999, -0.242433, -0.098566]), rtol=1e-5,
                         name="log_softmax_backward(g=[1, 0, 0], x=[2, 1, 0.1])")
    grading.check_vjp(log_softmax_backward, log_softmax, [(3, 4)],
                      reference=lambda t: ad.log_softmax(t), rng=np.random.default_rng(8),
                      names=["log_softmax_backward(g, x of shape (3, 4))"])
grading.passed("log_softmax_backward")
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
# ## 11. Softmax cross-entropy, with label smoothing
#
# A classifier produces a row of logits $x_n \in \mathbb{R}^C$ for each of the
# $N$ examples of a batch, with integer true classes $t_n$. Cross-entropy
# compares the predicted distribution $\operatorname{softmax}(x_n)$ with a
# *target distribution* $q_n$ and averages over the batch:
#
# $$
# L = -\frac1N \sum_{n}\sum_c q_{n,c}\, \ell_{n,c},
# \qquad \ell_{n,c} = x_{n,c} - \log\sum_k e^{x_{n,k}}\ \text{(log-softmax of row } n\text{)}.
# $$
#
# With a one-hot $q_n$ (all mass on $t_n$) this is the usual
# $-\frac1N\sum_n \ell_{n,t_n}$, and table row (7) is its gradient for one
# example. **Label smoothing** (`F.cross_entropy(..., label_smoothing=eps)`
# in PyTorch) moves a little mass $\varepsilon$ from the true class to all
# classes: $q_{n,c} = (1 - \varepsilon)[c = t_n] + \varepsilon / C$, which
# discourages the network from driving its logits to extremes. The helper
# `smoothed_targets` at the top builds $q$.
#
# Derive $\partial L / \partial x_{n,c}$ for a general target distribution:
# which terms of $L$ does $x_{n,c}$ touch, what is the derivative of
# $\ell_{n,k}$ with respect to $x_{n,c}$ (Exercise 11), and what do the
# entries of each $q_n$ add up to? Then include the upstream gradient $\bar L$
# (a single number, $1$ when $L$ is the final loss). Frameworks fuse softmax
# and cross-entropy into one operation precisely because the combined
# gradient is this simple, and the forward pass goes through log-sum-exp,
# which never takes the log of an underflowed $0$.
#
# **Worked example.** Logits
# $\begin{pmatrix}2.0&1.0&0.1\\0.5&2.5&-1.0\end{pmatrix}$, classes $t = (0, 1)$:
# the softmax rows are $(0.6590, 0.2424, 0.0986)$ and $(0.1161, 0.8580,
# 0.0259)$ and $L = 0.2851$. Without smoothing, $\bar x =
# \begin{pmatrix}-0.1705 & 0.1212 & 0.0493\\ 0.0581 & -0.0710 &
# 0.0130\end{pmatrix}$; with $\varepsilon = 0.1$, $L = 0.4251$ and $\bar x =
# \begin{pmatrix}-0.1372 & 0.1045 & 0.0326\\ 0.0414 & -0.0377 &
# -0.0037\end{pmatrix}$.
#
# ### Exercise 12 (2 points): softmax cross-entropy backward
#
# You may call `softmax` and `smoothed_targets`. Do not modify `logits` in
# place.

# %% solution="cross_entropy_backward" exact=true deny="backward,vjp,cross_entropy"
def cross_entropy_backward(g, logits, targets, label_smoothing=0.0):
    """Backward rule of L = cross_entropy(logits, targets, label_smoothing).

    g: the upstream gradient dJ/dL, a float or a 0-d array; logits: (N, C)
    floats; targets: (N,) integer classes in [0, C); label_smoothing: a
    float in [0, 1).
    Returns grad_logits, shape (N, C). (targets are integers: they get no
    gradient.)
    """
    ### BEGIN SOLUTION
    n, c = logits.shape
    q = smoothed_targets(targets, c, label_smoothing)
    return g * (softmax(logits) - q) / n
    ### END SOLUTION


# %% test="test_cross_entropy_backward" points=2
with grading.exercise(12, "cross_entropy_backward"):
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
    targets = np.array([0, 1])
    grading.assert_close(cross_entropy_backward(1.0, logits.copy(), targets.copy()),
                         np.array([[-0.170499, 0.121216, 0.049283],
                                   [0.058057, -0.071012, 0.012954]]),
                         rtol=1e-4, name="cross_entropy_backward(1.0, the worked example's "
                                         "logits, targets=[0, 1])")
    grading.assert_close(cross_entropy_backward(1.0, logits.copy(), targets.copy(), 0.1),
                         np.array([[-0.137166, 0.104550, 0.032616],
                                   [0.041391, -0.037678, -0.003712]]),
                         rtol=1e-4, name="cross_entropy_backward(1.0, the worked example's "
                                         "logits, targets=[0, 1], label_smoothing=0.1)")
    _before = logits.copy()
    cross_entropy_backward(1.0, logits, targets)
    if not np.array_equal(logits, _before):
        raise grading.GradingError("cross_entropy_backward changed its argument logits in "
                                   "place: work on a new array.")
    _tg = np.array([2, 0, 1, 2])
    grading.check_vjp(lambda g, x: cross_entropy_backward(g, x, _tg.copy(), 0.2),
                      lambda x: cross_entropy(x, _tg, 0.2), [(4, 3)],
                      rng=np.random.default_rng(9),
                      names=["cross_entropy_backward(g, logits (4, 3), targets [2, 0, 1, 2], "
                             "label_smoothing=0.2)"])
grading.passed("cross_entropy_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _ce_np(x, t, eps):
    c = x.shape[1]
    q = np.full(x.shape, eps / c)
    q[np.arange(x.shape[0]), t] += 1.0 - eps
    shifted = x - np.max(x, axis=1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(q * logp, axis=1))


def _ce_ad(x, t, eps):
    c = x.shape[1]
    q = np.full(x.shape, eps / c)
    q[np.arange(x.shape[0]), t] += 1.0 - eps
    return -ad.mean(ad.sum(ad.tensor(q) * ad.log_softmax(x), axis=1))


for _eps in [0.0, float(_rng.uniform(0.05, 0.4)), float(_rng.uniform(0.05, 0.4))]:
    _n, _c = (int(s) for s in _rng.choice(np.arange(2, 8), 2, replace=False))
    _tg = _rng.integers(0, _c, _n)
    _ref = (lambda x, t=_tg: ad.cross_entropy(x, t)) if _eps == 0.0 else \
        (lambda x, t=_tg, e=_eps: _ce_ad(x, t, e))
    grading.check_vjp(lambda g, x, t=_tg, e=_eps: cross_entropy_backward(g, x, t.copy(), e),
                      lambda x, t=_tg, e=_eps: _ce_np(x, t, e), [(_n, _c)], reference=_ref,
                      rng=_rng, rtol=1e-10, atol=1e-12, low=-3.0, high=3.0,
                      names=[f"cross_entropy_backward(g, logits of shape ({_n}, {_c}), "
                             f"targets {_tg.tolist()}, label_smoothing={_eps:.3f})"])
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
# ## 12. Putting it together: layer normalisation
#
# Transformers normalise every row of activations before using it. For a row
# $x$ of $D$ numbers (the last axis), **layer normalisation** computes
#
# $$
# \mu = \frac1D\sum_k x_k,\quad
# c = x - \mu,\quad
# v = \frac1D\sum_k c_k^2,\quad
# r = \frac{1}{\sqrt{v + \epsilon}},\quad
# \hat x = c\, r,\quad
# y = \gamma \circ \hat x + \beta,
# $$
#
# with a small $\epsilon$ against division by zero and learned $\gamma$ and
# $\beta$ of shape $(D,)$, shared by all rows (the forward pass is
# `layer_norm` at the top). Each line is an operation whose backward rule you
# have written or can write in one line, so do what an autodiff engine does:
# **compute the stages forward, then walk them backward**, from $\bar y$ to
# $\bar{\hat x}$, $\bar r$, $\bar v$, $\bar c$, $\bar \mu$ and $\bar x$,
# applying one rule per stage. Three things to watch:
#
# * $\mu$, $v$ and $r$ hold one number per row (keep them as size-1 axes),
#   but every entry of the row uses them: which rule handles a value that was
#   copied across a row?
# * $c$ feeds two stages ($v$ and $\hat x$) and $x$ feeds two ($\mu$ and $c$):
#   add up their contributions, as notebook 04 did for a node used twice;
# * $\gamma$ and $\beta$ are broadcast over all leading axes.
#
# Two facts you can predict, and the tests check: adding the same number to
# every entry of a row does not change $y$, so each row of $\bar x$ sums to
# $0$; and, with $\epsilon = 0$, scaling a row by any positive factor does
# not change $y$ either, so each row of $\bar x$ is orthogonal to that row
# of $x$.
#
# **Worked example.** $x = (1, 2, 3, 6)$, $\gamma = (1, 1, 1, 1)$,
# $\beta = 0$, $\epsilon = 0$: $\mu = 3$, $c = (-2, -1, 0, 3)$, $v = 3.5$,
# $\hat x = (-1.0690, -0.5345, 0, 1.6036)$. With $\bar y = (1, 0, 0, 0)$:
# $\bar x = (0.2482, -0.2100, -0.1336, 0.0955)$ (it sums to 0, and its dot
# product with $x$ is $0$), $\bar\gamma = (-1.0690, 0, 0, 0)$ and
# $\bar\beta = (1, 0, 0, 0)$.
#
# ### Exercise 13 (3 points): layer normalisation backward
#
# You may call your earlier rules, `unbroadcast` and NumPy.

# %% solution="layer_norm_backward" exact=true deny="backward,vjp"
def layer_norm_backward(g, x, gamma, beta, eps=1e-5):
    """Backward rule of y = layer_norm(x, gamma, beta, eps).

    x: shape (..., D), at least one leading axis; gamma, beta: shape (D,);
    eps: a float >= 0; g: the upstream gradient, x's shape.
    Returns (grad_x, grad_gamma, grad_beta) with the shapes of x, gamma, beta.
    """
    ### BEGIN SOLUTION
    d = x.shape[-1]
    # forward, stage by stage (one value per row is kept as a size-1 axis)
    mu = np.mean(x, axis=-1, keepdims=True)
    c = x - mu
    v = np.mean(c**2, axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(v + eps)
    x_hat = c * r
    # backward, in reverse order
    grad_gamma = unbroadcast(g * x_hat, gamma.shape)
    grad_beta = unbroadcast(g, beta.shape)
    grad_x_hat = g * gamma
    grad_r = np.sum(grad_x_hat * c, axis=-1, keepdims=True)       # r was copied across the row
    grad_v = grad_r * (-0.5) * r**3
    grad_c = grad_x_hat * r + grad_v * 2.0 * c / d                 # c feeds x_hat and v
    grad_mu = -np.sum(grad_c, axis=-1, keepdims=True)
    grad_x = grad_c + grad_mu / d                                  # x feeds c and mu
    return grad_x, grad_gamma, grad_beta
    ### END SOLUTION


# %% test="test_layer_norm_backward" points=3
def _layer_norm_ad(x, gamma, beta, eps=1e-5):
    mu = ad.mean(x, -1, True)
    c = x - mu
    return gamma * c / ad.sqrt(ad.mean(c * c, -1, True) + eps) + beta


with grading.exercise(13, "layer_norm_backward", needs=[(2, "unbroadcast")]):
    result = layer_norm_backward(np.array([[1.0, 0.0, 0.0, 0.0]]), np.array([[1.0, 2.0, 3.0, 6.0]]),
                                 np.ones(4), np.zeros(4), eps=0.0)
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise grading.GradingError("layer_norm_backward should return a tuple (grad_x, "
                                   f"grad_gamma, grad_beta), got {type(result).__name__}.")
    grading.assert_close(result[0], np.array([[0.248171, -0.209991, -0.133631, 0.095450]]),
                         rtol=1e-5, name="grad_x of the worked example")
    grading.assert_close(result[1], np.array([-1.069045, 0.0, 0.0, 0.0]), rtol=1e-5, atol=1e-12,
                         name="grad_gamma of the worked example")
    grading.assert_close(result[2], np.array([1.0, 0.0, 0.0, 0.0]), rtol=1e-12,
                         name="grad_beta of the worked example")
    _rng = np.random.default_rng(13)
    _x, _g, _gamma = _rng.normal(2.0, 3.0, (3, 5)), _rng.standard_normal((3, 5)), _rng.uniform(0.5, 2, 5)
    _gx = layer_norm_backward(_g, _x.copy(), _gamma, np.zeros(5), eps=0.0)[0]
    grading.assert_close(np.sum(_gx, axis=-1), np.zeros(3), atol=1e-10,
                         name="the row sums of grad_x (shifting a row does not change y)")
    grading.assert_close(np.sum(_gx * _x, axis=-1), np.zeros(3), atol=1e-10,
                         name="the dot products of the rows of grad_x with the rows of x "
                              "(eps = 0: scaling a row does not change y)")
    grading.check_vjp(layer_norm_backward, layer_norm, [(3, 5), (5,), (5,)],
                      reference=_layer_norm_ad, rng=np.random.default_rng(14),
                      names=["grad_x (x (3, 5))", "grad_gamma (x (3, 5))", "grad_beta (x (3, 5))"])
grading.passed("layer_norm_backward")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
# at least 3 entries per row, so that no row has a variance near 0
for _shape in [(int(_rng.integers(2, 6)), int(_rng.integers(3, 7))), (2, 3, 4), (1, 6)]:
    _d = _shape[-1]
    _eps = float(_rng.choice([1e-5, 0.1, 1.0]))
    grading.check_vjp(lambda g, x, gm, bt, e=_eps: layer_norm_backward(g, x, gm, bt, eps=e),
                      lambda x, gm, bt, e=_eps: layer_norm(x, gm, bt, eps=e),
                      [_shape, (_d,), (_d,)],
                      reference=lambda x, gm, bt, e=_eps: _layer_norm_ad(x, gm, bt, eps=e),
                      rng=_rng, rtol=1e-10, atol=1e-11, trials=1,
                      names=[f"{w} of layer_norm_backward, x {_shape}, eps={_eps:g}"
                             for w in ("grad_x", "grad_gamma", "grad_beta")])
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# * The **Jacobian form** ($\partial J/\partial x$ a row, chain rule = matrix
#   products) is for deriving; the **shape convention** ($\bar A$ has $A$'s
#   shape) is what training code stores and what `W -= lr * dW` needs.
# * A backward rule is a **vector-Jacobian product**
#   $\bar x_i = \sum_j \bar y_j\,\partial y_j/\partial x_i$. The recipe: write
#   one output entry as a scalar formula, find which outputs each input entry
#   touches and sum over them, recognise the array expression, check the
#   shape. Never build the Jacobian: for a linear layer it is $N^2MD$ numbers
#   (256 GiB for $N = 64$, $D = M = 4096$ in float32), mostly zeros, and $Nn/2$
#   times the memory of the VJP in the measurement of section 5.
# * Identities: $z = Wx$: $\partial z/\partial x = W$, $\partial J/\partial W =
#   \delta^\top x^\top$; $z = xW$: $W^\top$ and $x^\top\delta$; $z = x$: $I$;
#   element-wise: $\operatorname{diag}(f'(x))$, applied as an element-wise
#   product; softmax + cross-entropy: $\hat y - y$.
# * **Matrix product** $Z = XW$: $\bar X = \bar Z W^\top$, $\bar W = X^\top \bar Z$
#   (dimension analysis confirms it, but cannot tell a square matrix from its
#   transpose).
# * **Broadcasting** copies, so its adjoint sums: over new leading axes and
#   over stretched size-1 axes (kept). A shared bias gets the *sum* of its
#   copies' gradients. PyTorch quietly sums any gradient that could have
#   come from broadcasting; `autodiff_ref` sums only the axes the call
#   broadcast and refuses the rest. A rule must return its input's shape
#   itself.
# * **Sum** and **broadcast** are each other's adjoints; **max** routes the
#   gradient to the maximum (ties share it); operations that only move
#   entries send gradients back where they came from, and **add** where an
#   entry was used several times (`np.add.at`, not `grad[idx] += g`).
# * **Softmax** and **log-softmax** need one number per row, not a $C\times C$
#   Jacobian; the fused **cross-entropy** gradient compares the predicted
#   and target distributions; a composite like **layer normalisation** is
#   differentiated stage by stage, adding the contributions of values used
#   twice.
#
# Notebook 06 puts these rules together into the backward pass of a
# one-hidden-layer network, written by hand and trained.
