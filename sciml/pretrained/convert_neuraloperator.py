"""Bring neuraloperator 2.0 models over: ``FNO`` and ``SpectralConv`` -> sciml, same function.

Both converters take the neuraloperator module itself, or its ``state_dict()`` plus the
hyper-parameters it was built with (the keyword arguments of ``neuralop.models.FNO`` /
``neuralop.layers.spectral_convolution.SpectralConv``). Reading a state dict needs no
neuraloperator install; reading a module does (``pip install neuraloperator``). A checkpoint
file neuraloperator wrote gives both without unpickling it:
``state, hparams = read_neuraloperator_checkpoint(path)``, then
``fno_from_neuraloperator(state, **hparams)``.

Mode convention. neuraloperator's ``n_modes`` counts every kept frequency along a dim, both
signs, stored in ``fftshift`` order; along the last (real FFT) dim it keeps ``n // 2 + 1``.
sciml's ``modes`` counts per sign (see :class:`sciml.layers.SpectralConv`). So for a non-last dim
an even ``n = 2m`` maps to ``m`` with the weight rolled by ``m``; an odd ``n = 2k + 1`` keeps
frequencies ``-k..k`` and maps to ``m = k + 1`` with a zero weight at frequency ``-(k + 1)``; the
last dim maps to ``n // 2 + 1``.

Supported: dense real FNOs with a channel MLP (neuraloperator's default) and gelu, linear FNO
skips, any channel-MLP skip, no norm, no domain
padding, grid positional embedding on ``[0, 1]`` or none, gelu (neuraloperator's channel MLPs
always use gelu, so another ``non_linearity`` mixes two activations), post-activation,
no resolution scaling. Anything else is refused with a message naming the option.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._scalars import is_int, is_real
from ..errors import ConfigError
from ..layers import SpectralConv
from ..models.fno import FNO, FNOConfig

__all__ = [
    "fno_from_neuraloperator",
    "spectral_conv_from_neuraloperator",
    "convert_modes",
    "read_neuraloperator_checkpoint",
]

# neuraloperator FNO defaults (version 2.0.0) for the options the converter reads.
_FNO_DEFAULTS: dict[str, Any] = {
    "n_layers": 4,
    "lifting_channel_ratio": 2,
    "projection_channel_ratio": 2,
    "positional_embedding": "grid",
    "non_linearity": F.gelu,
    "norm": None,
    "complex_data": False,
    "use_channel_mlp": True,
    "channel_mlp_dropout": 0,
    "channel_mlp_expansion": 0.5,
    "channel_mlp_skip": "soft-gating",
    "fno_skip": "linear",
    "resolution_scaling_factor": None,
    "domain_padding": None,
    "fno_block_precision": "full",
    "stabilizer": None,
    "max_n_modes": None,
    "factorization": None,
    "separable": False,
    "preactivation": False,
}
_ACTIVATIONS = {F.gelu: "gelu", F.relu: "relu", torch.tanh: "tanh", F.tanh: "tanh", F.silu: "silu"}


def convert_modes(n_modes: Sequence[int]) -> tuple[int, ...]:
    """sciml ``modes`` holding neuraloperator's ``n_modes`` (see the module docstring)."""
    # (why) int() per item had read "16" as modes (1, 6) -> (1, 4), True as 1 and 4.7 as 4;
    # an empty n_modes reached a bare IndexError
    if (
        isinstance(n_modes, (str, bytes))
        or not isinstance(n_modes, Sequence)
        or not n_modes
        or not all(is_int(n) and n >= 1 for n in n_modes)
    ):
        raise ConfigError(
            "n_modes: expected a non-empty sequence of positive integers (neuraloperator's "
            f"n_modes, e.g. (16, 16)), got {n_modes!r}"
        )
    n_modes = [int(n) for n in n_modes]
    return tuple((n + 1) // 2 for n in n_modes[:-1]) + (n_modes[-1] // 2 + 1,)


def _weight_to_sciml(w: torch.Tensor, n_modes: Sequence[int]) -> torch.Tensor:
    """neuraloperator ``(in, out, n_1, ..., n_d // 2 + 1)`` in fftshift order -> sciml block
    ``(in, out, 2 m_1, ..., m_d)``."""
    d = len(n_modes)
    expected = (*w.shape[:2], *n_modes[:-1], n_modes[-1] // 2 + 1)
    if tuple(w.shape) != expected:
        raise ConfigError(
            f"spectral weight of shape {tuple(w.shape)} does not fit n_modes={tuple(n_modes)}: "
            f"expected {expected}"
        )
    for axis, n in zip(range(2, d + 1), n_modes[:-1]):
        half = n // 2
        if n % 2 == 0:  # index j is frequency j - n/2: roll so that frequency 0 comes first
            w = torch.roll(w, -half, dims=axis)
        else:  # frequencies -half..half; sciml's block has one more negative slot, left zero
            pos = w.narrow(axis, half, half + 1)
            neg = w.narrow(axis, 0, half)
            zero = torch.zeros_like(w.narrow(axis, 0, 1))
            w = torch.cat([pos, zero, neg], dim=axis)
    return w


def spectral_conv_from_neuraloperator(
    conv_or_state: nn.Module | Mapping[str, torch.Tensor],
    *,
    n_modes: Sequence[int] | None = None,
) -> SpectralConv:
    """A sciml :class:`SpectralConv` (with bias when the source has one) computing the same
    function as a neuraloperator ``SpectralConv``.

    Args:
        conv_or_state: the module, or its state dict (keys ``weight.tensor`` or ``weight``,
            optional ``bias``).
        n_modes: neuraloperator's ``n_modes``; required with a state dict.

    A module computing another function is refused with :class:`~sciml.errors.ConfigError`
    naming the option: ``complex_data``, ``separable``, a factorized weight, ``max_n_modes``
    other than ``n_modes`` (neuraloperator contracts only the central ``n_modes`` block of the
    weight: pass that block as a state dict), ``resolution_scaling_factor`` and
    ``fno_block_precision`` other than ``'full'``. A state dict carries none of these: give
    one of a module built without them.

    The outputs equal neuraloperator's on grids even along every non-last dim and at the input's
    size. On odd non-last sizes, and with an output size other than the input's in 2D/3D,
    neuraloperator 2.0 departs from its own definition (see docs/spectral.md); the converted
    layer computes the definition (the kept-frequency DFT) there.
    """
    if isinstance(conv_or_state, nn.Module):
        conv = conv_or_state
        _check_conv_module(conv)
        if n_modes is None:
            # the module stores the last dim already halved (n // 2 + 1 kept frequencies)
            kept = list(conv.max_n_modes)
            n_modes = kept[:-1] + [2 * (kept[-1] - 1)]
        state = conv.state_dict()
    else:
        state = dict(conv_or_state)
        if n_modes is None:
            raise ConfigError("converting a SpectralConv state dict needs its n_modes")
    w = state.get("weight.tensor", state.get("weight"))
    if w is None:
        raise ConfigError(f"no spectral weight in the state dict; keys: {sorted(state)}")
    modes = convert_modes(n_modes)
    layer = SpectralConv(w.shape[0], w.shape[1], modes, bias="bias" in state)
    if w.dtype == torch.complex128:
        # (why) widened before the copy: loaded into the float32 layer and widened after, a
        # complex128 weight had lost everything past float32 (errors of 1e-7, not 0)
        layer = layer.double()
    _load_spectral(layer, w, n_modes, state.get("bias"))
    return layer


def _check_conv_module(conv: nn.Module) -> None:
    """Refuse a neuraloperator SpectralConv module whose forward is not the dense, full-precision
    kept-frequency convolution of its whole weight at the input's size."""
    for name, bad in (("complex_data", True), ("separable", True)):
        if getattr(conv, name, False) == bad:
            raise ConfigError(f"cannot convert a SpectralConv with {name}={bad}")
    if (getattr(conv, "factorization", None) or "dense").lower() != "dense":
        raise ConfigError(
            f"cannot convert a factorized SpectralConv ({conv.factorization}); "
            "rebuild it with factorization=None"
        )
    # (why) each was converted without a word to another function: with max_n_modes above
    # n_modes neuraloperator contracts only the central n_modes block of its weight (the whole
    # weight was converted: outputs off by 96%), resolution_scaling_factor resamples the output
    # (the converted layer kept the input's size), half / mixed precision rounds the spectrum
    max_n_modes = getattr(conv, "max_n_modes", None)
    if max_n_modes is not None and list(max_n_modes) != list(conv.n_modes):
        raise ConfigError(
            f"cannot convert a SpectralConv with max_n_modes={tuple(max_n_modes)} other than the "
            f"n_modes it uses ({tuple(conv.n_modes)}, the last dim halved): neuraloperator then "
            "contracts only part of its weight; rebuild it with max_n_modes=None"
        )
    for name, ok in (("resolution_scaling_factor", None), ("fno_block_precision", "full")):
        value = getattr(conv, name, ok)
        if value != ok:
            raise ConfigError(
                f"cannot convert a SpectralConv with {name}={value!r} (supported: {ok!r})"
            )


def _load_spectral(
    layer: SpectralConv, w: torch.Tensor, n_modes: Sequence[int], bias: torch.Tensor | None
) -> None:
    with torch.no_grad():
        layer.weight.copy_(_weight_to_sciml(w.detach(), n_modes))
        if bias is not None and layer.bias is not None:
            layer.bias.copy_(bias.detach().reshape(-1))


class _Stand:
    """What a name in a checkpoint's ``_metadata`` is read as: a marker class (one per name),
    never the object itself, so that ``torch.load(weights_only=True)`` allows the name and
    imports or calls nothing."""

    qualified = ""


# qualified name in neuraloperator's pickled _metadata -> what the converter reads it as
_METADATA_NAMES: dict[str, Any] = {
    "torch._C._nn.gelu": F.gelu,
    "torch.nn.functional.gelu": F.gelu,
    "torch.nn.functional.relu": F.relu,
    "torch.nn.functional.tanh": F.tanh,
    "torch.nn.functional.silu": F.silu,
    "neuralop.layers.spectral_convolution.SpectralConv": "SpectralConv",
}


def read_neuraloperator_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, hparams)`` of a neuraloperator 2.0 checkpoint file, for
    ``fno_from_neuraloperator(state_dict, **hparams)``.

    The file is what ``torch.save(model.state_dict(), path)`` writes, or ``model.save_checkpoint``
    as ``<name>_state_dict.pt``: the tensors and a ``_metadata`` entry holding the keyword
    arguments the model was built with (``non_linearity=F.gelu``, ``conv_module=SpectralConv``).
    Those two are Python objects, so ``torch.load(path, weights_only=True)`` refuses the file; it
    is read here with ``weights_only=True`` all the same, the names of gelu / relu / tanh / silu
    and of neuraloperator's ``SpectralConv`` standing for themselves (nothing is imported or
    called). Any other object in the file (a custom activation, an embedding module, code) is
    refused with :class:`~sciml.errors.CheckpointError` naming it; the file is never unpickled
    with ``weights_only=False``. Without ``_metadata`` (a plain state dict) ``hparams`` is empty:
    give them as for a state dict.
    """
    import pickle

    from ..errors import CheckpointError
    from .poseidon import _weights_only_refusal

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (expected a neuraloperator checkpoint .pt)")
    # (why) safe_globals maps a qualified name to the object the unpickler returns for it: a
    # marker class per name, so neither F.gelu nor neuraloperator is allowed or imported
    markers = {name: type("_Stand", (_Stand,), {"qualified": name}) for name in _METADATA_NAMES}
    try:
        with torch.serialization.safe_globals([(m, n) for n, m in markers.items()]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, EOFError) as exc:
        reason = _weights_only_refusal(exc)
        if reason.startswith("it holds "):
            reason += (
                f", which is no tensor and none of neuraloperator's names "
                f"({', '.join(sorted(_METADATA_NAMES))})"
            )
        raise CheckpointError(
            f"{path}: refused: not readable with torch.load(weights_only=True): {reason}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    meta = state.pop("_metadata", None)
    for key, value in state.items():
        if not torch.is_tensor(value):
            raise CheckpointError(
                f"{path}: entry {key!r} is of type {type(value).__name__}, not a tensor"
            )
    if meta is None:
        return state, {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: _metadata: expected a dict, got {type(meta).__name__}")
    hparams = {}
    for key, value in meta.items():
        if key in ("_version", "_name", "args"):  # BaseModel's bookkeeping, not FNO keywords
            continue
        if isinstance(value, type) and issubclass(value, _Stand):
            value = _METADATA_NAMES[value.qualified]
            if key == "conv_module":  # neuraloperator's SpectralConv: the default
                continue
        hparams[key] = value
    return state, hparams


# neuraloperator 2.0's FNOBlocks builds its norm option into a ModuleList of these
_NORM_OPTIONS = {
    "InstanceNorm": "instance_norm",
    "GroupNorm": "group_norm",
    "BatchNorm": "batch_norm",
    "AdaIN": "ada_in",
}


def _norm_option(norm: nn.Module | None) -> str | None:
    """The ``norm`` option a built FNOBlocks was given, or the norm module's class where it is
    none of neuraloperator's."""
    # (why) the refusal read norm='a norm', which told a user nothing about what to change
    if norm is None:
        return None
    layer = norm[0] if isinstance(norm, nn.ModuleList) and len(norm) else norm
    layer = getattr(layer, "fr", layer)  # complex_data wraps each norm in ComplexValued
    option = _NORM_OPTIONS.get(type(layer).__name__)
    return option or f"{type(layer).__module__}.{type(layer).__qualname__}"


def _hparams_of(model: nn.Module) -> dict[str, Any]:
    """Read the converter's hyper-parameters back from a built neuraloperator FNO."""
    blocks = getattr(model, "fno_blocks", None)
    if blocks is None or not hasattr(model, "n_modes"):
        raise ConfigError(
            f"expected a neuraloperator FNO (neuralop.models.FNO) or its state_dict(), got "
            f"{type(model).__module__}.{type(model).__qualname__}"
        )
    # (why) imported after the check: any other module, without neuraloperator installed, had
    # got "No module named 'neuralop'" instead of being named
    from neuralop.layers.spectral_convolution import SpectralConv as NSpectralConv

    for i, layer in enumerate(blocks.convs):
        # (why) the converter reads only the weights: another conv_module (a subclass of
        # SpectralConv with its own forward, SphericalConv) was converted as SpectralConv
        if type(layer) is not NSpectralConv:
            raise ConfigError(
                f"cannot convert an FNO with conv_module={type(layer).__module__}."
                f"{type(layer).__qualname__} (fno_blocks.convs.{i}; supported: "
                "neuralop.layers.spectral_convolution.SpectralConv, the default)"
            )
    conv = blocks.convs[0]
    emb = model.positional_embedding
    if emb is not None:
        bounds = [list(map(float, b)) for b in getattr(emb, "grid_boundaries", [])]
        if bounds != [[0.0, 1.0]] * model.n_dim:
            raise ConfigError(f"positional embedding on {bounds} is not supported ([0, 1] only)")
    return {
        "n_modes": tuple(model.n_modes),
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "hidden_channels": model.hidden_channels,
        "n_layers": model.n_layers,
        "lifting_channel_ratio": model.lifting_channel_ratio,
        "projection_channel_ratio": model.projection_channel_ratio,
        "positional_embedding": "grid" if emb is not None else None,
        "non_linearity": model.non_linearity,
        "norm": _norm_option(blocks.norm),
        "complex_data": model.complex_data,
        "use_channel_mlp": blocks.use_channel_mlp,
        "channel_mlp_dropout": blocks.channel_mlp_dropout,
        "channel_mlp_expansion": blocks.channel_mlp_expansion,
        "channel_mlp_skip": blocks.channel_mlp_skip,
        "fno_skip": blocks.fno_skip,
        "resolution_scaling_factor": model.resolution_scaling_factor,
        "domain_padding": None if model.domain_padding is None else "set",
        "fno_block_precision": model.fno_block_precision,
        "stabilizer": blocks.stabilizer,
        "max_n_modes": None if list(conv.max_n_modes) == list(conv.n_modes) else "set",
        "factorization": model.factorization,
        "separable": model.separable,
        "preactivation": model.preactivation,
    }


def fno_from_neuraloperator(
    model_or_state: nn.Module | Mapping[str, torch.Tensor], **hparams: Any
) -> FNO:
    """A sciml :class:`~sciml.models.FNO` with the same function as a neuraloperator ``FNO``.

    Args:
        model_or_state: the ``neuralop.models.FNO`` module, or its ``state_dict()``.
        **hparams: with a state dict, the keyword arguments the FNO was built with
            (``n_modes``, ``in_channels``, ``out_channels``, ``hidden_channels`` are required;
            the others default to neuraloperator 2.0's defaults; a keyword that is none of
            ``neuralop.models.FNO``'s is refused, naming the closest). Ignored for a module.

    Returns:
        an ``FNO`` in eval mode, in float64 if the source holds a float64 or complex128 tensor
        (float32 otherwise), whose outputs match the source's (to float rounding) on grids
        that hold the kept modes and are even along every non-last spatial dim. On a grid of
        odd size along a non-last dim, neuraloperator 2.0 shifts its kept block the wrong way
        (``fftshift`` for ``ifftshift``) and the two differ by O(1); the converted model then
        computes the layer's definition (the kept-frequency DFT), see docs/spectral.md.
    """
    if isinstance(model_or_state, nn.Module):
        hp = _hparams_of(model_or_state)
        state = model_or_state.state_dict()
    else:
        state = dict(model_or_state)
        missing = [k for k in _FNO_REQUIRED if k not in hparams]
        if missing:
            raise ConfigError(f"converting an FNO state dict needs the hyper-parameters {missing}")
        _check_hparam_names(hparams)
        hp = {**_FNO_DEFAULTS, **hparams}
    _check_supported(hp)
    _check_values(hp)
    n_modes = tuple(int(n) for n in hp["n_modes"])
    width = int(hp["hidden_channels"])
    d = len(n_modes)
    act = _ACTIVATIONS.get(hp["non_linearity"])
    use_mlp = bool(hp["use_channel_mlp"])
    if not use_mlp:
        # without the channel MLP, neuraloperator 2.0 applies its activation twice per layer
        raise ConfigError(
            "cannot convert use_channel_mlp=False (neuraloperator then applies the "
            "activation twice per layer, which sciml's FNO does not)"
        )
    if act != "gelu":
        raise ConfigError(
            f"cannot convert non_linearity={act or hp['non_linearity']!r}: only F.gelu converts "
            "(neuraloperator's channel MLPs always use gelu while its lifting and projection use "
            "the given one, two activations sciml's FNO does not mix)"
        )
    skip = hp["channel_mlp_skip"] if use_mlp else "identity"
    config = FNOConfig(
        in_channels=int(hp["in_channels"]),
        out_channels=int(hp["out_channels"]),
        modes=convert_modes(n_modes),
        width=width,
        n_layers=int(hp["n_layers"]),
        projection_channels=int(hp["projection_channel_ratio"] * width),
        positional_embedding=hp["positional_embedding"] is not None,
        padding=0,
        activation=act,
        lifting_channels=int(hp["lifting_channel_ratio"] * width),
        channel_mlp_expansion=float(hp["channel_mlp_expansion"]) if use_mlp else 0.0,
        channel_mlp_skip=skip if skip is not None else "identity",
    )
    if use_mlp and hp["channel_mlp_skip"] is None:
        raise ConfigError("channel_mlp_skip=None (no skip around the channel MLP) is not supported")
    model = FNO(config)
    if any(
        torch.is_tensor(t) and t.dtype in (torch.float64, torch.complex128) for t in state.values()
    ):
        # (why) widened before the copy: loaded into the float32 model, a float64 / complex128
        # source was rounded to float32 without a word (as spectral_conv_from_neuraloperator was)
        model = model.double()
    _load_fno_state(model, state, n_modes, d)
    return model.eval()


# neuraloperator 2.0 FNO keywords that do not change a dense FNO's function (the low-rank
# settings of a factorized weight, which _check_supported refuses)
_FNO_IGNORED = frozenset({"rank", "fixed_rank_modes", "implementation", "decomposition_kwargs"})
_FNO_REQUIRED = ("n_modes", "in_channels", "out_channels", "hidden_channels")


def _check_hparam_names(hparams: Mapping[str, Any]) -> None:
    """Refuse a keyword that is no neuraloperator 2.0 FNO hyper-parameter, and a conv_module
    other than neuraloperator's SpectralConv."""
    # (why) an unknown keyword was dropped without a word: domain_pading=0.125 (misspelt)
    # converted the padded FNO as an unpadded one (outputs 1.5% off), conv_module=<a
    # SpectralConv subclass> as SpectralConv
    known = set(_FNO_REQUIRED) | set(_FNO_DEFAULTS) | _FNO_IGNORED | {"conv_module"}
    for key in hparams:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{key!r} is not a neuraloperator 2.0 FNO hyper-parameter{hint}; the converter "
                f"reads {', '.join(sorted(known))}"
            )
    if "conv_module" in hparams:
        conv_module = hparams["conv_module"]
        try:
            from neuralop.layers.spectral_convolution import SpectralConv as NSpectralConv
        except ImportError:
            NSpectralConv = None
        if NSpectralConv is None or conv_module is not NSpectralConv:
            raise ConfigError(
                f"cannot convert an FNO with conv_module={conv_module!r} (supported: "
                "neuralop.layers.spectral_convolution.SpectralConv, the default)"
            )


def _check_values(hp: Mapping[str, Any]) -> None:
    """The sizes and ratios are numbers of the kind neuraloperator takes."""
    # (why) read with int() / float(): hidden_channels=8.5 ran as 8, in_channels=True as 1,
    # n_layers="4" as 4, n_modes=16 reached a bare "'int' object is not iterable" and
    # lifting_channel_ratio=nan a bare "cannot convert float NaN to integer"
    convert_modes(hp["n_modes"])
    for key in ("in_channels", "out_channels", "hidden_channels", "n_layers"):
        if not (is_int(hp[key]) and hp[key] >= 1):
            raise ConfigError(f"{key}: expected an integer >= 1, got {hp[key]!r}")
    for key in ("lifting_channel_ratio", "projection_channel_ratio", "channel_mlp_expansion"):
        if not (is_real(hp[key]) and math.isfinite(hp[key]) and hp[key] >= 0):
            raise ConfigError(f"{key}: expected a finite number >= 0, got {hp[key]!r}")


def _check_supported(hp: Mapping[str, Any]) -> None:
    refuse = {
        "norm": None,
        "complex_data": False,
        "resolution_scaling_factor": None,
        "domain_padding": None,
        "fno_block_precision": "full",
        "stabilizer": None,
        "max_n_modes": None,
        "separable": False,
        "preactivation": False,
    }
    for key, ok in refuse.items():
        if hp.get(key, ok) != ok and not (key == "domain_padding" and not hp[key]):
            raise ConfigError(f"cannot convert an FNO with {key}={hp[key]!r} (supported: {ok!r})")
    if (hp.get("factorization") or "dense").lower() != "dense":
        raise ConfigError(f"cannot convert a factorized FNO ({hp['factorization']})")
    if hp.get("fno_skip") != "linear":
        raise ConfigError(f"cannot convert fno_skip={hp.get('fno_skip')!r} (supported: 'linear')")
    if hp.get("positional_embedding") not in ("grid", None):
        raise ConfigError("only positional_embedding='grid' (on [0, 1]) or None is supported")


def _core_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` without its trailing 1s: neuraloperator's 1x1 convolutions are 1D, sciml's
    d-dimensional, and its spectral bias carries singleton spatial axes."""
    shape = tuple(shape)
    while shape and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _load_fno_state(model: FNO, state: Mapping[str, torch.Tensor], n_modes, d: int) -> None:
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise ConfigError(f"neuraloperator state dict lacks {key!r}; keys: {sorted(state)}")
        used.add(key)
        return state[key].detach()

    def put(dst: torch.Tensor, key: str, value: torch.Tensor) -> None:
        # (why) hyper-parameters that do not fit the state dict (hidden_channels 8 for a width
        # 4 model) reached copy_'s bare "The size of tensor a (16) must match ..."
        if _core_shape(value.shape) != _core_shape(dst.shape):
            raise ConfigError(
                f"neuraloperator tensor {key!r} has shape {tuple(value.shape)}, the "
                f"hyper-parameters (in_channels={c.in_channels}, out_channels={c.out_channels}, "
                f"hidden_channels={c.width}, ...) build {tuple(dst.shape)}: give the ones the "
                "FNO was built with"
            )
        dst.copy_(value.reshape(dst.shape))

    def conv(dst: nn.Module, prefix: str, *, bias: bool = True) -> None:
        put(dst.weight, prefix + ".weight", take(prefix + ".weight"))
        if bias:
            put(dst.bias, prefix + ".bias", take(prefix + ".bias"))

    c = model.config
    with torch.no_grad():
        if c.lifting_channels:
            conv(model.lift[0], "lifting.fcs.0")
            conv(model.lift[2], "lifting.fcs.1")
        else:
            conv(model.lift, "lifting.fcs.0")
        for i in range(c.n_layers):
            p = f"fno_blocks.convs.{i}"
            w = state.get(p + ".weight.tensor", state.get(p + ".weight"))
            used.update({p + ".weight.tensor", p + ".weight"})
            if w is None:
                raise ConfigError(f"neuraloperator state dict lacks {p}.weight.tensor")
            _load_spectral(model.spectral[i], w, n_modes, None)
            conv(model.skip[i], f"fno_blocks.fno_skips.{i}.conv", bias=False)
            # neuraloperator's spectral bias and sciml's skip bias add the same constant
            b = state.get(p + ".bias")
            used.add(p + ".bias")
            if b is None:
                model.skip[i].bias.zero_()
            else:
                put(model.skip[i].bias, p + ".bias", b.detach())
            if c.channel_mlp_expansion:
                conv(model.channel_mlp[i][0], f"fno_blocks.channel_mlp.{i}.fcs.0")
                conv(model.channel_mlp[i][2], f"fno_blocks.channel_mlp.{i}.fcs.1")
                if c.channel_mlp_skip == "soft-gating":
                    key = f"fno_blocks.channel_mlp_skips.{i}.weight"
                    put(model.channel_mlp_skip[i].weight, key, take(key))
                elif c.channel_mlp_skip == "linear":
                    conv(
                        model.channel_mlp_skip[i],
                        f"fno_blocks.channel_mlp_skips.{i}.conv",
                        bias=False,
                    )
        conv(model.project[0], "projection.fcs.0")
        conv(model.project[2], "projection.fcs.1")
    left = sorted(k for k in set(state) - used if k != "_metadata")  # neuralop's BaseModel info
    if left:
        raise ConfigError(f"neuraloperator weights not understood by the converter: {left}")
