"""Fourier neural operator (Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021).

    v_0 = P(u, grid)                             lifting, pointwise (linear or two-layer MLP)
    v_{l+1} = act( K_l v_l + W_l v_l )           K_l: SpectralConv, W_l: pointwise skip
    G(u) = Q(v_L)                                projection, pointwise two-layer MLP

The last Fourier layer has no activation, as in the reference implementation.

With ``channel_mlp_expansion > 0`` each layer gains neuraloperator's channel MLP (the default of
neuraloperator's ``FNO``, so converted models are represented exactly)::

    h = act( K_l v_l + W_l v_l )
    v_{l+1} = act( M_l h + S_l v_l )             M_l: two-layer pointwise MLP, S_l: its skip

again without the activations on the last layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .._config import check_json_fields
from ..layers import SpectralConv, activation, pointwise
from ..layers._checks import check_grid, check_input_dtype, check_int_fields, check_ints
from ..layers.mlp import _ACTIVATIONS
from ..operator import Operator
from ._rollout import Autoregressive

__all__ = ["FNO", "FNOConfig"]


@dataclass(frozen=True)
class FNOConfig:
    """Hyper-parameters of :class:`FNO`.

    Attributes:
        in_channels: input function channels (e.g. 1 for Darcy's coefficient).
        out_channels: output function channels.
        modes: kept Fourier modes per spatial dim (its length sets 1D, 2D or 3D); see
            :class:`sciml.layers.SpectralConv` for their meaning.
        width: channels inside the Fourier layers.
        n_layers: number of Fourier layers.
        projection_channels: hidden channels of the projection MLP.
        positional_embedding: append the grid coordinates ``i / n`` in ``[0, 1)`` to the input.
        padding: grid points of zero padding appended to each spatial dim before the Fourier
            layers and removed after (helps non-periodic problems such as Darcy flow). Points,
            not a fraction of the domain: on a finer grid scale it with the resolution to keep
            the same function (neuraloperator's ``domain_padding=f``, ``round(f n)`` points on
            both sides, is ``padding = 2 round(f n)`` here; see ``docs/spectral.md``).
        activation: one of gelu, relu, tanh, silu.
        lifting_channels: 0 for a linear lifting; else the hidden width of a two-layer lifting
            MLP (neuraloperator's default is ``2 * width``).
        channel_mlp_expansion: 0 for none; else each Fourier layer is followed by a pointwise
            MLP with ``round(width * expansion)`` hidden channels (neuraloperator: 0.5).
        channel_mlp_skip: skip around that MLP from the layer input: ``soft-gating`` (a learned
            per-channel scale, neuraloperator's default), ``linear`` or ``identity``.
    """

    in_channels: int = 1
    out_channels: int = 1
    modes: tuple[int, ...] = (12, 12)
    width: int = 32
    n_layers: int = 4
    projection_channels: int = 128
    positional_embedding: bool = True
    padding: int = 0
    activation: Literal["gelu", "relu", "tanh", "silu"] = "gelu"
    lifting_channels: int = 0
    channel_mlp_expansion: float = 0.0
    channel_mlp_skip: Literal["soft-gating", "linear", "identity"] = "soft-gating"

    def __post_init__(self) -> None:
        ints = ("in_channels", "out_channels", "width", "n_layers", "projection_channels")
        check_int_fields(self, (*ints, "padding", "lifting_channels"))
        check_ints("modes", self.modes, per="spatial dim")
        if not 1 <= len(self.modes) <= 3:
            raise ValueError(
                f"modes must have 1 to 3 entries (one per spatial dim), got {self.modes}"
            )
        for name in ("in_channels", "out_channels", "width", "n_layers", "projection_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        if not math.isfinite(self.channel_mlp_expansion):  # (why) round(nan) / round(inf) raised
            raise ValueError(
                f"channel_mlp_expansion must be a finite number >= 0, got "
                f"{self.channel_mlp_expansion}"
            )
        if self.lifting_channels < 0 or self.channel_mlp_expansion < 0:
            raise ValueError(
                "lifting_channels and channel_mlp_expansion must be >= 0, got "
                f"{self.lifting_channels} and {self.channel_mlp_expansion}"
            )
        if self.channel_mlp_expansion and round(self.width * self.channel_mlp_expansion) < 1:
            raise ValueError(
                f"channel_mlp_expansion={self.channel_mlp_expansion} gives no hidden channel "
                f"at width {self.width}"
            )
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.channel_mlp_skip not in ("soft-gating", "linear", "identity"):
            raise ValueError(
                "channel_mlp_skip must be soft-gating, linear or identity, got "
                f"{self.channel_mlp_skip!r}"
            )
        check_json_fields(self)


class FNO(Autoregressive, Operator, family="fno"):
    """Fourier neural operator on 1D, 2D or 3D grids.

    Resolution-invariant: weights act on Fourier modes, so the same model evaluates a function
    sampled on any grid with at least ``2 * modes`` points per dim.
    """

    config_class = FNOConfig
    config: FNOConfig
    resolution_invariant = True

    def __init__(self, config: FNOConfig) -> None:
        super().__init__(config)
        c = config
        d = len(c.modes)
        self.ndim = d
        lift_in = c.in_channels + (d if c.positional_embedding else 0)
        if c.lifting_channels:
            self.lift = nn.Sequential(
                pointwise(lift_in, c.lifting_channels, d),
                activation(c.activation),
                pointwise(c.lifting_channels, c.width, d),
            )
        else:
            self.lift = pointwise(lift_in, c.width, d)
        self.spectral = nn.ModuleList(
            SpectralConv(c.width, c.width, c.modes) for _ in range(c.n_layers)
        )
        self.skip = nn.ModuleList(pointwise(c.width, c.width, d) for _ in range(c.n_layers))
        self.act = activation(c.activation)
        if c.channel_mlp_expansion:
            hidden = round(c.width * c.channel_mlp_expansion)
            self.channel_mlp = nn.ModuleList(
                nn.Sequential(
                    pointwise(c.width, hidden, d),
                    activation(c.activation),
                    pointwise(hidden, c.width, d),
                )
                for _ in range(c.n_layers)
            )
            self.channel_mlp_skip = nn.ModuleList(
                _skip(c.channel_mlp_skip, c.width, d) for _ in range(c.n_layers)
            )
        self.project = nn.Sequential(
            pointwise(c.width, c.projection_channels, d),
            activation(c.activation),
            pointwise(c.projection_channels, c.out_channels, d),
        )

    def forward(
        self, u: torch.Tensor, *, x: torch.Tensor | None = None, t: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Map input functions to output functions on the same grid.

        Args:
            u: ``(batch, in_channels, *spatial)`` with ``len(config.modes)`` spatial dims.
            x: unused (grid models take their coordinates from the grid); must be None.
            t: unused; must be None.

        Returns:
            ``(batch, out_channels, *spatial)``.
        """
        c = self.config
        check_input_dtype("FNO", "u", u, self.project[-1].weight.dtype)
        if u.ndim != self.ndim + 2 or u.shape[1] != c.in_channels:
            raise ValueError(
                f"FNO expected u of shape (batch, {c.in_channels}, {self.ndim} spatial dims), "
                f"got {tuple(u.shape)}; the spatial dims are set by the config: "
                f"in_channels={c.in_channels}, modes={tuple(c.modes)}"
            )
        check_grid("FNO", "u", u, range(2, u.ndim))
        if x is not None or t is not None:
            raise ValueError("FNO takes no query points x or lead time t; pass only u")
        if c.positional_embedding:
            u = torch.cat([u, _grid(u)], dim=1)
        v = self.lift(u)
        if c.padding:
            grid = tuple(u.shape[2:])
            padded = tuple(n + c.padding for n in grid)
            try:  # name the grid the user gave, not only the padded one
                self.spectral[0].effective_modes(padded, padded)
            except ValueError as err:
                raise ValueError(
                    f"FNO pads u's grid {grid} by padding={c.padding} to {padded}: {err}"
                ) from None
            v = F.pad(v, [0, c.padding] * self.ndim)
        for i, (spec, skip) in enumerate(zip(self.spectral, self.skip)):
            last = i == c.n_layers - 1
            h = spec(v) + skip(v)
            if not last:
                h = self.act(h)
            if c.channel_mlp_expansion:
                h = self.channel_mlp[i](h) + self.channel_mlp_skip[i](v)
                if not last:
                    h = self.act(h)
            v = h
        if c.padding:
            v = v[(..., *[slice(0, -c.padding)] * self.ndim)]
        return self.project(v)


class SoftGating(nn.Module):
    """A learned per-channel scale ``w_c x_c`` (initialised to 1)."""

    def __init__(self, channels: int, ndim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, *([1] * ndim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x


def _skip(kind: str, channels: int, ndim: int) -> nn.Module:
    if kind == "soft-gating":
        return SoftGating(channels, ndim)
    if kind == "linear":
        return pointwise(channels, channels, ndim, bias=False)
    return nn.Identity()


def _grid(u: torch.Tensor) -> torch.Tensor:
    """Coordinates ``i / n`` of every grid point: ``(batch, ndim, *spatial)``."""
    spatial = u.shape[2:]
    axes = [torch.arange(n, device=u.device, dtype=u.dtype) / n for n in spatial]
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return mesh.unsqueeze(0).expand(u.shape[0], *mesh.shape)
