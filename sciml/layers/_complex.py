"""Dtype casts of modules that hold complex parameters (spectral weights).

``nn.Module.to(torch.float64)`` casts a complex parameter to the *real* dtype, dropping its
imaginary part with no more than a warning (an FNO then gives wrong numbers), and ``double()``,
``float()`` and ``half()`` skip complex tensors (a "float64" FNO keeps complex64 spectral
weights, so training and loaded float64 weights are silently rounded to float32).

A module that mixes in :class:`ComplexCasts` applies every cast to a complex tensor through its
real pairs ``view_as_real(p)``: the complex parameter follows the real precision asked for
(float64 -> complex128, float32 -> complex64, float16 -> complex32; bfloat16, which has no
complex counterpart, gives complex64), its memory layout is kept, and device moves are
unchanged. The wrapped cast reaches every submodule, so mixing it into a model's root class
covers all its layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["COMPLEX_OF", "REAL_OF", "ComplexCasts", "complex_aware"]

_MARK = "_sciml_complex_aware"

#: The complex dtype a complex tensor takes when its module is cast to a real dtype (its real
#: pairs in that precision); bfloat16 has no complex counterpart and gives complex64. The one
#: map that casts (:func:`complex_aware`) and checkpoint loading (:mod:`sciml.operator`) share.
COMPLEX_OF = {
    torch.float64: torch.complex128,
    torch.float32: torch.complex64,
    torch.float16: torch.complex32,
    torch.bfloat16: torch.complex64,
}

#: The real dtype of a complex one's parts. (why) a dict, not ``dtype.to_real()``: torch.compile
#: cannot trace that method, and a forward calling it broke the graph (in a loop over layers,
#: the whole FNO forward then fell back to eager).
REAL_OF = {
    torch.complex128: torch.float64,
    torch.complex64: torch.float32,
    torch.complex32: torch.float16,
}


def complex_aware(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    """``fn`` (a per-tensor cast of ``Module._apply``) acting on complex tensors through their
    real pairs (see the module docstring)."""
    if getattr(fn, _MARK, False):
        return fn

    def cast(t: torch.Tensor) -> torch.Tensor:
        if not t.is_complex():
            return fn(t)
        try:
            pairs = fn(torch.view_as_real(t))
        except RuntimeError:  # e.g. channels_last asks for 4 dims, the pairs have one more
            with warnings.catch_warnings():  # a real result is discarded below, not used
                warnings.filterwarnings("ignore", "Casting complex values to real")
                direct = fn(t)
            if direct.is_complex():
                return direct
            re, im = fn(t.real), fn(t.imag)  # same dims as t
            return torch.complex(*((re.float(), im.float()) if _no_complex(re) else (re, im)))
        if not pairs.is_floating_point():  # e.g. .to(torch.complex128): cast the tensor itself
            return fn(t)
        if _no_complex(pairs):
            pairs = pairs.float()
        if pairs.stride(-1) != 1 or any(s % 2 for s in pairs.stride()[:-1]):
            pairs = pairs.contiguous()
        return torch.view_as_complex(pairs)

    setattr(cast, _MARK, True)
    return cast


def _no_complex(t: torch.Tensor) -> bool:
    """Whether ``t``'s dtype has no complex counterpart (:data:`COMPLEX_OF` names complex64,
    whose pairs are float32)."""
    want = COMPLEX_OF.get(t.dtype)
    return want is not None and want.to_real() != t.dtype


class ComplexCasts(nn.Module):
    """Mixin: ``to``, ``double``, ``float``, ``half`` and friends cast complex parameters to the
    complex dtype of the requested precision instead of dropping or skipping them."""

    def _apply(self, fn, recurse=True):
        return super()._apply(complex_aware(fn), recurse)
