"""MgNO: neural operators whose linear maps are multigrid V-cycles (He, Liu & Xu, ICLR 2024).

A layer is a "neuron" between function spaces, with no lifting or projection around the stack::

    v_0 = u                                               (in_channels)
    v_{l+1} = act( V_l(v_l) + W_l v_l + b_l )             V_l: VCycle, W_l: pointwise (optional)
    G(u) = Q v_L                                          Q: pointwise, no bias

The first V-cycle reads the input function as its right-hand side ``f`` (``in_channels``) and
returns ``channels`` functions; the later ones map ``channels -> channels``. Boundary
conditions come from the padding mode of every convolution (:class:`sciml.layers.VCycle`).

Navier-Stokes variant (:meth:`MgNOConfig.navier_stokes`): periodic padding, biased smoothing
convolutions, a layer norm after each coarse-grid correction, no pointwise term, and a residual
output ``G(u) = u_last + Q v_L`` (``u_last``: the latest ``out_channels`` input channels before the
``static_channels`` static ones), rolled out autoregressively with :meth:`MgNO.rollout`.

The paper's training recipe (H1 loss, one-cycle schedule, outputs normalised with the
statistics stored inside the model) is :func:`darcy_recipe` plus :class:`sciml.models.Normalized`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from .._config import check_json_fields
from ..layers import activation, pointwise
from ..layers._checks import check_input_dtype, check_int_fields
from ..layers.mlp import _ACTIVATIONS
from ..layers.multigrid import _PADDING_MODES, VCycle
from ..operator import Operator
from ..train.config import TrainConfig
from ..train.losses import H1Loss
from ..train.schedules import OneCycle
from ._rollout import Autoregressive

__all__ = ["MgNO", "MgNOConfig", "darcy_recipe", "Recipe", "PAPER_DARCY_SMOOTHING"]

#: (pre, post) smoothing steps per level of the paper's Darcy model: 6 levels, one pre-smoothing
#: step per level and two on the coarsest.
PAPER_DARCY_SMOOTHING: tuple[tuple[int, int], ...] = ((1, 0),) * 5 + ((2, 0),)
#: The authors' Navier-Stokes script: 5 levels.
NS_SMOOTHING: tuple[tuple[int, int], ...] = ((1, 0),) * 3 + ((2, 0),) * 2


@dataclass(frozen=True)
class MgNOConfig:
    """Hyper-parameters of :class:`MgNO`. The defaults are the paper's Darcy model (572,661
    parameters for one input channel).

    Attributes:
        in_channels: input function channels (the first V-cycle's right-hand side).
        out_channels: output function channels.
        channels: channels of the hidden functions (the V-cycles' ``u``).
        n_layers: number of MgNO layers.
        smoothing: ``(pre, post)`` smoothing steps per level, finest first (the number of levels
            is its length); see :class:`sciml.layers.VCycle`.
        ndim: spatial dims (1, 2 or 3).
        padding: boundary condition of every convolution: ``"zeros"`` (Dirichlet),
            ``"circular"`` (periodic), ``"reflect"`` (Neumann), ``"replicate"``.
        activation: one of gelu, relu, tanh, silu.
        pointwise_skip: add ``W v + b`` (a 1 x 1 convolution with bias) inside each layer.
        level_norm: layer norm after each coarse-grid correction (Navier-Stokes variant).
        residual: output ``u_last + Q v_L`` with ``u_last`` the last ``out_channels`` input
            channels before the static ones (time stepping; needs ``in_channels -
            static_channels`` a multiple of ``out_channels``).
        restrict_guess: coarse levels start from a learned restriction of ``u`` (paper); False
            starts them from zero (classical multigrid).
        residual_restriction: restrict ``f - A u`` (classical) rather than ``f`` (paper).
        bias: give the smoothing convolutions ``A`` and ``S`` biases (the authors' Navier-Stokes
            script trains with them; their Darcy models have none).
        static_channels: the last ``static_channels`` input channels are static inputs (a
            forcing, a coefficient field; :meth:`MgNO.rollout`'s ``static``), the others a
            window of states; ``residual`` adds the last ``out_channels`` of the states.
    """

    in_channels: int = 1
    out_channels: int = 1
    channels: int = 24
    n_layers: int = 4
    smoothing: tuple[tuple[int, int], ...] = PAPER_DARCY_SMOOTHING
    ndim: int = 2
    padding: Literal["zeros", "circular", "reflect", "replicate"] = "zeros"
    activation: Literal["gelu", "relu", "tanh", "silu"] = "gelu"
    pointwise_skip: bool = True
    level_norm: bool = False
    residual: bool = False
    restrict_guess: bool = True
    residual_restriction: bool = False
    bias: bool = False
    static_channels: int = 0

    def __post_init__(self) -> None:
        check_int_fields(
            self,
            ("in_channels", "out_channels", "channels", "n_layers", "ndim", "static_channels"),
        )
        for name in ("in_channels", "out_channels", "channels", "n_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.static_channels < self.in_channels:
            raise ValueError(
                f"static_channels must be >= 0 and leave at least one state channel, so below "
                f"in_channels={self.in_channels}, got {self.static_channels}"
            )
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got {self.ndim}")
        pairs = self.smoothing
        if not isinstance(pairs, (tuple, list)) or not all(
            isinstance(p, (tuple, list)) for p in pairs
        ):
            # (why) one level's pair without the outer tuple, smoothing=(1, 0), failed with
            # "object of type 'int' has no len()", a NumPy array with "truth value ... ambiguous"
            raise TypeError(
                "smoothing: expected a tuple of (pre, post) pairs, one per level, e.g. "
                f"((1, 0), (2, 0)) (one level: ((2, 0),)), got {pairs!r}"
            )
        if not self.smoothing or any(len(p) != 2 or min(p) < 0 for p in self.smoothing):
            raise ValueError(
                "smoothing must be a non-empty tuple of (pre, post) pairs of non-negative step "
                f"counts, one per level, got {self.smoothing}"
            )
        if self.padding not in _PADDING_MODES:
            raise ValueError(f"padding: expected one of {_PADDING_MODES}, got {self.padding!r}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        states = self.in_channels - self.static_channels
        if self.residual and states % self.out_channels:
            raise ValueError(
                f"residual=True adds the last out_channels={self.out_channels} state channels to "
                f"the output, so in_channels - static_channels must be a multiple of it, got "
                f"{self.in_channels} - {self.static_channels} = {states}"
            )
        check_json_fields(self)

    @classmethod
    def darcy(cls, in_channels: int = 1, out_channels: int = 1) -> MgNOConfig:
        """The paper's Darcy model: 6 levels (one pre-smoothing step per level, two on the
        coarsest), 24 channels, 4 layers, zero padding; 572,661 parameters for one input."""
        return cls(in_channels=in_channels, out_channels=out_channels)

    @classmethod
    def navier_stokes(
        cls, in_channels: int = 1, out_channels: int = 1, *, static_channels: int = 0
    ) -> MgNOConfig:
        """The authors' Navier-Stokes model: 5 layers of 32 channels, 5 levels, periodic
        padding, biased smoothing convolutions, a layer norm per level, no pointwise term,
        residual output (``static_channels``: a forcing among the inputs, see the field)."""
        return cls(
            in_channels=in_channels,
            out_channels=out_channels,
            static_channels=static_channels,
            channels=32,
            n_layers=5,
            smoothing=NS_SMOOTHING,
            padding="circular",
            pointwise_skip=False,
            level_norm=True,
            residual=True,
            bias=True,
        )


class MgNO(Autoregressive, Operator, family="mgno"):
    """Multigrid neural operator on 1D, 2D or 3D grids of any size (odd sizes included), except
    with ``padding="circular"``: a periodic hierarchy needs each dim a multiple of
    ``2 ** (levels - 1)`` (:meth:`sciml.layers.VCycle.min_size`).

    Not resolution-invariant in the FNO sense: the convolution stencils are tied to the grid
    spacing, so a model is meant for the resolution it was trained on.
    """

    config_class = MgNOConfig
    config: MgNOConfig
    resolution_invariant = False

    def __init__(self, config: MgNOConfig) -> None:
        super().__init__(config)
        c = config
        self.vcycles = nn.ModuleList(
            VCycle(
                c.in_channels if i == 0 else c.channels,
                c.channels,
                c.smoothing,
                ndim=c.ndim,
                padding=c.padding,
                restrict_guess=c.restrict_guess,
                residual_restriction=c.residual_restriction,
                level_norm=c.level_norm,
                bias=c.bias,
            )
            for i in range(c.n_layers)
        )
        self.skips = (
            nn.ModuleList(
                pointwise(c.in_channels if i == 0 else c.channels, c.channels, c.ndim)
                for i in range(c.n_layers)
            )
            if c.pointwise_skip
            else None
        )
        self.act = activation(c.activation)
        self.project = pointwise(c.channels, c.out_channels, c.ndim, bias=False)

    def forward(
        self, u: torch.Tensor, *, x: torch.Tensor | None = None, t: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Map input functions to output functions on the same grid.

        Args:
            u: ``(batch, in_channels, *spatial)`` with ``config.ndim`` spatial dims of at least
                ``2 ** (levels - 1) + 1`` points each (``padding="circular"``: a multiple of
                ``2 ** (levels - 1)``, so that every coarse grid is every other point).
            x: unused (grid model); must be None.
            t: unused (grid model); must be None.

        Returns:
            ``(batch, out_channels, *spatial)``:
            ``Q act(V_L(...) + W_L ...)`` (+ the last ``out_channels`` input channels before
            the ``config.static_channels`` static ones when ``config.residual``).
        """
        c = self.config
        check_input_dtype("MgNO", "u", u, self.project.weight.dtype)
        if u.ndim != c.ndim + 2 or u.shape[1] != c.in_channels:
            raise ValueError(
                f"MgNO expected u of shape (batch, {c.in_channels}, {c.ndim} spatial dims), "
                f"got {tuple(u.shape)}"
            )
        if x is not None or t is not None:
            raise ValueError("MgNO takes no query points x or lead time t; pass only u")
        v = u
        for i, vcycle in enumerate(self.vcycles):
            w = vcycle(v)
            if self.skips is not None:
                w = w + self.skips[i](v)
            v = self.act(w)
        out = self.project(v)
        if c.residual:
            states = c.in_channels - c.static_channels
            out = out + u[:, states - c.out_channels : states]
        return out

    def _rollout_check_static(self, n_static: int) -> None:
        c = self.config
        if n_static != c.static_channels and (c.residual or c.static_channels):
            # (why) rollout appends static after the window: with a count other than the
            # config's, residual=True added a forcing channel instead of the latest state
            raise ValueError(
                f"rollout: this MgNO takes static_channels={c.static_channels} static input "
                f"channels after the states (residual={c.residual} adds the latest state "
                f"before them), got static with {n_static}; pass static of "
                f"{c.static_channels} channels or build the model with static_channels="
                f"{n_static}"
            )


class Recipe(NamedTuple):
    """A training recipe for :class:`sciml.train.Trainer`: its config and loss."""

    config: TrainConfig
    loss: H1Loss


def darcy_recipe(
    *, epochs: int = 500, batch_size: int = 8, lr: float = 3e-4, seed: int = 0
) -> Recipe:
    """The paper's Darcy training recipe for the common :class:`~sciml.train.Trainer`.

    H1 loss (finite differences, the Darcy grid is not periodic), the one-cycle schedule of the
    authors' scripts (start at ``lr / 2``, end at ``lr / 200``), weight decay 1e-4. Two
    differences from their ``darcy.py``, kept because the shipped ``mgno-darcy`` and the
    measurements in ``docs/mgno.md`` were made with them: the peak comes at 30% of the run (theirs
    at 20%, ``pct_start=0.2``, stepped once per epoch), and the Trainer's AdamW decays the weights
    decoupled (``lr * 1e-4`` per step) where their Adam adds ``1e-4 * w`` to the gradient.
    Pair it with output normalisation inside the model (:meth:`sciml.models.Normalized.wrap`), so
    the model learns normalised targets and returns physical ones::

        model = Normalized.wrap(MgNO(MgNOConfig.darcy()), in_mean=..., in_std=...,
                                out_mean=..., out_std=...)
        recipe = darcy_recipe(epochs=100)
        Trainer(model, train, val_data=val, loss=recipe.loss, config=recipe.config).fit()
    """
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=1e-4,
        schedule=OneCycle(pct_start=0.3, div_factor=2.0, final_div_factor=100.0),
        seed=seed,
    )
    return Recipe(config, H1Loss(periodic=False))
