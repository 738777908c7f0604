"""Caches of shape-dependent constant tensors (DFT bases, GEMM plans) that stay correct under
``torch.export`` and ``torch.compile``.

While a model is traced its tensors are fake (``FakeTensor``) or symbolic; a constant built then
and kept in a process-wide cache would be handed to later eager calls, which then fail
("Could not guard on data-dependent expression"). Under tracing the constant is built afresh
instead (the tracer bakes it into the graph), and nothing is stored.

The same holds inside a ``torch.func`` transform (``vmap``, ``grad``, ``jacrev``, ``jacfwd``,
``functional_call`` under ``vmap``): there even factory tensors (``torch.arange``, ``torch.ones``)
come out as functorch wrappers tied to the transform's level, which must not outlive it in a
process-wide cache. :func:`transforming` tells; the caches are bypassed then too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

__all__ = ["tracing", "transforming", "cache_unless_tracing"]

F = TypeVar("F", bound=Callable)

_functorch_active = torch._C._are_functorch_transforms_active


def tracing() -> bool:
    """True while ``torch.export`` or ``torch.compile`` traces the calling code."""
    return torch.compiler.is_compiling()


def transforming() -> bool:
    """True inside a ``torch.func`` transform (``vmap``, ``grad``, ``jacrev``, ``jacfwd``, ...).

    ``torch._C._are_functorch_transforms_active`` is the predicate ``torch.autograd.Function``
    itself checks before it runs under a transform (``torch/autograd/function.py``); there is no
    public one. One C call, under 0.1 microseconds.
    """
    return _functorch_active()


def cache_unless_tracing(maxsize: int) -> Callable[[F], F]:
    """``functools.lru_cache(maxsize)`` that is bypassed (neither read nor written) while
    tracing or inside a ``torch.func`` transform; ``cache_clear`` and ``cache_info`` are those of
    the cache."""

    def decorate(fn: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if tracing() or transforming():
                return fn(*args, **kwargs)
            return cached(*args, **kwargs)

        wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        wrapper.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
