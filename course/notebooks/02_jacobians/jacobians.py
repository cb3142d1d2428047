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
# # 02 · Jacobians and shapes
#
# Notebook 01 was about functions with one output: a loss $L(\theta)$ and its
# gradient. A network, however, is built from pieces that turn vectors into
# vectors and matrices into matrices: a linear layer maps a batch of inputs to
# a batch of outputs, an activation function acts on every entry, softmax
# turns scores into probabilities. The derivative of such a piece is not a
# number and not a gradient but a whole table of partial derivatives, the
# **Jacobian**. And because every piece has its own shapes, most bugs in
# hand-written derivatives are shape bugs: a missing transpose, a row where a
# column was meant, an axis in the wrong place.
#
# This notebook is about getting those shapes right:
#
# 1. the Jacobian of $f:\mathbb{R}^n\to\mathbb{R}^m$ is an $m\times n$ matrix,
#    and the two conventions (layouts) for writing it;
# 2. a scalar output gives a *row*, $\partial L/\partial y$, while optimisers
#    use the *column* $\nabla_y L$; the chain rule multiplies Jacobians;
# 3. Jacobians of the building blocks: a linear map (with respect to the
#    input *and* the matrix), element-wise functions, softmax;
# 4. the derivative of a matrix with respect to a matrix, $K = R^\top R$,
#    which is a 4-D array;
# 5. why no framework ever builds a Jacobian (for a single linear layer it
#    would fill hundreds of gigabytes), and how to predict the shape of every
#    derivative you meet.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are seven exercises (13 points). In each one, replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The visible tests use the numbers from the text; when the
# notebook is graded, hidden tests run your function on fresh random inputs
# and compare it with the reference engine `autodiff_ref` (imported as `ad`)
# and with finite differences. A failing test tells you in words what is
# wrong (wrong shape, transposed, off by a factor of 2, ...). Every other cell
# runs without your code. The exercises that ask for a Jacobian "from a
# formula" are graded with tight tolerances, so a finite-difference answer
# will not pass there.

# %%
# %matplotlib inline
import time

import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import autodiff_ref as ad
from autodiff_ref import grading

# %% [markdown]
# ## 1. The Jacobian matrix
#
# Let $f:\mathbb{R}^n \to \mathbb{R}^m$ take a column vector
# $x = (x_1, \dots, x_n)^\top$ to a column vector
# $f(x) = (f_1(x), \dots, f_m(x))^\top$. Each output $f_i$ is a scalar
# function of $n$ variables, so it has $n$ partial derivatives; all together
# there are $m \cdot n$ of them. The **Jacobian** arranges them in an
# $m \times n$ matrix, one row per output and one column per input:
#
# $$
# J = \frac{\partial f}{\partial x} =
# \begin{bmatrix}
# \dfrac{\partial f_1}{\partial x_1} & \cdots & \dfrac{\partial f_1}{\partial x_n}\\
# \vdots & \ddots & \vdots\\
# \dfrac{\partial f_m}{\partial x_1} & \cdots & \dfrac{\partial f_m}{\partial x_n}
# \end{bmatrix} \in \mathbb{R}^{m\times n},
# \qquad J[i, j] = \frac{\partial f_i}{\partial x_j}.
# $$
#
# Read it two ways. **Row $i$** is the derivative of the single output $f_i$
# with respect to all inputs. **Column $j$** says how every output responds
# when only $x_j$ moves. The Jacobian plays the role $f'(x)$ played in
# notebook 01, the best linear approximation near $x$:
#
# $$
# f(x + h) \;\approx\; f(x) + J\,h, \qquad
# \underbrace{h}_{n\times 1} \mapsto \underbrace{J h}_{m \times 1}.
# $$
#
# The shapes already tell you the layout: $J$ must eat an $n$-vector (a
# change of the input) and produce an $m$-vector (a change of the output), so
# it is $m \times n$.
#
# **Worked example.** $f(x_1, x_2) = \big(x_1 x_2,\; x_1 + x_2^2,\; \sin x_1\big)$
# maps $\mathbb{R}^2 \to \mathbb{R}^3$, so its Jacobian is $3 \times 2$:
#
# $$
# J(x) = \begin{bmatrix} x_2 & x_1 \\ 1 & 2x_2 \\ \cos x_1 & 0 \end{bmatrix},
# \qquad
# f(2, 3) = \begin{bmatrix} 6 \\ 11 \\ 0.909297 \end{bmatrix},
# \qquad
# J(2, 3) = \begin{bmatrix} 3 & 2 \\ 1 & 6 \\ -0.416147 & 0 \end{bmatrix}.
# $$
#
# With the small step $h = (0.01, -0.02)$ the linear approximation predicts
# $f(2,3) + Jh = (5.99,\ 10.89,\ 0.905136)$, and the true value is
# $f(2.01, 2.98) = (5.9898,\ 10.8904,\ 0.905091)$: the error,
# $(-2\times10^{-4},\ 4\times10^{-4},\ -4.5\times10^{-5})$, is of order
# $\|h\|^2$, just as in one variable.
#
# The reference engine computes Jacobians with `ad.functional.jacobian`
# (like `torch.autograd.functional.jacobian`): the next cell checks the
# numbers above and draws $J$ as a heat-map, the picture we will use for
# every Jacobian in this notebook.

# %%
def f_example(x):
    """The worked example R^2 -> R^3, written for NumPy arrays."""
    return np.array([x[0] * x[1], x[0] + x[1] ** 2, np.sin(x[0])])


def f_example_ad(x):
    """The same function for autodiff_ref tensors (output k is placed with a basis vector)."""
    e = np.eye(3)
    return x[0] * x[1] * e[0] + (x[0] + x[1] ** 2) * e[1] + ad.sin(x[0]) * e[2]


x0 = np.array([2.0, 3.0])
J0 = ad.functional.jacobian(f_example_ad, ad.tensor(x0)).numpy()
J0_by_hand = np.array([[3.0, 2.0], [1.0, 6.0], [np.cos(2.0), 0.0]])
assert J0.shape == (3, 2) and np.allclose(J0, J0_by_hand)
print("f(2, 3) =", f_example(x0))
print("J(2, 3) =\n", J0)

h = np.array([0.01, -0.02])
print("f(x + h)     =", f_example(x0 + h))
print("f(x) + J h   =", f_example(x0) + J0 @ h)
print("error        =", f_example(x0 + h) - f_example(x0) - J0 @ h)

fig, ax = plt.subplots(figsize=(3.2, 3.6))
ax.imshow(J0, cmap="RdBu_r", vmin=-6, vmax=6)
for (i, j), v in np.ndenumerate(J0):
    ax.text(j, i, f"{v:.3g}", ha="center", va="center", color="w" if abs(v) > 4 else "k")
ax.set_xticks([0, 1], [r"$x_1$", r"$x_2$"])
ax.set_yticks([0, 1, 2], [r"$f_1$", r"$f_2$", r"$f_3$"])
ax.set_title("J(2, 3): 3 outputs x 2 inputs")
plt.show()

# %% [markdown]
# ### Two layouts
#
# The convention above, where the index of the *output* (the numerator
# $\partial f_i$) runs down the rows, is called the **numerator layout**.
# Some books use the **denominator layout** instead: the same numbers
# transposed, an $n \times m$ matrix whose rows follow the input (the
# denominator $\partial x_j$). Neither is wrong, but mixing them is the
# classic source of a missing or extra transpose, so always check which one a
# formula uses. In this course:
#
# * a Jacobian is always in **numerator layout**, $J[i, j] = \partial f_i /
#   \partial x_j$. For arrays of any shape, `autodiff_ref` (like PyTorch)
#   generalises it as *output shape followed by input shape*: the Jacobian of
#   an output of shape $(2, 3)$ with respect to an input of shape $(4, 5)$ has
#   shape $(2, 3, 4, 5)$;
# * a gradient of a scalar loss is stored in the **shape of the variable**
#   (`x.grad` has the shape of `x`), as the next section explains.

# %% [markdown]
# ## 2. One output: a row, and the gradient as a column
#
# For a scalar function $L:\mathbb{R}^m \to \mathbb{R}$ we have $m$ inputs and
# one output, so the Jacobian is $1 \times m$: a **row vector**,
#
# $$
# \frac{\partial L}{\partial y} = \begin{bmatrix}
# \dfrac{\partial L}{\partial y_1} & \cdots & \dfrac{\partial L}{\partial y_m}
# \end{bmatrix} \in \mathbb{R}^{1 \times m}.
# $$
#
# The **gradient** of notebook 01 holds the same numbers as a column, the
# shape of $y$ itself:
#
# $$
# \nabla_y L = \left(\frac{\partial L}{\partial y}\right)^{\!\top} \in \mathbb{R}^{m \times 1}.
# $$
#
# | symbol | what it is | shape | who uses it |
# |---|---|---|---|
# | $\partial L / \partial y$ | the Jacobian of a scalar (numerator layout) | row, $1\times m$ | the chain rule: it multiplies Jacobians from the left |
# | $\nabla_y L$ | the gradient | column, $m \times 1$ (the shape of $y$) | optimisers: $y \leftarrow y - \eta\,\nabla_y L$ needs the shape of $y$ |
#
# **The chain rule multiplies Jacobians.** If $y = f(x)$ with
# $x \in \mathbb{R}^n$, $y \in \mathbb{R}^m$, and $L = L(y)$, then
#
# $$
# \underbrace{\frac{\partial L}{\partial x}}_{1\times n}
# = \underbrace{\frac{\partial L}{\partial y}}_{1 \times m}\;
#   \underbrace{\frac{\partial y}{\partial x}}_{m \times n},
# \qquad\text{or, with columns,}\qquad
# \underbrace{\nabla_x L}_{n\times 1}
# = \underbrace{\left(\frac{\partial y}{\partial x}\right)^{\!\top}}_{n\times m}
#   \underbrace{\nabla_y L}_{m\times 1}.
# $$
#
# Both say the same thing; the shapes fit only in this order. A row vector
# times a Jacobian is a **vector–Jacobian product** (VJP), and it is exactly
# what a backward pass computes, one layer at a time (notebooks 03 and 04).
#
# **Worked example.** Take the $f$ of section 1 and $L(y) = \tfrac12\|y\|^2$,
# so $\partial L / \partial y = y^\top = (6,\ 11,\ 0.909297)$ at $x = (2, 3)$.
# Then
#
# $$
# \frac{\partial L}{\partial x} = \begin{bmatrix} 6 & 11 & 0.909297 \end{bmatrix}
# \begin{bmatrix} 3 & 2 \\ 1 & 6 \\ -0.416147 & 0 \end{bmatrix}
# = \begin{bmatrix} 28.621599 & 78 \end{bmatrix}.
# $$
#
# The reference engine stores it as `x.grad`, in the shape of `x` (a 1-D NumPy
# array has no "row" or "column": it is simply the shape $(2,)$ of $x$).

# %%
x = ad.tensor(x0, requires_grad=True)
y = f_example_ad(x)
L = 0.5 * (y * y).sum()
L.backward()
row = f_example(x0) @ J0  # dL/dy (a row) times the Jacobian
print("dL/dy . J     =", row)
print("x.grad        =", x.grad.numpy(), " shape", x.grad.shape)
assert np.allclose(row, [28.621599, 78.0]) and np.allclose(x.grad.numpy(), row)

# %% [markdown]
# ## 3. A Jacobian from finite differences
#
# Column $j$ of the Jacobian is the derivative of the whole output vector
# along the coordinate $x_j$. The central difference of notebook 01 gives it
# in one go, with $e_j$ the $j$-th unit vector:
#
# $$
# J[:, j] \;\approx\; \frac{f(x + \varepsilon e_j) - f(x - \varepsilon e_j)}{2\varepsilon},
# \qquad j = 1, \dots, n .
# $$
#
# That is two evaluations of $f$ per **input**, whatever the number of
# outputs: a numerical Jacobian is built column by column. (Building it row
# by row is what reverse mode does, one backward pass per output; notebook 03
# compares the two.)
#
# ### Exercise 1 (2 points): the numerical Jacobian
#
# Write `numerical_jacobian(f, x, eps=1e-6)` for a function `f` that takes a
# 1-D array of length $n$ and returns a 1-D array of length $m$, or a single
# number (then $m = 1$ and the Jacobian is a row, of shape `(1, n)`;
# `np.atleast_1d` turns a number into an array of shape `(1,)`). Fill one
# column per input. Do not change the caller's `x`. Write the loop yourself:
# the answer may not call `ad.numerical_jacobian`.

# %% solution="numerical_jacobian"
def numerical_jacobian(f, x, eps=1e-6):
    """Central-difference Jacobian of f at x, in numerator layout.

    f: maps a 1-D float array of length n to a 1-D array of length m (or to a
    single number, then m = 1); x: 1-D array of length n; eps: the step.
    Returns an ndarray of shape (m, n) whose column j is
    (f(x + eps e_j) - f(x - eps e_j)) / (2 eps). x is left unchanged.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for j in range(x.size):
        step = np.zeros_like(x)
        step[j] = eps
        columns.append(np.atleast_1d(f(x + step) - f(x - step)) / (2 * eps))
    return np.stack(columns, axis=1)
    ### END SOLUTION


# %% test="test_numerical_jacobian" points=2
# the worked example: f(x1, x2) = (x1 x2, x1 + x2^2, sin x1) at (2, 3), a 3 x 2 Jacobian
x = np.array([2.0, 3.0])
grading.assert_close(numerical_jacobian(f_example, x),
                     np.array([[3.0, 2.0], [1.0, 6.0], [np.cos(2.0), 0.0]]),
                     name="numerical_jacobian(f_example, [2.0, 3.0]) (expected shape (3, 2): "
                          "one row per output, one column per input)", rtol=1e-6, atol=1e-7)
if not np.array_equal(x, [2.0, 3.0]):
    raise grading.GradingError(f"numerical_jacobian changed its argument x to {x}: nudge a "
                               "copy (x + step), not x itself.")
# a scalar function: L = 0.5 |f(x)|^2 has a 1 x 2 Jacobian, the row (28.621599, 78)
grading.assert_close(numerical_jacobian(lambda t: 0.5 * np.sum(f_example(t) ** 2), x),
                     np.array([[28.62159875, 78.0]]),
                     name="numerical_jacobian(0.5 * |f_example|^2, [2.0, 3.0]) (one output: "
                          "a row of shape (1, 2))", rtol=1e-6, atol=1e-7)
# element-wise cube with a big step: the central difference is exactly 3 x^2 + eps^2
x = np.array([1.0, -2.0, 0.5])
grading.assert_close(numerical_jacobian(lambda t: t**3, x, eps=0.1),
                     np.diag(3 * x**2 + 0.01),
                     name="numerical_jacobian(x**3, [1.0, -2.0, 0.5], eps=0.1) (central "
                          "differences: (f(x + eps e_j) - f(x - eps e_j)) / (2 eps))",
                     rtol=1e-9, atol=1e-9)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(2):
    _m, _n = (int(s) for s in _rng.choice(np.arange(1, 7), 2, replace=False))
    # an affine map A x + b: the Jacobian is A (and central differences are exact up to round-off)
    _A, _b = _rng.standard_normal((_m, _n)), _rng.standard_normal(_m)
    _x = _rng.uniform(-2, 2, _n)
    _before = _x.copy()
    grading.assert_close(numerical_jacobian(lambda t: _A @ t + _b, _x), _A,
                         name=f"numerical_jacobian(A x + b) with A of shape {(_m, _n)}",
                         rtol=1e-6, atol=1e-7)
    if not np.array_equal(_x, _before):
        raise grading.GradingError("numerical_jacobian changed its argument x in place.")
    # a nonlinear map against the reference engine: sin(A x) * (B x)
    _B = _rng.standard_normal((_m, _n))
    _ref = ad.functional.jacobian(lambda t: ad.sin(_A @ t) * (_B @ t), ad.tensor(_x)).numpy()
    grading.assert_close(numerical_jacobian(lambda t: np.sin(_A @ t) * (_B @ t), _x), _ref,
                         name=f"numerical_jacobian(sin(A x) * (B x)), A and B of shape "
                              f"{(_m, _n)}, vs autodiff_ref", rtol=1e-5, atol=1e-6)
    # a random eps: still central differences of a cubic, exactly 3 x^2 + eps^2 on the diagonal
    _eps = float(10 ** _rng.uniform(-2, -0.5))
    grading.assert_close(numerical_jacobian(lambda t: t**3, _x, eps=_eps),
                         np.diag(3 * _x**2 + _eps**2),
                         name=f"numerical_jacobian(x**3, x of length {_n}, eps={_eps:.3g})",
                         rtol=1e-8, atol=1e-8)
# a scalar output: a row
_n = int(_rng.integers(2, 7))
_x = _rng.uniform(-2, 2, _n)
grading.assert_close(numerical_jacobian(lambda t: np.sum(np.exp(t) * t), _x),
                     (np.exp(_x) * (1 + _x))[None, :],
                     name=f"numerical_jacobian(sum(exp(x) x)) for x of length {_n} (one "
                          f"output: shape (1, {_n}))", rtol=1e-6, atol=1e-7)
### END HIDDEN TESTS

# %% [markdown]
# With your function you can now estimate the Jacobian of anything you can
# evaluate. The next cell compares it with the reference engine on a
# function of 4 inputs and 2 outputs.

# %%
def g_np(t):
    return np.array([np.sum(t**2), t[0] * t[3] - np.exp(t[1])])


def g_ad(t):
    first, second = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    return (t * t).sum() * first + (t[0] * t[3] - ad.exp(t[1])) * second


t0 = np.array([0.5, -1.0, 2.0, 1.5])
try:
    J_fd = numerical_jacobian(g_np, t0)
    J_ad = ad.functional.jacobian(g_ad, ad.tensor(t0)).numpy()
    print("finite differences:\n", np.round(J_fd, 6))
    print("autodiff_ref:\n", J_ad)
    print("largest difference:", np.max(np.abs(J_fd - J_ad)))
except NotImplementedError:
    print("Finish Exercise 1 (numerical_jacobian) to see this comparison.")

# %% [markdown]
# ## 4. Jacobians of the building blocks
#
# ### 4.1 A linear map, with respect to its input and to its matrix
#
# Let $f(x) = Ax$ with $A \in \mathbb{R}^{M\times N}$ and $x \in
# \mathbb{R}^N$, so $f(x) \in \mathbb{R}^M$. Write one output at a time:
#
# $$
# f_i = \sum_{j=1}^{N} A_{ij}\,x_j
# \quad\Longrightarrow\quad
# \frac{\partial f_i}{\partial x_j} = A_{ij}
# \quad\Longrightarrow\quad
# \frac{\partial f}{\partial x} = A \in \mathbb{R}^{M \times N}.
# $$
#
# The Jacobian of a linear map is the matrix itself, which is why $J$ is
# called the best *linear* approximation.
#
# In a network $A$ is a weight matrix, and what we need for training is the
# derivative with respect to $A$. Now the input has $M \cdot N$ entries and
# the output $M$, so $\partial f / \partial A$ holds $M \times (M \times N)$
# numbers: for each output $i$, one derivative per entry $A_{kq}$. From the
# same sum,
#
# $$
# \frac{\partial f_i}{\partial A_{kq}} =
# \begin{cases} x_q & \text{if } k = i,\\ 0 & \text{if } k \neq i,\end{cases}
# \qquad\text{in short}\qquad
# \frac{\partial f_i}{\partial A_{iq}} = x_q .
# $$
#
# Output $f_i$ depends only on row $i$ of $A$, through $x$: the derivative of
# $f_i$ with respect to the matrix $A$ is a matrix of the shape of $A$ that is
# zero except for row $i$, which holds $x^\top$. Stacking these for
# $i = 1, \dots, M$ gives a 3-D array of shape $(M, M, N)$, index
# $[i, k, q]$: output first, then the input's two indices.
#
# **Worked example.** $A = \begin{bmatrix}1 & 2 & 3\\ 4 & 5 & 6\end{bmatrix}$,
# $x = (1, 0, -1)$, so $f = Ax = (-2, -2)$. Flatten $A$ row by row into
# $(A_{11}, A_{12}, A_{13}, A_{21}, A_{22}, A_{23})$; then
# $\partial f/\partial A$ is the $2 \times 6$ matrix
#
# $$
# \frac{\partial f}{\partial A} = \begin{bmatrix}
# 1 & 0 & -1 & 0 & 0 & 0\\
# 0 & 0 & 0 & 1 & 0 & -1
# \end{bmatrix}:
# $$
#
# $x^\top$ in the block of row 1 of $A$ for $f_1$, in the block of row 2 for
# $f_2$. Only $M\cdot N$ of the $M \cdot M \cdot N$ entries can be nonzero:
# a fraction $1/M$. Keep that in mind for section 7.
#
# ### Exercise 2 (2 points): Jacobians of $f(x) = Ax$
#
# Write `linear_map_jacobians(A, x)` returning both Jacobians from the
# formulas above (no finite differences: the test compares to 12 digits).

# %% solution="linear_map_jacobians" exact=true
def linear_map_jacobians(A, x):
    """The Jacobians of f(x) = A x with respect to x and to A.

    A: ndarray of shape (M, N); x: ndarray of shape (N,).
    Returns a tuple (J_x, J_A):
      J_x of shape (M, N), J_x[i, j] = d f_i / d x_j;
      J_A of shape (M, M, N), J_A[i, k, q] = d f_i / d A[k, q].
    """
    ### BEGIN SOLUTION
    A = np.asarray(A, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    M, N = A.shape
    J_A = np.zeros((M, M, N))
    for i in range(M):
        J_A[i, i, :] = x  # f_i depends only on row i of A, with slope x
    return A.copy(), J_A
    ### END SOLUTION


# %% test="test_linear_map_jacobians" points=2
A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
x = np.array([1.0, 0.0, -1.0])
result = linear_map_jacobians(A.copy(), x.copy())
if not isinstance(result, tuple) or len(result) != 2:
    raise grading.GradingError("linear_map_jacobians should return a tuple (J_x, J_A) of two "
                               f"arrays, got {type(result).__name__}.")
J_x, J_A = result
grading.assert_close(J_x, A, name="J_x of linear_map_jacobians(A, x) for the worked example "
                                  "(the Jacobian of A x with respect to x, shape (2, 3))",
                     rtol=1e-12, atol=0)
grading.assert_close(J_A, np.array([[[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]],
                                    [[0.0, 0.0, 0.0], [1.0, 0.0, -1.0]]]),
                     name="J_A of linear_map_jacobians(A, x) for the worked example (shape "
                          "(2, 2, 3): J_A[i, k, q] = d f_i / d A[k, q], x in row k = i)",
                     rtol=1e-12, atol=0)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _M, _N = (int(s) for s in _rng.choice(np.arange(1, 7), 2, replace=False))
    _A, _x = _rng.standard_normal((_M, _N)), _rng.standard_normal(_N)
    _res = linear_map_jacobians(_A.copy(), _x.copy())
    if not isinstance(_res, tuple) or len(_res) != 2:
        raise grading.GradingError("linear_map_jacobians should return a tuple (J_x, J_A).")
    _Jx, _JA = _res
    _ref_A, _ref_x = ad.functional.jacobian(lambda a, v: a @ v, (ad.tensor(_A), ad.tensor(_x)))
    grading.assert_close(_Jx, _ref_x.numpy(), rtol=1e-12, atol=1e-14,
                         name=f"J_x for random A of shape {(_M, _N)} vs autodiff_ref")
    grading.assert_close(_JA, _ref_A.numpy(), rtol=1e-12, atol=1e-14,
                         name=f"J_A for random A of shape {(_M, _N)} vs autodiff_ref (shape "
                              f"{(_M, _M, _N)}, index [i, k, q])")
    # J_A contracted with a change H of A gives the change of f: H x
    _H = _rng.standard_normal((_M, _N))
    grading.assert_close(np.tensordot(np.asarray(_JA, dtype=float), _H, axes=2), _H @ _x,
                         rtol=1e-10, atol=1e-12,
                         name=f"sum_kq J_A[:, k, q] H[k, q] for A of shape {(_M, _N)} "
                              "(should equal H x, the change of A x when A changes by H)")
### END HIDDEN TESTS

# %% [markdown]
# ### 4.2 Element-wise functions
#
# An activation such as $\tanh$ or the sigmoid acts on each entry on its own:
# $f(x)_i = g(x_i)$ for a scalar function $g$. Output $i$ depends only on
# input $i$, so every off-diagonal partial derivative is zero:
#
# $$
# \frac{\partial f_i}{\partial x_j} =
# \begin{cases} g'(x_i) & i = j\\ 0 & i \neq j \end{cases}
# \qquad\Longrightarrow\qquad
# \frac{\partial f}{\partial x} = \operatorname{diag}\big(g'(x)\big).
# $$
#
# A full $n \times n$ matrix for $n$ useful numbers. Multiplying by a diagonal
# matrix is the same as multiplying entry by entry, so in the chain rule
# $\frac{\partial L}{\partial y}\operatorname{diag}(g'(x))$ is simply
# $\frac{\partial L}{\partial y} \odot g'(x)$: that is how every framework
# implements it.
#
# **Worked example.** The sigmoid $\sigma(t) = 1/(1 + e^{-t})$ has
# $\sigma'(t) = \sigma(t)\,(1 - \sigma(t))$. At $x = (0, 1, -2)$:
# $\sigma(x) = (0.5,\ 0.731059,\ 0.119203)$ and the Jacobian is
# $\operatorname{diag}(0.25,\ 0.196612,\ 0.104994)$.
#
# ### Exercise 3 (1 point): the Jacobian of an element-wise function
#
# Write `elementwise_jacobian(dg, x)`, given the derivative `dg` of the scalar
# function (a NumPy function that works entry by entry, like `np.cos`).

# %% solution="elementwise_jacobian" exact=true
def elementwise_jacobian(dg, x):
    """Jacobian of f(x) = g(x) applied entry by entry, given g's derivative dg.

    dg: a function that maps an array to g' of each entry (same shape);
    x: 1-D array of length n.
    Returns an ndarray of shape (n, n): diag(g'(x)).
    """
    ### BEGIN SOLUTION
    return np.diag(dg(np.asarray(x, dtype=np.float64)))
    ### END SOLUTION


# %% test="test_elementwise_jacobian" points=1
def sigmoid_derivative(t):
    s = 1 / (1 + np.exp(-t))
    return s * (1 - s)


grading.assert_close(elementwise_jacobian(sigmoid_derivative, np.array([0.0, 1.0, -2.0])),
                     np.diag([0.25, 0.19661193324148185, 0.10499358540350652]),
                     name="elementwise_jacobian(sigmoid', [0.0, 1.0, -2.0]) (shape (3, 3), "
                          "zero off the diagonal)", rtol=1e-12, atol=0)
grading.assert_close(elementwise_jacobian(np.cos, np.array([0.0, np.pi])),
                     np.array([[1.0, 0.0], [0.0, -1.0]]),
                     name="elementwise_jacobian(np.cos, [0.0, pi]) (the Jacobian of sin)",
                     rtol=1e-12, atol=1e-15)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ad_fn, _dg, _label in [(ad.tanh, lambda t: 1 - np.tanh(t) ** 2, "tanh"),
                            (ad.exp, np.exp, "exp"),
                            (ad.sin, np.cos, "sin")]:
    _n = int(_rng.integers(2, 9))
    _x = _rng.uniform(-2, 2, _n)
    _before = _x.copy()
    _ref = ad.functional.jacobian(_ad_fn, ad.tensor(_x)).numpy()
    grading.assert_close(elementwise_jacobian(_dg, _x), _ref, rtol=1e-10, atol=1e-13,
                         name=f"elementwise_jacobian({_label}', x) for x of length {_n} vs "
                              "autodiff_ref")
    if not np.array_equal(_x, _before):
        raise grading.GradingError("elementwise_jacobian changed its argument x in place.")
# a single entry: a 1 x 1 matrix
_x = _rng.uniform(-2, 2, 1)
grading.assert_close(elementwise_jacobian(np.exp, _x), np.exp(_x).reshape(1, 1), rtol=1e-12,
                     atol=0, name="elementwise_jacobian(np.exp, x) for x of length 1 "
                                  "(shape (1, 1))")
### END HIDDEN TESTS

# %% [markdown]
# ### 4.3 Softmax: a Jacobian that is not diagonal
#
# Softmax turns a vector of scores $x \in \mathbb{R}^n$ into probabilities,
#
# $$
# s_i = \frac{e^{x_i}}{\sum_{k} e^{x_k}} .
# $$
#
# It looks element-wise but is not: every $s_i$ depends on *all* $x_j$
# through the denominator. Differentiate with the quotient rule, writing
# $Z = \sum_k e^{x_k}$ (so $\partial Z/\partial x_j = e^{x_j}$):
#
# $$
# \frac{\partial s_i}{\partial x_j}
# = \frac{\delta_{ij}\, e^{x_i}\, Z - e^{x_i}\, e^{x_j}}{Z^2}
# = s_i\,\delta_{ij} - s_i\, s_j,
# \qquad\text{so}\qquad
# \frac{\partial s}{\partial x} = \operatorname{diag}(s) - s\,s^\top ,
# $$
#
# where $\delta_{ij}$ is $1$ if $i = j$ and $0$ otherwise. Two checks that
# catch most mistakes: the matrix is **symmetric**, and every row sums to
# zero, $J\mathbf{1} = s - s\,(s^\top \mathbf 1) = s - s = 0$. The second
# says that adding the same number to every score does not change the
# probabilities.
#
# **Worked example.** $x = (1, 2, 3)$ gives $s = (0.090031,\ 0.244728,\
# 0.665241)$ and
#
# $$
# \frac{\partial s}{\partial x} = \begin{bmatrix}
#  0.081925 & -0.022033 & -0.059892\\
# -0.022033 &  0.184836 & -0.162803\\
# -0.059892 & -0.162803 &  0.222695
# \end{bmatrix}.
# $$
#
# **Computing softmax safely.** $e^{1000}$ overflows a float64 (to `inf`, and
# then $\infty/\infty$ = `nan`). Because softmax does not change when the same
# number is subtracted from every score, compute it as
# $e^{x_i - \max x} / \sum_k e^{x_k - \max x}$: the largest exponent is then
# $e^0 = 1$. So softmax of $(1000, 1001, 1002)$ is the same as softmax of
# $(1, 2, 3)$, Jacobian included.
#
# ### Exercise 4 (2 points): the softmax Jacobian

# %% solution="softmax_jacobian" exact=true
def softmax_jacobian(x):
    """Jacobian of s = softmax(x) with respect to x.

    x: 1-D array of n scores (possibly large, e.g. 1000: compute softmax
    stably by subtracting the maximum first).
    Returns an ndarray of shape (n, n): diag(s) - s s^T.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x))
    s = e / np.sum(e)
    return np.diag(s) - np.outer(s, s)
    ### END SOLUTION


# %% test="test_softmax_jacobian" points=2
J_expected = np.array([[0.08192507, -0.02203304, -0.05989202],
                       [-0.02203304, 0.18483645, -0.16280340],
                       [-0.05989202, -0.16280340, 0.22269543]])
grading.assert_close(softmax_jacobian(np.array([1.0, 2.0, 3.0])), J_expected,
                     name="softmax_jacobian([1.0, 2.0, 3.0])", rtol=1e-6, atol=1e-8)
grading.assert_close(softmax_jacobian(np.array([1000.0, 1001.0, 1002.0])), J_expected,
                     name="softmax_jacobian([1000.0, 1001.0, 1002.0]) (subtract the maximum "
                          "before exp)", rtol=1e-6, atol=1e-8)
grading.assert_close(softmax_jacobian(np.array([-1000.0, -999.0, -998.0])), J_expected,
                     name="softmax_jacobian([-1000.0, -999.0, -998.0]) (subtract the maximum "
                          "before exp: exp(-1000) underflows to 0)", rtol=1e-6, atol=1e-8)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _softmax_jac(v):
    _e = np.exp(v - v.max())
    _s = _e / _e.sum()
    return np.diag(_s) - np.outer(_s, _s)


for _ in range(3):
    _n = int(_rng.integers(2, 9))
    _x = _rng.uniform(-3, 3, _n)
    _before = _x.copy()
    _got = softmax_jacobian(_x)
    grading.assert_close(_got, _softmax_jac(_x), rtol=1e-10, atol=1e-13,
                         name=f"softmax_jacobian(x) for random x of length {_n}")
    if not np.array_equal(_x, _before):
        raise grading.GradingError("softmax_jacobian changed its argument x in place.")
    grading.assert_close(_got, ad.functional.jacobian(ad.softmax, ad.tensor(_x)).numpy(),
                         rtol=1e-9, atol=1e-12,
                         name=f"softmax_jacobian(x) for x of length {_n} vs autodiff_ref")
    # shifting every score by the same large number changes nothing
    _shift = float(_rng.uniform(500, 1000) * _rng.choice([-1, 1]))
    grading.assert_close(softmax_jacobian(_x + _shift), _softmax_jac(_x), rtol=1e-8,
                         atol=1e-12, name=f"softmax_jacobian(x + {_shift:.1f}) for x of "
                                          f"length {_n} (must equal softmax_jacobian(x))")
### END HIDDEN TESTS

# %% [markdown]
# The two checks from the text, on your function: symmetry, and rows that
# sum to zero (a change $h = c\,\mathbf 1$ of all scores by the same amount
# changes nothing, $Jh = 0$).

# %%
try:
    Js = softmax_jacobian(np.array([1.0, 2.0, 3.0]))
    print("symmetric:", np.allclose(Js, Js.T))
    print("row sums :", Js.sum(axis=1))
    print("J @ (0.5, 0.5, 0.5) =", Js @ np.full(3, 0.5))
except NotImplementedError:
    print("Finish Exercise 4 (softmax_jacobian) to run these checks.")

# %% [markdown]
# ## 5. A matrix function of a matrix: $K = R^\top R$
#
# Now both the input and the output are matrices. Let $R \in
# \mathbb{R}^{M\times N}$ (think of its $N$ columns $r_1, \dots, r_N$ as
# vectors of length $M$) and $K = R^\top R \in \mathbb{R}^{N \times N}$, the
# matrix of all dot products between columns (a *Gram matrix*):
#
# $$
# K_{pq} = r_p^\top r_q = \sum_{m=1}^{M} R_{mp} R_{mq}.
# $$
#
# The output has $N \times N$ entries and the input $M \times N$, so the
# derivative has $N \cdot N \cdot M \cdot N$ numbers: a **4-D array** of shape
# $(N, N, M, N)$, index $[p, q, i, j]$ (output indices first, as always). To
# find $\partial K_{pq}/\partial R_{ij}$, differentiate each product in the sum
# with the product rule. $R_{mp}$ depends on $R_{ij}$ only if $m = i$ and
# $p = j$; likewise $R_{mq}$. So only the term $m = i$ survives, and
#
# $$
# \frac{\partial K_{pq}}{\partial R_{ij}}
# = \delta_{jp}\, R_{iq} + \delta_{jq}\, R_{ip}
# = \begin{cases}
# R_{iq} & \text{if } j = p \neq q,\\
# R_{ip} & \text{if } j = q \neq p,\\
# 2R_{ip} & \text{if } j = p = q,\\
# 0 & \text{otherwise.}
# \end{cases}
# $$
#
# The diagonal case is where both factors are the same entry:
# $K_{pp} = \sum_m R_{mp}^2$, whose derivative is $2R_{ip}$.
#
# **Worked example.** $R = \begin{bmatrix}1 & 2\\ 3 & 4\\ 5 & 6\end{bmatrix}$
# ($M = 3$, $N = 2$) gives $K = \begin{bmatrix}35 & 44\\ 44 & 56\end{bmatrix}$.
# Each slice $\partial K_{pq}/\partial R$ has the shape of $R$:
#
# $$
# \frac{\partial K_{11}}{\partial R} = \begin{bmatrix}2 & 0\\ 6 & 0\\ 10 & 0\end{bmatrix},
# \quad
# \frac{\partial K_{12}}{\partial R} = \frac{\partial K_{21}}{\partial R}
# = \begin{bmatrix}2 & 1\\ 4 & 3\\ 6 & 5\end{bmatrix},
# \quad
# \frac{\partial K_{22}}{\partial R} = \begin{bmatrix}0 & 4\\ 0 & 8\\ 0 & 12\end{bmatrix}.
# $$
#
# For $K_{12} = r_1^\top r_2$, column 1 of the slice holds $r_2 = (2, 4, 6)$
# and column 2 holds $r_1 = (1, 3, 5)$. A good sanity check is the linear
# approximation: changing $R$ by a small $H$ changes $K$ by
# $\sum_{ij} \frac{\partial K}{\partial R_{ij}} H_{ij} = R^\top H + H^\top R$
# (expand $(R + H)^\top (R + H)$ and drop $H^\top H$).
#
# ### Exercise 5 (3 points): the 4-D derivative of $K = R^\top R$
#
# Write `gram_jacobian(R)` from the formula. Two loops over $p$ and $q$ that
# fill columns of the slice `D[p, q]` work well; note what must happen when
# $p = q$.

# %% solution="gram_jacobian" exact=true
def gram_jacobian(R):
    """Derivative of K = R^T R with respect to R.

    R: ndarray of shape (M, N).
    Returns an ndarray D of shape (N, N, M, N) with
    D[p, q, i, j] = d K[p, q] / d R[i, j].
    """
    ### BEGIN SOLUTION
    R = np.asarray(R, dtype=np.float64)
    M, N = R.shape
    D = np.zeros((N, N, M, N))
    for p in range(N):
        for q in range(N):
            D[p, q, :, p] += R[:, q]  # K_pq = r_p . r_q: the factor r_p, slope r_q
            D[p, q, :, q] += R[:, p]  # the factor r_q, slope r_p (adds up to 2 r_p if p = q)
    return D
    ### END SOLUTION


# %% test="test_gram_jacobian" points=3
def _check_gram(got, R, label):
    M, N = R.shape
    got_shape = np.shape(got)
    if got_shape == (M, N, N, N) and M != N:
        raise grading.GradingError(
            f"gram_jacobian({label}) has shape {got_shape}, the input's indices first; the "
            f"order is [p, q, i, j] (output first, numerator layout): shape {(N, N, M, N)}.")
    expected = np.zeros((N, N, M, N))
    for p in range(N):
        for q in range(N):
            expected[p, q, :, p] += R[:, q]
            expected[p, q, :, q] += R[:, p]
    if got_shape == expected.shape:
        got = np.asarray(got, dtype=float)
        for p in range(N):
            grading.assert_close(got[p, p], expected[p, p], rtol=1e-12, atol=1e-14,
                                 name=f"gram_jacobian({label})[{p}, {p}] (d K[{p},{p}] / dR; "
                                      f"K[{p},{p}] = sum_m R[m,{p}]^2, so column {p} is "
                                      f"2 R[:, {p}])")
        for p in range(N):
            for q in range(N):
                if p != q:
                    grading.assert_close(got[p, q], expected[p, q], rtol=1e-12, atol=1e-14,
                                         name=f"gram_jacobian({label})[{p}, {q}] (d K[{p},{q}]"
                                              f" / dR: column {p} is R[:, {q}], column {q} "
                                              f"is R[:, {p}])")
    grading.assert_close(got, expected, rtol=1e-12, atol=1e-14,
                         name=f"gram_jacobian({label}) (shape {(N, N, M, N)})")


R = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
_check_gram(gram_jacobian(R.copy()), R, "R = [[1, 2], [3, 4], [5, 6]]")
D = gram_jacobian(R.copy())
grading.assert_close(D[0, 1], np.array([[2.0, 1.0], [4.0, 3.0], [6.0, 5.0]]),
                     name="gram_jacobian(R)[0, 1] for the worked example", rtol=1e-12)
grading.assert_close(D[1, 1], np.array([[0.0, 4.0], [0.0, 8.0], [0.0, 12.0]]),
                     name="gram_jacobian(R)[1, 1] for the worked example", rtol=1e-12)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _M, _N = (int(s) for s in _rng.choice(np.arange(1, 6), 2, replace=False))
    _R = _rng.standard_normal((_M, _N))
    _before = _R.copy()
    _got = gram_jacobian(_R)
    if not np.array_equal(_R, _before):
        raise grading.GradingError("gram_jacobian changed its argument R in place.")
    _check_gram(_got, _R, f"R of shape {(_M, _N)}")
    _ref = ad.functional.jacobian(lambda r: r.T @ r, ad.tensor(_R)).numpy()
    grading.assert_close(_got, _ref, rtol=1e-12, atol=1e-14,
                         name=f"gram_jacobian(R) for random R of shape {(_M, _N)} vs "
                              "autodiff_ref")
    # first-order change: sum_ij D[:, :, i, j] H[i, j] = R^T H + H^T R
    _H = _rng.standard_normal((_M, _N))
    grading.assert_close(np.tensordot(np.asarray(_got, dtype=float), _H, axes=2),
                         _R.T @ _H + _H.T @ _R, rtol=1e-10, atol=1e-12,
                         name=f"the change of K predicted by gram_jacobian(R) for a change H "
                              f"of R (shape {(_M, _N)}): should be R^T H + H^T R")
### END HIDDEN TESTS

# %% [markdown]
# ## 6. A gallery of Jacobians
#
# Pick a function below and look at its Jacobian as a heat-map (red
# positive, blue negative, white zero), computed by `ad.functional.jacobian`
# at a random point (the slider picks another one). Arrays with more than one
# axis are flattened, row by row, so that a Jacobian of shape
# $(2, 2, 3, 2)$ is drawn as a $4 \times 6$ matrix. The toggle switches
# between the two layouts of section 1: numerator ($m \times n$, one row per
# output; for a scalar function the row $\partial L/\partial x$) and
# denominator (the transpose, $n \times m$; for a scalar function the column
# $\nabla_x L$). Things to look for:
#
# * the linear map: $J$ *is* $A$, whatever the point; the derivative with
#   respect to the matrix is block-shaped and mostly zero;
# * $\tanh$: diagonal; $\sin(Ax)$: the rows of $A$, each scaled by
#   $\cos$ of its output (the chain rule $\operatorname{diag}(\cos(Ax))\,A$);
# * softmax: full, symmetric, rows summing to zero;
# * $K = R^\top R$: the slices of section 5, mostly zeros;
# * the scalar loss: a single row, or a single column after the toggle;
# * the layer $Y = XW$: $N \cdot M$ rows and $N \cdot D$ columns, of which
#   only one block per row of $X$ is nonzero (section 7).

# %%
A_gallery = np.random.default_rng(42).standard_normal((4, 6))
W_gallery = np.random.default_rng(7).standard_normal((3, 4))

GALLERY = {  # name: (formula, Jacobian formula, shape of the input, function of a tensor)
    "linear map  f(x) = A x": (
        r"$f(x) = A\,x,\quad A \in \mathbb{R}^{4\times 6}$", r"$\partial f/\partial x = A$",
        (6,), lambda x: A_gallery @ x),
    "linear map, w.r.t. A: f(A) = A x": (
        r"$f(A) = A\,x,\quad A\in\mathbb{R}^{4\times6}$",
        r"$\partial f_i/\partial A_{iq} = x_q$, else 0", (4, 6),
        lambda a: a @ np.linspace(-1, 1, 6)),
    "element-wise  f(x) = tanh(x)": (
        r"$f(x) = \tanh(x)$ (entry by entry)", r"$\mathrm{diag}(1 - \tanh^2 x)$",
        (6,), ad.tanh),
    "f(x) = sin(A x)": (
        r"$f(x) = \sin(A\,x)$", r"$\mathrm{diag}(\cos(Ax))\,A$", (6,),
        lambda x: ad.sin(A_gallery @ x)),
    "softmax(x)": (
        r"$s = \mathrm{softmax}(x)$", r"$\mathrm{diag}(s) - s\,s^\top$", (6,), ad.softmax),
    "K = R^T R, R of shape (3, 2)": (
        r"$K = R^\top R,\quad R\in\mathbb{R}^{3\times 2}$",
        r"$\partial K_{pq}/\partial R_{ij} = \delta_{jp}R_{iq} + \delta_{jq}R_{ip}$", (3, 2),
        lambda r: r.T @ r),
    "scalar loss  L(x) = sum(x^2)/2 + sum(sin x)": (
        r"$L(x) = \frac{1}{2}\sum_i x_i^2 + \sum_i \sin x_i$",
        r"$\partial L/\partial x = (x + \cos x)^\top$", (6,),
        lambda x: 0.5 * (x * x).sum() + ad.sin(x).sum()),
    "layer  Y = X W, X: (2, 3), W: (3, 4)": (
        r"$Y = X\,W,\quad X\in\mathbb{R}^{2\times3},\ W\in\mathbb{R}^{3\times4}$",
        r"$\partial Y_{nm}/\partial X_{n'd} = \delta_{nn'}W_{dm}$", (2, 3),
        lambda x: x @ W_gallery),
}


def show_jacobian(function="linear map  f(x) = A x", layout="numerator", point=0):
    formula, jac_formula, in_shape, fn = GALLERY[function]
    x = ad.tensor(np.random.default_rng(point).uniform(-1.5, 1.5, in_shape))
    out = fn(x)
    J = ad.functional.jacobian(fn, x).numpy()
    m, n = out.size, x.size
    J2 = J.reshape(m, n)
    shown = J2 if layout == "numerator" else J2.T

    fig, (text, heat) = plt.subplots(1, 2, figsize=(11, 4.2),
                                     gridspec_kw={"width_ratios": [1, 1.2]})
    text.axis("off")
    lines = [formula, "Jacobian: " + jac_formula,
             f"input x: shape {in_shape}, n = {n} numbers",
             f"output: shape {out.shape}, m = {m} numbers",
             f"Jacobian: shape {J.shape}, drawn as {shown.shape[0]} x {shown.shape[1]}",
             f"nonzero entries: {np.count_nonzero(np.abs(J2) > 1e-12)} of {J2.size}"]
    if m == 1:
        lines.append(r"numerator: the row $\partial L/\partial x$" if layout == "numerator"
                     else r"denominator: the column $\nabla_x L$")
    for k, line in enumerate(lines):
        text.text(0, 0.92 - 0.14 * k, line, fontsize=12 if k < 2 else 10,
                  transform=text.transAxes)
    v = max(np.max(np.abs(shown)), 1e-12)
    rows, cols = shown.shape
    elongated = max(rows, cols) > 4 * min(rows, cols) and min(rows, cols) > 1
    aspect = "auto" if elongated else "equal"
    im = heat.imshow(shown, cmap="RdBu_r", vmin=-v, vmax=v, aspect=aspect)
    if shown.size <= 48:
        for (i, j), value in np.ndenumerate(shown):
            heat.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                      color="w" if abs(value) > 0.6 * v else "k")
    heat.set_xticks(range(0, cols, 1 if cols <= 12 else 4))
    heat.set_yticks(range(0, rows, 1 if rows <= 12 else 4))
    along_rows, along_cols = ("output", "input") if layout == "numerator" else ("input", "output")
    heat.set_ylabel(f"{along_rows} index (flattened)")
    heat.set_xlabel(f"{along_cols} index (flattened)")
    heat.set_title(f"{layout} layout: {rows} x {cols}")
    fig.colorbar(im, ax=heat, shrink=0.8)
    plt.show()


gallery = widgets.interactive(
    show_jacobian,
    function=widgets.Dropdown(options=list(GALLERY), description="function",
                              layout=widgets.Layout(width="420px")),
    layout=widgets.ToggleButtons(
        options=[("numerator (m x n, row gradient)", "numerator"),
                 ("denominator (n x m, column gradient)", "denominator")],
        description="layout"),
    point=widgets.IntSlider(value=0, min=0, max=9, description="point x"),
)
display(gallery)

# %% [markdown]
# ## 7. Why frameworks never build a Jacobian
#
# Take one linear layer on a batch, $Y = XW$, with $X \in \mathbb{R}^{N\times
# D}$ ($N$ examples with $D$ features each), $W \in \mathbb{R}^{D \times M}$
# and $Y \in \mathbb{R}^{N \times M}$. Its Jacobian with respect to $X$ has one
# entry per (entry of $Y$, entry of $X$) pair: shape $(N, M, N, D)$, that is
# $N M \cdot N D$ numbers. From $Y_{nm} = \sum_d X_{nd} W_{dm}$,
#
# $$
# \frac{\partial Y_{nm}}{\partial X_{n'd}} = \begin{cases} W_{dm} & n = n'\\
# 0 & n \neq n'. \end{cases}
# $$
#
# A realistic size is a batch of $N = 64$ and $D = M = 4096$ features. Then
# $Y$ and $X$ have $64 \cdot 4096 = 262{,}144$ entries each, and the Jacobian
# has $262{,}144^2 \approx 6.9 \times 10^{10}$ entries. In float32 (4 bytes
# each) that is hundreds of gigabytes, for one layer: you will compute the
# exact figure in the exercise.
#
# And almost all of it is zero (a fraction $1 - 1/N$), while the nonzero part
# is just copies of $W$. Nobody needs the Jacobian itself: the backward pass
# needs the vector–Jacobian product of section 2. With the upstream gradient
# $G = \partial L/\partial Y$ (shape $N\times M$, stored like $Y$),
#
# $$
# \frac{\partial L}{\partial X_{n'd}} = \sum_{n, m} G_{nm}
# \frac{\partial Y_{nm}}{\partial X_{n'd}} = \sum_m G_{n'm} W_{dm}
# \qquad\Longrightarrow\qquad
# \frac{\partial L}{\partial X} = G\,W^\top ,
# $$
#
# an $N \times D$ matrix: $64 \cdot 4096 \cdot 4$ bytes $= 1$ MiB, computed
# by one matrix product. Every backward rule in a framework is such a
# formula: the VJP written directly, the Jacobian never formed (notebook 05
# derives them for all the common operations).
#
# ### Exercise 6 (1 point): the memory of an explicit Jacobian
#
# Write `jacobian_memory(N, D, M, bytes_per_number=4)` for the Jacobian
# $\partial Y/\partial X$ of the layer $Y = XW$. Return the number of bytes
# (an integer) and the same in GiB, where $1\ \text{GiB} = 2^{30}$ bytes
# (not $10^9$).

# %% solution="jacobian_memory"
def jacobian_memory(N, D, M, bytes_per_number=4):
    """Memory of the explicit Jacobian dY/dX of Y = X W.

    N: batch size; D: input features (X has shape (N, D)); M: output features
    (W has shape (D, M), Y has shape (N, M)); bytes_per_number: 4 for
    float32, 8 for float64.
    Returns a tuple (n_bytes, n_gib): the size in bytes (an int) and in GiB
    (a float, 1 GiB = 2**30 bytes).
    """
    ### BEGIN SOLUTION
    n_bytes = N * M * N * D * bytes_per_number  # shape (N, M, N, D)
    return n_bytes, n_bytes / 2**30
    ### END SOLUTION


# %% test="test_jacobian_memory" points=1
def _check_memory(N, D, M, b, expected_bytes):
    label = f"jacobian_memory(N={N}, D={D}, M={M}, bytes_per_number={b})"
    result = jacobian_memory(N, D, M, b)
    if not isinstance(result, tuple) or len(result) != 2:
        raise grading.GradingError(f"{label} should return a tuple (n_bytes, n_gib), got "
                                   f"{result!r}.")
    grading.assert_close(result[0], expected_bytes, rtol=1e-12, atol=0,
                         name=f"the bytes of {label} (dY/dX has shape (N, M, N, D))")
    grading.assert_close(result[1], expected_bytes / 2**30, rtol=1e-12, atol=0,
                         name=f"the GiB of {label} (1 GiB = 2**30 bytes)")


_check_memory(64, 4096, 4096, 4, 274877906944)  # 256 GiB
_check_memory(64, 4096, 4096, 8, 549755813888)  # float64: 512 GiB
_check_memory(2, 3, 4, 4, 192)  # the layer of the gallery: 8 x 6 numbers
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(4):
    _N, _D, _M = (int(s) for s in _rng.choice(np.arange(2, 3000), 3, replace=False))
    _b = int(_rng.choice([2, 4, 8]))
    _check_memory(_N, _D, _M, _b, _N * _M * _N * _D * _b)
# the default is float32
grading.assert_close(jacobian_memory(8, 16, 32)[0], 8 * 32 * 8 * 16 * 4, rtol=1e-12, atol=0,
                     name="jacobian_memory(8, 16, 32) (the default bytes_per_number is 4)")
# the shape of the explicit Jacobian from autodiff_ref agrees with the count
_N, _D, _M = (int(s) for s in _rng.choice(np.arange(1, 5), 3, replace=False))
_J = ad.functional.jacobian(lambda x: x @ np.ones((_D, _M)), ad.tensor(np.ones((_N, _D))))
grading.assert_close(jacobian_memory(_N, _D, _M, 8)[0], _J.numpy().nbytes, rtol=1e-12,
                     atol=0, name=f"jacobian_memory({_N}, {_D}, {_M}, 8) vs the bytes of the "
                                  "Jacobian that autodiff_ref builds")
### END HIDDEN TESTS

# %% [markdown]
# The next cell prints the figure for a few layer sizes, then builds the
# explicit Jacobian of a small layer with NumPy and compares it with the VJP
# $G W^\top$: same answer, a fraction of the memory and of the time.

# %%
try:
    for N_, D_, M_ in [(64, 4096, 4096), (32, 1024, 1024), (16, 64, 64)]:
        nbytes, gib = jacobian_memory(N_, D_, M_)
        print(f"N={N_:3d}, D=M={D_:5d}: explicit dY/dX {nbytes:>15,d} bytes = {gib:10.4f} GiB;"
              f" the VJP G W^T {N_ * D_ * 4:>10,d} bytes")
except NotImplementedError:
    print("Finish Exercise 6 (jacobian_memory) to see the table.")

rng = np.random.default_rng(0)
N_, D_, M_ = 16, 64, 64
X, W, G = (rng.standard_normal(s) for s in [(N_, D_), (D_, M_), (N_, M_)])
start = time.perf_counter()
J_layer = np.einsum("nk,dm->nmkd", np.eye(N_), W)  # dY[n, m] / dX[k, d] = [n == k] W[d, m]
vjp_explicit = np.tensordot(G, J_layer, axes=2)  # sum over n, m of G[n, m] J[n, m, :, :]
t_explicit = time.perf_counter() - start
start = time.perf_counter()
vjp_direct = G @ W.T
t_direct = time.perf_counter() - start
assert np.allclose(vjp_explicit, vjp_direct)
print(f"\nN={N_}, D=M={D_}: Jacobian {J_layer.shape}, {J_layer.nbytes / 2**20:.0f} MiB, "
      f"{np.mean(J_layer != 0):.1%} nonzero")
print(f"explicit Jacobian + contraction: {t_explicit * 1e3:.1f} ms;  G @ W.T: "
      f"{t_direct * 1e3:.3f} ms; same result")

# %% [markdown]
# ## 8. Predicting shapes
#
# Two rules give the shape of every derivative in this course:
#
# 1. **A Jacobian has the output's shape followed by the input's shape**
#    (numerator layout, generalised): $\partial Y/\partial X$ for $Y$ of shape
#    $(N, M)$ and $X$ of shape $(N, D)$ has shape $(N, M, N, D)$.
# 2. **The gradient of a scalar loss has the shape of the variable** (the
#    convention of `x.grad` and of every optimiser): $\partial L/\partial W$
#    has the shape of $W$, whatever happened in between. Rule 1 gives the
#    same: the output shape is $()$, so only the input's shape is left.
#
# A bias $b$ of shape $(M,)$ added to every row of $XW$ (broadcasting) still
# gets a gradient of shape $(M,)$: each $b_m$ was used $N$ times, and its
# gradient is the sum over those $N$ uses (notebook 05).
#
# Shapes alone often pin down a formula. With $D = WX$, $W$ of shape
# $5 \times 10$, $X$ of shape $10 \times 3$, the upstream gradient
# $\partial L/\partial D$ is $5\times 3$, and $\partial L/\partial W$ must be
# $5 \times 10$: the only product of $\partial L/\partial D$ and $X$ with that
# shape is $\frac{\partial L}{\partial D}\,X^\top$ ($5\times3$ times
# $3\times10$). Likewise $\partial L/\partial X = W^\top \frac{\partial
# L}{\partial D}$ ($10 \times 5$ times $5\times 3$). Before you derive a
# gradient, write down its shape.
#
# ### Exercise 7 (2 points): shape predictions
#
# For the layer $Y = XW + b$ with $X$ of shape $(N, D)$, $W$ of shape
# $(D, M)$, $b$ of shape $(M,)$, and a scalar loss $L$ computed from $Y$,
# write `predict_shapes(N, D, M)`. It returns a dictionary from the names
# below to shapes (tuples of ints). Names `dL/...` mean gradients as stored in
# `.grad` (rule 2); names `dY/...` mean full Jacobians (rule 1).

# %% solution="predict_shapes"
def predict_shapes(N, D, M):
    """Shapes around the layer Y = X W + b (X: (N, D), W: (D, M), b: (M,)), L a scalar.

    Returns a dict with these keys, each mapped to a tuple of ints:
      "Y", "dL/dY", "dL/dX", "dL/dW", "dL/db"   (gradients: rule 2),
      "dY/dX", "dY/dW", "dY/db"                  (Jacobians: rule 1).
    """
    ### BEGIN SOLUTION
    return {
        "Y": (N, M),
        "dL/dY": (N, M),
        "dL/dX": (N, D),
        "dL/dW": (D, M),
        "dL/db": (M,),
        "dY/dX": (N, M, N, D),
        "dY/dW": (N, M, D, M),
        "dY/db": (N, M, M),
    }
    ### END SOLUTION


# %% test="test_predict_shapes" points=2
def _check_shapes(N, D, M, expected):
    label = f"predict_shapes(N={N}, D={D}, M={M})"
    got = predict_shapes(N, D, M)
    if not isinstance(got, dict):
        raise grading.GradingError(f"{label} should return a dict, got {type(got).__name__}.")
    missing = [k for k in expected if k not in got]
    if missing:
        raise grading.GradingError(f"{label} has no entry for {missing}.")
    for key, shape in expected.items():
        try:
            g = tuple(int(s) for s in got[key])
        except TypeError:
            raise grading.GradingError(f"{label}[{key!r}] should be a tuple of ints such as "
                                       f"(2, 3) (use (3,) for one axis), got {got[key]!r}.")
        if g == shape:
            continue
        hint = ""
        if key.startswith("dL/"):
            hint = (" The gradient of a scalar has the shape of the variable it is taken "
                    "with respect to (rule 2).")
        else:
            hint = (" A Jacobian has the output's shape followed by the input's shape "
                    "(rule 1).")
        if sorted(g) == sorted(shape) and len(g) == 2:
            hint = " It is transposed." + hint
        elif int(np.prod(g)) == int(np.prod(shape)) and len(g) < len(shape):
            hint = (" It has the right number of entries, but keep every axis: do not "
                    "flatten." + hint)
        if key == "dL/db" and len(g) == 2:
            hint += (" b was broadcast over the N rows of X W, so its gradient is summed "
                     "over them.")
        raise grading.GradingError(f"{label}[{key!r}] is {g}, expected {shape}.{hint}")


_check_shapes(2, 3, 4, {"Y": (2, 4), "dL/dY": (2, 4), "dL/dX": (2, 3), "dL/dW": (3, 4),
                        "dL/db": (4,), "dY/dX": (2, 4, 2, 3), "dY/dW": (2, 4, 3, 4),
                        "dY/db": (2, 4, 4)})
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(2):
    _N, _D, _M = (int(s) for s in _rng.choice(np.arange(1, 6), 3, replace=False))
    _X, _W, _b = (ad.tensor(_rng.standard_normal(s), requires_grad=True)
                  for s in [(_N, _D), (_D, _M), (_M,)])
    _Y = _X @ _W + _b
    _Y.retain_grad()
    (_Y * _rng.standard_normal(_Y.shape)).sum().backward()
    _JX, _JW, _Jb = ad.functional.jacobian(lambda x, w, b: x @ w + b,
                                           (_X.detach(), _W.detach(), _b.detach()))
    _check_shapes(_N, _D, _M, {"Y": _Y.shape, "dL/dY": _Y.grad.shape, "dL/dX": _X.grad.shape,
                               "dL/dW": _W.grad.shape, "dL/db": _b.grad.shape,
                               "dY/dX": _JX.shape, "dY/dW": _JW.shape, "dY/db": _Jb.shape})
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# * The Jacobian of $f:\mathbb{R}^n \to \mathbb{R}^m$ is the $m \times n$
#   matrix $J[i, j] = \partial f_i/\partial x_j$ (numerator layout; the
#   denominator layout is its transpose). It is the best linear
#   approximation: $f(x + h) \approx f(x) + Jh$. For arrays, its shape is
#   the output's shape followed by the input's.
# * A scalar $L$ has a $1 \times m$ Jacobian, the row $\partial L/\partial y$
#   used by the chain rule; the gradient $\nabla_y L$ is the same numbers as a
#   column, in the shape of $y$, as optimisers need. The chain rule multiplies
#   Jacobians: $\partial L/\partial x = (\partial L/\partial y)(\partial
#   y/\partial x)$, a vector–Jacobian product.
# * A numerical Jacobian costs two evaluations per input (one column each).
# * Building blocks: $Ax$ has Jacobian $A$, and
#   $\partial f_i/\partial A_{iq} = x_q$ (an $M\times(M\times N)$ object,
#   mostly zeros); element-wise $g$ gives $\operatorname{diag}(g'(x))$;
#   softmax gives $\operatorname{diag}(s) - ss^\top$; $K = R^\top R$ gives a
#   4-D array with
#   $\partial K_{pq}/\partial R_{ij} = \delta_{jp}R_{iq} + \delta_{jq}R_{ip}$.
# * Explicit Jacobians are huge and sparse (256 GiB for one linear layer with
#   $N = 64$, $D = M = 4096$), so frameworks compute vector–Jacobian products
#   such as $G W^\top$ directly. The next notebook puts those products
#   together along a computational graph: the chain rule, forward mode and
#   reverse mode.
