"""Fourier neural operator (Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021).

    v_0 = P(u, grid)                             lifting, pointwise
    v_{l+1} = act( K_l v_l + W_l v_l )           K_l: SpectralConv, W_l: pointwise skip
    G(u) = Q(v_L)                                projection, pointwise two-layer MLP

The last Fourier layer has no activation, as in the reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import SpectralConv, activation, pointwise
from ..operator import Operator

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
            layers and removed after (helps non-periodic problems such as Darcy flow).
        activation: one of gelu, relu, tanh, silu.
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

    def __post_init__(self) -> None:
        if not 1 <= len(self.modes) <= 3:
            raise ValueError(
                f"modes must have 1 to 3 entries (one per spatial dim), got {self.modes}"
            )
        for name in ("in_channels", "out_channels", "width", "n_layers", "projection_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")


class FNO(Operator, family="fno"):
    """Fourier neural operator on 1D, 2D or 3D grids.

    Resolution-invariant: weights act on Fourier modes, so the same model evaluates a function
    sampled on any grid with at least ``2 * modes`` points per dim.
    """

    config_class = FNOConfig
    resolution_invariant = True

    def __init__(self, config: FNOConfig) -> None:
        super().__init__(config)
        c = config
        d = len(c.modes)
        self.ndim = d
        lift_in = c.in_channels + (d if c.positional_embedding else 0)
        self.lift = pointwise(lift_in, c.width, d)
        self.spectral = nn.ModuleList(
            SpectralConv(c.width, c.width, c.modes) for _ in range(c.n_layers)
        )
        self.skip = nn.ModuleList(pointwise(c.width, c.width, d) for _ in range(c.n_layers))
        self.act = activation(c.activation)
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
        if u.ndim != self.ndim + 2 or u.shape[1] != c.in_channels:
            raise ValueError(
                f"FNO expected u of shape (batch, {c.in_channels}, {self.ndim} spatial dims), "
                f"got {tuple(u.shape)}"
            )
        if x is not None or t is not None:
            raise ValueError("FNO takes no query points x or lead time t; pass only u")
        if c.positional_embedding:
            u = torch.cat([u, _grid(u)], dim=1)
        v = self.lift(u)
        if c.padding:
            v = F.pad(v, [0, c.padding] * self.ndim)
        for i, (spec, skip) in enumerate(zip(self.spectral, self.skip)):
            v = spec(v) + skip(v)
            if i < c.n_layers - 1:
                v = self.act(v)
        if c.padding:
            v = v[(..., *[slice(0, -c.padding)] * self.ndim)]
        return self.project(v)


def _grid(u: torch.Tensor) -> torch.Tensor:
    """Coordinates ``i / n`` of every grid point: ``(batch, ndim, *spatial)``."""
    spatial = u.shape[2:]
    axes = [torch.arange(n, device=u.device, dtype=u.dtype) / n for n in spatial]
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return mesh.unsqueeze(0).expand(u.shape[0], *mesh.shape)
