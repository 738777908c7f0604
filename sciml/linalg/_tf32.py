"""cuDNN's TF32 setting for float32 convolutions, read and turned off on torch before and after
2.9 (the stencil matvec and DCDM's network both need convolutions to float32 precision)."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["conv_tf32", "no_conv_tf32"]


def _legacy_flag() -> bool | None:
    """``torch.backends.cudnn.allow_tf32``, or None where torch cannot answer it.

    (why) torch >= 2.9 sets the conv and RNN precisions apart
    (``torch.backends.cudnn.conv.fp32_precision = "ieee"``); where they differ, reading the
    legacy flag raises instead of answering (it made every float32 CUDA stencil matvec and every
    DCDM direction raise, on the CPU too), and only the per-op setting says what convolutions do.
    """
    try:
        return bool(torch.backends.cudnn.allow_tf32)
    except RuntimeError:
        return None


def conv_tf32() -> bool:
    """Whether cuDNN may run a float32 convolution in TF32 (10-bit mantissa)."""
    legacy = _legacy_flag()
    if legacy is not None:
        return legacy
    return torch.backends.cudnn.conv.fp32_precision != "ieee"


def no_conv_tf32() -> contextlib.AbstractContextManager[object]:
    """A context in which cuDNN runs float32 convolutions in full float32, its other settings
    as they are; on exit the setting is as it was (nothing changes where TF32 is off)."""
    c = torch.backends.cudnn
    stack = contextlib.ExitStack()
    if not conv_tf32():
        return stack
    conv = getattr(c, "conv", None)
    if conv is None:  # before torch 2.9: the legacy flag is the only setting
        return c.flags(
            enabled=c.enabled,
            benchmark=c.benchmark,
            deterministic=c.deterministic,
            allow_tf32=False,
        )
    # (why) the conv precision alone, also where the legacy flag is readable: cudnn.flags()
    # turns TF32 off by setting the conv precision to "none" (inherit), which still resolves to
    # TF32 under torch.backends.fp32_precision = "tf32", and its exit then raised (it reads the
    # legacy flag, which the inherited TF32 made unreadable) with the settings left changed:
    # every DCDM solve raised so, on the CPU too (measured, torch 2.13)
    before = conv.fp32_precision  # as resolved: an inherited value comes back set on conv
    conv.fp32_precision = "ieee"
    stack.callback(setattr, conv, "fp32_precision", before)
    return stack
