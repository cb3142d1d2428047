"""Stochastic gradient descent with momentum."""

from __future__ import annotations

import numpy as np


class SGD:
    """theta <- theta - lr * v with v <- momentum * v + grad (PyTorch's form).

    With a constant learning rate this is the classic
    Delta w(t) = -lr * dE/dw + momentum * Delta w(t-1), since Delta w = -lr * v.
    Parameters are updated in place (``p.data -= ...``), never through the
    graph: as in PyTorch, a graph recorded before ``step()`` must not be
    back-propagated after it.
    """

    def __init__(self, params, lr, momentum=0.0):
        self.params = list(params)
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.lr, self.momentum = lr, momentum
        self.velocity = [None] * len(self.params)
        self.scratch = [None] * len(self.params)

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
                if v is None:
                    v = self.velocity[i] = g.copy()
                else:  # v <- momentum * v + g, in the optimizer's own buffer
                    v *= self.momentum
                    v += g
                g = v
            if not p.data.flags.writeable:
                p.data = p.data - self.lr * g
                continue
            # p <- p - lr * g in place (like PyTorch), through a reused buffer:
            # no new array per step
            if self.scratch[i] is None or self.scratch[i].shape != g.shape:
                self.scratch[i] = np.empty_like(p.data)
            np.multiply(g, self.lr, out=self.scratch[i])
            p.data -= self.scratch[i]
