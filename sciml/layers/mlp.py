"""Pointwise (1x1) layers and activations shared by grid models."""

from __future__ import annotations

from torch import nn

from ._checks import check_int

__all__ = ["pointwise", "activation"]

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


def pointwise(in_channels: int, out_channels: int, ndim: int, *, bias: bool = True) -> nn.Module:
    """A channel-mixing linear map applied at every grid point of ``(batch, channels, *spatial)``
    with ``ndim`` spatial dims (a kernel-size-1 convolution)."""
    check_int("in_channels", in_channels)
    check_int("out_channels", out_channels)
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}.get(ndim)
    if conv is None:
        raise ValueError(f"pointwise layers support 1 to 3 spatial dims, got {ndim}")
    return conv(in_channels, out_channels, kernel_size=1, bias=bias)


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (one of gelu, relu, tanh, silu)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}"
        ) from None
