"""Reusable building blocks to import into custom models."""

from .mlp import activation, pointwise
from .spectral import SpectralConv

__all__ = ["SpectralConv", "pointwise", "activation"]
