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
# (Shift-Enter). There are eight exercises (12 points). In each one, replace
# `raise NotImplementedError()` with your code, then run the test cell right
# below it. The visible tests use the numbers from the text; when the
# notebook is graded, hidden tests run your function on fresh random graphs
# and inputs. A failing test says in words what is wrong. Every other cell
# runs without your code. Above each exercise a line says which parts of
# `autodiff_ref` (`ad`) the answer may use: the autograder enforces it.

# %%
# %matplotlib inline
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
# simple function of earlier values, ending with a scalar output $y$. Forward
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
# | $v_1 = x_1$ | $2$ | $\bar v_1 = \bar v_3 / v_1 + \bar v_4\, v_2 = 5.5$ | $v_1$ feeds $v_3$ and $v_4$ |
# | $v_2 = x_2$ | $5$ | $\bar v_2 = \bar v_4\, v_1 + \bar v_5 \cos v_2 = 2 - \cos 5 \approx 1.7163$ | $v_2$ feeds $v_4$ and $v_5$ |
# | $v_3 = \ln v_1$ | $0.6931$ | $\bar v_3 = \bar v_6 = 1$ | |
# | $v_4 = v_1 v_2$ | $10$ | $\bar v_4 = \bar v_6 = 1$ | |
# | $v_5 = \sin v_2$ | $-0.9589$ | $\bar v_5 = -\bar v_7 = -1$ | |
# | $v_6 = v_3 + v_4$ | $10.6931$ | $\bar v_6 = \bar v_7 = 1$ | |
# | $v_7 = v_6 - v_5$ | $11.6521$ | $\bar v_7 = 1$ | the output |
#
# Read the adjoint column from the bottom up: that is the order in which they
# are computed. The next cell builds the same program with `autodiff_ref`,
# asks every intermediate value to keep its gradient (`retain_grad`, section
# 5) and prints the adjoints the engine found.

# %%
x1 = ad.tensor(2.0, requires_grad=True)
x2 = ad.tensor(5.0, requires_grad=True)
v3 = ad.log(x1)
v4 = x1 * x2
v5 = ad.sin(x2)
v6 = v3 + v4
v7 = v6 - v5
for v in (v3, v4, v5, v6, v7):
    v.retain_grad()
v7.backward()
print(f"{'value':>6} {'forward':>10} {'adjoint':>9}")
for name, v in [("v1", x1), ("v2", x2), ("v3", v3), ("v4", v4), ("v5", v5), ("v6", v6),
                ("v7", v7)]:
    print(f"{name:>6} {v.item():10.4f} {v.grad.item():9.4f}")
assert np.isclose(x1.grad.item(), 5.5) and np.isclose(x2.grad.item(), 2 - np.cos(5.0))

# %% [markdown]
# ## 2. Partial adjoints: a value used twice
#
# In the table, $v_1$ feeds two later values, $v_3$ and $v_4$, and its
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
# computed with one call of $\exp$:
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
# there are several valid orders, for example $v_3, v_4, v_5, v_6, v_7$ and
# $v_5, v_4, v_3, v_6, v_7$; any of them works.
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
# backward pass costs about as much as the forward pass: that is why one
# backward pass gives the **whole** gradient for a small constant times the
# cost of evaluating $y$.
#
# Step it through on $(\exp(v_1)+1)\exp(v_1)$ below. The black arrows are the
# forward graph; a red arrow is a partial adjoint sent back along an edge.
# Watch `node_to_grad[2]` collect two entries before node 2 is processed, and
# move $v_1$ to see the numbers change.

# %%
POSITIONS = {1: (0.0, 0.0), 2: (1.8, 0.0), 3: (3.6, 1.1), 4: (5.4, 0.0)}
FORMULAS = {1: "$v_1$", 2: r"$v_2 = \exp(v_1)$", 3: "$v_3 = v_2 + 1$",
            4: r"$v_4 = v_2 \cdot v_3$"}
INPUTS = {4: [2, 3], 3: [2], 2: [1], 1: []}  # node -> its inputs, in order


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
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for j, inputs in INPUTS.items():
        for i in inputs:
            ax.annotate("", xy=POSITIONS[j], xytext=POSITIONS[i],
                        arrowprops=dict(arrowstyle="->", color="0.3", shrinkA=28, shrinkB=28))
    for i, j, partial in sent:
        (x0, y0), (x1, y1) = POSITIONS[j], POSITIONS[i]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="->", color="C3", lw=1.8, shrinkA=28,
                                    shrinkB=28, connectionstyle="arc3,rad=0.35"))
        bend = 0.35 * np.array([y1 - y0, x0 - x1]) / 2
        mx, my = (x0 + x1) / 2 + bend[0], (y0 + y1) / 2 + bend[1]
        ax.text(mx, my, rf"$\bar v_{{{i}\to{j}}} = {partial:.3g}$", color="C3",
                ha="center", va="center", fontsize=10,
                bbox=dict(fc="white", ec="none", alpha=0.8))
    for k, (x, y) in POSITIONS.items():
        face = "#fde2e1" if k == current else ("#eeeeee" if k in adjoint else "#e8f0fe")
        ax.add_patch(plt.Circle((x, y), 0.42, fc=face, ec="k"))
        ax.text(x, y + 0.1, f"$v_{k}$ = {v[k]:.3g}", ha="center", va="center", fontsize=10)
        if k in adjoint:
            ax.text(x, y - 0.15, rf"$\bar v_{k}$ = {adjoint[k]:.3g}", ha="center",
                    va="center", color="C3", fontsize=10)
        ax.text(x, y - 0.6, FORMULAS[k], ha="center", va="top", fontsize=9)
    listing = ", ".join(f"{k}: [{', '.join(f'{p:.3g}' for p in table[k])}]"
                        for k in sorted(table, reverse=True))
    ax.text(2.7, -1.35, "node_to_grad = {" + listing + "}", ha="center", fontsize=10,
            family="monospace")
    title = ("start: node_to_grad holds the seed 1 for the output" if current is None else
             f"step {step}: node {current} sums its list into its adjoint and sends "
             f"{len(INPUTS[current])} partial adjoint(s)")
    ax.set_title(title, fontsize=11)
    ax.set_xlim(-0.7, 6.1)
    ax.set_ylim(-1.6, 1.8)
    ax.set_aspect("equal")
    ax.axis("off")
    plt.show()


values, steps = node_to_grad_steps(np.log(2.0))
assert np.allclose(steps[2][1][2], [3.0, 2.0]) and np.isclose(steps[-1][2][1], 10.0)
explorer = widgets.interactive(
    show_step,
    v1=widgets.FloatSlider(value=float(np.log(2.0)), min=-1.5, max=1.5, step=0.01,
                           description="v1"),
    step=widgets.IntSlider(value=0, min=0, max=4, description="step"),
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


# the seed example: y = ln(x1) + x1 x2 - sin(x2) at (2, 5): 5.5 and 2 - cos(5)
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
_a = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
_B = ad.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]], requires_grad=True)
_g = _run_gradients(((_a + _B) * _B).sum(), [_a, _B], "((a + B) * B).sum(), a (3,), B (2, 3)")
grading.assert_close(_g[0], _B.data.sum(axis=0),
                     name="gradients(((a + B) * B).sum())[0], a of shape (3,) broadcast to (2, 3)")
grading.assert_close(_g[1], _a.data + 2 * _B.data, name="gradients(((a + B) * B).sum())[1]")
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
#   operations involving such tensors are recorded.
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
# * **`y.backward(gradient=v)`**: without an argument, `y` must be a scalar and
#   the seed is $\bar y = 1$. For a non-scalar `y`, the seed $v$ (the shape
#   of `y`) is the upstream gradient, and the result in `x.grad` is the
#   vector-Jacobian product $v^\top J$. For `y = 2 * x`, $J = 2I$ and
#   `v = [1, 0, 0]` gives `[2, 0, 0]`.
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
# ### Exercise 3 (1 point): gradients accumulate
#
# Write `accumulate(f, g, x0)` with **one** leaf `x`, and return three
# snapshots of `x.grad`. Return copies (`x.grad.numpy().copy()`): a snapshot
# that shares memory with `x.grad`, or is `x.grad` itself, changes when you
# clear it.
#
# *The autograder lets this answer use `ad.tensor`.*

# %% solution="accumulate" allow="tensor"
def accumulate(f, g, x0):
    """Three snapshots of x.grad for the leaf x = ad.tensor(x0, requires_grad=True).

    f, g: functions that take a Tensor of x0's shape and return a scalar Tensor.
    Returns (first, second, third), NumPy arrays of x0's shape:
      first:  x.grad after f(x).backward();
      second: x.grad after then also calling g(x).backward(), without clearing;
      third:  x.grad after clearing it and calling g(x).backward() once more.
    """
    ### BEGIN SOLUTION
    x = ad.tensor(x0, requires_grad=True)
    f(x).backward()
    first = x.grad.numpy().copy()
    g(x).backward()
    second = x.grad.numpy().copy()
    x.grad = None
    g(x).backward()
    third = x.grad.numpy().copy()
    return first, second, third
    ### END SOLUTION


# %% test="test_accumulate" points=1
def _check_accumulate(f, g, x0, grad_f, grad_g, what):
    result = accumulate(f, g, x0.copy())
    if result is None or len(result) != 3:
        raise grading.GradingError(f"accumulate({what}) should return three arrays "
                                   f"(first, second, third), got {result!r}.")
    first, second, third = (np.asarray(r.data if isinstance(r, ad.Tensor) else r,
                                       dtype=float) for r in result)
    grading.assert_close(first, grad_f, name=f"accumulate({what})[0] (x.grad after f's backward)")
    if second.shape == grad_g.shape and np.allclose(second, grad_g) and \
            not np.allclose(grad_f, 0):
        raise grading.GradingError(
            f"accumulate({what})[1] equals the gradient of g alone, but backward adds into "
            "x.grad: after f(x).backward() and g(x).backward() on the same leaf, without "
            "clearing, x.grad holds grad f + grad g. Use one leaf x for all three steps.")
    if second.shape == grad_g.shape and np.allclose(second, 0) and \
            not np.allclose(grad_f + grad_g, 0):
        raise grading.GradingError(
            f"accumulate({what})[1] is all zeros: you returned x.grad itself (or an array "
            "sharing its memory) and then cleared it. Return copies: x.grad.numpy().copy().")
    grading.assert_close(second, grad_f + grad_g,
                         name=f"accumulate({what})[1] (x.grad after f's and g's backward: "
                              "grad f + grad g)")
    if third.shape == grad_g.shape and np.allclose(third, grad_f + 2 * grad_g):
        raise grading.GradingError(
            f"accumulate({what})[2] equals grad f + 2 grad g: x.grad was not cleared before "
            "the third backward. Set x.grad = None (or x.grad.zero_()) first.")
    grading.assert_close(third, grad_g,
                         name=f"accumulate({what})[2] (x.grad after clearing and g's backward)")


# f = 2 x^T x has gradient 4x = [0, 4, 8, 12] at x = [0, 1, 2, 3]; g = sum(x) has gradient 1
_x0 = np.arange(4.0)
_check_accumulate(lambda x: 2 * (x @ x), lambda x: x.sum(), _x0,
                  np.array([0.0, 4.0, 8.0, 12.0]), np.ones(4), "2 x^T x, sum(x), [0, 1, 2, 3]")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _shape = [(int(_rng.integers(2, 6)),), (2, 3), (3, 1, 2)][int(_rng.integers(3))]
    _x0 = _rng.uniform(-1, 1, _shape)
    _W = _rng.standard_normal(_shape)
    _f = lambda x: (ad.sin(x) * _W).sum()  # noqa: E731
    _gf = lambda x: (x * x * x).sum() + x.sum()  # noqa: E731
    _check_accumulate(_f, _gf, _x0, np.cos(_x0) * _W, 3 * _x0**2 + 1,
                      f"sum(sin(x) * W), sum(x^3 + x), x of shape {_shape}")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (1 point): leaves and intermediates
#
# Write `leaf_and_intermediate(h, f, x0)`: with `y = h(x)` an intermediate
# tensor and `z = f(y)` a scalar, return $\partial z/\partial x$ and
# $\partial z/\partial y$ using **one** call of `z.backward()`.
#
# *The autograder lets this answer use `ad.tensor`.*

# %% solution="leaf_and_intermediate" allow="tensor"
def leaf_and_intermediate(h, f, x0):
    """dz/dx and dz/dy for y = h(x), z = f(y), from a single backward pass.

    h: a function from a Tensor of x0's shape to a Tensor (any shape);
    f: a function from such a Tensor to a scalar Tensor.
    Returns (dz_dx, dz_dy): NumPy arrays with the shapes of x0 and of y.
    """
    ### BEGIN SOLUTION
    x = ad.tensor(x0, requires_grad=True)
    y = h(x)
    y.retain_grad()
    f(y).backward()
    return x.grad.numpy().copy(), y.grad.numpy().copy()
    ### END SOLUTION


# %% test="test_leaf_and_intermediate" points=1
def _check_leaf_and_intermediate(h, f, x0, what):
    try:
        result = leaf_and_intermediate(h, f, x0.copy())
    except AttributeError as err:
        raise grading.GradingError(
            f"leaf_and_intermediate({what}) raised AttributeError ({err}). If y.grad was "
            "None: an intermediate tensor keeps its gradient only if you call "
            "y.retain_grad() before backward.") from None
    if result is None or len(result) != 2 or any(r is None for r in result):
        raise grading.GradingError(
            f"leaf_and_intermediate({what}) returned {result!r}; expected two arrays "
            "(dz_dx, dz_dy). If dz_dy is None: call y.retain_grad() before z.backward().")
    x = ad.tensor(x0, requires_grad=True)
    y = ad.tensor(h(ad.tensor(x0)).data, requires_grad=True)
    (dz_dy,) = ad.grad(f(y), y)
    (dz_dx,) = ad.grad(f(h(x)), x)
    grading.assert_close(result[0], dz_dx.data, name=f"leaf_and_intermediate({what})[0] (dz/dx)")
    grading.assert_close(result[1], dz_dy.data, name=f"leaf_and_intermediate({what})[1] (dz/dy)")


# y = x * x, z = sum(y * y) at x = [1, 2, 3]: dz/dy = 2y = [2, 8, 18], dz/dx = 4x^3 = [4, 32, 108]
_check_leaf_and_intermediate(lambda x: x * x, lambda y: (y * y).sum(), np.array([1.0, 2.0, 3.0]),
                             "y = x * x, z = sum(y * y), x = [1, 2, 3]")
_r = leaf_and_intermediate(lambda x: x * x, lambda y: (y * y).sum(), np.array([1.0, 2.0, 3.0]))
grading.assert_close(_r[1], np.array([2.0, 8.0, 18.0]), name="dz/dy for y = x * x, z = sum(y^2)")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _n, _m = int(_rng.integers(2, 6)), int(_rng.integers(2, 6))
    _A = _rng.standard_normal((_m, _n))
    _c = _rng.standard_normal(_m)
    _check_leaf_and_intermediate(lambda x: ad.tanh(ad.tensor(_A) @ x),
                                 lambda y: (ad.sin(y) * _c).sum() + (y * y).sum(),
                                 _rng.uniform(-1, 1, _n),
                                 f"y = tanh(A x) with A of shape ({_m}, {_n}), "
                                 "z = sum(sin(y) c) + sum(y^2)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 5 (1 point): holding part of a function constant with `detach`
#
# Sometimes a value must be used but not differentiated through (a target in
# reinforcement learning, a running statistic). Write
# `grad_with_constant(f, g, x0)`: the gradient of
# $L(x) = \sum f(x) \odot g(x)$ where $g(x)$ is treated as a **constant**: its
# value is used, but no gradient flows through it. With $f(x) = x$ and
# $g(x) = x \odot x$ at $x = (0, 1, 2, 3)$ that is $g(x) = (0, 1, 4, 9)$, not
# the full gradient $3x^2 = (0, 3, 12, 27)$.
#
# *The autograder lets this answer use `ad.tensor`.*

# %% solution="grad_with_constant" allow="tensor"
def grad_with_constant(f, g, x0):
    """The gradient of sum(f(x) * g(x)) with g(x) held constant (detached).

    f, g: functions from a Tensor of x0's shape to Tensors of one common shape.
    Returns a NumPy array of x0's shape.
    """
    ### BEGIN SOLUTION
    x = ad.tensor(x0, requires_grad=True)
    (f(x) * g(x).detach()).sum().backward()
    return x.grad.numpy().copy()
    ### END SOLUTION


# %% test="test_grad_with_constant" points=1
def _check_constant(f, g, x0, what):
    x = ad.tensor(x0, requires_grad=True)
    (f(x) * ad.tensor(g(ad.tensor(x0)).data)).sum().backward()
    full = ad.tensor(x0, requires_grad=True)
    (f(full) * g(full)).sum().backward()
    got = grad_with_constant(f, g, x0.copy())
    if got is not None and np.shape(got) == x0.shape and \
            np.allclose(got, full.grad.data) and not np.allclose(full.grad.data, x.grad.data):
        raise grading.GradingError(
            f"grad_with_constant({what}) is the full gradient of sum(f(x) * g(x)): the "
            "gradient also flowed through g(x). Use g(x).detach() to hold it constant.")
    grading.assert_close(got, x.grad.data, name=f"grad_with_constant({what})")


# the d2l example: f(x) = x, g(x) = x * x at [0, 1, 2, 3] gives g(x) = [0, 1, 4, 9]
_check_constant(lambda x: x, lambda x: x * x, np.arange(4.0), "f = x, g = x * x, [0, 1, 2, 3]")
grading.assert_close(grad_with_constant(lambda x: x, lambda x: x * x, np.arange(4.0)),
                     np.array([0.0, 1.0, 4.0, 9.0]),
                     name="grad_with_constant(f = x, g = x * x) at [0, 1, 2, 3]")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _n = int(_rng.integers(2, 6))
    _A = _rng.standard_normal((3, _n))
    _check_constant(lambda x: ad.sin(x) * x, lambda x: ad.exp(x * 0.5) + x * x,
                    _rng.uniform(-1, 1, _n), f"f = sin(x) x, g = exp(x/2) + x^2, n = {_n}")
    _check_constant(lambda x: ad.tensor(_A) @ x, lambda x: ad.tanh(ad.tensor(_A) @ (x * x)),
                    _rng.uniform(-1, 1, _n), f"f = A x, g = tanh(A x^2), A of shape (3, {_n})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 6 (1 point): gradients through Python control flow
#
# Write `doubling(a)` with ordinary Python control flow on tensors: start with
# $b = 2a$; while $\|b\| < 1000$, double $b$; then return $c = b$ if
# $\sum b > 0$, and $c = 100\, b$ otherwise. (`b.norm()` gives $\|b\|$, and a
# comparison of a one-element tensor with a number works in `while` and
# `if`.) Whatever the number of loop iterations, $c = k\,a$ for a number $k$
# that depends on $a$, so the gradient of $c$ is that multiplier $k$: the
# engine differentiates the path that actually ran.
#
# Use tensor operations throughout (no `.data`, no NumPy on the values), or
# the result is cut off from the graph.

# %% solution="doubling"
def doubling(a):
    """c = k a with the doubling loop above.

    a: a Tensor (any shape, not all zeros), possibly with requires_grad=True.
    Returns c, a Tensor of a's shape computed from a with tensor operations:
    b = 2a; while ||b|| < 1000: b = 2b; c = b if sum(b) > 0 else 100 b.
    """
    ### BEGIN SOLUTION
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        return b
    return 100 * b
    ### END SOLUTION


# %% test="test_doubling" points=1
def _multiplier(a0):
    """k with doubling(a) = k a, computed with NumPy."""
    k = 2.0
    while np.linalg.norm(k * a0) < 1000:
        k *= 2
    return k if np.sum(k * a0) > 0 else 100 * k


def _check_doubling(a0, what):
    a = ad.tensor(a0, requires_grad=True)
    c = doubling(a)
    k = _multiplier(a0)
    if c is None:
        raise grading.GradingError(f"doubling({what}) returned None. Did you forget `return`?")
    grading.assert_close(c, k * a0, rtol=1e-12, name=f"doubling({what}) (expected {k:g} a)")
    if not isinstance(c, ad.Tensor) or not c.requires_grad:
        raise grading.GradingError(
            f"doubling({what}) returned a value with no graph behind it: compute c with tensor "
            "operations on a (b * 2, b.norm(), b.sum()), not with .data or NumPy.")
    upstream = np.linspace(1.0, 2.0, a0.size).reshape(a0.shape)
    c.backward(gradient=upstream)
    grading.assert_close(a.grad, k * upstream, rtol=1e-12,
                         name=f"the gradient of doubling({what}) (the multiplier {k:g})")


# a = 1.5: b = 3 doubled 9 times is 1536 >= 1000, so c = 1024 a; a = -0.75 gives c = 102400 a
_check_doubling(np.array(1.5), "1.5")
_check_doubling(np.array(-0.75), "-0.75")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _shape = [(), (3,), (2, 2)][int(_rng.integers(3))]
    _a0 = _rng.uniform(-1, 1, _shape) * 10 ** _rng.uniform(-3, 1)
    _check_doubling(_a0, f"a random tensor of shape {_shape}")
# the norm reaches exactly 1000: (0.6, 0.8) * 1000 / 1024 doubled ten times; the loop stops
_check_doubling(np.array([600.0, 800.0]) / 1024, "[600, 800] / 1024 (the norm reaches exactly "
                                                  "1000 and the loop stops: < 1000, not <=)")
# the sum is exactly 0 (not > 0): c = 100 b
_check_doubling(np.array([0.5, -0.5]), "[0.5, -0.5] (sum(b) = 0 is not > 0, so c = 100 b)")
# the sum is positive but below 1
_check_doubling(np.array([1.0, -1.0 + 1e-4]), "[1, -1 + 1e-4] (sum(b) is small but positive)")
# already large: b = 2a passes 1000 at once, so the loop never runs and c = 2a
_check_doubling(np.array([800.0, 600.0]), "[800, 600] (norm 1000: b = 2a is returned at once)")
### END HIDDEN TESTS

# %% [markdown]
# The plot shows $c = k\,a$ for a scalar $a$ and its derivative $k$ found by
# the engine: a staircase of powers of two, and a factor 100 for negative $a$.
# Between the jumps each piece is a straight line, and on each piece the
# gradient is exact; at the jumps the function is not even continuous, and
# the engine still reports the slope of the piece it evaluated. That is what
# "differentiating the path that ran" means.

# %%
a_grid = np.geomspace(0.01, 10, 90)
try:
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
    left.set_title("c = doubling(a)")
    left.legend()
    right.loglog(a_grid, slopes[:n], ".", label="a > 0")
    right.loglog(a_grid, slopes[n:], ".", label="a < 0")
    right.set_xlabel("|a|")
    right.set_title("dc/da from autodiff_ref: the multiplier k")
    right.legend()
    plt.show()
except NotImplementedError:
    print("Finish exercise 6 to see the plot.")

# %% [markdown]
# ### Exercise 7 (1 point): backward with an upstream gradient
#
# Write `vjp_by_backward(f, x0, v)`: the vector-Jacobian product $v^\top J$
# of $f$ at $x_0$, where `f` returns a tensor that need not be a scalar. One
# call of `backward` with the argument `gradient=v` does it. For
# $f(x) = 2x$ and $v = (1, 0, 0)$ the answer is $(2, 0, 0)$.
#
# *The autograder lets this answer use `ad.tensor`.*

# %% solution="vjp_by_backward" allow="tensor"
def vjp_by_backward(f, x0, v):
    """v^T J for the Jacobian J of f at x0, with one backward call.

    f: a function from a Tensor of x0's shape to a Tensor y (any shape);
    x0: a NumPy array; v: a NumPy array of y's shape (the upstream gradient).
    Returns a NumPy array of x0's shape: sum over i of v[i] * dy[i]/dx.
    """
    ### BEGIN SOLUTION
    x = ad.tensor(x0, requires_grad=True)
    f(x).backward(gradient=v)
    return x.grad.numpy().copy()
    ### END SOLUTION


# %% test="test_vjp_by_backward" points=1
def _check_vjp(f, x0, v, what):
    _, expected = ad.functional.vjp(f, ad.tensor(x0), ad.tensor(v))
    got = vjp_by_backward(f, x0.copy(), v.copy())
    ones = ad.functional.vjp(f, ad.tensor(x0), ad.tensor(np.ones_like(v)))[1]
    grading.assert_close(got, expected.data, name=f"vjp_by_backward({what})",
                         without_upstream=ones.data)


# y = 2x, v = [1, 0, 0]: [2, 0, 0]; y = x * x at [1, 2, 3] with v = [0, 1, 0]: [0, 4, 0]
_check_vjp(lambda x: 2 * x, np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 0.0]),
           "2x, x = [1, 2, 3], v = [1, 0, 0]")
grading.assert_close(vjp_by_backward(lambda x: 2 * x, np.array([1.0, 2.0, 3.0]),
                                     np.array([1.0, 0.0, 0.0])), np.array([2.0, 0.0, 0.0]),
                     name="vjp_by_backward(2x, [1, 2, 3], [1, 0, 0])")
_check_vjp(lambda x: x * x, np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0]),
           "x * x, x = [1, 2, 3], v = [0, 1, 0]")
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(3):
    _n, _m = int(_rng.integers(2, 6)), int(_rng.integers(2, 6))
    _A = _rng.standard_normal((_m, _n))
    _check_vjp(lambda x: ad.tanh(ad.tensor(_A) @ ad.sin(x)), _rng.uniform(-1, 1, _n),
               _rng.standard_normal(_m), f"tanh(A sin(x)), A of shape ({_m}, {_n}), random v")
    _check_vjp(lambda x: x.reshape(1, -1) * x.reshape(-1, 1), _rng.uniform(-1, 1, _n),
               _rng.standard_normal((_n, _n)), f"the outer product x x^T, n = {_n}, random v")
### END HIDDEN TESTS

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
# ### Exercise 8 (2 points): a Hessian-vector product
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


_f = lambda x: x[0] * x[0] * x[1] + x[1] ** 3  # noqa: E731
_check_hvp(_f, np.array([1.0, 2.0]), np.array([1.0, 0.0]),
           "x1^2 x2 + x2^3, x = (1, 2), v = (1, 0)", expected=np.array([4.0, 2.0]))
_check_hvp(_f, np.array([1.0, 2.0]), np.array([1.0, -1.0]),
           "x1^2 x2 + x2^3, x = (1, 2), v = (1, -1)", expected=np.array([2.0, -10.0]))
# y = (exp(x) + 1) exp(x) at ln 2: the second derivative 18
_check_hvp(lambda x: ((ad.exp(x) + 1) * ad.exp(x)).sum(), np.array([np.log(2.0)]),
           np.array([1.0]), "(exp(x) + 1) exp(x) at x = ln 2, v = 1", expected=np.array([18.0]))
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
# The cell below checks your `hvp` against the full Hessian of a random
# quadratic-plus-sine function, and shows the cost difference: `hessian`
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
    print("Finish exercise 8 to compare hvp with the full Hessian.")

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
#   constant times the forward pass.
# * Containers have adjoint containers: `b = d["cat"]` adds $\bar b$ into
#   `d_bar["cat"]`; indexing a tensor scatters its adjoint back.
# * In a framework: leaves keep `.grad`, intermediates only with
#   `retain_grad`; `backward` **accumulates** until you clear it; `detach`
#   makes a constant; control flow is differentiated along the path taken;
#   `backward(gradient=v)` computes $v^\top J$.
# * Recording the backward pass as new nodes (**extending the graph**,
#   `create_graph=True`) makes gradients differentiable: second derivatives
#   and **Hessian-vector products** $Hv = \nabla(\nabla f^\top v)$ at the cost
#   of two backward passes.
#
# Next, notebook 05 derives the backward rules themselves for matrices:
# matrix multiplication, broadcasting, reductions and softmax.
