"""Vector fields shared by the neural-DE tests (test_de_ode.py, test_de_sde.py)."""

from __future__ import annotations

import torch
from torch import nn


class LinearWithUnusedParameter(nn.Module):
    """``f(t, y) = a y`` with ``a = -1`` (float64), and a parameter ``unused`` of 3 entries
    that it never reads: the adjoints give it a ``grad`` of zeros, direct backprop None."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(-1.0, dtype=torch.float64))
        self.unused = nn.Parameter(torch.ones(3, dtype=torch.float64))

    def forward(self, t, y):
        return self.a * y
