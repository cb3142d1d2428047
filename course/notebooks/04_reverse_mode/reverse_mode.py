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
# # 04 · Reverse-mode AD: the algorithm
#
# In notebook 03 you ran reverse mode by hand: evaluate the graph forward,
# then walk it backward and multiply local derivatives, adding contributions
# wherever a value feeds several paths. That works for a graph you can draw on
# paper. A network has millions of nodes, so the walk must be an
# **algorithm**: a rule for the order of the nodes, and a rule for what each
# node receives and sends. This notebook builds that algorithm, runs it on
# graphs recorded by `autodiff_ref`, and then looks at what a framework built
# on it lets you do:
#
# 1. **adjoints** $\bar v_i = \partial y / \partial v_i$ and **partial
#    adjoints**, and why a value used twice collects two contributions;
# 2. **topological order**, and why the textbook recursive version breaks on
#    deep graphs;
# 3. the **`node_to_grad`** algorithm, the heart of every reverse-mode engine,
#    which you will write yourself against `autodiff_ref`'s recorded graph;
# 4. adjoints of **data structures** (dictionaries, indexing);
# 5. how a framework exposes it: `requires_grad`, leaves and intermediates,
#    accumulation in `.grad`, `detach`, Python control flow, `backward` with
#    an upstream gradient;
# 6. reverse mode that **extends the graph** with adjoint nodes, so that a
#    gradient can be differentiated again: second derivatives and
#    Hessian-vector products.
#
# **How this notebook works.** Read from top to bottom and run each cell
# (Shift-Enter). There are five exercises (14 points) and two written
# answers (1 point each, graded by hand). In each exercise, replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The visible tests use the numbers from the text; when the
# notebook is graded, hidden tests run your function on fresh random graphs
# and inputs. A failing test says in words what is wrong. Every other cell
# runs without your code; cells that need an exercise say which one to
# finish. Above each exercise a line says which parts of `autodiff_ref`
# (`ad`) the answer may use: the autograder enforces it.
#
# **Run All stops at the first unfinished exercise**: its test cell raises an
# error, and Jupyter does not run the cells after it. While you work, run the
# cells one by one (or use *Run All Above* on the cell you are working on),
# and do the exercises in order.
#
# Symbols follow the course's [notation card](../notation.md): $\bar v =
# \partial y/\partial v$ is an adjoint, $\bar v_{i\to j}$ a partial adjoint,
# and the running example $y = \ln x_1 + x_1x_2 - \sin x_2$ is numbered
# $v_{-1}, v_0$ (the inputs), $v_1, \dots, v_5$ as in notebook 03.

# %%
# %matplotlib inline
import math
import time

import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import autodiff_ref as ad
from autodiff_ref import grading
from autodiff_ref.function import sum_to_shape  # undoes broadcasting (section 4)

# %% [markdown]
# ## 1. Adjoints
#
# Write a program as a list of elementary steps $v_1, v_2, \dots$, each one a
# simple function of earlier values (the $n$ inputs are
# $v_{1-n}, \dots, v_0$), ending with a scalar output $y$. Forward
# mode (notebook 03) carries *tangents* $\dot v_i = \partial v_i / \partial x$:
# the derivative of every value with respect to **one input**. Reverse mode
# carries the opposite quantity, the **adjoint** of every value:
#
# $$
# \bar v_i \;=\; \frac{\partial y}{\partial v_i},
# $$
#
# the derivative of **the one output** with respect to $v_i$. It starts at
# $\bar y = 1$ and is pushed from the output towards the inputs. When it
# reaches the inputs, their adjoints are the whole gradient
# $\nabla y = (\bar x_1, \dots, \bar x_n)$, after one backward pass, however
# large $n$ is.
#
# **Worked example** (the one from notebook 03, now with every adjoint):
# $y = \ln x_1 + x_1 x_2 - \sin x_2$ at $(x_1, x_2) = (2, 5)$.
#
# | forward | value | adjoint | how |
# |---|---|---|---|
# | $v_{-1} = x_1$ | $2$ | $\bar v_{-1} = \bar v_1 / v_{-1} + \bar v_2\, v_0 = 5.5$ | $v_{-1}$ feeds $v_1$ and $v_2$ |
# | $v_0 = x_2$ | $5$ | $\bar v_0 = \bar v_2\, v_{-1} + \bar v_3 \cos v_0 = 2 - \cos 5 \approx 1.7163$ | $v_0$ feeds $v_2$ and $v_3$ |
# | $v_1 = \ln v_{-1}$ | $0.6931$ | $\bar v_1 = \bar v_4 = 1$ | |
# | $v_2 = v_{-1} v_0$ | $10$ | $\bar v_2 = \bar v_4 = 1$ | |
# | $v_3 = \sin v_0$ | $-0.9589$ | $\bar v_3 = -\bar v_5 = -1$ | |
# | $v_4 = v_1 + v_2$ | $10.6931$ | $\bar v_4 = \bar v_5 = 1$ | |
# | $v_5 = v_4 - v_3$ | $11.6521$ | $\bar v_5 = 1$ | the output $y$ |
#
# Read the adjoint column from the bottom up: that is the order in which they
# are computed. The next cell builds the same program with `autodiff_ref`,
# asks every intermediate value to keep its gradient (`retain_grad`, section
# 6) and prints the adjoints the engine found.

# %%
v_m1 = ad.tensor(2.0, requires_grad=True)  # v_{-1} = x1
v0 = ad.tensor(5.0, requires_grad=True)  # v_0 = x2
v1 = ad.log(v_m1)
v2 = v_m1 * v0
v3 = ad.sin(v0)
v4 = v1 + v2
v5 = v4 - v3
for v in (v1, v2, v3, v4, v5):
    v.retain_grad()
v5.backward()
print(f"{'value':>6} {'forward':>10} {'adjoint':>9}")
for name, v in [("v_-1", v_m1), ("v_0", v0), ("v_1", v1), ("v_2", v2), ("v_3", v3),
                ("v_4", v4), ("v_5", v5)]:
    print(f"{name:>6} {v.item():10.4f} {v.grad.item():9.4f}")
assert np.isclose(v_m1.grad.item(), 5.5) and np.isclose(v0.grad.item(), 2 - np.cos(5.0))

# %% [markdown]
# ## 2. Partial adjoints: a value used twice
#
# In the table, $v_{-1}$ feeds two later values, $v_1$ and $v_2$, and its
# adjoint has two terms. That is the multivariable chain rule. Suppose $v_i$
# is an input of the nodes $j \in \operatorname{next}(i)$ (its **consumers**)
# and of nothing else. The output depends on $v_i$ only through them, so
#
# $$
# \bar v_i \;=\; \frac{\partial y}{\partial v_i}
# \;=\; \sum_{j \in \operatorname{next}(i)} \frac{\partial y}{\partial v_j}\,
#       \frac{\partial v_j}{\partial v_i}
# \;=\; \sum_{j \in \operatorname{next}(i)} \bar v_{i \to j},
# \qquad
# \bar v_{i \to j} \;=\; \bar v_j\, \frac{\partial v_j}{\partial v_i}.
# $$
#
# The term $\bar v_{i \to j}$ is a **partial adjoint**: what consumer $j$
# sends back to its input $i$. Node $j$ can compute it as soon as its own
# adjoint $\bar v_j$ is known, using only its local derivative. Node $i$'s
# adjoint is the **sum** of what all its consumers send. Forget one and the
# gradient is wrong; *assign* instead of *add* and only the last one counts.
#
# **Worked example: a node used twice.** $y = (\exp(v_1) + 1)\,\exp(v_1)$,
# computed with one call of $\exp$ (a small example with its own numbering,
# input $v_1$, as on the notation card):
#
# $$
# v_2 = \exp(v_1), \qquad v_3 = v_2 + 1, \qquad v_4 = v_2 \cdot v_3 = y .
# $$
#
# At $v_1 = \ln 2$: $v_2 = 2$, $v_3 = 3$, $v_4 = 6$. Backward:
#
# * $\bar v_4 = 1$. Node 4 multiplies, so it sends each input the *other*
#   factor: $\bar v_{3\to4} = \bar v_4\, v_2 = 2$ and
#   $\bar v_{2\to4} = \bar v_4\, v_3 = 3$.
# * $\bar v_3 = \bar v_{3\to4} = 2$ (node 3 has one consumer). Node 3 adds a
#   constant: $\bar v_{2\to3} = \bar v_3 \cdot 1 = 2$.
# * $\bar v_2 = \bar v_{2\to4} + \bar v_{2\to3} = 3 + 2 = 5$: **two partial
#   adjoints**, because $v_2$ is used twice. Node 2 is $\exp$, whose
#   derivative is its own output: $\bar v_{1\to2} = \bar v_2\, v_2 = 10$.
# * $\bar v_1 = 10$.
#
# Check by calculus: $y = e^{2v_1} + e^{v_1}$, so
# $y' = 2e^{2v_1} + e^{v_1} = 2\cdot 4 + 2 = 10$. A backward pass that kept
# only the last partial adjoint of $v_2$ would report $2 \cdot 2 = 4$ or
# $3 \cdot 2 = 6$.
#
# Notice also *when* $\bar v_2$ was complete: only after **both** consumers,
# node 4 and node 3, had sent their part. Had we processed node 2 right after
# node 4, we would have passed on $3$ instead of $5$. The order of the walk
# matters, and that is the next section.

# %%
v1 = ad.tensor(np.log(2.0), requires_grad=True)
v2 = ad.exp(v1)
v3 = v2 + 1
v4 = v2 * v3
v4.backward()
print(f"v2 = {v2.item():.4g}, v3 = {v3.item():.4g}, y = v4 = {v4.item():.4g}")
print(f"dy/dv1 from autodiff_ref: {v1.grad.item():.6g};  "
      f"2 e^(2 v1) + e^(v1) = {2 * np.exp(2 * np.log(2)) + 2:.6g}")
assert np.isclose(v1.grad.item(), 10.0)

# %% [markdown]
# **Written answer (1 point): add, do not assign.** Take another program
# with a value used several times: $a = x \cdot x$, then $y = a \cdot x$, at
# $x = 3$. A hand-written backward pass that *assigns* each partial adjoint
# of $x$ (`x_bar = ...`) instead of adding it (`x_bar += ...`) reports a
# wrong $dy/dx$. Work out every partial adjoint that reaches $x$, say what
# the assigning version reports and what the correct value is, and explain in
# two or three sentences, in terms of paths through the graph, why adding is
# right.

# %% [markdown] answer="add_not_assign" points=1
# ### BEGIN SOLUTION
# **Model answer.** $\bar y = 1$. The node $y = a\cdot x$ sends
# $\bar y \cdot a = 9$ to $x$ and $\bar a = \bar y\cdot x = 3$ to $a$. The
# node $a = x\cdot x$ uses $x$ in both of its slots, so it sends
# $\bar a \cdot x = 9$ to $x$ twice. The partial adjoints of $x$ are
# $9, 9, 9$, and $\bar x = 27 = 3x^2$, the derivative of $y = x^3$.
# Assigning keeps only the last one and reports $9$. Each partial adjoint
# is the contribution of one path from $x$ to $y$ (one use of $x$); by the
# multivariable chain rule the derivative is the **sum** over all paths, so
# every contribution must be added. Assigning throws away all paths but the
# last one processed.
#
# **Rubric (1 point).** Half a point for the three contributions $9, 9, 9$
# and the two results ($27$ correct, $9$ when assigning); half a point for
# the explanation (one partial adjoint per use or path, and the chain rule
# sums over paths). An answer that counts only two uses of $x$ (forgetting
# that $x\cdot x$ uses it twice, reporting $18$) gets half a point at most.
# ### END SOLUTION

# %% [markdown]
# ## 3. Reverse topological order
#
# A **topological order** of a graph lists every node after all the nodes it
# depends on (its inputs, their inputs, ...). The forward pass runs in such an
# order: a value is computed only once its inputs exist. Reversed, it lists
# every node **before** everything it depends on, that is, after all of its
# consumers. So in **reverse topological order**, when the walk reaches a node,
# every consumer has already sent its partial adjoint, and the node's adjoint
# is complete. That is exactly the condition the last section asked for.
#
# For $(\exp(v_1)+1)\exp(v_1)$ the only topological order of the three
# operations is $v_2, v_3, v_4$ ($v_3$ needs $v_2$; $v_4$ needs both), and the
# backward walk visits $v_4, v_3, v_2$. For $\ln x_1 + x_1x_2 - \sin x_2$
# there are several valid orders of the operations, for example
# $v_1, v_2, v_3, v_4, v_5$ and $v_3, v_2, v_1, v_4, v_5$; any of them works.
#
# ### How `autodiff_ref` records a graph
#
# Every operation on a tensor with `requires_grad=True` records a **node**.
# The tensor it returns points to it, and the node points to where each of its
# inputs came from:
#
# * `t.grad_fn`: the node that computed tensor `t`, or `None` if `t` is a leaf
#   (a tensor you created);
# * `node.next[i]`: where input `i` of the operation came from: **another
#   node** (the input was computed), a **leaf tensor** (created with
#   `requires_grad=True`) or `None` (a constant, or an argument such as an
#   axis, that needs no gradient);
# * `node.function`, `node.ctx`, `node.input_shapes`: used in section 4.
#
# So the graph is reached from the output through `grad_fn` and then `next`,
# from consumers to inputs. The next cell prints it for the worked example.

# %%
def describe(source):
    """A short label for what node.next holds."""
    if source is None:
        return "None (no gradient needed)"
    if isinstance(source, ad.Tensor):
        return f"leaf tensor {source.item():.4g}"
    return repr(source)


v1 = ad.tensor(np.log(2.0), requires_grad=True)
v2 = ad.exp(v1)
v3 = v2 + 1
v4 = v2 * v3
for name, t in [("v4", v4), ("v3", v3), ("v2", v2)]:
    node = t.grad_fn
    print(f"{name}.grad_fn = {node!r:15} next = [{', '.join(describe(s) for s in node.next)}]")
print("v1.grad_fn =", v1.grad_fn, "(v1 is a leaf)")

# %% [markdown]
# ### Depth-first search, recursive and iterative
#
# The classic way to find a topological order is a depth-first search that
# appends a node **after** all of its inputs have been appended (a
# *post-order*), and skips nodes it has already seen (a value used twice must
# appear once):
#
# ```
# visit(node):
#     if node was seen: return
#     mark node as seen
#     for each input of node that is a node: visit(input)
#     append node to the order
# ```
#
# Written as a recursive Python function this is five lines, and it is how
# micrograd does it. But every nested call uses a Python stack frame, and
# Python allows about 1,000 of them (`sys.getrecursionlimit()`). A recurrent
# network unrolled over a long sequence, or a loop of 5,000 steps, gives a
# graph thousands of nodes deep, and the recursive search dies with
# `RecursionError`. The cell below shows it on a chain of 5,000 `sin` nodes,
# with a recursive function that only measures the depth.
#
# Two ways around it, both with an explicit list as the stack:
#
# * **iterative depth-first search**: push `(node, False)`; when you pop
#   `(node, False)` for a node not yet seen, mark it, push `(node, True)` and
#   then its inputs; when you pop `(node, True)`, all its inputs are done, so
#   append it;
# * **counting consumers** (Kahn's algorithm, what `autodiff_ref`'s own engine
#   does): count how many consumers each node has, start from the output, and
#   release a node when its last consumer has been processed. This produces
#   the reverse topological order directly.

# %%
def depth_recursive(node):
    """The number of nodes on the longest path down from node (recursive)."""
    inputs = [s for s in node.next if s is not None and not isinstance(s, ad.Tensor)]
    return 1 + max((depth_recursive(s) for s in inputs), default=0)


x = ad.tensor(0.5, requires_grad=True)
shallow = x
for _ in range(50):
    shallow = ad.sin(shallow)
deep = x
for _ in range(5000):
    deep = ad.sin(deep)
print("depth of a chain of 50 sin nodes:", depth_recursive(shallow.grad_fn))
try:
    depth_recursive(deep.grad_fn)
except RecursionError as err:
    print("a chain of 5,000 sin nodes:", type(err).__name__, "-", err)

# %% [markdown]
# ### Exercise 1 (2 points): topological order
#
# Write `topological_order(y)`: the recorded nodes of the graph that computed
# `y`, each one after all the nodes it depends on (so `y.grad_fn` comes
# last). Use an explicit stack, not recursion: the hidden tests include a
# graph 5,000 nodes deep. `isinstance(s, ad.Tensor)` tells a leaf tensor in
# `node.next` from a node.
#
# *The autograder lets this answer use `ad.Tensor` (for `isinstance`) and
# nothing else of `ad`.*

# %% solution="topological_order" allow="Tensor"
def topological_order(y):
    """The nodes that y depends on, in topological order.

    y: a Tensor computed by autodiff_ref operations (y.grad_fn is its node; it
    is None if y is a leaf).
    Returns a list of nodes (the objects found in .grad_fn and in node.next,
    never leaf tensors or None), each node exactly once, every node after all
    the nodes in its node.next (recursively), so y.grad_fn is the last
    element. Returns [] if y.grad_fn is None.
    Hidden tests use a graph 5,000 nodes deep: a recursive search exceeds
    Python's recursion limit (about 1,000 calls), so keep your own stack.
    """
    ### BEGIN SOLUTION
    order, seen = [], set()
    stack = [] if y.grad_fn is None else [(y.grad_fn, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for source in node.next:
            if source is not None and not isinstance(source, ad.Tensor):
                stack.append((source, False))
    return order
    ### END SOLUTION


# %% test="test_topological_order" points=2
def _check_order(order, y, what):
    """Is order a valid topological order of the nodes y depends on?"""
    expected = list(ad.engine.backward_order([y]))
    if order is None:
        raise grading.GradingError(f"topological_order({what}) returned None. "
                                   "Did you forget `return`?")
    order = list(order)
    for k, n in enumerate(order):
        if not isinstance(n, ad.function.Node):
            kind = "a leaf tensor" if isinstance(n, ad.Tensor) else repr(n)
            raise grading.GradingError(
                f"topological_order({what}) has {kind} at position {k}: return only the "
                "recorded nodes (objects like <ExpBackward>), not leaf tensors or None.")
    ids = [id(n) for n in order]
    position = {}
    for k, n in enumerate(order):
        if id(n) in position:
            raise grading.GradingError(
                f"topological_order({what}) lists the node {n!r} twice (positions "
                f"{position[id(n)]} and {k}): a node used by several consumers must "
                "appear once. Remember which nodes you have already seen.")
        position[id(n)] = k
    missing = [n for n in expected if id(n) not in position]
    if missing:
        raise grading.GradingError(
            f"topological_order({what}) returned {len(order)} nodes but y depends on "
            f"{len(expected)}: for example {missing[0]!r} is missing. Follow node.next "
            "from y.grad_fn down to the leaves.")
    if len(order) != len(expected):
        raise grading.GradingError(f"topological_order({what}) contains nodes that y does "
                                   "not depend on.")

    def first_violation(seq_position):
        for n in order:
            for s in n.next:
                if isinstance(s, ad.function.Node) and seq_position[id(s)] > seq_position[id(n)]:
                    return n, s
        return None

    bad = first_violation(position)
    if bad is not None:
        if first_violation({i: -k for i, k in position.items()}) is None:
            raise grading.GradingError(
                f"topological_order({what}) is reversed: it lists every node before the "
                "nodes it depends on (output first). The exercise asks for the order of the "
                "forward pass: inputs first, y.grad_fn last. Reverse your list.")
        n, s = bad
        raise grading.GradingError(
            f"topological_order({what}) puts {n!r} (position {position[id(n)]}) before "
            f"{s!r} (position {position[id(s)]}), but {n!r} uses the output of {s!r}: every "
            "node must come after all the nodes in its node.next. Append a node only after "
            "all of its inputs have been appended (post-order).")


with grading.exercise(1, "topological_order"):
    # (exp(v1) + 1) * exp(v1) with one exp: the only valid order is Exp, Add, Mul
    _v1 = ad.tensor(np.log(2.0), requires_grad=True)
    _v2 = ad.exp(_v1)
    _y = _v2 * (_v2 + 1)
    _order = topological_order(_y)
    _check_order(_order, _y, "(exp(v1) + 1) * exp(v1)")
    assert [n.name for n in _order] == ["ExpBackward", "AddBackward", "MulBackward"]
    # ln(x1) + x1 x2 - sin(x2): several valid orders, the last is always the subtraction
    _x1 = ad.tensor(2.0, requires_grad=True)
    _x2 = ad.tensor(5.0, requires_grad=True)
    _y = ad.log(_x1) + _x1 * _x2 - ad.sin(_x2)
    _check_order(topological_order(_y), _y, "ln(x1) + x1*x2 - sin(x2)")
    # x * x: a leaf used twice gives one node; a leaf has no nodes at all
    _x = ad.tensor([1.0, 2.0], requires_grad=True)
    _y = (_x * _x).sum()
    _check_order(topological_order(_y), _y, "(x * x).sum()")
    if list(topological_order(_x)) != []:
        raise grading.GradingError("topological_order(x) for a leaf x (x.grad_fn is None) "
                                   "should be the empty list: a leaf has no recorded node.")
grading.passed("topological_order")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _random_graph(rng, n_ops):
    """A random graph over a few leaves in which values are used several times."""
    leaves = [ad.tensor(rng.uniform(-1, 1, s), requires_grad=True)
              for s in [(3,), (2, 3), (), (1, 3)]]
    pool = list(leaves) + [ad.tensor(rng.uniform(-1, 1, (2, 3)))]  # a constant too
    for _ in range(n_ops):
        a, b = (pool[int(rng.integers(len(pool)))] for _ in range(2))
        kind = int(rng.integers(6))
        if kind == 0:
            out = a + b
        elif kind == 1:
            out = a * b
        elif kind == 2:
            out = ad.tanh(a) - b
        elif kind == 3:
            out = ad.sin(a) * a
        elif kind == 4:
            out = a + a
        else:
            out = ad.sigmoid(b) * 0.5
        pool.append(out)
    y = sum((t.sum() * float(rng.uniform(0.5, 1.5)) for t in pool[-4:]), ad.tensor(0.0))
    return leaves, y


for _ in range(4):
    _leaves, _y = _random_graph(_rng, int(_rng.integers(5, 25)))
    _check_order(topological_order(_y), _y, "a random graph of shared nodes")
# a diamond chain: v -> (v + v) * v, 12 times (every node has two consumers)
_v = ad.tensor(0.3, requires_grad=True)
for _ in range(12):
    _v = ad.tanh((_v + _v) * _v)
_check_order(topological_order(_v), _v, "a chain of 12 diamonds")
# 5,000 nodes deep: a recursive search exceeds the recursion limit
_v = ad.tensor(0.5, requires_grad=True)
for _ in range(2500):
    _v = ad.sin(_v * 0.9)
try:
    _deep = topological_order(_v)
except RecursionError:
    raise grading.GradingError(
        "topological_order raised RecursionError on a graph 5,000 nodes deep: each "
        "recursive call uses a Python stack frame and Python allows about 1,000. Keep "
        "your own stack (a list) in a loop instead of calling the function recursively."
    ) from None
_check_order(_deep, _v, "a chain 5,000 nodes deep")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The `node_to_grad` algorithm
#
# Now put the pieces together. Keep a dictionary `node_to_grad` that maps each
# node to the **list of partial adjoints** it has received so far. Seed it
# with the output's adjoint, $\bar y = 1$, and walk the nodes in reverse
# topological order:
#
# ```
# node_to_grad = {y: [1]}
# for node in reverse_topological_order(y):
#     adjoint = sum(node_to_grad[node])          # complete: all consumers reported
#     for i, input in enumerate(inputs of node):
#         partial = adjoint * d node / d input_i  # the partial adjoint v̄_{input -> node}
#         node_to_grad[input].append(partial)
# the gradient of y w.r.t. a leaf x is sum(node_to_grad[x])
# ```
#
# The list makes the sum visible; real engines usually keep a running sum
# instead (`grads[k] = grads[k] + partial`), which is the same thing. Each
# node is processed once, and each edge carries one partial adjoint, so the
# backward pass costs a **small constant multiple** of the forward pass. For
# a matrix product $Z = XW$ the backward rule computes two products of the
# same size as the forward one ($\bar X = \bar Z W^\top$ and
# $\bar W = X^\top \bar Z$, notebook 05), so forward plus backward cost about
# 3 times the forward pass; element-wise operations are cheaper still. That
# is why one backward pass gives the **whole** gradient for a small constant
# times the cost of evaluating $y$, however many inputs there are.
#
# Step it through on $(\exp(v_1)+1)\exp(v_1)$ below. The black arrows are the
# forward graph; a red arrow is a partial adjoint sent back along an edge.
# Watch `node_to_grad[2]` collect two entries before node 2 is processed, and
# move $v_1$ to see the numbers change. The slider starts at exactly
# $v_1 = \ln 2$, the worked example ($v_2 = 2$, $\bar v_1 = 10$).

# %%
POSITIONS = {1: (0.0, 0.0), 2: (2.2, 0.0), 3: (4.4, 1.7), 4: (6.6, 0.0)}
FORMULAS = {1: "$v_1$", 2: r"$v_2 = \exp(v_1)$", 3: "$v_3 = v_2 + 1$",
            4: r"$v_4 = v_2 \cdot v_3$"}
INPUTS = {4: [2, 3], 3: [2], 2: [1], 1: []}  # node -> its inputs, in order
BENDS = {(2, 4): -0.3, (1, 2): -0.35, (3, 4): 0.3, (2, 3): 0.3}  # red arcs bend outwards


def node_to_grad_steps(value_v1):
    """Run node_to_grad by hand on v4 = (exp(v1) + 1) exp(v1).

    Returns the forward values and, after each step, (node processed,
    node_to_grad, adjoints so far, partial adjoints sent so far).
    """
    v = {1: value_v1, 2: np.exp(value_v1)}
    v[3] = v[2] + 1
    v[4] = v[2] * v[3]
    local = {(2, 4): v[3], (3, 4): v[2], (2, 3): 1.0, (1, 2): v[2]}  # d v_j / d v_i
    node_to_grad, adjoint, sent = {4: [1.0]}, {}, []
    steps = [(None, {4: [1.0]}, {}, [])]
    for j in [4, 3, 2, 1]:  # reverse topological order
        adjoint[j] = sum(node_to_grad[j])
        for i in INPUTS[j]:
            partial = adjoint[j] * local[(i, j)]
            node_to_grad.setdefault(i, []).append(partial)
            sent.append((i, j, partial))
        steps.append((j, {k: list(p) for k, p in node_to_grad.items()}, dict(adjoint),
                      list(sent)))
    return v, steps


def show_step(v1=float(np.log(2.0)), step=0):
    v, steps = node_to_grad_steps(v1)
    current, table, adjoint, sent = steps[step]
    fig, ax = plt.subplots(figsize=(10, 4.6))
    for j, inputs in INPUTS.items():  # the forward graph: straight black arrows
        for i in inputs:
            ax.annotate("", xy=POSITIONS[j], xytext=POSITIONS[i],
                        arrowprops=dict(arrowstyle="->", color="0.3", shrinkA=34, shrinkB=34))
    for i, j, partial in sent:  # partial adjoints: red arcs on the outer side of each edge
        (x0, y0), (x1, y1) = POSITIONS[j], POSITIONS[i]
        rad = BENDS[(i, j)]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="->", color="C3", lw=1.8, shrinkA=34,
                                    shrinkB=34, connectionstyle=f"arc3,rad={rad}"))
        normal = np.array([y1 - y0, x0 - x1]) / np.hypot(x1 - x0, y1 - y0)
        mid = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        lx, ly = mid + normal * (0.5 * rad * np.hypot(x1 - x0, y1 - y0) + np.sign(rad) * 0.28)
        ax.text(lx, ly, rf"$\bar v_{{{i}\to{j}}} = {partial:.3g}$", color="C3",
                ha="center", va="center", fontsize=10)
    for k, (x, y) in POSITIONS.items():
        face = "#fde2e1" if k == current else ("#eeeeee" if k in adjoint else "#e8f0fe")
        ax.add_patch(plt.Circle((x, y), 0.52, fc=face, ec="k", zorder=3))
        ax.text(x, y + 0.12, f"$v_{k}$ = {v[k]:.3g}", ha="center", va="center", fontsize=10,
                zorder=4)
        if k in adjoint:
            ax.text(x, y - 0.16, rf"$\bar v_{k}$ = {adjoint[k]:.3g}", ha="center",
                    va="center", color="C3", fontsize=10, zorder=4)
        above = k == 3  # v3's formula goes above it, clear of the arrows below
        ax.text(x, y + (0.62 if above else -0.62), FORMULAS[k], ha="center",
                va="bottom" if above else "top", fontsize=9)
    listing = ", ".join(f"{k}: [{', '.join(f'{p:.3g}' for p in table[k])}]"
                        for k in sorted(table, reverse=True))
    ax.text(3.3, -1.55, "node_to_grad = {" + listing + "}", ha="center", fontsize=10,
            family="monospace")
    title = ("start: node_to_grad holds the seed 1 for the output" if current is None else
             f"step {step}: node {current} sums its list into its adjoint and sends "
             f"{len(INPUTS[current])} partial adjoint(s)")
    ax.set_title(title, fontsize=11)
    ax.set_xlim(-0.7, 7.3)
    ax.set_ylim(-1.8, 2.6)
    ax.set_aspect("equal")
    ax.axis("off")
    plt.show()


values, steps = node_to_grad_steps(np.log(2.0))
assert np.allclose(steps[2][1][2], [3.0, 2.0]) and np.isclose(steps[-1][2][1], 10.0)
V1_CHOICES = sorted([(f"{v:.1f}", float(v)) for v in np.round(np.arange(-1.5, 1.55, 0.1), 1)]
                    + [("ln 2", float(np.log(2.0)))], key=lambda option: option[1])
explorer = widgets.interactive(
    show_step,  # the options hold ln 2 itself, so the worked example shows 2 and 10 exactly
    v1=widgets.SelectionSlider(options=V1_CHOICES, value=float(np.log(2.0)),
                               description="v1", continuous_update=False,
                               style={"description_width": "initial"}),
    step=widgets.IntSlider(value=0, min=0, max=4, description="step",
                           style={"description_width": "initial"}),
)
display(explorer)

# %% [markdown]
# ### Calling a node's backward rule
#
# In `autodiff_ref` the local derivatives are not stored as numbers: each
# node knows its operation, `node.function`, whose `backward` turns the
# node's adjoint into the partial adjoints of its inputs (a vector-Jacobian
# product, notebook 03). The call is
#
# ```python
# grads = node.function.backward(node.ctx, adjoint)
# ```
#
# * `node.ctx` holds what the forward pass saved (the inputs of a
#   multiplication, the output of `exp`, ...);
# * `adjoint` is a **Tensor** with the shape of the node's output;
# * it returns **one gradient per input of the operation's forward**, in the
#   order of `node.next`: a tuple if the operation has several inputs, a single
#   Tensor if it has one. An entry is `None` where no gradient is needed, and
#   so is every entry whose `node.next` entry is `None`: skip those;
# * with **broadcasting**, a gradient can come back with the broadcast shape:
#   if `a` of shape `(3,)` was added to `B` of shape `(2, 3)`, the addition
#   returns a `(2, 3)` gradient for `a` too. `sum_to_shape(g, shape)`
#   (imported at the top) sums it back down to `shape`; the input shapes of a
#   node are in `node.input_shapes`. (Notebook 05 explains why a sum.)
#
# One warning. After a real `y.backward()` the engine frees what the nodes
# saved (`node.ctx`), to save memory; calling a node's backward afterwards
# raises an error. Build a fresh graph for each backward pass. The next cell
# calls the three backward rules of the worked example by hand.

# %%
v1 = ad.tensor(np.log(2.0), requires_grad=True)
v2 = ad.exp(v1)
v3 = v2 + 1
v4 = v2 * v3
a = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
B = ad.tensor(np.ones((2, 3)), requires_grad=True)
s = a + B
with ad.no_grad():  # the backward rules compute numbers only: no new graph is recorded
    mul_node, add_node, exp_node = v4.grad_fn, v3.grad_fn, v2.grad_fn
    to_v2, to_v3 = mul_node.function.backward(mul_node.ctx, ad.tensor(1.0))
    print(f"{mul_node!r}: sends {to_v2.item():g} to v2 and {to_v3.item():g} to v3")
    to_v2_again, to_constant = add_node.function.backward(add_node.ctx, to_v3)
    print(f"{add_node!r}: sends {to_v2_again.item():g} to v2 (and {to_constant.item():g} to "
          f"the constant 1, whose next entry is {add_node.next[1]})")
    adjoint_v2 = to_v2 + to_v2_again
    to_v1 = exp_node.function.backward(exp_node.ctx, adjoint_v2)
    print(f"{exp_node!r}: adjoint {adjoint_v2.item():g}, sends {to_v1.item():g} to v1 "
          "(a single Tensor: exp has one input)")

    ga, gB = s.grad_fn.function.backward(s.grad_fn.ctx, ad.tensor(np.ones((2, 3))))
    print(f"\na + B with shapes {s.grad_fn.input_shapes}: backward returns shapes "
          f"{ga.shape} and {gB.shape}; sum_to_shape(ga, (3,)) = {sum_to_shape(ga, (3,))}")

# %% [markdown]
# ### Exercise 2 (3 points): the backward pass
#
# Write `gradients(y, leaves)`: the `node_to_grad` algorithm on the graph
# recorded by `autodiff_ref`. Walk the nodes in reverse topological order
# (use your `topological_order`), sum each node's partial adjoints into its
# adjoint, call its backward rule, and append what it returns to the lists of
# the node's inputs. Partial adjoints that reach a leaf tensor go into that
# leaf's list. Nodes and tensors can serve as dictionary keys (they hash by
# identity), or you can key by `id(...)`.
#
# Do **not** call `y.backward()` or `ad.grad`: that is the engine doing the
# exercise for you. Your function must leave every `leaf.grad` untouched
# (`None`), and the tests check it.
#
# *The autograder lets this answer use `ad.tensor`, `ad.Tensor` and
# `ad.no_grad`, and forbids the attribute `.grad` altogether: you need
# neither `ad.grad` nor any tensor's `.grad`, and without them a call of
# `y.backward()` would be no use. (`.backward` itself cannot be forbidden: you
# call `node.function.backward`.) Wrapping the walk in `with ad.no_grad():` keeps
# the backward rules from recording a graph of their own; it is optional.*

# %% solution="gradients" allow="tensor,Tensor,no_grad" deny="grad"
def gradients(y, leaves):
    """The gradient of y with respect to each leaf, by reverse-mode AD.

    y: a Tensor with one element (for example of shape ()), computed from the
    leaves by autodiff_ref operations, with a graph not yet used by backward.
    leaves: a list of leaf Tensors created with requires_grad=True.
    Returns a list of NumPy arrays aligned with leaves: entry k is
    dy/d leaves[k], with the shape of leaves[k] (zeros if y does not depend on
    leaves[k]). Uses node.function.backward(node.ctx, adjoint) for every node
    and sum_to_shape(g, node.input_shapes[i]) for broadcast gradients; never
    calls y.backward() or ad.grad, and never touches .grad.
    """
    ### BEGIN SOLUTION
    node_to_grad = {id(y.grad_fn): [ad.tensor(np.ones(y.shape))]}
    with ad.no_grad():
        for node in reversed(topological_order(y)):
            adjoint = sum(node_to_grad[id(node)])
            result = node.function.backward(node.ctx, adjoint)
            if not isinstance(result, tuple):
                result = (result,)
            for source, g, shape in zip(node.next, result, node.input_shapes):
                if source is None or g is None:
                    continue
                if not isinstance(g, ad.Tensor):
                    g = ad.tensor(g)
                node_to_grad.setdefault(id(source), []).append(sum_to_shape(g, shape))
    return [np.array(sum(node_to_grad[id(leaf)]).data) if id(leaf) in node_to_grad
            else np.zeros(leaf.shape) for leaf in leaves]
    ### END SOLUTION


# %% test="test_gradients" points=3
def _run_gradients(y, leaves, what):
    """Call gradients(y, leaves); check it returned one array per leaf and left .grad alone."""
    data_before = [leaf.data.copy() for leaf in leaves]
    result = gradients(y, leaves)
    if result is None:
        raise grading.GradingError(f"gradients({what}) returned None. Did you forget `return`?")
    result = list(result)
    if len(result) != len(leaves):
        raise grading.GradingError(f"gradients({what}) returned {len(result)} gradients for "
                                   f"{len(leaves)} leaves: return one per leaf, in order.")
    for k, leaf in enumerate(leaves):
        if leaf.grad is not None:
            raise grading.GradingError(
                f"after gradients({what}), leaves[{k}].grad is no longer None: your function "
                "called y.backward() (or something else that fills .grad). Compute the "
                "gradients yourself with node.function.backward.")
        if not np.array_equal(leaf.data, data_before[k]):
            raise grading.GradingError(f"gradients({what}) changed the value of leaves[{k}].")
    return result


with grading.exercise(2, "gradients", needs=[(1, "topological_order")]):
    # the running example: y = ln(x1) + x1 x2 - sin(x2) at (2, 5): 5.5 and 2 - cos(5)
    _x1 = ad.tensor(2.0, requires_grad=True)
    _x2 = ad.tensor(5.0, requires_grad=True)
    _g = _run_gradients(ad.log(_x1) + _x1 * _x2 - ad.sin(_x2), [_x1, _x2],
                        "ln(x1) + x1*x2 - sin(x2), [x1, x2]")
    grading.assert_close(_g[0], 5.5, name="gradients(ln(x1) + x1*x2 - sin(x2))[0] at (2, 5)")
    grading.assert_close(_g[1], 2 - np.cos(5.0),
                         name="gradients(ln(x1) + x1*x2 - sin(x2))[1] at (2, 5) (2 - cos 5)")
    # the node used twice: (exp(v1) + 1) * exp(v1) at v1 = ln 2 gives 2*4 + 2 = 10
    _v1 = ad.tensor(np.log(2.0), requires_grad=True)
    _v2 = ad.exp(_v1)
    (_g,) = _run_gradients(_v2 * (_v2 + 1), [_v1], "(exp(v1) + 1) * exp(v1), [v1]")
    grading.assert_close(
        _g, 10.0, name="gradients((exp(v1) + 1) * exp(v1), [v1]) at v1 = ln 2 (v2 = exp(v1) feeds "
                       "two consumers: its adjoint is the sum 3 + 2 = 5 of two partial adjoints)")
    # the circuit (x + y) * z at (-2, 5, -4): -4, -4, 3; an unused leaf gets zeros
    _x, _yy, _z = (ad.tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    _unused = ad.tensor([1.0, 2.0], requires_grad=True)
    _g = _run_gradients((_x + _yy) * _z, [_x, _yy, _z, _unused], "(x + y) * z, [x, y, z, unused]")
    grading.assert_close(np.array(_g[:3], dtype=float), np.array([-4.0, -4.0, 3.0]),
                         name="gradients((x + y) * z, [x, y, z]) at (-2, 5, -4)")
    grading.assert_close(_g[3], np.zeros(2), name="gradients(...) for a leaf of shape (2,) that y "
                                                   "does not use (zeros of the leaf's shape)")
    # broadcasting: a of shape (3,) plus B of shape (2, 3); the gradient of a has a's shape
    _ab = [np.array([1.0, 2.0, 3.0]), np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])]
    _ref = [ad.tensor(v, requires_grad=True) for v in _ab]  # autodiff_ref's own backward
    ((_ref[0] + _ref[1]) * _ref[1]).sum().backward()
    _a, _B = (ad.tensor(v, requires_grad=True) for v in _ab)
    _g = _run_gradients(((_a + _B) * _B).sum(), [_a, _B], "((a + B) * B).sum(), a (3,), B (2, 3)")
    for _k, _what in enumerate(["a, of shape (3,), broadcast to (2, 3)", "B"]):
        grading.assert_close(_g[_k], _ref[_k].grad.data,
                             name=f"gradients(((a + B) * B).sum())[{_k}] for {_what}, vs autodiff_ref")
grading.passed("gradients")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _build(recipe, values):
    """Build the same graph from a recipe, on fresh leaves with the given values."""
    leaves = [ad.tensor(v, requires_grad=True) for v in values]
    pool = list(leaves) + [ad.tensor(np.linspace(-1, 1, 6).reshape(2, 3))]  # a constant
    for kind, i, j, w in recipe:
        a, b = pool[i], pool[j]
        pool.append([lambda: a + b, lambda: a * b, lambda: ad.tanh(a) - b,
                     lambda: ad.sin(a) * a, lambda: a + a, lambda: ad.sigmoid(b) * w,
                     lambda: ad.exp(ad.tanh(a)) / (b * b + 1),
                     lambda: (a * b).sum(axis=0), lambda: a.reshape(-1)[:2] * w][kind]())
    y = ad.tensor(0.0)
    for t, w in zip(pool[-4:], [0.7, -1.1, 0.9, 1.3]):
        y = y + t.sum() * w
    return leaves, y


def _random_recipe(rng, n_ops):
    shapes = [(3,), (2, 3), (), (1, 3), (2, 1), (2,)]
    values = [rng.uniform(-1, 1, s) for s in shapes]
    all_shapes = shapes + [(2, 3)]
    recipe = []
    while len(recipe) < n_ops:
        kind = int(rng.integers(9))
        i, j = (int(rng.integers(len(all_shapes))) for _ in range(2))
        sa, sb = all_shapes[i], all_shapes[j]
        try:
            np.broadcast_shapes(sa, sb)
        except ValueError:
            continue
        if kind == 7:
            shape = np.broadcast_shapes(sa, sb)
            if len(shape) == 0:
                continue
            shape = shape[1:]
        elif kind == 8:
            if int(np.prod(sa)) < 2:
                continue
            shape = (2,)
        elif kind in (3, 4):
            shape = sa
        elif kind == 5:
            shape = sb
        else:
            shape = np.broadcast_shapes(sa, sb)
        recipe.append((kind, i, j, float(rng.uniform(0.5, 1.5))))
        all_shapes.append(tuple(shape))
    return recipe, values


for _trial in range(6):
    _ref_y = ad.tensor(0.0)
    while not _ref_y.requires_grad:  # (a graph that uses no leaf at all is drawn again)
        _recipe, _values = _random_recipe(_rng, int(_rng.integers(4, 20)))
        _ref_leaves, _ref_y = _build(_recipe, _values)
    _ref_y.backward()
    _leaves, _y = _build(_recipe, _values)  # a fresh graph: backward freed the first one
    _got = _run_gradients(_y, _leaves, f"a random graph of {len(_recipe)} operations")
    for _k, (_leaf, _gk) in enumerate(zip(_ref_leaves, _got)):
        _expected = np.zeros(_leaf.shape) if _leaf.grad is None else _leaf.grad.data
        grading.assert_close(
            _gk, _expected, rtol=1e-10, atol=1e-12,
            name=f"gradients(...)[{_k}] (a leaf of shape {_leaf.shape}) on a random graph of "
                 f"{len(_recipe)} operations with shared nodes and broadcasting, vs "
                 "autodiff_ref's backward")
# a chain of diamonds: every node has two consumers, the gradient doubles at each step
_x = ad.tensor(0.1, requires_grad=True)
_v = _x
for _ in range(10):
    _v = _v + _v
(_g,) = _run_gradients(_v * 1.0, [_x], "x + x ten times (each node used twice)")
grading.assert_close(_g, 1024.0, name="gradients of x doubled ten times by v + v (2^10 = 1024: "
                                      "each v + v sends two partial adjoints to v)")
### END HIDDEN TESTS

# %% [markdown]
# Your backward pass against the engine's on random networks: a two-layer
# network with a shared weight (used in both layers), compared leaf by leaf
# with `autodiff_ref`'s own `backward` on a separately built copy of the graph.

# %%
def tiny_network(x, W, b):
    h = ad.tanh(x @ W + b)  # b of shape (3,) is broadcast over the 4 rows
    return ((h @ W.T) ** 2).mean()  # W is used twice


rng = np.random.default_rng(0)
values = [rng.standard_normal((4, 3)), rng.standard_normal((3, 3)), rng.standard_normal(3)]
reference = [ad.tensor(v, requires_grad=True) for v in values]
tiny_network(*reference).backward()
mine = [ad.tensor(v, requires_grad=True) for v in values]
try:
    for name, g, r in zip(["x", "W", "b"], gradients(tiny_network(*mine), mine), reference):
        print(f"d loss / d {name}: largest difference from autodiff_ref "
              f"{np.max(np.abs(g - r.grad.data)):.1e}")
except NotImplementedError:
    print("Finish exercises 1 and 2 to compare your backward pass with the engine's.")

# %% [markdown]
# ### Recording the graph yourself
#
# `gradients` walked a graph that `autodiff_ref` had recorded. The recording
# is the other half of an engine, and for scalars it fits in one class. Let
# every operation return a new object that remembers, for each operand, the
# **local derivative** of the result with respect to that operand, as a
# number computed during the forward pass (this is the `local` dictionary of
# the walkthrough above, stored in the values themselves). The backward pass
# then needs no backward rules at all: it visits the values so that each one
# comes after all of its consumers, and **adds** local derivative × the
# consumer's adjoint into each operand's `grad`.
#
# For the order, use the second method of section 3 this time, **counting
# consumers**: first walk the graph once (with a stack) and count, for each
# value, how many edges lead from it to a consumer; then start from the
# output with a list of "ready" values, and each time a value is processed,
# decrement the count of each operand it sends to, and make an operand
# ready when its count reaches zero (all of its consumers have sent their
# part). A value used twice by the same operation (`a * a`) is two edges.
#
# ### Exercise 3 (3 points): a scalar reverse-mode engine
#
# Complete `Value`: the operations `+`, `*`, `**` (by a plain number), `exp`,
# `log`, `sin`, `tanh`, each returning a **new** `Value` with its `parents`,
# and `backward`. Derive each local derivative yourself. The remaining
# operations (`-`, `/`, the reflected ones) are written for you in terms of
# these. Use `math` for the functions of a float; no `autodiff_ref`, no
# recursion (the hidden tests use a graph thousands of values deep).
#
# *The autograder lets this answer use nothing of `ad`.*

# %% solution="value_engine" exact=true dunder_methods=true
class Value:
    """A scalar that records how it was computed: a tiny reverse-mode engine.

    Value(3.0) is a leaf. Every operation returns a new Value whose `parents`
    is a tuple of (operand, local) pairs, one per operand: the operand Value
    (a plain number c enters as the constant leaf as_value(c)) and the
    derivative of the result with respect to that operand at the current
    values, a float. `grad` is 0.0 until backward() fills it.
    """

    def __init__(self, data, parents=()):
        self.data = float(data)
        self.parents = tuple(parents)
        self.grad = 0.0

    def __repr__(self):
        return f"Value({self.data:.6g}, grad={self.grad:.6g})"

    def __add__(self, other):  # self + other
        ### BEGIN SOLUTION
        other = as_value(other)
        return Value(self.data + other.data, [(self, 1.0), (other, 1.0)])
        ### END SOLUTION

    def __mul__(self, other):  # self * other
        ### BEGIN SOLUTION
        other = as_value(other)
        return Value(self.data * other.data, [(self, other.data), (other, self.data)])
        ### END SOLUTION

    def __pow__(self, p):  # self ** p for a plain number p
        ### BEGIN SOLUTION
        return Value(self.data**p, [(self, p * self.data ** (p - 1))])
        ### END SOLUTION

    def exp(self):
        ### BEGIN SOLUTION
        e = math.exp(self.data)
        return Value(e, [(self, e)])
        ### END SOLUTION

    def log(self):  # the natural logarithm, for data > 0
        ### BEGIN SOLUTION
        return Value(math.log(self.data), [(self, 1.0 / self.data)])
        ### END SOLUTION

    def sin(self):
        ### BEGIN SOLUTION
        return Value(math.sin(self.data), [(self, math.cos(self.data))])
        ### END SOLUTION

    def tanh(self):
        ### BEGIN SOLUTION
        t = math.tanh(self.data)
        return Value(t, [(self, 1.0 - t * t)])
        ### END SOLUTION

    # written for you: the other operations reuse the ones above
    def __radd__(self, other):  # other + self
        return self + other

    def __rmul__(self, other):  # other * self
        return self * other

    def __neg__(self):  # -self
        return self * -1.0

    def __sub__(self, other):  # self - other
        return self + (-as_value(other))

    def __rsub__(self, other):  # other - self
        return as_value(other) + (-self)

    def __truediv__(self, other):  # self / other
        return self * as_value(other) ** -1.0

    def __rtruediv__(self, other):  # other / self
        return as_value(other) * self ** -1.0

    def backward(self):
        """Fill v.grad = d self / d v for self and every Value it depends on.

        Assumes a fresh graph (every grad still 0.0); seeds self.grad = 1.0.
        Each Value is processed once, after all of its consumers, and adds
        its contribution to each operand's grad. No recursion: graphs may be
        thousands of Values deep.
        """
        ### BEGIN SOLUTION
        consumers, seen, stack = {}, {id(self)}, [self]
        while stack:
            value = stack.pop()
            for operand, local in value.parents:
                consumers[id(operand)] = consumers.get(id(operand), 0) + 1
                if id(operand) not in seen:
                    seen.add(id(operand))
                    stack.append(operand)
        self.grad = 1.0
        ready = [self]
        while ready:
            value = ready.pop()
            for operand, local in value.parents:
                operand.grad += local * value.grad
                consumers[id(operand)] -= 1
                if consumers[id(operand)] == 0:
                    ready.append(operand)
        ### END SOLUTION


def as_value(u):
    """A Value unchanged; a plain number c as a constant leaf Value(c)."""
    return u if isinstance(u, Value) else Value(u)


# %% test="test_value_engine" points=3
_VALUE_OPS = {"exp": Value.exp, "log": Value.log, "sin": Value.sin, "tanh": Value.tanh}
_AD_OPS = {"exp": ad.exp, "log": ad.log, "sin": ad.sin, "tanh": ad.tanh}


def _check_value(build, xs, what):
    """build(ops, leaves) on Values and on autodiff_ref tensors: same value, same grads?"""
    with grading.batch():  # thousands of small operations: the grader sends them together
        leaves = [Value(x) for x in xs]
        out = build(_VALUE_OPS, leaves)
    if not isinstance(out, Value):
        raise grading.GradingError(f"{what} should give a Value, got {out!r}.")
    try:
        out.backward()
    except RecursionError:
        raise grading.GradingError(
            f"({what}).backward() raised RecursionError: keep your own stack (a list) in a "
            "loop instead of calling a function recursively.") from None
    tensors = [ad.tensor(x, requires_grad=True) for x in xs]
    ref = build(_AD_OPS, tensors)
    ref.backward()
    grading.assert_close(out.data, ref.item(), rtol=1e-12, name=f"the value of {what}")
    for k, (leaf, t) in enumerate(zip(leaves, tensors)):
        grading.assert_close(leaf.grad, 0.0 if t.grad is None else t.grad.item(), rtol=1e-10,
                             atol=1e-12, name=f"leaf {k} .grad after ({what}).backward()")


with grading.exercise(3, "Value"):
    # the running example at (2, 5): 5.5 and 2 - cos 5
    _check_value(lambda O, v: O["log"](v[0]) + v[0] * v[1] - O["sin"](v[1]), [2.0, 5.0],
                 "log(x1) + x1 * x2 - sin(x2) at (2, 5)")
    # y = a * x with a = x * x at x = 3: three partial adjoints 9 + 9 + 9 = 27
    _check_value(lambda O, v: (v[0] * v[0]) * v[0], [3.0], "(x * x) * x at x = 3")
    # (exp(v1) + 1) exp(v1) at ln 2: v2 = exp(v1) collects 3 + 2 = 5, v1 gets 10
    _v1 = Value(math.log(2.0))
    _v2 = _v1.exp()
    _v3 = _v2 + 1
    (_v2 * _v3).backward()
    grading.assert_close([_v1.grad, _v2.grad, _v3.grad], [10.0, 5.0, 2.0], rtol=1e-12,
                         name="[v1.grad, v2.grad, v3.grad] for (exp(v1) + 1) exp(v1), v1 = ln 2")
    _check_value(lambda O, v: O["tanh"](v[0] ** 3 / 2 - 1 / v[1]) * (2 - v[0]), [0.5, -1.5],
                 "tanh(x^3 / 2 - 1 / y) * (2 - x) at (0.5, -1.5)")
grading.passed("Value")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()


def _random_build(rng, n, depth):
    """A random expression builder(O, v) in n leaves, with constants and shared leaves."""
    if depth == 0 or rng.random() < 0.15:
        i = int(rng.integers(n))
        return lambda O, v: v[i]
    c = float(np.round(rng.uniform(0.5, 2.5), 2) * rng.choice([-1.0, 1.0]))
    p = float(rng.choice([2.0, 3.0, -1.0, 0.5, -0.5]))
    fa, fb = _random_build(rng, n, depth - 1), _random_build(rng, n, depth - 1)
    return [lambda O, v: fa(O, v) + fb(O, v), lambda O, v: fa(O, v) * fb(O, v),
            lambda O, v: fa(O, v) - fb(O, v), lambda O, v: fa(O, v) / (1.5 + fb(O, v) ** 2),
            lambda O, v: fa(O, v) * fa(O, v), lambda O, v: c * fa(O, v) + fa(O, v),
            lambda O, v: c - fa(O, v), lambda O, v: c / (2 + O["sin"](fa(O, v))),
            lambda O, v: O["exp"](O["sin"](fa(O, v))), lambda O, v: O["tanh"](fa(O, v)),
            lambda O, v: O["log"](1 + fa(O, v) ** 2), lambda O, v: (1 + fa(O, v) ** 2) ** p,
            ][int(rng.integers(12))]


for _ in range(25):
    _n = int(_rng.integers(1, 4))
    _xs = [float(x) for x in _rng.uniform(-1.5, 1.5, _n)]
    _check_value(_random_build(_rng, _n, int(_rng.integers(1, 5))), _xs,
                 f"a random expression in {_n} input(s) at {np.round(_xs, 4).tolist()}")


def _deep(O, v):
    u = v[0]
    for _ in range(3000):
        u = O["sin"](u * 0.9) + v[0] * 0.001
    return u


_check_value(_deep, [float(_rng.uniform(0.2, 1.0))], "a chain of 3,000 steps (thousands of Values deep)")
_check_value(lambda O, v: v[0] * 0.0 + 1.0, [2.0], "x * 0.0 + 1.0 (a zero local derivative)")


def _diamonds(O, v):
    u = v[0]
    for _ in range(8):  # w is used twice, and so is u: every step is a diamond
        w = O["sin"](u)
        u = w * u + w
    return u


_check_value(_diamonds, [float(_rng.uniform(0.3, 1.0))],
             "8 diamonds u <- sin(u) * u + sin(u) (an intermediate used twice: its grad is "
             "complete only after both consumers have sent their part)")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Adjoints of data structures
#
# Programs do not only compute with numbers: they put values into tuples,
# lists and dictionaries and take them out again. Reverse mode handles this
# with one idea: **the adjoint of a container is a container of the same
# shape holding the adjoints of its entries**, and each operation on
# containers has an adjoint rule like any other.
#
# * **Lookup**: `b = d["cat"]` reads one entry. Its adjoint rule sends $\bar b$
#   into the matching slot of the adjoint dictionary:
#   `d_bar["cat"] += b_bar`. A second lookup of the same key adds a second
#   partial adjoint, exactly like a value used twice.
# * **Construction**: `d = {"cat": p, "dog": q}` packs values. Its adjoint
#   unpacks: $\bar p$ = `d_bar["cat"]`, $\bar q$ = `d_bar["dog"]`.
#
# **Worked example.** With $a = 2$, $w = 3$:
# `d = {"cat": a * w, "dog": a + w}`, then `b = d["cat"]`,
# `c = d["cat"] * d["dog"]`, `y = b + c`. Forward: $p = 6$, $q = 5$, $b = 6$,
# $c = 30$, $y = 36$. Backward: $\bar b = \bar c = 1$; the product sends
# $\bar c \cdot 5 = 5$ into `d_bar["cat"]` and $\bar c \cdot 6 = 6$ into
# `d_bar["dog"]`; the lookup for $b$ adds $1$ more to `d_bar["cat"]`, so
# `d_bar = {"cat": 6, "dog": 6}`. Unpacking gives $\bar p = 6$, $\bar q = 6$,
# and then $\bar a = \bar p\, w + \bar q = 24$, $\bar w = \bar p\, a + \bar q = 18$.
# (Check: $y = aw + a^2 w + a w^2$, $\partial y/\partial a = w + 2aw + w^2 = 24$.)
#
# In `autodiff_ref` (and PyTorch) a Python dictionary is invisible to the
# engine: a lookup returns the very same tensor, so two lookups are simply
# two uses of one node, and the partial adjoints add up in the graph. Indexing
# **into a tensor** is a recorded operation, and its adjoint is the same rule:
# `x[1]` sends its adjoint into slot 1 of a zero array (`IndexAdd` in the
# engine). The next cell does the dictionary example by hand and with the
# engine, then indexes a tensor twice at the same place.

# %%
a, w = 2.0, 3.0
d = {"cat": a * w, "dog": a + w}
b = d["cat"]
c = d["cat"] * d["dog"]
y = b + c
# backward, by hand, with an adjoint dictionary
b_bar, c_bar = 1.0, 1.0
d_bar = {"cat": 0.0, "dog": 0.0}
d_bar["cat"] += c_bar * d["dog"]  # c = d["cat"] * d["dog"]: each lookup gets its partial
d_bar["dog"] += c_bar * d["cat"]
d_bar["cat"] += b_bar  # b = d["cat"]
p_bar, q_bar = d_bar["cat"], d_bar["dog"]  # the adjoint of building d unpacks it
a_bar, w_bar = p_bar * w + q_bar, p_bar * a + q_bar
print(f"y = {y:g}, d_bar = {d_bar}, a_bar = {a_bar:g}, w_bar = {w_bar:g}")

at, wt = ad.tensor(a, requires_grad=True), ad.tensor(w, requires_grad=True)
dt = {"cat": at * wt, "dog": at + wt}
(dt["cat"] + dt["cat"] * dt["dog"]).backward()
print(f"autodiff_ref: a.grad = {at.grad.item():g}, w.grad = {wt.grad.item():g}")
assert (a_bar, w_bar) == (24.0, 18.0) and at.grad.item() == 24.0 and wt.grad.item() == 18.0

x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
(x[1] * x[1] + x[0]).backward()
print("y = x[1] * x[1] + x[0] at x = [1, 2, 3]: x.grad =", x.grad.data,
      "(slot 1 receives two partial adjoints, 2 + 2)")

# %% [markdown]
# ## 6. How a framework exposes reverse mode
#
# `autodiff_ref` follows PyTorch's conventions, and so does almost every
# framework you will meet. The rules, in the order you will trip over them:
#
# * **`requires_grad=True`** marks a tensor you want gradients for. Only
#   operations involving such tensors are recorded, **at the moment they
#   run**.
# * **Leaves** are the tensors you created (`x.is_leaf`, `x.grad_fn is None`);
#   **intermediates** are computed. After `y.backward()`, every leaf that `y`
#   depends on has its gradient in **`.grad`**. Intermediates do not keep
#   theirs (it would cost memory for every activation of a network) unless
#   you ask with **`t.retain_grad()`** before `backward`.
# * **Gradients accumulate**: `backward` *adds* into `.grad`. Call it for two
#   losses and `.grad` holds the sum of both gradients. This is the
#   `node_to_grad` sum once more, across calls, and it is deliberate (a batch
#   too large for memory can be processed in pieces). Clear with
#   `x.grad = None` or `x.grad.zero_()` before the next step; optimisers call
#   this `zero_grad`.
# * **`t.detach()`** returns a new leaf with the same value and no history:
#   gradients stop there, and the value acts as a constant.
# * **Python control flow** just works: the graph records the operations that
#   actually ran, so loops and `if`s are differentiated along the path taken.
# * **`y.backward(gradient=u)`**: without an argument, `y` must be a scalar and
#   the seed is $\bar y = 1$. For a non-scalar `y`, the seed $u$ (the shape
#   of `y`) is the upstream gradient, and the result in `x.grad` is the
#   vector-Jacobian product $u^\top J$. For `y = 2 * x`, $J = 2I$ and
#   `u = [1, 0, 0]` gives `[2, 0, 0]`.
#
# **Common mistake:** setting `requires_grad` after the computation.
# `x = ad.tensor(x0)`, `y = f(x)`, then `x.requires_grad = True` and
# `y.backward()`: when `y` was computed, nothing asked for a graph, so none
# was recorded, and marking `x` afterwards does not go back in time (the
# engine raises "does not require grad"). Mark the leaves first, then
# compute.
#
# For example, for $y = 2x^\top x$ at $x = (0, 1, 2, 3)$ the gradient is
# $4x = (0, 4, 8, 12)$:

# %%
x = ad.tensor(np.arange(4.0), requires_grad=True)
print("before backward: x.grad =", x.grad, "; x.is_leaf =", x.is_leaf)
y = 2 * (x @ x)
print("y =", y, "; y.is_leaf =", y.is_leaf)
y.backward()
print("after backward:  x.grad =", x.grad)
assert np.allclose(x.grad.data, [0.0, 4.0, 8.0, 12.0])

x3 = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
(2 * x3).backward(gradient=np.array([1.0, 0.0, 0.0]))
print("y = 2x, backward(gradient=[1, 0, 0]): x.grad =", x3.grad)

# %% [markdown]
# ### Exercise 4 (4 points): predict what the engine does
#
# Time to test your model of these rules. Below are twelve small
# situations. For each one, **predict** what `autodiff_ref` will do, without
# running it: write `predict_semantics(x0, u)`, which returns your
# predictions for a 1-D array `x0` (the value of `x`) and a 1-D array `u` of
# the same length, as a dictionary with these keys. An array prediction is a
# NumPy array computed from `x0` and `u` (derive the gradient by hand, then
# write it with NumPy); `None` means "the attribute is `None`"; a boolean
# answers a yes/no question. The cell after your answer runs every
# situation in the engine and shows your predictions beside what happened.
#
# Every situation starts from a fresh leaf `x = ad.tensor(x0, requires_grad=True)`
# unless it says otherwise.
#
# | key | situation | predict |
# |---|---|---|
# | `"first"` | `(2 * (x @ x)).backward()` | `x.grad` |
# | `"accumulated"` | then, on the same `x`, `x.sum().backward()` | `x.grad` |
# | `"cleared"` | then `x.grad = None` and `(x * x * x).sum().backward()` | `x.grad` |
# | `"intermediate"` | `h = x * x`, `z = (h * h).sum()`, `z.backward()` | `h.grad` |
# | `"retained"` | as before, with `h.retain_grad()` before `z.backward()` | `h.grad` |
# | `"through_intermediate"` | the same run | `x.grad` |
# | `"detached"` | `(x * (x * x).detach()).sum().backward()` | `x.grad` |
# | `"vjp"` | `(x * x.sum()).backward(gradient=u)` (each entry $x_i \sum_j x_j$) | `x.grad` |
# | `"doubling"` | `doubling(x).backward(gradient=u)` with `doubling` below | `x.grad` |
# | `"no_grad"` | `with ad.no_grad(): y = (x * x).sum()` | `y.requires_grad` |
# | `"late_requires_grad_raises"` | `x = ad.tensor(x0)` (no `requires_grad`), `y = (x * x).sum()`, then `x.requires_grad = True` and `y.backward()` | does `backward` raise? |
# | `"second_backward_raises"` | `y = (x * x).sum()`, `y.backward()`, then `y.backward()` again | does the second call raise? |
#
# The `doubling` function runs ordinary Python control flow on tensors: it
# starts with $b = 2a$, doubles $b$ while $\|b\| < 1000$, and returns $b$ if
# $\sum_i b_i > 0$ and $100\,b$ otherwise. Whatever the number of loop
# iterations, the result is $k\,a$ for a number $k$ that depends on $a$.
# For example $a = 1.5$ gives $b = 3 \cdot 2^9 = 1536 = 1024\,a$ and
# $c = 1024\,a$, while $a = -0.75$ gives $b = -1.5\cdot 2^{10} = -1536 =
# 2048\,a$ and, since $\sum b < 0$, $c = 100\,b = 204800\,a$.
#
# *The autograder lets this answer use nothing of `ad`: predict, do not
# run.*

# %%
def doubling(a):
    """c = k a: b = 2a, doubled while ||b|| < 1000; c = b if sum(b) > 0 else 100 b."""
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        return b
    return 100 * b

# %% solution="predict_semantics"
def predict_semantics(x0, u):
    """Your predictions for the situations of the table.

    x0, u: 1-D NumPy arrays of the same length (x0 not all zeros).
    Returns a dict with the twelve keys of the table: NumPy arrays of x0's
    shape for the gradients, None where you predict None, and booleans
    (True / False) for "no_grad" and the two "..._raises" questions.
    """
    ### BEGIN SOLUTION
    k = 2.0
    while np.linalg.norm(k * x0) < 1000:
        k *= 2
    if np.sum(k * x0) <= 0:
        k *= 100
    return {
        "first": 4 * x0,
        "accumulated": 4 * x0 + 1,
        "cleared": 3 * x0**2,
        "intermediate": None,
        "retained": 2 * x0**2,
        "through_intermediate": 4 * x0**3,
        "detached": x0**2,
        "vjp": np.sum(x0) * u + np.dot(u, x0),
        "doubling": k * u,
        "no_grad": False,
        "late_requires_grad_raises": True,
        "second_backward_raises": True,
    }
    ### END SOLUTION


# %% [markdown]
# The reveal: this cell runs each situation in `autodiff_ref` for
# $x_0 = (0, 1, 2, 3)$ and $u = (1, -1, 0, 2)$ and prints it beside your
# prediction.

# %%
def _raises(run):
    try:
        run()
    except RuntimeError:
        return True
    return False


def _engine_does(x0, u):
    """What autodiff_ref does in each situation of the table."""
    out = {}
    x = ad.tensor(x0, requires_grad=True)
    (2 * (x @ x)).backward()
    out["first"] = x.grad.numpy().copy()
    x.sum().backward()
    out["accumulated"] = x.grad.numpy().copy()
    x.grad = None
    (x * x * x).sum().backward()
    out["cleared"] = x.grad.numpy().copy()
    for keep in (False, True):
        x = ad.tensor(x0, requires_grad=True)
        h = x * x
        if keep:
            h.retain_grad()
        (h * h).sum().backward()
        out["retained" if keep else "intermediate"] = None if h.grad is None else h.grad.numpy()
    out["through_intermediate"] = x.grad.numpy()
    x = ad.tensor(x0, requires_grad=True)
    (x * (x * x).detach()).sum().backward()
    out["detached"] = x.grad.numpy()
    x = ad.tensor(x0, requires_grad=True)
    (x * x.sum()).backward(gradient=u)
    out["vjp"] = x.grad.numpy()
    x = ad.tensor(x0, requires_grad=True)
    doubling(x).backward(gradient=u)
    out["doubling"] = x.grad.numpy()
    with ad.no_grad():
        out["no_grad"] = (x * x).sum().requires_grad
    late = ad.tensor(x0)
    y_late = (late * late).sum()
    late.requires_grad = True
    out["late_requires_grad_raises"] = _raises(y_late.backward)
    x = ad.tensor(x0, requires_grad=True)
    y_twice = (x * x).sum()
    y_twice.backward()
    out["second_backward_raises"] = _raises(y_twice.backward)
    return out


x0_demo, u_demo = np.arange(4.0), np.array([1.0, -1.0, 0.0, 2.0])
try:
    predicted = predict_semantics(x0_demo.copy(), u_demo.copy())
except NotImplementedError:
    predicted = None
    print("Write predict_semantics (exercise 4) to see your predictions beside the engine's.\n")
print(f"{'key':>26} | {'autodiff_ref':>26} | your prediction")
for key, result in _engine_does(x0_demo, u_demo).items():
    mine = predicted.get(key, "(missing)") if isinstance(predicted, dict) else "-"
    print(f"{key:>26} | {str(result):>26} | {mine}")

# %% test="test_predict_semantics" points=4
_WHY = {
    "first": "the gradient of 2 x^T x is 4x",
    "accumulated": "backward ADDS into x.grad: nothing cleared it after the first call",
    "cleared": "after x.grad = None only the gradient of sum(x^3) is there",
    "intermediate": "an intermediate does not keep its gradient (it is None)",
    "retained": "retain_grad() keeps dz/dh = 2h in h.grad",
    "through_intermediate": "z = sum(x^4)",
    "detached": "detach() makes x * x a constant: only the first factor is differentiated",
    "vjp": "backward(gradient=u) computes u^T J, here J = (sum x) I + x 1^T",
    "doubling": "the gradient of c = k a is k times the upstream u, with k from the path "
                "that ran (the loop count and the if)",
    "no_grad": "nothing is recorded under no_grad: y does not require grad",
    "late_requires_grad_raises": "y was computed before x required grad, so no graph exists",
    "second_backward_raises": "the first backward freed the graph's saved values",
}


def _check_predictions(x0, u, what):
    got = predict_semantics(x0.copy(), u.copy())
    engine = _engine_does(x0, u)
    if not isinstance(got, dict) or set(got) != set(engine):
        raise grading.GradingError(
            f"predict_semantics({what}) should return a dict with the keys {sorted(engine)}; "
            f"got {sorted(got) if isinstance(got, dict) else got!r}.")
    for key, want in engine.items():
        name = f"predict_semantics({what})['{key}']"
        if want is None or isinstance(want, (bool, np.bool_)):
            if not (got[key] is want or (isinstance(got[key], (bool, np.bool_))
                                         and want is not None and bool(got[key]) == want)):
                raise grading.GradingError(f"{name} is {got[key]!r}, but the engine gives "
                                           f"{want!r}: {_WHY[key]}.")
        elif got[key] is None or isinstance(got[key], (bool, np.bool_)):
            raise grading.GradingError(f"{name} should be an array like x0, got {got[key]!r}.")
        else:
            grading.assert_close(got[key], want, rtol=1e-10, atol=1e-12,
                                 name=f"{name} ({_WHY[key]})")


with grading.exercise(4, "predict_semantics"):
    # x0 = [0, 1, 2, 3], v = [1, -1, 0, 2], as in the table above
    _check_predictions(np.arange(4.0), np.array([1.0, -1.0, 0.0, 2.0]), "[0, 1, 2, 3], v")
    # a = -0.75 gives b = -1536 = 2048 a and c = 100 b = 204800 a
    _check_predictions(np.array([-0.75]), np.array([1.0]), "[-0.75], [1]")
grading.passed("predict_semantics")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(4):
    _n = int(_rng.integers(1, 6))
    _x0 = _rng.uniform(-1, 1, _n) * 10 ** _rng.uniform(-3, 1)
    _check_predictions(_x0, _rng.standard_normal(_n), f"a random x0 of length {_n}, random v")
_check_predictions(np.array([0.5, -0.5]), _rng.standard_normal(2),
                   "[0.5, -0.5] (sum(b) = 0 is not > 0, so c = 100 b)")
_check_predictions(np.array([1.0, -1.0 + 1e-4]), _rng.standard_normal(2),
                   "[1, -1 + 1e-4] (sum(b) is small but positive: c = b)")
_check_predictions(np.array([800.0, 600.0]), _rng.standard_normal(2),
                   "[800, 600] (b = 2a already has norm 2000: the loop never runs)")
_check_predictions(np.array([600.0, 800.0]) / 1024, _rng.standard_normal(2),
                   "[600, 800] / 1024 (the norm reaches exactly 1000: < 1000, not <=)")
### END HIDDEN TESTS

# %% [markdown]
# **Written answer (1 point): why a second `backward` fails.** The last
# situation raised an error. Explain why the engine frees what the nodes
# saved (`node.ctx`) at the end of `backward`, what `retain_graph=True`
# changes and at what price, and name one situation in which you need it.

# %% [markdown] answer="why_backward_twice_fails" points=1
# ### BEGIN SOLUTION
# **Model answer.** The backward rules need values of the forward pass (the
# operands of a multiplication, the output of `exp`, the activations of every
# layer); each node keeps them in its context. Once `backward` has run every
# node's rule, the graph has done its job: in training, the next step builds
# a new graph from new inputs. So the engine frees the saved values at once,
# which releases the largest block of memory a training step uses (all
# activations) before the next forward pass. A second `backward` would need
# those values again, they are gone, and the engine raises instead of
# returning a wrong gradient. `retain_graph=True` keeps them, so the same
# graph can be back-propagated again, at the price of holding all that memory
# until the graph itself is dropped. It is needed when several backward
# passes go through one graph: two losses that share a trunk and are
# back-propagated separately (e.g. a GAN's two players, or a multi-task
# network), several VJPs of one output (the rows of a Jacobian by reverse
# mode), or `create_graph=True` for higher derivatives.
#
# **Rubric (1 point).** Half a point for "the saved forward values needed by
# the backward rules are freed to save memory (they would otherwise stay
# alive), so a second pass has nothing to work with"; half a point for what
# `retain_graph` does (keeps them, costs memory) together with one valid use.
# ### END SOLUTION

# %% [markdown]
# The plot shows `doubling` for scalar $a$: $c = k\,a$ and the derivative $k$
# found by the engine, a staircase of powers of two, with a factor 100 for
# negative $a$. Between the jumps each piece is a straight line, and on each
# piece the gradient is exact; at the jumps the function is not even
# continuous, and the engine still reports the slope of the piece it
# evaluated. That is what "differentiating the path that ran" means.

# %%
a_grid = np.geomspace(0.01, 10, 90)
slopes, values = [], []
for sign in (1.0, -1.0):
    for value in sign * a_grid:
        a = ad.tensor(value, requires_grad=True)
        c = doubling(a)
        c.backward()
        values.append(c.item())
        slopes.append(a.grad.item())
n = len(a_grid)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
left.loglog(a_grid, values[:n], ".-", ms=3, label="a > 0: c")
left.loglog(a_grid, -np.array(values[n:]), ".-", ms=3, label="a < 0: -c")
left.set_xlabel("|a|")
left.set_ylabel("|c| = |doubling(a)|")
left.set_title("c = doubling(a)")
left.legend(loc="center left")
right.loglog(a_grid, slopes[:n], ".", label="a > 0")
right.loglog(a_grid, slopes[n:], ".", label="a < 0")
right.set_xlabel("|a|")
right.set_ylabel("dc/da = k (from autodiff_ref)")
right.set_title("the multiplier k of the path that ran")
right.legend(loc="lower left")
plt.show()

# %% [markdown]
# ## 7. Backprop vs reverse mode that extends the graph
#
# There are two ways to run the backward walk.
#
# * **Backprop on the forward graph.** Walk the recorded graph and compute the
#   adjoints as plain numbers, keeping nothing but the numbers. Your
#   `gradients` does this (inside `ad.no_grad()`), and so did the first
#   generation of deep-learning frameworks (Caffe, cuda-convnet). The result
#   is a gradient, and that is the end of it.
# * **Reverse mode by extending the graph.** Every operation of the backward
#   pass (each multiplication by a local derivative, each sum of partial
#   adjoints) is itself recorded as a new node, so the adjoints $\bar v_i$ are
#   **new nodes of a larger graph** that computes the gradient from the
#   inputs. PyTorch, TensorFlow and JAX work this way. In `autodiff_ref` and
#   PyTorch you ask for it with `create_graph=True`, which works because every
#   backward rule is written with tensor operations.
#
# The second way has a large payoff: the gradient is an ordinary function of
# the inputs, recorded like any other, so **it can be differentiated again**.
# For $y = (\exp(v_1)+1)\exp(v_1) = e^{2v_1} + e^{v_1}$ at $v_1 = \ln 2$:
#
# $$
# y' = 2e^{2v_1} + e^{v_1} = 10, \qquad
# y'' = 4e^{2v_1} + e^{v_1} = 18, \qquad
# y''' = 8e^{2v_1} + e^{v_1} = 34 .
# $$
#
# The drawing below is the graph behind the gradient $y' = 10$: the forward
# nodes (`Exp`, `Add`, `Mul`) and the adjoint nodes the backward pass added
# (the partial adjoints are `Mul` nodes, their sum for $v_2$ is an `Add`).
# The boxes show `value ?` for intermediates nothing keeps alive.

# %%
v1 = ad.tensor(np.log(2.0), requires_grad=True)
v2 = ad.exp(v1)
y = (v2 + 1) * v2
(d1,) = ad.grad(y, v1, create_graph=True)  # a Tensor with its own graph
(d2,) = ad.grad(d1, v1, create_graph=True)
(d3,) = ad.grad(d2, v1)
print(f"y' = {d1.item():g} (grad_fn {d1.grad_fn!r}), y'' = {d2.item():g}, "
      f"y''' = {d3.item():g}")
assert np.allclose([d1.item(), d2.item(), d3.item()], [10.0, 18.0, 34.0])
display(ad.viz.draw(d1, show_grad=False))

# %% [markdown]
# ### Hessian-vector products
#
# For $f:\mathbb{R}^n \to \mathbb{R}$ the Hessian $H = \nabla^2 f(x)$ is
# $n \times n$: for a million parameters, $10^{12}$ numbers, far too many to
# form. Optimisers that use curvature (Newton-CG, some trust-region and
# sharpness methods) only need products $Hv$, and those are cheap. Because
# $H$ is the Jacobian of the gradient and $v$ does not depend on $x$,
#
# $$
# H v \;=\; \nabla_x \big( \nabla f(x)^\top v \big) .
# $$
#
# So: one reverse pass with `create_graph=True` gives $\nabla f(x)$ as a
# recorded tensor; the scalar $\nabla f(x)^\top v$ is one more node; a second
# reverse pass through it gives $Hv$. The cost is a small constant times one
# evaluation of $f$, whatever $n$ is, where the full Hessian needs $n$ such
# passes (that is how `ad.functional.hessian` builds it, one row at a time).
#
# **Worked example.** $f(x) = x_1^2 x_2 + x_2^3$ has
# $\nabla f = (2x_1x_2,\; x_1^2 + 3x_2^2)$ and
# $H = \begin{pmatrix} 2x_2 & 2x_1 \\ 2x_1 & 6x_2 \end{pmatrix}$. At
# $x = (1, 2)$: $H = \begin{pmatrix} 4 & 2 \\ 2 & 12 \end{pmatrix}$, so
# $v = (1, 0)$ gives $Hv = (4, 2)$ and $v = (1, -1)$ gives $(2, -10)$.
#
# ### Exercise 5 (2 points): a Hessian-vector product
#
# Write `hvp(f, x0, v)` with two calls of `ad.grad`: the first with
# `create_graph=True`. (`ad.grad(outputs, inputs, ...)` returns a tuple with
# one gradient per input.)
#
# *The autograder lets this answer use `ad.tensor` and `ad.grad`.*

# %% solution="hvp" allow="tensor,grad"
def hvp(f, x0, v):
    """The Hessian-vector product H v of a scalar function f at x0.

    f: a function from a Tensor of x0's shape to a scalar Tensor (its gradient
    must depend on x); x0, v: 1-D NumPy arrays of the same length n.
    Returns a 1-D NumPy array of length n, computed by differentiating
    grad f(x) . v (never forming H).
    """
    ### BEGIN SOLUTION
    x = ad.tensor(x0, requires_grad=True)
    (g,) = ad.grad(f(x), x, create_graph=True)
    (hv,) = ad.grad((g * ad.tensor(v)).sum(), x)
    return hv.numpy().copy()
    ### END SOLUTION


# %% test="test_hvp" points=2
def _check_hvp(f, x0, v, what, expected=None):
    if expected is None:
        expected = ad.functional.hessian(f, ad.tensor(x0)).data @ v
    try:
        got = hvp(f, x0.copy(), v.copy())
    except NotImplementedError:
        raise
    except RuntimeError as err:
        raise grading.GradingError(
            f"hvp({what}) raised RuntimeError: {err}\nThe first ad.grad needs "
            "create_graph=True, so that the gradient is recorded and can be differentiated "
            "again.") from None
    grading.assert_close(got, expected, rtol=1e-9, atol=1e-10, name=f"hvp({what})")


with grading.exercise(5, "hvp"):
    _f = lambda x: x[0] * x[0] * x[1] + x[1] ** 3  # noqa: E731
    _check_hvp(_f, np.array([1.0, 2.0]), np.array([1.0, 0.0]),
               "x1^2 x2 + x2^3, x = (1, 2), v = (1, 0)", expected=np.array([4.0, 2.0]))
    _check_hvp(_f, np.array([1.0, 2.0]), np.array([1.0, -1.0]),
               "x1^2 x2 + x2^3, x = (1, 2), v = (1, -1)", expected=np.array([2.0, -10.0]))
    # y = (exp(x) + 1) exp(x) at ln 2: the second derivative 18
    _check_hvp(lambda x: ((ad.exp(x) + 1) * ad.exp(x)).sum(), np.array([np.log(2.0)]),
               np.array([1.0]), "(exp(x) + 1) exp(x) at x = ln 2, v = 1", expected=np.array([18.0]))
grading.passed("hvp")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _n = int(_rng.integers(2, 7))
    _B = _rng.standard_normal((_n, _n))
    _A = _B + _B.T
    _b = _rng.standard_normal(_n)
    _x0, _v = _rng.uniform(-1, 1, _n), _rng.standard_normal(_n)
    _check_hvp(lambda x: 0.5 * (x @ (ad.tensor(_A) @ x)) + (x * _b).sum(), _x0, _v,
               f"a quadratic 1/2 x^T A x + b^T x, n = {_n} (H = A)", expected=_A @ _v)
    _check_hvp(lambda x: ad.log(ad.exp(x).sum()) + (ad.sin(x) * x).sum(), _x0, _v,
               f"log-sum-exp(x) + sum(x sin x), n = {_n}, random v")
    _W = _rng.standard_normal((3, _n))
    _check_hvp(lambda x: (ad.tanh(ad.tensor(_W) @ x) ** 2).sum(), _x0, _v,
               f"sum(tanh(W x)^2), W of shape (3, {_n}), random v")
### END HIDDEN TESTS

# %% [markdown]
# The cell below checks your `hvp` against the full Hessian of
# $f(x) = \sum_i x_i \sin x_i + \log \sum_i e^{x_i}$ at a random point, and shows the cost difference: `hessian`
# runs one backward pass per row of $H$, `hvp` runs two passes in all.

# %%
rng = np.random.default_rng(4)
n = 40
x0, v = rng.uniform(-1, 1, n), rng.standard_normal(n)


def smooth(x):
    return (ad.sin(x) * x).sum() + ad.log(ad.exp(x).sum())


try:
    start = time.perf_counter()
    product = hvp(smooth, x0, v)
    t_hvp = time.perf_counter() - start
    start = time.perf_counter()
    H = ad.functional.hessian(smooth, ad.tensor(x0)).data
    t_full = time.perf_counter() - start
    print(f"n = {n}: hvp took {1e3 * t_hvp:.1f} ms, the full Hessian {1e3 * t_full:.1f} ms; "
          f"largest difference of H v: {np.max(np.abs(H @ v - product)):.1e}")
except NotImplementedError:
    print("Finish exercise 5 (hvp) to compare it with the full Hessian.")

# %% [markdown]
# ## Summary
#
# * The **adjoint** $\bar v_i = \partial y/\partial v_i$ is what reverse mode
#   carries, from $\bar y = 1$ back to the inputs, whose adjoints form the
#   gradient after a single backward pass.
# * A value used by several consumers receives one **partial adjoint**
#   $\bar v_{i\to j} = \bar v_j\,\partial v_j/\partial v_i$ from each, and its
#   adjoint is their **sum**: $(\exp(v_1)+1)\exp(v_1)$ gives
#   $\bar v_2 = 3 + 2 = 5$ and $\bar v_1 = 10$.
# * Walking the nodes in **reverse topological order** guarantees that a
#   node's adjoint is complete before it is used. Find the order with an
#   iterative search (or by counting consumers): a recursive one fails on
#   graphs deeper than Python's recursion limit.
# * The **`node_to_grad`** algorithm: sum a node's list, call its backward
#   rule (a VJP), append the results to its inputs' lists, undo broadcasting
#   with a sum. Each node once, each edge once: a gradient costs a small
#   constant multiple of the forward pass (about 3 times in all for a matrix
#   product). Recording the graph is the other half: a `Value` that stores
#   its operands with their local derivatives, and a backward pass that
#   counts consumers and **adds** (`+=`) into each operand's `grad`.
# * Containers have adjoint containers: `b = d["cat"]` adds $\bar b$ into
#   `d_bar["cat"]`; indexing a tensor scatters its adjoint back.
# * In a framework: set `requires_grad` **before** computing; leaves keep
#   `.grad`, intermediates only with `retain_grad`; `backward`
#   **accumulates** until you clear it; `detach` makes a constant; control
#   flow is differentiated along the path taken; `backward(gradient=u)`
#   computes $u^\top J$; a second `backward` through the same graph needs
#   `retain_graph=True`.
# * Recording the backward pass as new nodes (**extending the graph**,
#   `create_graph=True`) makes gradients differentiable: second derivatives
#   and **Hessian-vector products** $Hv = \nabla(\nabla f^\top v)$ at the cost
#   of two backward passes.
#
# Next, notebook 05 derives the backward rules themselves for matrices:
# matrix multiplication, broadcasting, reductions and softmax.
