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
# # 06 · The single-layer network
#
# The previous notebooks built reverse-mode differentiation piece by piece:
# the chain rule on a graph, the backward walk, and the matrix identities
# that turn a backward rule into one line of NumPy (notebook 05). This
# notebook puts all of it to work on a complete classifier: a network with
# one hidden layer of ReLU units and a softmax output, trained with
# cross-entropy.
#
# You will write its backward pass **by hand**, with no engine, and check it
# three ways: against `autodiff_ref`, against finite differences, and by
# watching it train. Writing backprop yourself once is the best way to see
# what an engine does for you: the *error signals* $\delta$ that flow
# backwards are exactly the gradients the engine stores at each node of the
# graph, and each one is computed once and reused for several parameters.
#
# 1. the network for one example, its forward pass, and the derivation of
#    every gradient (parameters **and** input) with a worked example;
# 2. the same computation for a batch of examples stored as rows, in a
#    numerically stable form (you derive the batched backward pass);
# 3. training with gradient descent and momentum on three interleaved
#    spirals, with a loss curve and a decision boundary;
# 4. activation functions and their derivatives: backpropagation through a
#    deep stack and the vanishing gradients it shows, maxout units that
#    route their gradient, and ReLU units that die.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are seven exercises (14 points) and one written
# answer (1 point, graded by hand). In each exercise, replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The visible tests use the numbers from the text; when the
# notebook is graded, further hidden tests run your function on fresh random
# inputs and sizes. A failing test tells you in words what is wrong
# (transposed, missing a sum over the batch, off by a factor, ...). The
# answers use NumPy only, not `autodiff_ref`. Every other cell runs without
# your code; cells that need an exercise say which one to finish.
#
# **Run All stops at the first unfinished exercise**: its test cell raises an
# error, and Jupyter does not run the cells after it. While you work, run the
# cells one by one (or use *Run All Above* on the cell you are working on),
# and do the exercises in order.
#
# Symbols follow the course's [notation card](../notation.md). In particular
# $\delta$ always denotes the gradient of the loss with respect to a
# **pre-activation** (a $z$ or a $\theta$, the input of a nonlinearity or of
# the softmax); the gradient with respect to anything else is written with a
# bar, $\bar h = \partial J/\partial h$.

# %%
# %matplotlib inline
import time

import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import autodiff_ref as ad
from autodiff_ref import grading

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The network, one example at a time
#
# One example is a column vector $x$ of $D_x$ features; it belongs to one of
# $C$ classes, encoded as the one-hot vector $y$ (a 1 at the correct class
# $c$, zeros elsewhere). The network computes
#
# $$
# \begin{aligned}
# z &= W x + b_1, &\qquad h &= \operatorname{ReLU}(z) = \max(z, 0), \\
# \theta &= U h + b_2, &\qquad \hat y &= \operatorname{softmax}(\theta),
#   \quad \hat y_k = \frac{e^{\theta_k}}{\sum_{j} e^{\theta_j}}, \\
# J &= \operatorname{CE}(y, \hat y) = -\sum_k y_k \log \hat y_k = -\log \hat y_c .
# \end{aligned}
# $$
#
# | symbol | what it is | shape |
# |---|---|---|
# | $x$ | the input | $D_x \times 1$ |
# | $W,\ b_1$ | weights and biases of the hidden layer | $D_h \times D_x,\ D_h \times 1$ |
# | $z,\ h$ | pre-activations and activations of the $D_h$ hidden units | $D_h \times 1$ |
# | $U,\ b_2$ | weights and biases of the output layer | $C \times D_h,\ C \times 1$ |
# | $\theta$ | the scores (logits) of the $C$ classes | $C \times 1$ |
# | $\hat y$ | the predicted probabilities (positive, summing to 1) | $C \times 1$ |
# | $J$ | the loss | a number |
#
# (In this notebook $\theta$ names the logits, not "all the parameters" as
# in notebook 01.) ReLU is applied element by element: a hidden unit passes
# its input on if it is positive and outputs 0 otherwise. Softmax turns
# arbitrary scores into probabilities, and cross-entropy is small when the
# probability of the correct class is close to 1.
#
# **Worked example.** $D_x = 2$, $D_h = 3$, $C = 3$, the correct class is
# the first one ($c = 0$ in Python's counting), and
#
# $$
# x = \begin{pmatrix} 1 \\ 2 \end{pmatrix},\quad
# W = \begin{pmatrix} 1 & 0 \\ -1 & 1 \\ 0.5 & -1 \end{pmatrix},\quad
# b_1 = \begin{pmatrix} 0 \\ -0.5 \\ 0.5 \end{pmatrix},\quad
# U = \begin{pmatrix} 1 & -1 & 2 \\ 0 & 1 & 1 \\ -1 & 0 & 0 \end{pmatrix},\quad
# b_2 = \begin{pmatrix} 0 \\ 0.5 \\ 0 \end{pmatrix}.
# $$
#
# Then $z = (1,\ 0.5,\ -1)^\top$, so $h = (1,\ 0.5,\ 0)^\top$ (the third unit
# is off), $\theta = (0.5,\ 1,\ -1)^\top$, and with
# $e^{0.5} + e^{1} + e^{-1} = 1.6487 + 2.7183 + 0.3679 = 4.7349$,
# $\hat y = (0.3482,\ 0.5741,\ 0.0777)^\top$. The network bets on the second
# class, so the loss is fairly large: $J = -\log 0.3482 = 1.0550$. The next
# cell does this computation with column vectors, exactly as written.

# %%
x_ex = np.array([[1.0], [2.0]])                       # (Dx, 1) = (2, 1)
W_ex = np.array([[1.0, 0.0], [-1.0, 1.0], [0.5, -1.0]])  # (Dh, Dx) = (3, 2)
b1_ex = np.array([[0.0], [-0.5], [0.5]])               # (Dh, 1)
U_ex = np.array([[1.0, -1.0, 2.0], [0.0, 1.0, 1.0], [-1.0, 0.0, 0.0]])  # (C, Dh) = (3, 3)
b2_ex = np.array([[0.0], [0.5], [0.0]])                # (C, 1)
y_ex = np.array([[1.0], [0.0], [0.0]])                 # one-hot: class 0

z_ex = W_ex @ x_ex + b1_ex
h_ex = np.maximum(z_ex, 0)
theta_ex = U_ex @ h_ex + b2_ex
yhat_ex = np.exp(theta_ex) / np.exp(theta_ex).sum()
J_ex = -np.log(yhat_ex[0, 0])
for name, value in [("z", z_ex), ("h", h_ex), ("theta", theta_ex), ("yhat", yhat_ex)]:
    print(f"{name:>5}^T = {value.ravel()}")
print(f"    J = {J_ex:.4f}")
assert np.allclose(yhat_ex.ravel(), [0.3482, 0.5741, 0.0777], atol=5e-5)
assert abs(J_ex - 1.0550) < 5e-5

# %% [markdown]
# ## 2. The backward pass for one example
#
# We need $\partial J/\partial W$, $\partial J/\partial b_1$, $\partial
# J/\partial U$, $\partial J/\partial b_2$ to train, and $\partial J/\partial
# x$ to see which input features the loss is sensitive to (and to chain this
# network after another one). Two conventions from notebook 05:
#
# * the derivative of the number $J$ with respect to a column vector is a
#   **row** vector (a $1 \times n$ Jacobian), so the chain rule is a product
#   of Jacobians from left to right;
# * a gradient that updates a parameter has the **shape of the parameter**
#   (so that `param -= lr * grad` works): $\partial J/\partial W$ is $D_h
#   \times D_x$ like $W$.
#
# **Step 1: softmax and cross-entropy together.** Write the loss with the
# logits, $J = -\log \hat y_c = -\theta_c + \log \sum_j e^{\theta_j}$. Then
# $\partial J/\partial \theta_k = -[k = c] + e^{\theta_k}/\sum_j
# e^{\theta_j} = \hat y_k - y_k$, so the first **error signal** is
#
# $$
# \delta_1 = \frac{\partial J}{\partial \theta} = (\hat y - y)^\top
# \qquad (1 \times C).
# $$
#
# No division by $\hat y$ is left, which is why softmax and cross-entropy are
# always differentiated as one piece. The entries of $\delta_1$ sum to 0 (both
# $\hat y$ and $y$ sum to 1): raising the correct score lowers the loss,
# raising any other score raises it.
#
# **Step 2: into the hidden layer.** $\theta = Uh + b_2$ has Jacobian
# $\partial\theta/\partial h = U$, so the gradient with respect to the
# hidden **activations** is $\bar h = \partial J/\partial h = \delta_1 U$
# ($1 \times D_h$). That is not yet an error signal $\delta$: $h$ is the
# output of a nonlinearity, not a pre-activation. ReLU acts element by
# element, so its Jacobian is the diagonal matrix
# $\operatorname{diag}(\operatorname{ReLU}'(z))$ with
# $\operatorname{ReLU}'(z) = 1$ where $z > 0$ and $0$ where $z \le 0$ (at
# exactly $0$ we take $0$, as PyTorch and `autodiff_ref` do). Multiplying a
# row vector by a diagonal matrix multiplies it entry by entry:
#
# $$
# \delta_2 = \frac{\partial J}{\partial z} = \bar h \circ
# \operatorname{ReLU}'(z)^\top = \delta_1 U \circ
# \operatorname{ReLU}'(z)^\top \qquad (1 \times D_h).
# $$
#
# **Step 3: the parameters.** Look at one entry: $\theta_i = \sum_j U_{ij}
# h_j + (b_2)_i$, so $U_{ij}$ affects $J$ only through $\theta_i$, and
# $\partial J/\partial U_{ij} = (\delta_1)_i\, h_j$. All entries at once, that
# is an outer product; the same argument works for the first layer with
# $\delta_2$ and $x$:
#
# $$
# \frac{\partial J}{\partial U} = \delta_1^\top h^\top \ (C \times D_h),\qquad
# \frac{\partial J}{\partial b_2} = \delta_1^\top \ (C \times 1),\qquad
# \frac{\partial J}{\partial W} = \delta_2^\top x^\top \ (D_h \times D_x),\qquad
# \frac{\partial J}{\partial b_1} = \delta_2^\top \ (D_h \times 1).
# $$
#
# **Step 4: the input.** $z = Wx + b_1$ has Jacobian $W$, so
# $\partial J/\partial x = \delta_2 W$ as a row, or in the shape of $x$:
#
# $$
# \frac{\partial J}{\partial x} = (\delta_2 W)^\top \qquad (D_x \times 1).
# $$
#
# Count the work: $\delta_1$ is used three times ($U$, $b_2$ and $\delta_2$)
# and $\delta_2$ three times ($W$, $b_1$, $x$). Each $\delta$ is the gradient
# at one node of the computational graph, computed once: this reuse is what
# makes reverse mode cost about as much as the forward pass.
#
# **Worked example, continued.** $\delta_1 = (0.3482 - 1,\ 0.5741,\ 0.0777) =
# (-0.6518,\ 0.5741,\ 0.0777)$. Then $\bar h = \delta_1 U = (-0.7295,\ 1.2259,\
# -0.7295)$, and since $z_3 = -1 < 0$ the third entry is switched off:
# $\delta_2 = (-0.7295,\ 1.2259,\ 0)$. So
#
# $$
# \frac{\partial J}{\partial W} = \delta_2^\top x^\top =
# \begin{pmatrix} -0.7295 & -1.4590 \\ 1.2259 & 2.4518 \\ 0 & 0 \end{pmatrix},
# \qquad
# \frac{\partial J}{\partial x} = (\delta_2 W)^\top =
# \begin{pmatrix} -0.7295 - 1.2259 \\ 1.2259 \end{pmatrix} =
# \begin{pmatrix} -1.9554 \\ 1.2259 \end{pmatrix}.
# $$
#
# The third row of $\partial J/\partial W$ is zero: a unit that is off passes
# no gradient back, so its weights do not change on this example. The next
# cell computes all five gradients from the formulas and compares them with
# `autodiff_ref`, which differentiates the same computation written with
# tensors.

# %%
delta1_ex = (yhat_ex - y_ex).T                      # (1, C)
delta2_ex = (delta1_ex @ U_ex) * (z_ex > 0).T       # (1, Dh)
by_hand = {"W": delta2_ex.T @ x_ex.T, "b1": delta2_ex.T, "U": delta1_ex.T @ h_ex.T,
           "b2": delta1_ex.T, "x": (delta2_ex @ W_ex).T}
print("delta1 =", delta1_ex.ravel(), "  delta2 =", delta2_ex.ravel() + 0.0)

# the same network with autodiff_ref tensors
leaves = {name: ad.tensor(value, requires_grad=True)
          for name, value in [("W", W_ex), ("b1", b1_ex), ("U", U_ex), ("b2", b2_ex), ("x", x_ex)]}
theta_t = leaves["U"] @ ad.relu(leaves["W"] @ leaves["x"] + leaves["b1"]) + leaves["b2"]
loss_t = ad.cross_entropy(theta_t.T, np.array([0]))  # cross_entropy wants (N, C) logits
loss_t.backward()
for name, grad in by_hand.items():
    print(f"dJ/d{name:<2} by hand: {grad.ravel() + 0.0}   autodiff_ref agrees: "
          f"{np.allclose(grad, leaves[name].grad.numpy(), rtol=1e-12, atol=1e-14)}")
    assert np.allclose(grad, leaves[name].grad.numpy(), rtol=1e-12, atol=1e-14)
assert np.allclose(by_hand["x"].ravel(), [-1.9554, 1.2259], atol=5e-5)

# %% [markdown]
# ## 3. A batch of examples, stored as rows
#
# Training uses many examples at once. The NumPy convention (and PyTorch's)
# stores a batch of $N$ examples as the **rows** of a matrix $X$ ($N \times
# D_x$), row $i$ being $x^{(i)\top}$. Transposing $z = Wx + b_1$ gives the
# row $z^{(i)\top} = x^{(i)\top} W^\top + b_1^\top$; stacking the rows,
#
# $$
# Z = X W^\top + \mathbf{1} b_1^\top \ (N \times D_h),\qquad
# H = \operatorname{ReLU}(Z),\qquad
# \Theta = H U^\top + \mathbf{1} b_2^\top \ (N \times C),\qquad
# \hat Y = \text{softmax of each row of } \Theta,
# $$
#
# where $\mathbf{1}$ is a column of $N$ ones: the bias is added to every row,
# which is what NumPy's broadcasting does with `X @ W.T + b1` for a bias of
# shape `(Dh,)`. The loss is the **mean** over the batch, with integer labels
# $y_i \in \{0, \dots, C-1\}$ and $Y$ the matrix of one-hot rows:
#
# $$
# J = \frac1N \sum_{i=1}^N -\log \hat Y_{i, y_i}.
# $$
#
# **The batched backward pass: yours to derive** (Exercise 2). You know the
# single-example gradients of section 2; the batched ones follow from them
# with four facts, no new calculus:
#
# 1. *The mean.* $J = \frac1N \sum_i J_i$, and differentiation is linear:
#    every gradient of $J$ is $\frac1N$ times the sum of the gradients of the
#    per-example losses $J_i$.
# 2. *Rows do not mix.* Row $i$ of $Z$, $H$, $\Theta$ and $\hat Y$ depends
#    only on row $i$ of $X$, and $J_i$ only on row $i$ of $\Theta$. So the
#    gradient of $J$ with respect to row $i$ of any of these matrices is
#    $\frac1N$ times the single-example gradient of $J_i$, written as a row.
#    Stacking those rows gives an $N \times C$ matrix of output error signals
#    and an $N \times D_h$ matrix of hidden error signals (call them
#    $\Delta_1$ and $\Delta_2$); the gradient with respect to $X$ is stacked
#    the same way.
# 3. *Shared parameters add up.* $W, b_1, U, b_2$ are used by every example,
#    so their gradient is the sum over $i$ of the per-example gradients, each
#    an outer product. A sum of outer products is one matrix product:
#    $\sum_i a_i b_i^\top = A^\top B$ when $a_i^\top$ and $b_i^\top$ are the
#    rows of $A$ and $B$.
# 4. *Broadcasting.* A bias was added to every row; its gradient sums over
#    the rows (the adjoint of broadcasting, notebook 05).
#
# Then check every shape against the parameter it belongs to ($W$ is $D_h
# \times D_x$, the biases are `(Dh,)` and `(C,)`, $\partial J/\partial X$ is
# $N \times D_x$): only one arrangement of transposes fits, and with $N = 1$
# your formulas must reduce to those of section 2, transposed into rows.
#
# > **Common mistake:** dividing by $N$ twice. Put the $\frac1N$ of the mean
# > into the output error signals once; everything computed from them (the
# > hidden error signals, all five gradients) inherits it. Averaging a bias
# > gradient over the rows (`mean(axis=0)`) on top of that makes it $N$
# > times too small, and the test says "off by a constant factor".
#
# **Numerical stability.** `np.exp(1000.0)` is `inf`, and logits that large
# do occur when training goes astray. Softmax does not change if the same
# number is subtracted from every score, so subtract the largest one,
# $m = \max_k \theta_k$:
#
# $$
# \hat y_k = \frac{e^{\theta_k - m}}{\sum_j e^{\theta_j - m}}, \qquad
# \log \hat y_c = (\theta_c - m) - \log \sum_j e^{\theta_j - m}.
# $$
#
# Now every exponent is at most 0, and the sum is at least 1 (the largest
# term is $e^0$), so its logarithm is finite. Take the loss from the second
# formula, not from $\log \hat y_c$: with scores $(500, 1000, -1000)$ the
# probability of the third class is $e^{-2000}$, which is $0$ in floating
# point, while its log-probability is simply $-2000$.

# %%
scores = np.array([500.0, 1000.0, -1000.0])
with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
    naive = np.exp(scores) / np.exp(scores).sum()
    shifted = scores - scores.max()
    stable = np.exp(shifted) / np.exp(shifted).sum()
    log_of_stable = np.log(stable)
    log_probs = shifted - np.log(np.exp(shifted).sum())
print("naive softmax:          ", naive)
print("shifted softmax:        ", stable)
print("log of shifted softmax: ", log_of_stable)
print("log-softmax:            ", log_probs)

# %% [markdown]
# The tests compare your functions with the same network written with
# `autodiff_ref` tensors, below. It returns the mean cross-entropy (computed
# by `ad.cross_entropy`, stable for large logits) and the tensors, so that
# after `loss.backward()` the engine's gradients sit in `.grad` of the leaves.

# %%
def network_ad(X, y, params):
    """The network of this notebook with autodiff_ref tensors.

    X: (N, Dx); y: (N,) integer classes; params: dict with W (Dh, Dx),
    b1 (Dh,), U (C, Dh), b2 (C,). Returns (loss, t): loss the mean
    cross-entropy (a scalar tensor) and t a dict of tensors: the leaves
    "X", "W", "b1", "U", "b2" (requiring grad) and "Z", "H", "Theta", "Yhat".
    """
    t = {"X": ad.tensor(np.asarray(X, dtype=np.float64), requires_grad=True)}
    for name in ("W", "b1", "U", "b2"):
        t[name] = ad.tensor(np.asarray(params[name], dtype=np.float64), requires_grad=True)
    t["Z"] = t["X"] @ t["W"].T + t["b1"]
    t["H"] = ad.relu(t["Z"])
    t["Theta"] = t["H"] @ t["U"].T + t["b2"]
    t["Yhat"] = ad.softmax(t["Theta"], axis=1)
    return ad.cross_entropy(t["Theta"], np.asarray(y)), t


# the worked example as a batch of one row (biases of shape (Dh,) and (C,))
params_ex = {"W": W_ex, "b1": b1_ex.ravel(), "U": U_ex, "b2": b2_ex.ravel()}
loss_ad, t_ad = network_ad(x_ex.T, np.array([0]), params_ex)
print(f"loss from autodiff_ref: {loss_ad.item():.4f}")

# %% [markdown]
# The test cells below use a few helpers: they call your function, check
# the type and shape of what it returns, and compute the expected values
# with `autodiff_ref`. You do not need to read them.

# %%
# the parameters of the worked example, biases as 1-D arrays
_ex = {"W": np.array([[1.0, 0.0], [-1.0, 1.0], [0.5, -1.0]]), "b1": np.array([0.0, -0.5, 0.5]),
       "U": np.array([[1.0, -1.0, 2.0], [0.0, 1.0, 1.0], [-1.0, 0.0, 0.0]]),
       "b2": np.array([0.0, 0.5, 0.0])}


def _entry(cache, key, call):
    if not isinstance(cache, dict):
        raise grading.GradingError(f"{call} should return (loss, cache) with cache a dict, "
                                   f"got {type(cache).__name__} as the second value.")
    if key not in cache:
        raise grading.GradingError(f"the cache returned by {call} has no entry {key!r}; "
                                   "it needs 'X', 'y', 'Z', 'H', 'Theta' and 'Yhat'.")
    return cache[key]


def _grad_entry(grads, key, call):
    if not isinstance(grads, dict):
        raise grading.GradingError(f"{call} should return a dict of gradients, "
                                   f"got {type(grads).__name__}.")
    if key not in grads:
        raise grading.GradingError(f"the dict returned by {call} has no entry {key!r}; it "
                                   "needs 'W', 'b1', 'U', 'b2' and 'X'.")
    return grads[key]


def _ad_grads(X, y, params):
    loss, t = network_ad(X, y, params)
    loss.backward()
    return {k: t[k].grad.numpy() for k in ("W", "b1", "U", "b2", "X")}


def _cache_from_ad(X, y, params):
    t = network_ad(X, y, params)[1]
    return dict({k: t[k].numpy().copy() for k in ("Z", "H", "Theta", "Yhat")},
                X=np.array(X, dtype=np.float64), y=np.array(y))


def _pair(result, call):
    if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(d, dict)
                                                                   for d in result)):
        raise grading.GradingError(f"{call} should return a tuple of two dicts "
                                   "(new_params, new_velocity).")
    return result


def _stack_case(rng, widths, activation, scale=1.0):
    """Random inputs for a stack with the given widths [D_0, ..., D_L]."""
    X = rng.standard_normal((int(rng.integers(2, 6)), widths[0]))
    weights = [scale * rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(widths, widths[1:])]
    biases = [0.5 * rng.standard_normal(o) for o in widths[1:]]
    return X, weights, biases, rng.standard_normal((len(X), widths[-1])), activation


def _check_stack(case, what):
    expected = stack_ad(*case)
    copies = [case[0].copy(), [W.copy() for W in case[1]], [b.copy() for b in case[2]],
              case[3].copy(), case[4]]
    result = stack_gradients(*copies)
    if not (isinstance(result, tuple) and len(result) == 2
            and all(len(r) == len(case[1]) for r in result)):
        raise grading.GradingError(f"stack_gradients for {what} should return (grads_W, grads_b), "
                                   f"two lists of {len(case[1])} arrays (one per layer).")
    for kind, got, exp in [("W", result[0], expected[0]), ("b", result[1], expected[1])]:
        for layer, (g, e) in enumerate(zip(got, exp)):
            grading.assert_close(g, e, rtol=1e-9, atol=1e-12,
                                 name=f"dJ/d{kind} of layer {layer} (0 = next to the input) "
                                      f"for {what}, vs autodiff_ref")


def _maxout_ad(X, W, c, grad_H):
    Xt, Wt, ct = (ad.tensor(a, requires_grad=True) for a in (X, W, c))
    H = (Xt @ Wt.transpose(1, 2) + ct.reshape(len(W), 1, W.shape[1])).max(axis=0)
    H.backward(ad.tensor(grad_H))
    return H.numpy(), {"X": Xt.grad.numpy(), "W": Wt.grad.numpy(), "c": ct.grad.numpy()}


def _check_maxout(rng, k, N, Dx, Dh, what):
    args = (rng.standard_normal((N, Dx)), rng.standard_normal((k, Dh, Dx)),
            rng.standard_normal((k, Dh)), rng.standard_normal((N, Dh)))
    H_exp, g_exp = _maxout_ad(*args)
    result = maxout_layer(*[a.copy() for a in args])
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise grading.GradingError("maxout_layer should return (H, grads) with grads a dict.")
    grading.assert_close(result[0], H_exp, rtol=1e-12, name=f"H of maxout_layer for {what}")
    for key in ("X", "W", "c"):
        grading.assert_close(result[1].get(key), g_exp[key], rtol=1e-10, atol=1e-12,
                             name=f"grads[{key!r}] of maxout_layer for {what}, vs autodiff_ref")


# %% [markdown]
# ### Exercise 1 (2 points): the forward pass, with a cache
#
# Write `forward(X, y, params)` for a batch. Besides the loss it returns a
# **cache**: the intermediate arrays that the backward pass needs, so that
# nothing is computed twice. Use the stable formulas above (subtract the row
# maximum of $\Theta$, take the loss from the log-probabilities).
# `np.arange(N)` and `y` together pick one entry per row:
# `A[np.arange(N), y]`.

# %% solution="forward"
def forward(X, y, params):
    """Forward pass of the single-layer network on a batch.

    X: (N, Dx) array, one example per row; y: (N,) integer array of classes
    in 0..C-1; params: dict with "W" (Dh, Dx), "b1" (Dh,), "U" (C, Dh),
    "b2" (C,).
    Returns (loss, cache):
      loss: a float, the mean cross-entropy (1/N) sum_i -log Yhat[i, y[i]],
            computed from log-probabilities (stable for logits of size 1000);
      cache: a dict with "X": X, "y": y, "Z": X W^T + b1 (N, Dh),
            "H": ReLU(Z) (N, Dh), "Theta": H U^T + b2 (N, C) and
            "Yhat": the softmax of each row of Theta (N, C).
    Does not modify X or params.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=np.float64)
    Z = X @ params["W"].T + params["b1"]
    H = np.maximum(Z, 0.0)
    Theta = H @ params["U"].T + params["b2"]
    shifted = Theta - Theta.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    Yhat = np.exp(log_probs)
    loss = -log_probs[np.arange(len(y)), y].mean()
    cache = {"X": X, "y": y, "Z": Z, "H": H, "Theta": Theta, "Yhat": Yhat}
    return float(loss), cache
    ### END SOLUTION


# %% test="test_forward" points=2
# the worked example: one row x = (1, 2), class 0
with grading.exercise(1, "forward"):
    _call = "forward([[1.0, 2.0]], [0], worked-example params)"
    _result = forward(np.array([[1.0, 2.0]]), np.array([0]),
                      {k: v.copy() for k, v in _ex.items()})
    if not (isinstance(_result, tuple) and len(_result) == 2):
        raise grading.GradingError(f"{_call} should return a tuple (loss, cache).")
    loss, cache = _result
    grading.assert_close(_entry(cache, "Z", _call), np.array([[1.0, 0.5, -1.0]]),
                         name=f"cache['Z'] of {_call}", rtol=1e-12)
    grading.assert_close(_entry(cache, "H", _call), np.array([[1.0, 0.5, 0.0]]),
                         name=f"cache['H'] of {_call}", rtol=1e-12)
    grading.assert_close(_entry(cache, "Theta", _call), np.array([[0.5, 1.0, -1.0]]),
                         name=f"cache['Theta'] of {_call}", rtol=1e-12)
    grading.assert_close(_entry(cache, "Yhat", _call),
                         np.exp([[0.5, 1.0, -1.0]]) / np.exp([0.5, 1.0, -1.0]).sum(),
                         name=f"cache['Yhat'] of {_call} ((0.3482, 0.5741, 0.0777))", rtol=1e-9)
    grading.assert_close(loss, -np.log(np.exp(0.5) / (np.exp(0.5) + np.exp(1.0) + np.exp(-1.0))),
                         name=f"the loss of {_call} (-log 0.3482 = 1.0550)", rtol=1e-9)
    # large logits: U and b2 times 1000 give scores (500, 1000, -1000) for the worked example;
    # -log Yhat is 500 for class 0 and 2000 for class 2, without overflow or log(0)
    _big = dict(_ex, U=1000 * _ex["U"], b2=1000 * _ex["b2"])
    with np.errstate(all="ignore"):
        loss, cache = forward(np.array([[1.0, 2.0], [1.0, 2.0]]), np.array([0, 2]), _big)
    grading.assert_close(loss, 1250.0, rtol=1e-9,
                         name="the loss of forward for scores (500, 1000, -1000) and classes 0 "
                              "and 2 (expected (500 + 2000) / 2; subtract the row maximum and "
                              "use log-probabilities)")
    grading.assert_close(_entry(cache, "Yhat", "forward with large logits"),
                         np.array([[np.exp(-500.0), 1.0, 0.0]] * 2),
                         name="cache['Yhat'] for scores (500, 1000, -1000)", rtol=1e-9,
                         atol=1e-300)
grading.passed("forward")
### BEGIN HIDDEN TESTS
# a batch of three rows: the loss is the mean over the rows
_X = np.array([[1.0, 2.0], [0.0, 0.0], [-1.0, 1.0]])
_y = np.array([0, 2, 1])
loss, cache = forward(_X.copy(), _y.copy(), {k: v.copy() for k, v in _ex.items()})
grading.assert_close(loss, network_ad(_X, _y, _ex)[0].item(), rtol=1e-9,
                     name="the loss of forward(3 rows, y=[0, 2, 1], worked-example params) "
                          "(the mean over rows of -log Yhat[i, y[i]])")
grading.assert_close(_entry(cache, "Yhat", "forward on 3 rows").sum(axis=1), np.ones(3),
                     name="the row sums of cache['Yhat'] for 3 rows (softmax of each row)",
                     rtol=1e-12)
_rng = np.random.default_rng()


def _reference(X, y, p):
    Z = X @ p["W"].T + p["b1"]
    H = np.maximum(Z, 0)
    T = H @ p["U"].T + p["b2"]
    S = T - T.max(axis=1, keepdims=True)
    return {"Z": Z, "H": H, "Theta": T, "Yhat": np.exp(S) / np.exp(S).sum(axis=1, keepdims=True)}


for _trial in range(4):
    _N, _Dx, _Dh, _C = (int(v) for v in _rng.integers([2, 1, 2, 2], [12, 6, 10, 7]))
    _X = _rng.standard_normal((_N, _Dx))
    _y = _rng.integers(0, _C, _N)
    _p = {"W": _rng.standard_normal((_Dh, _Dx)), "b1": _rng.standard_normal(_Dh),
          "U": _rng.standard_normal((_C, _Dh)), "b2": _rng.standard_normal(_C)}
    if _trial == 3:  # large logits
        _p["U"] *= 300.0
        _p["b2"] *= 300.0
    _copies = ({k: v.copy() for k, v in _p.items()}, _X.copy(), _y.copy())
    _call = f"forward(X, y, params) with N={_N}, Dx={_Dx}, Dh={_Dh}, C={_C}" + \
        (" and large logits" if _trial == 3 else "")
    with np.errstate(all="ignore"):
        _loss, _cache = forward(_copies[1], _copies[2], _copies[0])
    for _key, _value in _reference(_X, _y, _p).items():
        grading.assert_close(_entry(_cache, _key, _call), _value, rtol=1e-10, atol=1e-12,
                             name=f"cache[{_key!r}] of {_call}")
    grading.assert_close(_loss, network_ad(_X, _y, _p)[0].item(), rtol=1e-10, atol=1e-12,
                         name=f"the loss of {_call} vs autodiff_ref")
    grading.assert_close(_entry(_cache, "X", _call), _X, rtol=0, atol=0,
                         name=f"cache['X'] of {_call}")
    grading.assert_close(_entry(_cache, "y", _call), _y, rtol=0, atol=0,
                         name=f"cache['y'] of {_call}")
    if not (all(np.array_equal(_copies[0][k], _p[k]) for k in _p)
            and np.array_equal(_copies[1], _X)):
        raise grading.GradingError(f"{_call} changed its input X or params in place.")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (3 points): the backward pass, by hand
#
# Derive the batched backward pass from section 2 with the four facts of
# section 3, then write `backward(cache, params)`: first the output error
# signals $\Delta_1$ from `cache["Yhat"]` and the labels `cache["y"]`, then
# the hidden error signals $\Delta_2$, then the five gradients. Write the
# shape next to each line as you go. Take $\operatorname{ReLU}'(0) = 0$.
# Do not change the arrays in the cache: if you subtract the one-hot labels
# from $\hat Y$ in place, work on a copy (`Yhat.copy()`).
#
# The tests compare with `autodiff_ref` to 10 significant digits, so the
# answer must come from the formulas; finite differences are not accurate
# enough (and are used by the tests as a second, independent check).

# %% solution="backward" exact=true
def backward(cache, params):
    """Gradients of the mean cross-entropy J computed by forward().

    cache: the dict returned by forward (this function uses "X", "y", "Z",
    "H" and "Yhat"); params: dict with "W" (Dh, Dx), "b1" (Dh,),
    "U" (C, Dh), "b2" (C,).
    Returns a dict of gradients, each with the shape of its array:
      "W": dJ/dW (Dh, Dx), "b1": dJ/db1 (Dh,), "U": dJ/dU (C, Dh),
      "b2": dJ/db2 (C,), "X": dJ/dX (N, Dx).
    Uses ReLU'(0) = 0. Does not modify the cache.
    """
    ### BEGIN SOLUTION
    X, y, Z, H = cache["X"], cache["y"], cache["Z"], cache["H"]
    N = X.shape[0]
    delta1 = cache["Yhat"].copy()
    delta1[np.arange(N), y] -= 1.0
    delta1 /= N
    delta2 = (delta1 @ params["U"]) * (Z > 0)
    return {"W": delta2.T @ X, "b1": delta2.sum(axis=0),
            "U": delta1.T @ H, "b2": delta1.sum(axis=0),
            "X": delta2 @ params["W"]}
    ### END SOLUTION


# %% test="test_backward" points=3
# the worked example: dJ/dx = (-1.9554, 1.2259), the third row of dJ/dW is zero
with grading.exercise(2, "backward"):
    _X, _y = np.array([[1.0, 2.0]]), np.array([0])
    _call = "backward(cache, params)"
    grads = backward(_cache_from_ad(_X, _y, _ex), {k: v.copy() for k, v in _ex.items()})
    grading.assert_close(_grad_entry(grads, "X", _call), np.array([[-1.9554, 1.2259]]),
                         name=f"{_call}['X'] for the worked example (dJ/dx as a row: "
                              "(-1.9554, 1.2259))", rtol=0, atol=1e-4)
    for _key, _value in _ad_grads(_X, _y, _ex).items():
        grading.assert_close(_grad_entry(grads, _key, _call), _value, rtol=1e-10, atol=1e-12,
                             name=f"{_call}[{_key!r}] for the worked example, vs autodiff_ref")
    # a batch of 5 rows, Dx=3, Dh=4, C=3 (sums over the rows, with the 1/N of the mean)
    _r = np.random.default_rng(6)
    _X, _y = _r.standard_normal((5, 3)), np.array([0, 2, 1, 2, 0])
    _p = {"W": _r.standard_normal((4, 3)), "b1": _r.standard_normal(4),
          "U": _r.standard_normal((3, 4)), "b2": _r.standard_normal(3)}
    grads = backward(_cache_from_ad(_X, _y, _p), {k: v.copy() for k, v in _p.items()})
    for _key, _value in _ad_grads(_X, _y, _p).items():
        grading.assert_close(_grad_entry(grads, _key, _call), _value, rtol=1e-10, atol=1e-12,
                             name=f"{_call}[{_key!r}] for 5 rows, Dx=3, Dh=4, C=3, "
                                  "vs autodiff_ref")
grading.passed("backward")
### BEGIN HIDDEN TESTS
# a hidden unit with z = 0 exactly on every row (its row of W and its bias are 0): ReLU'(0) = 0
_pz = dict(_p, W=_p["W"].copy(), b1=_p["b1"].copy())
_pz["W"][1], _pz["b1"][1] = 0.0, 0.0
grads = backward(_cache_from_ad(_X, _y, _pz), {k: v.copy() for k, v in _pz.items()})
_expected = _ad_grads(_X, _y, _pz)
for _key in ("W", "b1"):
    grading.assert_close(_grad_entry(grads, _key, _call), _expected[_key], rtol=1e-10,
                         atol=1e-12, name=f"{_call}[{_key!r}] for 5 rows when hidden unit 1 has "
                                          "z = 0 exactly (take ReLU'(0) = 0: the unit gets no "
                                          "gradient)")
_rng = np.random.default_rng()


def _ref_loss(X, W, b1, U, b2, y):
    T = np.maximum(X @ W.T + b1, 0) @ U.T + b2
    S = T - T.max(axis=1, keepdims=True)
    return -np.mean(S[np.arange(len(y)), y] - np.log(np.exp(S).sum(axis=1)))


for _trial in range(3):
    for _ in range(100):  # keep every z away from the ReLU kink (finite differences)
        _N, _Dx, _Dh, _C = (int(v) for v in _rng.integers([2, 1, 2, 2], [10, 6, 9, 6]))
        _X = _rng.standard_normal((_N, _Dx))
        _y = _rng.integers(0, _C, _N)
        _p = {"W": _rng.standard_normal((_Dh, _Dx)), "b1": 0.5 * _rng.standard_normal(_Dh),
              "U": _rng.standard_normal((_C, _Dh)), "b2": _rng.standard_normal(_C)}
        if np.min(np.abs(_X @ _p["W"].T + _p["b1"])) > 1e-3:
            break
    _cache = _cache_from_ad(_X, _y, _p)
    _saved = {k: v.copy() for k, v in _cache.items()}
    _call = "backward(cache, params)"
    _case = f"for N={_N}, Dx={_Dx}, Dh={_Dh}, C={_C}"
    _grads = backward(_cache, {k: v.copy() for k, v in _p.items()})
    for _key in _saved:
        if not np.array_equal(_saved[_key], _cache[_key]):
            raise grading.GradingError(
                f"{_call} {_case} changed cache[{_key!r}] in place; work on a copy "
                "(e.g. delta1 = cache['Yhat'].copy() before subtracting the one-hot labels).")
    _expected = _ad_grads(_X, _y, _p)
    for _key, _value in _expected.items():
        grading.assert_close(_grad_entry(_grads, _key, _call), _value, rtol=1e-10, atol=1e-12,
                             name=f"{_call}[{_key!r}] {_case}, vs autodiff_ref")
    # an independent check: central differences of the loss itself
    _numeric = grading.numerical_vjp(lambda *a: _ref_loss(*a, _y),
                                     [_X, _p["W"], _p["b1"], _p["U"], _p["b2"]], np.array(1.0))
    for _key, _value in zip(("X", "W", "b1", "U", "b2"), _numeric):
        grading.assert_close(_grads[_key], _value, rtol=1e-5, atol=1e-7,
                             name=f"{_call}[{_key!r}] {_case}, vs finite differences")
### END HIDDEN TESTS

# %% [markdown]
# Three independent ways to get the same gradient, side by side on a random
# batch: your formulas, the engine, and central differences (two loss
# evaluations per entry). The first two agree to rounding error; finite
# differences only to about $10^{-9}$, which is why a gradient check is a
# test, not a way to train.

# %%
rng = np.random.default_rng(3)
X_check, y_check = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
params_check = {"W": rng.standard_normal((6, 4)), "b1": rng.standard_normal(6),
                "U": rng.standard_normal((3, 6)), "b2": rng.standard_normal(3)}
try:
    mine = backward(forward(X_check, y_check, params_check)[1], params_check)
except NotImplementedError:
    print("Finish exercises 1 and 2 (forward and backward) to compare your gradients.")
else:
    loss_t, t = network_ad(X_check, y_check, params_check)
    loss_t.backward()
    arrays = {"X": X_check, **params_check}
    print(f"{'':>3} {'shape':>8} {'|yours - engine|':>17} {'|yours - finite diff.|':>23}")
    for name in ("W", "b1", "U", "b2", "X"):
        def loss_of(value, name=name):
            changed = dict(arrays, **{name: value})
            return forward(changed["X"], y_check, changed)[0]
        numeric = grading.numerical_vjp(loss_of, [arrays[name]], np.array(1.0))[0]
        print(f"{name:>3} {str(mine[name].shape):>8} {np.max(np.abs(mine[name] - t[name].grad.numpy())):17.1e}"
              f" {np.max(np.abs(mine[name] - numeric)):23.1e}")

# %% [markdown]
# ## 4. A data set: three spirals
#
# A linear classifier separates classes with straight lines. Three
# interleaved spirals cannot be separated that way, so they show what the
# hidden layer buys. Each class has 100 points on an arm that winds about
# $0.8$ turns outwards from the centre, with a little noise on the angle.
# The generator is seeded, so everybody gets the same 300 points.
#
# The weights start random and the biases at zero. The scale matters (more
# on this in section 6): $W$ gets variance $2/D_x$ (He initialisation, for
# ReLU units) and $U$ variance $1/D_h$, so that the signals neither blow up
# nor shrink as they pass through the layers.

# %%
def make_spirals(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    """Points on interleaved spiral arms: X (n_per_class * n_classes, 2), y integer classes."""
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.05, 1.0, n_per_class)
    X, y = [], []
    for k in range(n_classes):
        angle = 2 * np.pi * k / n_classes + 5.0 * radius + noise * rng.standard_normal(n_per_class)
        X.append(np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]))
        y.append(np.full(n_per_class, k))
    return np.concatenate(X), np.concatenate(y)


def init_params(Dx, Dh, C, seed=0):
    """Random weights (He scaling for W, 1/Dh for U) and zero biases."""
    rng = np.random.default_rng(seed)
    return {"W": rng.standard_normal((Dh, Dx)) * np.sqrt(2.0 / Dx), "b1": np.zeros(Dh),
            "U": rng.standard_normal((C, Dh)) * np.sqrt(1.0 / Dh), "b2": np.zeros(C)}


X_spiral, y_spiral = make_spirals()
COLORS = np.array(["C0", "C1", "C2"])
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(X_spiral[:, 0], X_spiral[:, 1], c=COLORS[y_spiral], s=12)
ax.set_aspect("equal")
ax.set_xlabel("$x_1$ (first feature)")
ax.set_ylabel("$x_2$ (second feature)")
ax.set_title(f"{len(X_spiral)} points, {y_spiral.max() + 1} classes")
plt.show()
loss0 = network_ad(X_spiral, y_spiral, init_params(2, 64, 3))[0].item()
print(f"loss of the initial network (64 hidden units): {loss0:.4f}; "
      f"guessing uniformly would give log 3 = {np.log(3):.4f}")

# %% [markdown]
# ## 5. Training: gradient descent with momentum
#
# Plain gradient descent changes each weight by $\Delta w = -\varepsilon\,
# \partial E/\partial w$, with learning rate $\varepsilon$. On a long narrow
# valley of the loss this zig-zags across the valley and crawls along it.
# Rumelhart, Hinton and Williams (1986), in the paper that made
# backpropagation popular, added a **momentum** term: each step also keeps a
# fraction $\alpha \in [0, 1)$ of the previous step,
#
# $$
# \Delta w(t) = -\varepsilon \frac{\partial E}{\partial w}(t) + \alpha\,
# \Delta w(t-1), \qquad w \leftarrow w + \Delta w(t), \qquad \Delta w(0 - 1) = 0 .
# $$
#
# Unrolled, $\Delta w(t) = -\varepsilon \sum_{s \le t} \alpha^{t-s}\,
# \partial E/\partial w(s)$: an exponentially weighted sum of all past
# gradients. Where the gradient keeps pointing the same way, the steps grow
# towards $-\varepsilon\, g/(1 - \alpha)$, ten times the plain step for
# $\alpha = 0.9$; where it flips sign from step to step (across the valley),
# the contributions cancel. PyTorch and `autodiff_ref.optim.SGD` write the
# same method as $v \leftarrow \alpha v + g$, $w \leftarrow w - \varepsilon
# v$, which is identical with $\Delta w = -\varepsilon v$.
#
# **Worked example.** $w = 1$, gradient $2$, previous step $\Delta w(t-1) =
# -0.5$, $\varepsilon = 0.1$, $\alpha = 0.9$: $\Delta w(t) = -0.2 - 0.45 =
# -0.65$, and $w$ becomes $0.35$. Without momentum the step would have been
# only $-0.2$.
#
# ### Exercise 3 (1 point): one step with momentum
#
# Parameters, gradients and previous steps are dicts of arrays with the same
# names (`"W"`, `"b1"`, ...). The gradients from `backward` also contain
# `"X"`, which is not a parameter: loop over the names in `params`.

# %% solution="momentum_step"
def momentum_step(params, grads, velocity, lr, momentum):
    """One update of gradient descent with momentum.

    params: dict name -> array; grads: dict with (at least) the same names
    and shapes (other entries, such as grads["X"], are ignored); velocity:
    dict name -> the previous step Delta w(t-1); lr: the learning rate
    epsilon; momentum: alpha.
    Returns (new_params, new_velocity), two new dicts with the names of
    params: new_velocity[k] = -lr * grads[k] + momentum * velocity[k] (the
    step Delta w(t)) and new_params[k] = params[k] + new_velocity[k].
    Does not modify its arguments.
    """
    ### BEGIN SOLUTION
    new_velocity = {k: -lr * grads[k] + momentum * velocity[k] for k in params}
    new_params = {k: params[k] + new_velocity[k] for k in params}
    return new_params, new_velocity
    ### END SOLUTION


# %% test="test_momentum_step" points=1
# the worked example, as a 1 x 2 array: w = (1, -2), gradient (2, 0.5), previous step (-0.5, 0)
with grading.exercise(3, "momentum_step"):
    _params = {"W": np.array([[1.0, -2.0]])}
    _grads = {"W": np.array([[2.0, 0.5]]), "X": np.array([[7.0, 7.0]])}
    _vel = {"W": np.array([[-0.5, 0.0]])}
    _call = "momentum_step(W=[[1, -2]], grad=[[2, 0.5]], previous step=[[-0.5, 0]], lr=0.1, momentum=0.9)"
    new_params, new_velocity = _pair(momentum_step(_params, _grads, _vel, 0.1, 0.9), _call)
    if set(new_params) != {"W"} or set(new_velocity) != {"W"}:
        raise grading.GradingError(f"{_call} returned dicts with the names {sorted(new_params)} and "
                                   f"{sorted(new_velocity)}; expected only the names of params, "
                                   "['W'] (grads['X'] is not a parameter).")
    grading.assert_close(new_velocity["W"], np.array([[-0.65, -0.05]]), rtol=1e-12,
                         name=f"the new step (new_velocity['W']) of {_call}")
    grading.assert_close(new_params["W"], np.array([[0.35, -2.05]]), rtol=1e-12,
                         name=f"new_params['W'] of {_call}")
    if not (np.array_equal(_params["W"], [[1.0, -2.0]]) and np.array_equal(_vel["W"], [[-0.5, 0.0]])):
        raise grading.GradingError(f"{_call} modified params or velocity in place; return new dicts.")
    # with momentum 0 it is plain gradient descent
    _call = "momentum_step(..., lr=0.1, momentum=0.0)"
    new_params, _ = _pair(momentum_step(_params, _grads, _vel, 0.1, 0.0), _call)
    grading.assert_close(new_params["W"], np.array([[0.8, -2.05]]), rtol=1e-12,
                         name=f"new_params['W'] of {_call} (plain gradient descent)")
grading.passed("momentum_step")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _momentum in (0.0, float(_rng.uniform(0.5, 0.95))):
    _lr = float(_rng.uniform(0.01, 1.0))
    _shapes = {"W": (int(_rng.integers(1, 5)), 3), "b1": (4,), "U": (2, 3), "b2": (2,)}
    _params = {k: _rng.standard_normal(s) for k, s in _shapes.items()}
    _tensors = {k: ad.tensor(v, requires_grad=True) for k, v in _params.items()}
    _opt = ad.optim.SGD(list(_tensors.values()), lr=_lr, momentum=_momentum)
    _vel = {k: np.zeros(s) for k, s in _shapes.items()}
    for _step in range(5):
        _grads = {k: _rng.standard_normal(s) for k, s in _shapes.items()}
        _grads["X"] = _rng.standard_normal((3, 3))
        _before = ({k: v.copy() for k, v in _params.items()}, {k: v.copy() for k, v in _vel.items()})
        _call = f"momentum_step(..., lr={_lr:.3f}, momentum={_momentum:.3f}) at step {_step}"
        _params_new, _vel = _pair(momentum_step(_params, _grads, _vel, _lr, _momentum), _call)
        if not all(np.array_equal(_before[0][k], _params[k]) for k in _params):
            raise grading.GradingError(f"{_call} modified params in place; return new dicts.")
        _params = _params_new
        for _k, _t in _tensors.items():
            _t.grad = ad.tensor(_grads[_k])
        _opt.step()
        for _k, _t in _tensors.items():
            grading.assert_close(_params[_k], _t.data, rtol=1e-10, atol=1e-12,
                                 name=f"new_params[{_k!r}] of {_call} vs autodiff_ref.optim.SGD")
            grading.assert_close(_vel[_k], _params[_k] - _before[0][_k], rtol=1e-9, atol=1e-12,
                                 name=f"new_velocity[{_k!r}] of {_call} (the step just taken)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (2 points): the training loop
#
# Put the pieces together: starting with zero velocity, repeat `steps`
# times: forward pass on the whole data set, backward pass, one
# `momentum_step`. Record the loss of each forward pass. (Using all 300
# points in every step is plain, full-batch gradient descent; with large data
# sets one would use a random mini-batch per step instead.)

# %% solution="train"
def train(X, y, params, lr=0.5, momentum=0.9, steps=300):
    """Full-batch gradient descent with momentum, using forward, backward
    and momentum_step.

    X: (N, Dx); y: (N,) integer classes; params: the initial parameters
    (dict W, b1, U, b2), not modified; lr, momentum: epsilon and alpha;
    steps: the number of updates.
    Returns (trained_params, losses): the parameters after `steps` updates
    (a dict) and a 1-D array of length `steps` whose entry t is the loss
    computed by the forward pass of step t (before its update).
    """
    ### BEGIN SOLUTION
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    losses = []
    for step in range(steps):
        loss, cache = forward(X, y, params)
        grads = backward(cache, params)
        params, velocity = momentum_step(params, grads, velocity, lr, momentum)
        losses.append(loss)
    return params, np.array(losses)
    ### END SOLUTION


# %% test="test_train" points=2
def _accuracy_ad(X, y, params):
    return float(np.mean(network_ad(X, y, params)[1]["Theta"].numpy().argmax(axis=1) == y))


with grading.exercise(4, "train",
                      needs=[(1, "forward"), (2, "backward"), (3, "momentum_step")]):
    _X, _y = make_spirals()
    _init = init_params(2, 64, 3, seed=0)
    _copy = {k: v.copy() for k, v in _init.items()}
    _call = "train(spirals, init_params(2, 64, 3), lr=0.5, momentum=0.9, steps=300)"
    _result = train(_X, _y, _copy, lr=0.5, momentum=0.9, steps=300)
    if not (isinstance(_result, tuple) and len(_result) == 2):
        raise grading.GradingError(f"{_call} should return a tuple (trained_params, losses).")
    trained, losses = _result
    losses = np.asarray(losses, dtype=np.float64)
    if losses.shape != (300,):
        raise grading.GradingError(f"{_call} returned losses of shape {losses.shape}; expected "
                                   "(300,), one loss per step.")
    if not all(np.array_equal(_copy[k], _init[k]) for k in _init):
        raise grading.GradingError(f"{_call} modified the params passed in.")
    grading.assert_close(losses[0], network_ad(_X, _y, _init)[0].item(), rtol=1e-9,
                         name=f"losses[0] of {_call} (the loss of the initial parameters)")
    grading.assert_less(losses[-1], 0.05, name=f"the last loss of {_call}",
                        hint=f"The first loss was {losses[0]:.4f}. With momentum 0.9 the loss falls "
                             "to about 0.016 in 300 steps; without momentum (or with a velocity "
                             "that restarts at zero every step) only to about 0.18.")
    grading.assert_greater(_accuracy_ad(_X, _y, trained), 0.97,
                           name=f"the training accuracy of the parameters from {_call}")
grading.passed("train")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _ad_train(X, y, params, lr, momentum, steps):
    tensors = {k: ad.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = ad.optim.SGD(list(tensors.values()), lr=lr, momentum=momentum)
    out = []
    for _ in range(steps):
        T = ad.relu(ad.tensor(X) @ tensors["W"].T + tensors["b1"]) @ tensors["U"].T + tensors["b2"]
        loss = ad.cross_entropy(T, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(loss.item())
    return {k: t.data.copy() for k, t in tensors.items()}, np.array(out)


for _momentum in (0.0, float(_rng.uniform(0.5, 0.95))):
    _N, _Dx, _Dh, _C = (int(v) for v in _rng.integers([10, 2, 3, 2], [30, 5, 8, 5]))
    _steps = int(_rng.integers(8, 16))
    _lr = float(_rng.uniform(0.05, 0.5))
    _X, _y = _rng.standard_normal((_N, _Dx)), _rng.integers(0, _C, _N)
    _init = init_params(_Dx, _Dh, _C, seed=int(_rng.integers(1 << 30)))
    _init["b1"] = 0.1 * _rng.standard_normal(_Dh)
    _call = (f"train(X, y, params, lr={_lr:.3f}, momentum={_momentum:.3f}, steps={_steps}) "
             f"with N={_N}, Dx={_Dx}, Dh={_Dh}, C={_C}")
    _trained, _losses = train(_X, _y, {k: v.copy() for k, v in _init.items()}, lr=_lr,
                              momentum=_momentum, steps=_steps)
    _ref_params, _ref_losses = _ad_train(_X, _y, _init, _lr, _momentum, _steps)
    grading.assert_close(np.asarray(_losses, dtype=np.float64), _ref_losses, rtol=1e-9,
                         atol=1e-12, name=f"the losses of {_call} vs training with autodiff_ref")
    for _k in _ref_params:
        grading.assert_close(_trained[_k], _ref_params[_k], rtol=1e-8, atol=1e-10,
                             name=f"trained[{_k!r}] of {_call} vs training with autodiff_ref")
### END HIDDEN TESTS

# %% [markdown]
# ### Watching it learn
#
# The next cell trains two networks with 64 hidden units from the same
# starting point for 300 steps with $\varepsilon = 0.5$: one with momentum
# $\alpha = 0.9$ and one without. Left: the loss curves (log scale). Right:
# the **decision boundary**: every point of the plane is coloured by the
# class the momentum network predicts there. The spiral arms that no
# straight line could separate are carved out by pieces of straight lines:
# each ReLU unit switches on along one line $w_j^\top x + (b_1)_j = 0$, and
# the network's scores are piecewise linear in $x$.

# %%
def predict(X, params):
    """The predicted classes (argmax of the scores) with your forward()."""
    return forward(X, np.zeros(len(X), dtype=int), params)[1]["Theta"].argmax(axis=1)


def plot_boundary(ax, X, y, params, title=""):
    g1, g2 = np.meshgrid(np.linspace(-1.2, 1.2, 150), np.linspace(-1.2, 1.2, 150))
    classes = predict(np.column_stack([g1.ravel(), g2.ravel()]), params).reshape(g1.shape)
    ax.contourf(g1, g2, classes, levels=[-0.5, 0.5, 1.5, 2.5], colors=["C0", "C1", "C2"],
                alpha=0.25)
    ax.scatter(X[:, 0], X[:, 1], c=COLORS[y], s=10)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title)


try:
    start = time.perf_counter()
    runs = {alpha: train(X_spiral, y_spiral, init_params(2, 64, 3), lr=0.5, momentum=alpha,
                         steps=300) for alpha in (0.9, 0.0)}
    elapsed = time.perf_counter() - start
except NotImplementedError:
    print("Finish exercises 1-4 (forward, backward, momentum_step, train) to train the network.")
else:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for alpha, (trained, losses) in runs.items():
        acc = np.mean(predict(X_spiral, trained) == y_spiral)
        left.semilogy(losses, label=f"momentum {alpha}: final loss {losses[-1]:.3f}, "
                                    f"accuracy {acc:.1%}")
    left.set_xlabel("step")
    left.set_ylabel("loss J")
    left.legend(loc="lower left", fontsize=8)
    left.set_title(f"two runs of 300 steps in {elapsed:.2f} s")
    plot_boundary(right, X_spiral, y_spiral, runs[0.9][0], "decision boundary, momentum 0.9")
    plt.show()

# %% [markdown]
# ## 6. Activation functions
#
# ReLU is one choice among several. What matters for backpropagation is the
# **derivative**: $\delta_2 = \bar h \circ f'(z)$ multiplies the gradient
# arriving at each unit by $f'(z)$, so wherever $f'$ is close to 0 the unit
# passes almost nothing back. An activation is *saturated* where its graph is
# flat.
#
# | | $f(z)$ | $f'(z)$ | range of $f'$ |
# |---|---|---|---|
# | sigmoid | $\sigma(z) = \dfrac{1}{1 + e^{-z}}$ | $\dfrac{e^{-z}}{(1 + e^{-z})^2}$ | $(0, \tfrac14]$ |
# | tanh | $\tanh z = 2\sigma(2z) - 1$ | $1 - \tanh^2 z$ | $(0, 1]$ |
# | ReLU | $\max(0, z)$ | $1$ if $z > 0$, else $0$ | $\{0, 1\}$ |
# | leaky ReLU | $\max(a z, z)$, small $a > 0$ | $1$ if $z > 0$, else $a$ | $\{a, 1\}$ |
# | maxout | $\max(w_1^\top x + c_1,\ w_2^\top x + c_2)$ | the gradient of the larger one | |
#
# * **Sigmoid** squashes to $(0, 1)$, a "firing rate". Its slope is at most
#   $\tfrac14$ (at $z = 0$); at $z = 1$ it is $e^{-1}/(1 + e^{-1})^2 =
#   0.1966$, and beyond $|z| \approx 5$ it is below $0.01$: the unit
#   saturates. Its outputs are all positive (not centred at 0). Take one
#   unit $i$ of the *next* layer and one example: the gradient of that
#   unit's incoming weights is $\partial J/\partial W_{ij} = \delta_i h_j$
#   for $j = 1, \dots, D_h$, and since every $h_j > 0$, all the entries of
#   that row have the sign of the one number $\delta_i$. On that example the
#   unit can only increase all its weights or decrease all of them, and
#   reaching a mixed-sign target takes a zig-zag. (This holds per unit and
#   per example: summed over a batch, examples with $\delta_i$ of different
#   signs and different $h$ give a row whose signs can mix.)
# * **tanh** is a rescaled sigmoid with outputs in $(-1, 1)$, centred at 0,
#   and a slope of up to 1, but it saturates just the same.
# * **ReLU** does not saturate for $z > 0$ and is as cheap as it gets.
#   Krizhevsky et al. (2012) found that a network with ReLUs trained about
#   six times faster than the same network with tanh. Its weakness: for $z
#   \le 0$ the slope is exactly 0 (see *dead ReLUs* below).
# * **Leaky ReLU** keeps a small slope $a$ (often $0.01$) for $z < 0$, so
#   the gradient is never exactly zero; the benefit is not consistent across
#   tasks.
# * **Maxout** (Goodfellow et al., 2013) does not apply a fixed function to
#   $z$: each unit computes two (or $k$) linear functions of its input and
#   outputs the larger. ReLU is the special case $w_2 = 0, c_2 = 0$, and
#   leaky ReLU is $w_2 = a w_1$, $c_2 = a c_1$. It neither saturates nor dies,
#   but each unit has two sets of weights: the layer's parameters double.
#
# The plots show the functions and their derivatives, with leaky ReLU drawn
# with $a = 0.1$ so that its slope is visible, and one maxout unit of a single
# input, $\max(z,\ -0.5 z - 0.5)$.

# %%
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


ACTIVATIONS = {  # name: (f, f')
    "sigmoid": (sigmoid, lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "ReLU": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "leaky ReLU (a=0.1)": (lambda z: np.maximum(0.1 * z, z), lambda z: np.where(z > 0, 1.0, 0.1)),
    "maxout max(z, -0.5z - 0.5)": (lambda z: np.maximum(z, -0.5 * z - 0.5),
                                   lambda z: np.where(z > -0.5 * z - 0.5, 1.0, -0.5)),
}
zs = np.linspace(-5, 5, 501)
fig, axes = plt.subplots(2, len(ACTIVATIONS), figsize=(15, 5.5), sharex=True)
for col, (name, (f, df)) in enumerate(ACTIVATIONS.items()):
    axes[0, col].plot(zs, f(zs), color="C0")
    axes[0, col].set_title(name, fontsize=10)
    axes[1, col].plot(zs, df(zs), color="C3")
    axes[1, col].set_xlabel("pre-activation z")
    axes[0, col].set_ylabel("f(z)")
    axes[1, col].set_ylabel("f'(z)")
    for ax in axes[:, col]:
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
fig.suptitle("activation functions (top) and their derivatives (bottom)")
plt.tight_layout()
plt.show()
sigmoid_slope = ACTIVATIONS["sigmoid"][1]
print(f"sigma(1) = {sigmoid(1.0):.4f}, sigma'(1) = {sigmoid_slope(1.0):.4f}, "
      f"largest sigma' = {sigmoid_slope(0.0):.2f}, sigma'(5) = {sigmoid_slope(5.0):.4f}")

# %% [markdown]
# ### Backpropagation through a deep stack
#
# Stack $L$ fully connected layers, examples as rows as in section 3: start
# with $H_0 = X$, and layer $\ell = 1, \dots, L$ computes
#
# $$
# Z_\ell = H_{\ell - 1} W_\ell^\top + \mathbf{1} b_\ell^\top, \qquad
# H_\ell = f(Z_\ell),
# $$
#
# with the same activation $f$ in every layer. To study the gradients alone,
# the loss is a fixed random linear function of the last layer,
# $J = \sum_{n, j} R_{nj} (H_L)_{nj}$, so that $\partial J/\partial H_L = R$.
#
# Section 2 took one step down through one layer: from the gradient with
# respect to a layer's output, through its activation to the error signal
# $\delta$, from $\delta$ to the layer's weights and bias, and on to the
# gradient with respect to the layer's input, which is the output of the
# layer below. A deep stack repeats that step $L$ times, from the top down.
#
# ### Exercise 5 (3 points): the gradients of every layer of a stack
#
# Write `stack_gradients`. Derive the step for one layer first (the shapes
# of section 3, with $R$ in place of the gradient from above), then loop
# over the layers from the top: keep what the backward pass needs from the
# forward pass, as `forward` did with its cache. The slopes $f'$ are in the
# table above (at $z = 0$ take slope 0 for ReLU and $a$ for leaky ReLU).
#
# The next cell holds the same stack written with `autodiff_ref`; the tests
# compare with it.

# %%
ACTIVATIONS_AD = {"sigmoid": ad.sigmoid, "tanh": ad.tanh, "relu": ad.relu,
                  "leaky_relu": lambda z: 0.01 * z + 0.99 * ad.relu(z)}  # slope 0.01 at 0


def stack_ad(X, weights, biases, readout, activation):
    """The gradients of J = sum(readout * H_L) for the stack, from autodiff_ref:
    (list of dJ/dW_l, list of dJ/db_l)."""
    Ws = [ad.tensor(W, requires_grad=True) for W in weights]
    bs = [ad.tensor(b, requires_grad=True) for b in biases]
    H = ad.tensor(X)
    for W, b in zip(Ws, bs):
        H = ACTIVATIONS_AD[activation](H @ W.T + b)
    (H * ad.tensor(readout)).sum().backward()
    return [W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs]


# %% solution="stack_gradients"
def stack_gradients(X, weights, biases, readout, activation):
    """Gradients of J = sum(readout * H_L) for a stack of L dense layers.

    X: (N, D_0), one example per row. weights: a list of L arrays,
    weights[l] of shape (D_{l+1}, D_l); biases: a list of L arrays,
    biases[l] of shape (D_{l+1},). Layer l turns H (starting with H = X)
    into Z = H @ weights[l].T + biases[l] and then H = f(Z), where
    activation names f: "sigmoid" (1 / (1 + exp(-z))), "tanh", "relu"
    (max(z, 0)) or "leaky_relu" (max(0.01 z, z)). readout: (N, D_L).
    Returns (grads_W, grads_b): two lists of L arrays, grads_W[l] = dJ/d
    weights[l] and grads_b[l] = dJ/d biases[l], each of its parameter's
    shape. Slopes at z = 0: 0 for relu, 0.01 for leaky_relu. Does not
    modify its arguments.
    """
    ### BEGIN SOLUTION
    H = X
    inputs, slopes = [], []  # per layer: the layer's input H and f'(Z)
    for W, b in zip(weights, biases):
        inputs.append(H)
        Z = H @ W.T + b
        if activation == "sigmoid":
            H = 1 / (1 + np.exp(-Z))
            slope = H * (1 - H)
        elif activation == "tanh":
            H = np.tanh(Z)
            slope = 1 - H**2
        elif activation == "relu":
            H = np.maximum(Z, 0.0)
            slope = (Z > 0).astype(float)
        else:
            H = np.maximum(0.01 * Z, Z)
            slope = np.where(Z > 0, 1.0, 0.01)
        slopes.append(slope)
    grad_H = readout  # dJ/dH_L
    grads_W, grads_b = [None] * len(weights), [None] * len(weights)
    for layer in reversed(range(len(weights))):
        delta = grad_H * slopes[layer]  # dJ/dZ of this layer, (N, D_{l+1})
        grads_W[layer] = delta.T @ inputs[layer]
        grads_b[layer] = delta.sum(axis=0)
        grad_H = delta @ weights[layer]  # dJ/d(the layer's input)
    return grads_W, grads_b
    ### END SOLUTION


# %% test="test_stack_gradients" points=3
with grading.exercise(5, "stack_gradients"):
    for _act in ("relu", "sigmoid", "tanh", "leaky_relu"):
        _check_stack(_stack_case(np.random.default_rng(5), [3, 4, 2, 3], _act),
                     f"a {_act} stack of widths 3 -> 4 -> 2 -> 3")
grading.passed("stack_gradients")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _act in ("sigmoid", "tanh", "relu", "leaky_relu"):
    for _ in range(100):  # keep every z away from the kinks of relu and leaky relu
        _widths = [int(w) for w in _rng.integers(1, 6, int(_rng.integers(2, 6)))]
        _case = _stack_case(_rng, _widths, _act, scale=float(_rng.uniform(0.5, 2.0)))
        _H, _ok = _case[0], True
        for _W, _b in zip(_case[1], _case[2]):
            _Z = _H @ _W.T + _b
            _ok = _ok and np.min(np.abs(_Z)) > 1e-6
            _H = np.maximum(_Z, 0.01 * _Z) if _act == "leaky_relu" else np.maximum(_Z, 0)
        if _ok or _act in ("sigmoid", "tanh"):
            break
    _check_stack(_case, f"a random {_act} stack of widths {_widths}")
# one layer, a relu unit with z = 0 exactly on every row: slope 0
_case = _stack_case(_rng, [2, 3], "relu")
_case[1][0][1], _case[2][0][1] = 0.0, 0.0
_check_stack(_case, "one relu layer whose unit 1 has z = 0 on every row (ReLU'(0) = 0)")
_case = _stack_case(_rng, [2, 3], "leaky_relu")
_case[1][0][1], _case[2][0][1] = 0.0, 0.0
_check_stack(_case, "one leaky_relu layer whose unit 1 has z = 0 on every row (slope 0.01 there)")
### END HIDDEN TESTS

# %% [markdown]
# ### Vanishing gradients: predict first
#
# The next plot measures, with your `stack_gradients`, a stack of 20 layers of
# width 64 fed a batch of 64 random inputs, biases 0. The weights are drawn
# with variance $1/\text{width}$ for sigmoid and tanh, so that multiplying
# by $W_\ell^\top$ on the way back keeps the size of a random vector about
# the same; ReLU gets variance $2/\text{width}$ (He initialisation,
# compensating for the half of the units that are off). The plot shows
# $\|\partial J/\partial W_\ell\|$ for each layer $\ell$: how strongly each
# layer is told to change.
#
# **Question (1 point, before you run the plot).** Predict what the plot
# will show for the sigmoid stack and for the tanh stack: how does the size
# of $\partial J/\partial W_\ell$ change from layer 20 down to layer 1, and
# roughly by how much for sigmoid? Explain *why* with the step you derived
# for Exercise 5: what multiplies the gradient once per layer on the way
# down, and how large can that factor be for each activation? (Hint: where
# do the pre-activations $z$ of such a stack lie?) A few sentences.

# %% [markdown] answer="predict_vanishing" points=1
# ### BEGIN SOLUTION
# **Model answer.** On the way down each layer multiplies the gradient
# entry by entry by the slope $f'(z_\ell)$ (giving $\delta_\ell$) and then by
# $W_\ell$, which with variance $1/\text{width}$ roughly keeps its size. So
# the size changes by about the typical slope per layer. With small random
# weights the pre-activations stay near 0. There the sigmoid's slope is at
# most $\tfrac14$ (about 0.24 in practice), so the gradient shrinks by a
# factor of about 4 per layer, roughly $0.24^{19} \approx 10^{-12}$ from layer
# 20 to layer 1: the first layers get essentially no gradient (vanishing
# gradient). tanh has slope $1$ at $z = 0$ and its $z$ stay small, so the
# factor is close to 1 and the gradient keeps its size through all 20
# layers (roughly flat curve, within a factor of a few).
#
# **Rubric (1 point).** Full point: predicts a geometric decay for sigmoid
# (many orders of magnitude, anything from $10^{-9}$ to $10^{-14}$ or "about
# 4 times per layer" is fine) and a roughly constant gradient for tanh, AND
# explains it by the per-layer factor $f'(z)$ with sigmoid's bound
# $\tfrac14$ against tanh's slope of about 1 near $z = 0$. Half a point:
# the right prediction with a vague reason ("sigmoid saturates"; note that
# here the units do *not* saturate, the cap $\tfrac14$ alone does it), or
# the right reason with a wrong order of magnitude. Zero: tanh predicted to
# vanish like sigmoid, or no reason given.
# ### END SOLUTION

# %%
rng = np.random.default_rng(0)
depth, width = 20, 64
inputs, readout = rng.standard_normal((64, width)), rng.standard_normal((64, width))
stacks = {"sigmoid": ("sigmoid", 1.0), "tanh": ("tanh", 1.0), "ReLU (He init)": ("relu", 2.0)}
fig, ax = plt.subplots(figsize=(7, 4))
for name, (activation, gain) in stacks.items():
    weights = [rng.standard_normal((width, width)) * np.sqrt(gain / width) for _ in range(depth)]
    biases = [np.zeros(width) for _ in range(depth)]
    try:
        grads_W, _ = stack_gradients(inputs, weights, biases, readout, activation)
    except NotImplementedError:
        grads_W, _ = stack_ad(inputs, weights, biases, readout, activation)
        if name == "sigmoid":
            print("(Exercise 5 is not written yet: these gradients come from autodiff_ref.)")
    norms = [np.linalg.norm(g) for g in grads_W]
    ax.semilogy(range(1, depth + 1), norms, "o-", ms=3, label=name)
    print(f"{name:>15}: |dJ/dW| in layer 1 / layer {depth} = {norms[0] / norms[-1]:.1e}")
ax.set_xlabel("layer (1 = next to the input)")
ax.set_ylabel(r"$\|\partial J / \partial W_\ell\|$")
ax.set_title(f"gradient size through a stack of {depth} layers")
ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# The sigmoid stack passes its first layer a gradient about $10^{12}$ times
# smaller than its last layer: those weights effectively do not train. tanh,
# whose slope is 1 near $z = 0$, keeps its gradients at this initialisation
# (with larger weights its units saturate instead), and so does ReLU, whose
# slope is exactly 1 on the active units. Note that the sigmoid units are
# not saturated here (their $z$ stay within about $\pm 1$): the bound
# $\sigma' \le \tfrac14$ alone costs a factor of 4 per layer. This is one
# reason why deep networks use ReLU-like units and carefully scaled initial
# weights.
#
# ### Maxout: a unit that routes its gradient
#
# A maxout layer with $k$ pieces has $k$ weight matrices $W^{(p)}$ ($D_h
# \times D_x$) and biases $c^{(p)}$ ($D_h$), and unit $j$ outputs the
# largest of its $k$ pieces:
#
# $$
# Z^{(p)} = X W^{(p)\top} + \mathbf{1} c^{(p)\top} \ (N \times D_h), \qquad
# H_{nj} = \max_p Z^{(p)}_{nj}.
# $$
#
# The max gate of notebook 03 *routes*: its whole upstream gradient goes to
# the input that won, and the others get 0 (a local slope of 1 for the
# winner and 0 for the losers). So each entry $\bar H_{nj}$ flows back into
# one piece only, and from there into that piece's weights, bias and the
# input row, exactly as a linear layer's gradients do.
#
# ### Exercise 6 (2 points): a maxout layer, forward and backward
#
# Write `maxout_layer`. It gets the upstream gradient $\bar H$ and returns
# the output and the three gradients. `np.argmax(A, axis=0)` gives the index
# of the winner along the first axis (the first one if several tie), and
# `np.einsum` or a loop over the $k$ pieces both work.

# %% solution="maxout_layer"
def maxout_layer(X, W, c, grad_H):
    """A maxout layer of k pieces: its output and its gradients.

    X: (N, Dx); W: (k, Dh, Dx), W[p] the weights of piece p; c: (k, Dh),
    c[p] its biases; grad_H: (N, Dh), the upstream gradient dJ/dH.
    The output is H (N, Dh) with H[n, j] the largest over p of
    (X @ W[p].T + c[p])[n, j].
    Returns (H, grads) with grads a dict: "X": dJ/dX (N, Dx),
    "W": dJ/dW (k, Dh, Dx), "c": dJ/dc (k, Dh). On a tie the first
    largest piece (np.argmax) gets the whole gradient.
    """
    ### BEGIN SOLUTION
    Z = np.einsum("nd,phd->pnh", X, W) + c[:, None, :]  # (k, N, Dh)
    winner = np.argmax(Z, axis=0)  # (N, Dh)
    H = np.take_along_axis(Z, winner[None], axis=0)[0]
    routed = (np.arange(len(W))[:, None, None] == winner) * grad_H  # dJ/dZ, (k, N, Dh)
    grads = {"X": np.einsum("pnh,phd->nd", routed, W),
             "W": np.einsum("pnh,nd->phd", routed, X),
             "c": routed.sum(axis=1)}
    return H, grads
    ### END SOLUTION


# %% test="test_maxout_layer" points=2
with grading.exercise(6, "maxout_layer"):
    _check_maxout(np.random.default_rng(6), 2, 4, 3, 2, "k=2 pieces, N=4, Dx=3, Dh=2")
    _check_maxout(np.random.default_rng(7), 3, 5, 2, 4, "k=3 pieces, N=5, Dx=2, Dh=4")
grading.passed("maxout_layer")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _k, _N, _Dx, _Dh = (int(v) for v in _rng.integers([1, 1, 1, 1], [5, 7, 5, 5]))
    _check_maxout(_rng, _k, _N, _Dx, _Dh, f"random k={_k}, N={_N}, Dx={_Dx}, Dh={_Dh}")
# a tie: two identical pieces; the first gets the whole gradient
_X, _G = _rng.standard_normal((3, 2)), _rng.standard_normal((3, 2))
_W = np.stack([_rng.standard_normal((2, 2))] * 2)
_c = np.zeros((2, 2))
_H, _g = maxout_layer(_X, _W.copy(), _c.copy(), _G)
grading.assert_close(_g["c"], np.stack([_G.sum(axis=0), np.zeros(2)]), rtol=1e-12,
                     name="grads['c'] of maxout_layer when the two pieces tie everywhere "
                          "(the first piece gets the whole gradient)")
grading.assert_close(_g["X"], _G @ _W[0], rtol=1e-12,
                     name="grads['X'] of maxout_layer when the two pieces tie everywhere")
### END HIDDEN TESTS

# %% [markdown]
# ### Dead ReLUs
#
# A ReLU unit whose pre-activation is $z \le 0$ for **every** example of the
# data set outputs 0 on all of them, and its slope $\operatorname{ReLU}'(z)
# = 0$ blocks every error signal: its row of $\partial J/\partial W$ and its
# entry of $\partial J/\partial b_1$ are zero on every step (the third unit of
# the worked example, but for all examples at once). Gradient descent can
# never switch it back on: the unit is **dead**. A too-large learning rate
# is the usual cause: one big step throws a bias far into the negative.
#
# ### Exercise 7 (1 point): the fraction of dead units
#
# Write `dead_fraction(X, params)`: the fraction of hidden units that are
# inactive ($z \le 0$) on every row of `X`. You only need the first layer.

# %% solution="dead_fraction"
def dead_fraction(X, params):
    """Fraction of hidden units that never activate on the data set X.

    X: (N, Dx); params: dict with "W" (Dh, Dx) and "b1" (Dh,) (others unused).
    Unit j is dead if z_ij = (X W^T + b1)_ij <= 0 for every row i.
    Returns a float in [0, 1]: (number of dead units) / Dh.
    """
    ### BEGIN SOLUTION
    Z = X @ params["W"].T + params["b1"]
    return float(np.mean(np.all(Z <= 0, axis=0)))
    ### END SOLUTION


# %% test="test_dead_fraction" points=1
# four units on four points: unit 0 is on for x1 > 0, unit 1 has z = 0 everywhere (dead),
# unit 2 has a bias of -10 (dead), unit 3 is on for x2 > 0 with z at most 0.2
with grading.exercise(7, "dead_fraction"):
    _X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.5, -1.0], [0.2, 0.1]])
    _p = {"W": np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, -1.0], [0.0, 0.1]]),
          "b1": np.array([0.0, 0.0, -10.0, 0.0])}
    grading.assert_close(dead_fraction(_X.copy(), {k: v.copy() for k, v in _p.items()}), 0.5,
                         name="dead_fraction for 4 units on 4 points, of which units 1 (z = 0 on "
                              "every row) and 2 (bias -10) are dead (a unit is dead if z <= 0 on "
                              "every row)", rtol=1e-12)
    # with a bias of +10 on unit 2 it comes alive
    grading.assert_close(dead_fraction(_X, dict(_p, b1=np.array([0.0, 0.0, 10.0, 0.0]))), 0.25,
                         name="dead_fraction for the same units with the bias of unit 2 set to +10 "
                              "(only unit 1 is dead)", rtol=1e-12)
grading.passed("dead_fraction")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _N, _Dx, _Dh = (int(v) for v in _rng.integers([5, 1, 4], [40, 5, 30]))
    _X = _rng.standard_normal((_N, _Dx))
    _p = {"W": _rng.standard_normal((_Dh, _Dx)), "b1": _rng.standard_normal(_Dh),
          "U": _rng.standard_normal((3, _Dh)), "b2": _rng.standard_normal(3)}
    _dead = _rng.choice(_Dh, int(_rng.integers(1, _Dh)), replace=False)
    _p["b1"][_dead] = -(np.abs(_X) @ np.abs(_p["W"][_dead]).T).max(axis=0) - _rng.uniform(0.01, 1)
    _p["W"][_dead[0]], _p["b1"][_dead[0]] = 0.0, 0.0  # z = 0 exactly: dead too
    _Z = _X @ _p["W"].T + _p["b1"]
    _expected = float(np.mean(np.all(_Z <= 0, axis=0)))
    grading.assert_close(dead_fraction(_X, _p), _expected, rtol=1e-12,
                         name=f"dead_fraction for N={_N}, Dx={_Dx}, Dh={_Dh} with "
                              f"{int(round(_expected * _Dh))} dead units")
### END HIDDEN TESTS

# %% [markdown]
# Now the experiment: train the spiral network (64 hidden units, momentum
# 0.9, 300 steps) with larger and larger learning rates, and count the dead
# units afterwards. At initialisation none is dead: every bias is 0, so each
# unit's line $w_j^\top x = 0$ passes through the centre of the data and the
# unit is on for about half of the points.

# %%
try:
    rates = [0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0]
    dead, accuracy = [], []
    for lr in rates:
        trained, _ = train(X_spiral, y_spiral, init_params(2, 64, 3), lr=lr, momentum=0.9,
                           steps=300)
        dead.append(dead_fraction(X_spiral, trained))
        accuracy.append(np.mean(predict(X_spiral, trained) == y_spiral))
except NotImplementedError:
    print("Finish exercises 1-4 and 7 to run the dead-ReLU experiment.")
else:
    print(f"dead at initialisation: {dead_fraction(X_spiral, init_params(2, 64, 3)):.0%}")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.semilogx(rates, dead, "o-", label="fraction of dead hidden units")
    ax.semilogx(rates, accuracy, "s-", label="training accuracy")
    ax.set_xticks(rates, [f"{lr:g}" for lr in rates])
    ax.minorticks_off()
    ax.set_xlabel(r"learning rate $\varepsilon$ (momentum 0.9, 300 steps)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("fraction (of units, of points)")
    ax.legend(loc="center left")
    ax.set_title("too large a step kills ReLU units")
    plt.show()
    for lr, d, a in zip(rates, dead, accuracy):
        print(f"lr = {lr:4.2f}: {d:5.0%} dead, accuracy {a:.1%}")

# %% [markdown]
# Up to $\varepsilon = 2$ almost every unit survives and the network fits
# the spirals perfectly. At $\varepsilon = 3$ about three quarters of the
# units die in the first steps; the survivors still manage to fit the
# spirals, but the network has lost most of its capacity. From $\varepsilon
# = 4$ on nearly all units are dead, and with only one or two lines left the
# accuracy falls towards a third, the level of a guess. Remedies: a smaller
# learning rate, leaky ReLU or maxout (no zero slope), or a small positive
# initial bias.
#
# ## 7. Explore it
#
# Retrain with other settings and press **Train** (each run takes well under
# a second). Things to try:
#
# * hidden size 2 or 3: too few lines to carve three spirals;
# * momentum 0 against 0.9 at the same learning rate, and a very small
#   learning rate such as 0.01;
# * learning rate 4: the dead units are counted in the title, and the
#   boundary collapses to a few straight lines.

# %%
def retrain(hidden=64, lr=0.5, momentum=0.9, steps=300):
    try:
        start = time.perf_counter()
        trained, losses = train(X_spiral, y_spiral, init_params(2, hidden, 3), lr=lr,
                                momentum=momentum, steps=steps)
        seconds = time.perf_counter() - start
        acc = np.mean(predict(X_spiral, trained) == y_spiral)
    except NotImplementedError:
        print("Finish exercises 1-4 (forward, backward, momentum_step, train) first.")
        return
    try:
        dead_text = f", {dead_fraction(X_spiral, trained):.0%} dead units"
    except NotImplementedError:
        dead_text = ""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.semilogy(np.maximum(losses, 1e-8))
    left.set_xlabel("step")
    left.set_ylabel("loss J")
    left.set_title(f"{steps} steps in {seconds:.2f} s, final loss {losses[-1]:.3g}")
    plot_boundary(right, X_spiral, y_spiral, trained,
                  f"{hidden} hidden units: accuracy {acc:.1%}{dead_text}")
    plt.show()


STYLE = {"description_width": "initial"}
explorer = widgets.interactive(
    retrain,
    {"manual": True, "manual_name": "Train"},
    hidden=widgets.IntSlider(value=64, min=1, max=256, step=1, description="hidden units",
                             style=STYLE, continuous_update=False),
    # the learning rates the text talks about, exactly (a log slider would show 0.501)
    lr=widgets.SelectionSlider(options=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0],
                               value=0.5, description="learning rate", style=STYLE,
                               continuous_update=False),
    momentum=widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="momentum",
                                 style=STYLE, continuous_update=False),
    steps=widgets.IntSlider(value=300, min=10, max=1000, step=10, description="steps",
                            style=STYLE, continuous_update=False),
)
display(explorer)

# %% [markdown]
# ## Summary
#
# * The single-layer network: $z = Wx + b_1$, $h = \operatorname{ReLU}(z)$,
#   $\theta = Uh + b_2$, $\hat y = \operatorname{softmax}(\theta)$, $J =
#   \operatorname{CE}(y, \hat y)$.
# * Backward, one example: $\delta_1 = (\hat y - y)^\top$, $\delta_2 =
#   \delta_1 U \circ \operatorname{ReLU}'(z)$; $\partial J/\partial U =
#   \delta_1^\top h^\top$, $\partial J/\partial b_2 = \delta_1^\top$,
#   $\partial J/\partial W = \delta_2^\top x^\top$, $\partial J/\partial b_1
#   = \delta_2^\top$, $\partial J/\partial x = (\delta_2 W)^\top$. Each error
#   signal is computed once and reused.
# * Batched, examples as rows: the same error signals, one row per example
#   and carrying the $\frac1N$ of the mean; a shared parameter's gradient is
#   a sum over the examples (a matrix product), a broadcast bias's gradient a
#   sum over the rows. Check every shape.
# * A deep stack repeats one step per layer: slope times gradient gives
#   $\delta_\ell$, $\delta_\ell$ gives the layer's weights and bias and the
#   gradient for the layer below. A max unit (maxout) routes its gradient to
#   the winning piece.
# * Compute softmax and cross-entropy from scores minus their row maximum,
#   and the loss from log-probabilities.
# * A hand-written backward pass is checked against an engine (to rounding
#   error) and against finite differences (to about $10^{-9}$).
# * Momentum, $\Delta w(t) = -\varepsilon\, \partial E/\partial w +
#   \alpha\,\Delta w(t-1)$, sums past gradients with decaying weights: it
#   speeds up steady directions and damps oscillations.
# * Each layer multiplies the backward signal by the slopes $f'(z)$:
#   sigmoid's are at most $\tfrac14$, so a sigmoid stack loses its gradient
#   geometrically even unsaturated; tanh (slope 1 near 0) keeps it at a good
#   initialisation but saturates for large $z$. ReLU does not saturate, but
#   a unit with $z \le 0$ on all data is dead for good. Leaky ReLU and
#   maxout have no zero slope.
#
# The next notebook shows how to add an operation like "softmax plus
# cross-entropy", with its hand-written backward rule, to the engine itself
# as a custom `Function`.
