"""A tiny network toolkit for the notebooks: Module, Linear, Sequential, ReLU."""

from __future__ import annotations

import numpy as np

from . import ops
from .tensor import Tensor


class Module:
    """Holds parameters (tensors with requires_grad) and sub-modules as attributes."""

    def parameters(self):
        params = []
        for value in vars(self).values():
            if isinstance(value, Tensor) and value.requires_grad:
                params.append(value)
            elif isinstance(value, Module):
                params.extend(value.parameters())
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, Module):
                        params.extend(item.parameters())
        return params

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def __call__(self, *args):
        return self.forward(*args)

    def forward(self, *args):
        raise NotImplementedError


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features), as in PyTorch.

    Weights start uniform in +-1/sqrt(in_features); ``seed`` makes them
    reproducible.
    """

    def __init__(self, in_features, out_features, bias=True, seed=None):
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Tensor(rng.uniform(-bound, bound, (out_features, in_features)),
                             requires_grad=True)
        self.bias = Tensor(rng.uniform(-bound, bound, out_features),
                           requires_grad=True) if bias else None

    def forward(self, x):
        return ops.Linear.apply(x, self.weight, self.bias)

    def __repr__(self):
        out_f, in_f = self.weight.shape
        return f"Linear(in_features={in_f}, out_features={out_f}, bias={self.bias is not None})"


class ReLU(Module):
    def forward(self, x):
        return x.relu()


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class Sequential(Module):
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
