"""An operator wrapped with fixed per-channel input and output normalisation.

Training data are usually normalised per channel. Putting the statistics inside the model (as
buffers) means a saved checkpoint takes raw inputs and returns raw outputs, so evaluation,
fine-tuning and pretrained surrogates never need a separate normaliser file:

    G(u) = decode( inner( encode(u) ) ),  encode(u) = (u - mu_in) / s_in,  decode(v) = v s_out + mu_out
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .._config import _to_json, check_json_fields, config_from_dict
from ..errors import CheckpointError, ConfigError
from ..layers._checks import check_int_fields, check_real
from ..operator import Operator, family_class
from ._rollout import Autoregressive

__all__ = ["Normalized", "NormalizedConfig"]

# What torch raises for a meta tensor's value: .item() / float() (RuntimeError), .numpy()
# (TypeError), .tolist() or an op without a meta kernel (NotImplementedError).
_META_ERRORS = (RuntimeError, NotImplementedError, TypeError)


def _rng_devices() -> list[int]:
    """The CUDA device whose generator a build may draw from: the current one, if CUDA is up
    (``fork_rng``'s default, every device, warns on a machine with several)."""
    return [torch.cuda.current_device()] if torch.cuda.is_initialized() else []


@dataclass(frozen=True)
class NormalizedConfig:
    """The config of :class:`Normalized`: the wrapped operator and where its channels sit.

    Attributes:
        family: family name of the wrapped operator.
        config: the wrapped operator's config, as a dict.
        in_channels: number of input channels normalised.
        out_channels: number of output channels de-normalised.
        channel_dim: where channels sit: 1 for grid functions ``(batch, channels, *spatial)``,
            -1 for point values ``(batch, points, channels)``.
        out_channel_dim: the same for the output, when it differs from the input's (None: as
            ``channel_dim``); e.g. a DeepONet maps a grid function ``(batch, channels, sensors)``
            to point values ``(batch, points, channels)``.
    """

    family: str
    config: dict[str, Any] = field(default_factory=dict)
    in_channels: int = 1
    out_channels: int = 1
    channel_dim: int = 1
    out_channel_dim: int | None = None

    def __post_init__(self) -> None:
        # (why) kept in its JSON form (tuples as lists, a config dataclass as its dict), so the
        # config a checkpoint loads equals the one saved: {"modes": (4, 4)} came back as
        # {"modes": [4, 4]} and the two configs compared unequal
        object.__setattr__(self, "config", _to_json(self.config))
        check_int_fields(self, ("in_channels", "out_channels"))
        for name in ("in_channels", "out_channels"):
            # (why) 0 built a model whose forward refused every input ("expected u with 0
            # channels"), a negative count failed in torch.zeros with no field named
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be >= 1 (one statistic per channel), got {getattr(self, name)}"
                )
        for name in ("channel_dim", "out_channel_dim"):
            value = getattr(self, name)
            if value not in (1, -1) and not (name == "out_channel_dim" and value is None):
                raise ValueError(f"{name} must be 1 or -1, got {value}")
        check_json_fields(self)


class Normalized(Autoregressive, Operator, family="normalized"):
    """Wraps ``inner`` with per-channel affine maps whose statistics are stored as buffers."""

    config_class = NormalizedConfig
    config: NormalizedConfig

    def __init__(self, config: NormalizedConfig) -> None:
        super().__init__(config)
        # (why) errors name the field as it sits in the wrapper's config dict, config.config.<x>,
        # and a bad family is a config error like any other field (not a CheckpointError: the
        # callers add the file or the experiment's model.config prefix to ConfigErrors)
        try:
            inner = family_class(config.family, where="config.family")
        except CheckpointError as exc:
            raise ConfigError(str(exc)) from None
        self.inner = inner(
            config_from_dict(inner.config_class, config.config, where="config.config")
        )
        self.register_buffer("in_mean", torch.zeros(config.in_channels))
        self.register_buffer("in_std", torch.ones(config.in_channels))
        self.register_buffer("out_mean", torch.zeros(config.out_channels))
        self.register_buffer("out_std", torch.ones(config.out_channels))

    @property
    def resolution_invariant(self) -> bool:  # type: ignore[override]
        """The wrapped model's :attr:`~sciml.Operator.resolution_invariant` (``inner``'s): the
        per-channel normalisation acts pointwise, so it keeps the claim."""
        return self.inner.resolution_invariant

    @classmethod
    def wrap(
        cls,
        inner: Operator,
        *,
        in_mean: Sequence[float] | torch.Tensor,
        in_std: Sequence[float] | torch.Tensor,
        out_mean: Sequence[float] | torch.Tensor,
        out_std: Sequence[float] | torch.Tensor,
        channel_dim: int = 1,
        out_channel_dim: int | None = None,
        float64_inputs: bool = False,
    ) -> Normalized:
        """Wrap an existing operator (its weights are kept) with the given statistics.

        ``float64_inputs``: the raw inputs will come in float64 (a float64 data file, read as
        stored): ``in_mean`` / ``in_std`` are then kept in float64 beside a float32 network,
        so that :meth:`encode` centres the inputs before anything is rounded to float32. The
        outputs and a float32 input are computed as without it.
        """
        # (why) read in float64 and stored in float64 for a float64 operator: rounded to float32,
        # the statistics moved a float64 model's outputs by 1e-8 relative (float32's rounding)
        in_mean, in_std, out_mean, out_std = (
            torch.as_tensor(v, dtype=torch.float64).reshape(-1)
            for v in (in_mean, in_std, out_mean, out_std)
        )
        wide = any(t.dtype == torch.float64 for t in inner.state_dict().values())
        dtype = torch.float64 if wide else torch.float32
        # (why) a field 1e4 +- 1e-2 has float32 spacing 1e-3 there: its mean rounded to float32
        # moved every encoded input by up to 0.05 std, before the inputs' own rounding
        in_dtype = torch.float64 if float64_inputs else dtype
        if in_mean.shape != in_std.shape or out_mean.shape != out_std.shape:
            raise ValueError(
                f"mean and std must have one entry per channel: in {tuple(in_mean.shape)} vs "
                f"{tuple(in_std.shape)}, out {tuple(out_mean.shape)} vs {tuple(out_std.shape)}"
            )
        for name, v in (("in_mean", in_mean), ("in_std", in_std), ("out_mean", out_mean),
                        ("out_std", out_std)):  # fmt: skip
            # (why) NaN passed "std <= 0" and every output was NaN; an infinite mean or std
            # gave inf outputs or an input read as 0, all without an error
            if not bool(torch.isfinite(v).all()):
                raise ValueError(f"{name}: expected finite numbers, got {v.tolist()}")
        if bool((in_std <= 0).any()) or bool((out_std <= 0).any()):
            raise ValueError(
                f"standard deviations must be positive, got in_std={in_std.tolist()}, "
                f"out_std={out_std.tolist()}"
            )
        config = NormalizedConfig(
            family=inner.family,
            config=inner.config_dict(),
            in_channels=in_mean.numel(),
            out_channels=out_mean.numel(),
            channel_dim=channel_dim,
            out_channel_dim=out_channel_dim,
        )
        # (why) built on the meta device, then given ``inner``: building it on the CPU made a
        # second, randomly initialised copy of the wrapped network (its memory, and draws from
        # the global random stream that changed every random number after the wrap)
        try:
            with torch.device("meta"):
                model = cls(config)
        except _META_ERRORS:
            # (why) a family whose constructor reads tensor values (.item(), .numpy(), an op
            # without a meta kernel) cannot be built on meta, and wrap failed for it; it is
            # built as usual, with the random state restored so that the throwaway copy draws
            # nothing from the caller's stream. A genuine error of the family raises again here.
            with torch.random.fork_rng(devices=_rng_devices()):
                model = cls(config)
        model.inner = inner
        # (why) the statistics go where the wrapped network is: on the CPU beside a CUDA
        # network, every forward failed ("Expected all tensors to be on the same device")
        tensors = [*inner.parameters(), *inner.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")
        model.in_mean = in_mean.detach().to(device, in_dtype)
        model.in_std = in_std.detach().to(device, in_dtype)
        model.out_mean = out_mean.detach().to(device, dtype)
        model.out_std = out_std.detach().to(device, dtype)
        return model

    @staticmethod
    def _shape(stat: torch.Tensor, ref: torch.Tensor, channel_dim: int) -> torch.Tensor:
        stat = stat.to(ref.dtype)
        if stat.shape[0] == 1:
            # (why) one statistic for every channel as a scalar: viewed as (1, 1), it turned a
            # u or an output of shape (batch,) into (1, batch), and a 0-d one into (1, 1)
            return stat.reshape(())
        if channel_dim == -1:
            return stat
        return stat.view(1, -1, *([1] * (ref.ndim - 2)))

    @staticmethod
    def _check_channels(what: str, v: torch.Tensor, stat: torch.Tensor, dim: int) -> None:
        # broadcasting would silently spread k statistics over 1 channel (or fail cryptically)
        n = stat.shape[0]
        if n != 1 and (v.ndim < 2 or v.shape[dim] != n):
            raise ValueError(
                f"Normalized expected {what} with {n} channels along dim {dim} (one per "
                f"statistic), got shape {tuple(v.shape)}"
            )

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """Normalise raw inputs: ``(u - mu_in) / s_in`` per channel, computed in ``u``'s dtype.

        A float64 ``u`` for a network in a narrower dtype is centred in float64 and the result
        rounded once to the network's dtype (that of ``out_std``, which :meth:`wrap` gives the
        network's): rounded first, a field 1e4 +- 1e-2 lost 0.05 std to float32's spacing.
        """
        # (why) the statistics are cast to u's dtype: an integer u was normalised with
        # truncated means and deviations (in_mean 0.5 as 0) and ran on without an error
        check_real("Normalized", "u", u)
        dim = self.config.channel_dim
        self._check_channels("u", u, self.in_mean, dim)
        z = (u - self._shape(self.in_mean, u, dim)) / self._shape(self.in_std, u, dim)
        if u.dtype == torch.float64 and self.out_std.dtype != torch.float64:
            z = z.to(self.out_std.dtype)
        return z

    def decode(self, v: torch.Tensor) -> torch.Tensor:
        """Map normalised outputs back to physical units: ``v s_out + mu_out`` per channel."""
        dim = self.config.out_channel_dim or self.config.channel_dim
        self._check_channels("the wrapped operator's output", v, self.out_mean, dim)
        # (why) in the statistics' precision where it is wider than v's: under bfloat16 autocast
        # the wrapped network answers in bfloat16, and v s + mu rounded to its 8 bits lost all
        # but the mean (out_mean 101325, out_std 100: every output was 101376)
        v = v.to(torch.promote_types(v.dtype, self.out_std.dtype))
        return v * self._shape(self.out_std, v, dim) + self._shape(self.out_mean, v, dim)

    def _rollout_check(self) -> None:
        if not isinstance(self.inner, Autoregressive) or self.config.channel_dim != 1:
            raise ValueError(
                f"rollout: expected a wrapped grid model (FNO, T1, MgNO) with channel_dim 1, got "
                f"{type(self.inner).__name__} with channel_dim {self.config.channel_dim}"
            )
        self.inner._rollout_check()

    def _rollout_channels(self) -> int:
        return self.inner._rollout_channels()

    def _rollout_check_static(self, n_static: int) -> None:
        self.inner._rollout_check_static(n_static)

    def forward(self, u: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``u``: raw input in the wrapped operator's layout; keyword arguments (``x``, ``t``, ...)
        go to the wrapped operator unchanged. Returns raw (de-normalised) output."""
        return self.decode(self.inner(self.encode(u), **kwargs))
