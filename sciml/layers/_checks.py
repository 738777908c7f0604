"""Cheap checks of constructor arguments and forward inputs, shared by the layers and models.

They look only at Python values, shapes and dtypes (no tensor data, so no device sync), which
keeps them free on the forward path and traceable by ``torch.compile``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from .._scalars import is_int as _is_int

__all__ = [
    "as_input_precision",
    "check_int",
    "check_int_fields",
    "check_ints",
    "check_size",
    "check_real",
    "check_tensor",
    "check_dtype",
    "check_grid",
    "check_input_dtype",
    "widen",
]

_FLOATS = (torch.float32, torch.float64)


def _int_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point()


def check_int(name: str, value: Any, *, low: int = 1) -> int:
    """``value`` as an int ``>= low``; a TypeError for a non-int, a ValueError below ``low``."""
    if not _is_int(value):
        raise TypeError(f"expected {name} to be an int >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"expected {name} >= {low}, got {value}")
    return int(value)


def check_int_fields(owner: Any, names: Sequence[str]) -> None:
    """A TypeError naming the first of ``owner``'s attributes ``names`` that is not an int
    (range checks stay with the caller, whose messages say what each bound means)."""
    for name in names:
        value = getattr(owner, name)
        if not _is_int(value):
            raise TypeError(
                f"{type(owner).__name__}.{name}: expected an int, got {value!r} "
                f"({type(value).__name__})"
            )


def check_ints(
    name: str, values: Any, *, low: int | None = 1, per: str | None = None
) -> tuple[int, ...]:
    """``values`` as a tuple of ints ``>= low`` (no bound for None), e.g. kept modes; ``per``
    says what each entry is for in the error (``"spatial dim"``: "one per spatial dim")."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        each = f" (one per {per})" if per else ""
        raise TypeError(f"expected {name} as a tuple of ints{each}, got {values!r}")
    values = tuple(values)
    if not all(_is_int(v) for v in values):
        raise TypeError(f"expected {name} to hold ints, got {values}")
    if low is not None and any(v < low for v in values):
        raise ValueError(f"expected {name} to hold ints >= {low}, got {values}")
    return tuple(int(v) for v in values)


def check_size(owner: str, name: str, values: Any) -> tuple[int, ...]:
    """A grid size such as ``out_shape`` as a tuple of ints: a TypeError for floats or bools
    (``int(4.5)`` would truncate silently). numpy ints and 0-d integer tensors become ints;
    ``torch.SymInt`` (while tracing) passes unchanged."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{owner} expected {name} as a tuple of ints, got {values!r}")
    values = tuple(values)
    if not all(_is_int(v) or isinstance(v, torch.SymInt) or _int_tensor(v) for v in values):
        raise TypeError(f"{owner} expected {name} to hold ints, got {values}")
    return tuple(v if isinstance(v, torch.SymInt) else int(v) for v in values)


def check_tensor(owner: str, name: str, u: Any) -> None:
    """A TypeError unless ``u`` is a ``torch.Tensor``; the first check of a forward, before any
    shape check. (why) a list or a NumPy array failed at its first attribute read instead,
    "'list' object has no attribute 'ndim'". An ``isinstance`` on a Python type: no graph break
    under ``torch.compile``."""
    if not isinstance(u, torch.Tensor):
        raise TypeError(f"{owner} expected {name} as a torch.Tensor, got {type(u).__name__}")


def check_grid(owner: str, name: str, u: torch.Tensor, dims: Sequence[int]) -> None:
    """A ValueError unless ``u`` has at least one point along each spatial dim ``dims`` (an empty
    batch is fine: its answer is empty). (why) convolutions and window partitions raised from
    inside torch on a grid of none ("Kernel size can't be greater than actual input size",
    "cannot reshape tensor of 0 elements", "integer modulo by zero"). Under ``torch.compile`` a
    dynamic size is assumed >= 2, so the comparison costs no guard and no graph break."""
    if any(u.shape[d] == 0 for d in dims):
        raise ValueError(
            f"{owner} expected {name} on a non-empty grid (at least one point along each "
            f"spatial dim), got shape {tuple(u.shape)}"
        )


def check_real(owner: str, name: str, u: Any) -> None:
    """``u`` must be a real floating-point tensor (integer input would be truncated or mixed
    with integer-cast bases, complex input is not a field these models take)."""
    check_tensor(owner, name, u)
    if not u.is_floating_point():
        raise TypeError(
            f"{owner} expected a real floating-point {name}, got dtype {u.dtype}; "
            "convert it with .float()"
        )


def check_dtype(owner: str, name: str, u: Any, dtype: torch.dtype) -> None:
    """:func:`check_real`, and ``u`` in the parameters' ``dtype`` when both are float32 or
    float64 (half precision is left to ``torch.autocast``)."""
    check_real(owner, name, u)
    if u.dtype != dtype and u.dtype in _FLOATS and dtype in _FLOATS:
        raise TypeError(
            f"{owner} expected {name} of dtype {dtype} (the dtype of its parameters), got "
            f"{u.dtype}; convert the input with .to({dtype}) or the model with .to({u.dtype})"
        )


def check_input_dtype(owner: str, name: str, u: Any, dtype: torch.dtype) -> None:
    """:func:`check_dtype` for a model's own input: ``u`` in the parameters' ``dtype`` also when
    either is half precision, except under ``torch.autocast``, which casts each op's operands
    itself. (why) :func:`check_dtype` leaves half precision alone because layers inside a
    half-precision model legitimately meet float32 (widened FFT results, complex64 spectral
    weights of a bfloat16 model); at the model's entry a float32 ``u`` for a bfloat16 model
    failed deep inside torch ("Input type (float) and bias type (c10::BFloat16) should be the
    same") or, in T1, silently ran in the input's precision."""
    check_dtype(owner, name, u, dtype)
    if u.dtype == dtype or torch.is_autocast_enabled(u.device.type):
        return
    raise TypeError(
        f"{owner} expected {name} of dtype {dtype} (the dtype of its parameters), got {u.dtype}; "
        f"convert the input with {name}.to({dtype}), or run the model under torch.autocast"
    )


def widen(u: torch.Tensor) -> torch.Tensor:
    """Half-precision ``u`` (float16, bfloat16) in float32, anything else unchanged: the FFTs
    have no half kernels on the CPU (on CUDA only for power-of-two sizes). The caller decides
    the result's dtype (:func:`as_input_precision`, or a cast back to ``u.dtype``)."""
    return u.float() if u.dtype in (torch.float16, torch.bfloat16) else u


def as_input_precision(y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``y`` (computed in float32 from a half-precision ``u``: the FFTs and complex products
    have no float16 / bfloat16 kernels on most devices) back in ``u``'s dtype, as a model cast
    with ``.half()`` or ``.bfloat16()`` should return; under ``torch.autocast`` the float32
    result is kept, as autocast's float32 ops do."""
    low = u.dtype in (torch.float16, torch.bfloat16)
    if not low or y.dtype == u.dtype or y.is_complex():
        return y
    if torch.is_autocast_enabled(u.device.type):
        return y
    return y.to(u.dtype)
