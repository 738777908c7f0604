"""Checks that points (collocation, boundary, initial) are floating-point tensors.

(why) integer points (``torch.arange(n)[:, None]``) reached autograd and failed there with
torch's "only Tensors of floating point dtype can require gradients", or inside a network's
first ``nn.Linear`` ("mat1 and mat2 must have the same dtype"), naming no argument; or they
were evaluated silently wrong (a box's bounds and a periodic shift truncated to integers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._scalars import is_int, is_real

_FLOATS = "torch.float32 or torch.float64"


def check_float_points(
    owner: str, name: str, v: Any, dtype: torch.dtype | None = None, why: str = ""
) -> None:
    """A TypeError unless ``v`` is a real floating-point tensor, naming ``owner``'s argument
    ``name``, the expected dtype (``dtype``, for the reason ``why``, or any floating dtype) and
    the one given."""
    if isinstance(v, torch.Tensor) and v.is_floating_point():
        return
    want = f"of dtype {dtype}{why}" if dtype is not None else f"({_FLOATS})"
    got = f"dtype {v.dtype}" if isinstance(v, torch.Tensor) else f"a {type(v).__name__}"
    fix = f"{name}.to({dtype})" if dtype is not None else f"{name}.float() or {name}.double()"
    if not isinstance(v, torch.Tensor):
        fix = f"torch.as_tensor({name}, dtype={dtype or 'torch.float32'})"
    raise TypeError(
        f"{owner} expected {name} as a floating-point tensor {want}, got {got}; convert it with "
        f"{fix}"
    )


def check_float_dtype(owner: str, dtype: Any) -> None:
    """A TypeError unless ``dtype`` is a real floating ``torch.dtype`` (the points' dtype)."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(
            f"{owner} expected a floating dtype for the points ({_FLOATS}), got {dtype!r}"
        )


def check_bool(owner: str, name: str, v: Any) -> None:
    """A TypeError unless ``v`` is a bool (Python's or NumPy's).

    (why) a flag was read by its truth value: ``cosine='no'`` (any non-empty string, 1, a
    list) switched the option on, silently. YAML's true / false load as bools already."""
    if not is_flag(v):
        raise TypeError(f"{owner} expected {name} as a bool (True or False), got {v!r}")


def is_flag(v: Any) -> bool:
    """A bool, Python's or NumPy's (the test :func:`check_bool` applies)."""
    return isinstance(v, (bool, np.bool_))


def _zero_d(v: Any) -> bool:
    return isinstance(v, torch.Tensor) and v.ndim == 0 and v.dtype != torch.bool


def is_number(v: Any) -> bool:
    """A real number (``_scalars.is_real``: Python's or NumPy's, not a bool) or a 0-d real
    tensor (not a bool or complex one). (why) settings such as a period or an initial time
    are often computed from tensors (``t.min()``, ``x.max() - x.min()``); ``float()`` took
    them before the checks that refuse strings and bools were added."""
    return is_real(v) or (_zero_d(v) and not v.is_complex())


def is_count(v: Any) -> bool:
    """An int (``_scalars.is_int``: Python's or NumPy's, not a bool) or a 0-d integer tensor,
    as :func:`is_number` takes a 0-d real tensor."""
    return is_int(v) or (_zero_d(v) and not v.is_floating_point() and not v.is_complex())
