"""cuDNN's TF32 setting for float32 convolutions, read and turned off on torch before and after
2.9 (the stencil matvec and DCDM's network both need convolutions to float32 precision)."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["conv_tf32", "no_conv_tf32"]


def _conv_precision() -> str:
    """The float32 precision cuDNN convolutions run at on torch >= 2.9, resolved as torch
    resolves it: the conv setting, where that is ``"none"`` cuDNN's
    (``torch.backends.cudnn.fp32_precision``), where that is ``"none"`` too torch's
    (``torch.backends.fp32_precision``); ``"none"`` where all three are.

    (why) "none" means "inherit from the parent", not TF32 (torch's Context::float32Precision
    walks the same chain, and a convolution runs in TF32 only where the result is "tf32"). The
    installed torch already answers the resolved value from ``conv.fp32_precision``; the chain
    is walked here as well so that a torch answering the raw setting reads the same.
    """
    backends = torch.backends
    for precision in (
        backends.cudnn.conv.fp32_precision,
        getattr(backends.cudnn, "fp32_precision", "none"),
        getattr(backends, "fp32_precision", "none"),
    ):
        if precision != "none":
            return precision
    return "none"


def conv_tf32() -> bool:
    """Whether cuDNN may run a float32 convolution in TF32 (10-bit mantissa).

    torch >= 2.9: True only where the conv precision, resolved through its parents
    (``cudnn.conv`` -> ``cudnn`` -> ``torch.backends``, ``"none"`` inheriting), is ``"tf32"``;
    ``"ieee"``, ``"none"`` all the way up, or a parent's ``"bf16"`` (which CUDA does not take)
    are full float32. Before 2.9: ``torch.backends.cudnn.allow_tf32``.

    (why) not the legacy flag first on torch >= 2.9: where the conv and RNN precisions differ,
    reading it raises instead of answering (it made every float32 CUDA stencil matvec and every
    DCDM direction raise, on the CPU too), and where it answers it agrees with the conv
    precision.
    """
    c = torch.backends.cudnn
    if getattr(c, "conv", None) is None:  # before torch 2.9: the legacy flag is the only setting
        return bool(c.allow_tf32)
    return _conv_precision() == "tf32"


def no_conv_tf32() -> contextlib.AbstractContextManager[object]:
    """A context in which cuDNN runs float32 convolutions in full float32, its other settings
    as they are; on exit the setting is as it was (nothing changes where TF32 is off)."""
    c = torch.backends.cudnn
    stack = contextlib.ExitStack()
    if not conv_tf32():
        return stack
    conv = getattr(c, "conv", None)
    if conv is None:  # before torch 2.9: the legacy flag is the only setting
        # (why) flags() sets every setting it takes, benchmark_limit (default 10) too where
        # cuDNN is available: pass the current one, or a benchmark run inside would try at most
        # 10 algorithms where the user asked for another limit (0: all of them)
        limit = getattr(c, "benchmark_limit", None)
        return c.flags(
            enabled=c.enabled,
            benchmark=c.benchmark,
            benchmark_limit=limit,
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
