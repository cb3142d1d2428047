"""Drawing computational graphs in a notebook, with no system binaries.

``draw(*outputs)`` lays the graph out left to right (inputs first) and
returns a ``Graph`` that Jupyter shows as SVG. Each box is a leaf tensor or
the output of one Function, with its value and, when known, its gradient.

Intermediate tensors only keep a gradient if they called ``retain_grad()``;
``trace()`` does that for every tensor created inside it and keeps them
alive, and ``circuit()`` does the whole thing for a small function::

    g = ad.viz.circuit(lambda x, y, z: (x + y) * z, x=-2.0, y=5.0, z=-4.0)
    g            # in a notebook: the boxes show values and gradients
"""

from __future__ import annotations

import html

import numpy as np

from .engine import backward_order
from .function import output_hooks
from .tensor import Tensor

BOX_W, LINE_H, PAD, GAP_X, GAP_Y = 150, 16, 6, 60, 18


class trace:
    """Keep every tensor created inside the block alive and retain its grad.

    ``with ad.viz.trace() as tape: ...``; afterwards ``tape.tensors`` lists
    them in creation order.
    """

    def __init__(self):
        self.tensors = []

    def __enter__(self):
        output_hooks.append(self.tensors.append)
        return self

    def __exit__(self, *exc):
        output_hooks.remove(self.tensors.append)
        for t in self.tensors:
            t.retain_grad()
        return False


def _fmt(value):
    if value is None:
        return "?"
    a = np.asarray(value.data if isinstance(value, Tensor) else value)
    if a.size == 1:
        return f"{a.item():.4g}"
    if a.size <= 4:
        return "[" + ", ".join(f"{v:.3g}" for v in a.ravel()) + "]"
    return "shape " + str(tuple(a.shape))


class Graph:
    """A drawn graph: ``.svg`` is the picture, ``.boxes`` the label lines."""

    def __init__(self, svg, boxes):
        self.svg = svg
        self.boxes = boxes

    def _repr_svg_(self):
        return self.svg

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)


def draw(*outputs, show_grad=True):
    """Draw the graph that produced ``outputs`` (tensors)."""
    for o in outputs:
        if not isinstance(o, Tensor):
            raise TypeError(f"draw() takes tensors, got {type(o).__name__}")
    order = list(backward_order(outputs))[::-1]  # producers first
    items, depth, edges = [], {}, []
    key_of = {}

    def add_leaf(t):
        if id(t) not in key_of:
            key_of[id(t)] = len(items)
            items.append(("leaf", t))
            depth[key_of[id(t)]] = 0
        return key_of[id(t)]

    for o in outputs:
        if o.grad_fn is None:
            add_leaf(o)
    for node in order:
        k = len(items)
        key_of[id(node)] = k
        items.append(("node", node))
        sources = []
        for s in node.next:
            if s is None:
                continue
            sources.append(add_leaf(s) if isinstance(s, Tensor) else key_of[id(s)])
        depth[k] = 1 + max((depth[s] for s in sources), default=0)
        edges.extend((s, k) for s in sources)

    boxes = []
    for kind, obj in items:
        t = obj if kind == "leaf" else obj.output()
        title = (getattr(t, "name", None) or "") if t is not None else ""
        if kind == "node":
            op = obj.function.__name__
            title = f"{title} = {op}" if title else op
        elif not title:
            title = "input"
        lines = [title, f"value {_fmt(t)}" if t is not None else "value ?"]
        if show_grad:
            lines.append(f"grad {_fmt(t.grad) if t is not None and t.grad is not None else '-'}")
        boxes.append(lines)

    columns = {}
    for k in range(len(items)):
        columns.setdefault(depth[k], []).append(k)
    height = (len(boxes[0]) if boxes else 2) * LINE_H + 2 * PAD
    pos = {}
    for d, ks in columns.items():
        for row, k in enumerate(ks):
            pos[k] = (10 + d * (BOX_W + GAP_X), 10 + row * (height + GAP_Y))
    width = 20 + (max(columns, default=0) + 1) * (BOX_W + GAP_X)
    total_h = 20 + max((len(ks) for ks in columns.values()), default=1) * (height + GAP_Y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
             'font-family="monospace" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
             '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    for s, k in edges:
        x1, y1 = pos[s][0] + BOX_W, pos[s][1] + height / 2
        x2, y2 = pos[k][0], pos[k][1] + height / 2
        parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555" '
                     'marker-end="url(#arrow)"/>')
    for k, lines in enumerate(boxes):
        x, y = pos[k]
        fill = "#e8f0fe" if items[k][0] == "leaf" else "#fef7e0"
        parts.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{height}" rx="6" '
                     f'fill="{fill}" stroke="#333"/>')
        for i, line in enumerate(lines):
            color = "#b3261e" if line.startswith("grad") else "#111"
            weight = ' font-weight="bold"' if i == 0 else ""
            parts.append(f'<text x="{x + PAD}" y="{y + PAD + (i + 0.8) * LINE_H}" '
                         f'fill="{color}"{weight}>{html.escape(line)}</text>')
    parts.append("</svg>")
    return Graph("\n".join(parts), boxes)


def circuit(fn, **inputs):
    """Run ``fn`` on named scalar (or array) inputs, back-propagate from its
    output, and draw the graph with every value and gradient.

    Inputs become leaves named after the keywords; an intermediate tensor
    can be labelled inside ``fn`` with ``t.name = "q"``.
    """
    leaves = {}
    for name, value in inputs.items():
        t = Tensor(np.asarray(value, dtype=np.float64), requires_grad=True)
        t.name = name
        leaves[name] = t
    with trace() as tape:
        out = fn(**leaves)
    if out.size == 1:
        out.backward()
    else:
        out.backward(Tensor(np.ones(out.shape)))
    graph = draw(out)
    graph.output, graph.inputs, graph.tape = out, leaves, tape.tensors
    return graph
