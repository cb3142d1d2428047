"""Stochastic gradient descent with momentum."""

from __future__ import annotations

import numpy as np


class SGD:
    """theta <- theta - lr * v with v <- momentum * v + grad (PyTorch's form).

    With a constant learning rate this is the classic
    Delta w(t) = -lr * dE/dw + momentum * Delta w(t-1), since Delta w = -lr * v.
    Parameters are updated out of place (``p.data = ...``), never through
    the graph.
    """

    def __init__(self, params, lr, momentum=0.0):
        self.params = list(params)
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.lr, self.momentum = lr, momentum
        self.velocity = [None] * len(self.params)

    def zero_grad(self):
        """Forget the accumulated gradients (sets ``p.grad = None``)."""
        for p in self.params:
            p.grad = None

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.data
            if self.momentum:
                v = self.velocity[i]
                g = g if v is None else self.momentum * v + g
                self.velocity[i] = g
            # out of place, one temporary, in the gradient's memory layout
            new = g * -self.lr
            new += p.data
            p.data = new
