"""GPU kernels (Triton) for the spectral hot paths, with PyTorch references and dispatch.

* :mod:`sciml.kernels.reference`: the PyTorch ground truth of every op.
* :mod:`sciml.kernels.triton_kernels`: the kernels (needs Triton:
  ``pip install 'sciml[kernels]'``; imported lazily).
* :mod:`sciml.kernels.autograd`: ``autograd.Function`` s with forward and backward on either.
* :class:`TritonSpectral`: a spectral-convolution backend built on them.

Dispatch: :class:`sciml.layers.spectral_backends.Auto` calls :func:`backend_for` on CUDA only.
It returns the Triton backend only where :data:`DISPATCH_TABLE` records a measurement in which
the kernel beat PyTorch on that GPU for that dimensionality and grid size; unknown GPUs, sizes
and every CPU use PyTorch. The table is filled from ``benchmarks/spectral_kernels.py`` runs on a
GPU; the one recorded run (H100, ``benchmarks/results/spectral_kernels_h100.json``) had the
kernels at 0.26-0.63x the best PyTorch backend, so the table is empty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .backend import TritonSpectral

__all__ = ["TritonSpectral", "DISPATCH_TABLE", "backend_for", "triton_available"]

#: ``{(gpu name substring, ndim): [(min grid points, max grid points), ...]}`` ranges of
#: ``prod(spatial)`` where the Triton backend was *measured* faster than PyTorch. Empty: on the
#: one GPU measured (H100) it was slower everywhere, so PyTorch is used everywhere.
DISPATCH_TABLE: dict[tuple[str, int], list[tuple[int, int]]] = {}


def triton_available() -> bool:
    """True when Triton imports and a CUDA device is present."""
    if not torch.cuda.is_available():
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def backend_for(
    spatial: Sequence[int], modes: Sequence[int], device: torch.device | str
) -> TritonSpectral | None:
    """The Triton backend if :data:`DISPATCH_TABLE` says it wins here, else ``None``.

    ``device`` is a ``torch.device`` or its name (``"cuda"``, ``"cuda:1"``, ``"cpu"``).
    """
    device = torch.device(device)  # (why) a name raised "'str' object has no attribute 'type'"
    if device.type != "cuda" or not DISPATCH_TABLE or not triton_available():
        return None
    name = torch.cuda.get_device_name(device)
    p = math.prod(spatial)
    for (gpu, ndim), ranges in DISPATCH_TABLE.items():
        if gpu in name and ndim == len(spatial) and any(lo <= p <= hi for lo, hi in ranges):
            return TritonSpectral()
    return None
