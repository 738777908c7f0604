"""Symbolic ODE systems for PROSE: sympy expressions, prefix tokens, torch vector fields.

* :func:`encode` / :func:`decode`: sympy right-hand sides <-> prefix (Polish) tokens with the
  sign / 3-digit mantissa / exponent number encoding; :func:`skeleton` replaces constants by
  ``<C>``; :func:`decode` returns a :class:`Decoded` that is ``valid=False`` (never an exception)
  for a malformed sequence.
* :class:`Vocabulary`: tokens <-> integer ids.
* :class:`TorchVectorField`: a system as a batched, differentiable torch function.
* :func:`fit_system`: fit a system's constants and initial state to an observed trajectory
  (least squares of the integrated trajectory, optionally with a prior on the constants; needs
  scipy); :func:`estimate_noise`: the noise level of sampled observations.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes as _lazy_attributes
from .vocabulary import (
    BOS,
    EOS,
    PAD,
    PLACEHOLDER,
    SEPARATOR,
    Vocabulary,
    decode_float,
    encode_float,
    round_sig,
)

if TYPE_CHECKING:
    from .fit import FitResult, ParametricSystem, estimate_noise, fit_system, free_constants
    from .prefix import Decoded, decode, encode, skeleton, state_symbols
    from .torch_field import TorchVectorField

# sympy costs ~0.4 s to import: the parts that need it load on first use, so `import sciml`
# (and a PROSE model, which needs only the vocabulary) does not pay for it
_LAZY = {
    "Decoded": "prefix",
    "decode": "prefix",
    "encode": "prefix",
    "skeleton": "prefix",
    "state_symbols": "prefix",
    "TorchVectorField": "torch_field",
    "FitResult": "fit",
    "ParametricSystem": "fit",
    "estimate_noise": "fit",
    "fit_system": "fit",
    "free_constants": "fit",
}


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY)


__all__ = [
    "Decoded",
    "decode",
    "encode",
    "skeleton",
    "state_symbols",
    "TorchVectorField",
    "FitResult",
    "ParametricSystem",
    "estimate_noise",
    "fit_system",
    "free_constants",
    "Vocabulary",
    "encode_float",
    "decode_float",
    "round_sig",
    "PAD",
    "BOS",
    "EOS",
    "PLACEHOLDER",
    "SEPARATOR",
]
