"""Latent ODEs for irregularly sampled series (Rubanova, Chen, Duvenaud; NeurIPS 2019).

Observations ``x: (batch, time, channels)`` at shared, irregular times ``t: (time,)`` with an
optional mask of the same shape (1 = observed). An encoder reads the series backwards into the
posterior ``q(z_0 | x) = N(mu, diag(exp(logvar)))``; ``z_0`` is propagated by a
:class:`~sciml.de.NeuralODE` and decoded at the query times:

    z_0 ~ q(z_0 | x),   z(t) = ODESolve(f_theta, z_0, t),   x_hat(t) = dec(z(t)).

The training loss is the masked squared error plus ``kl_weight * KL(q || N(0, I))``.
Encoders: :class:`GRUEncoder` (a GRU fed ``[x, mask, dt]``, cheap) and :class:`ODERNNEncoder`
(the hidden state follows its own neural ODE between observations, then a GRU update).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._scalars import is_int
from ..layers._checks import check_int
from .neural_ode import Autonomous, NeuralODE, check_times, solve_times
from .solvers import RK4

__all__ = ["GRUEncoder", "ODERNNEncoder", "LatentODE"]


def _check(t: Tensor, x: Tensor, mask: Tensor | None, channels: int) -> tuple[Tensor, Tensor]:
    """``(t, mask)``: the times as a tensor and the mask in ``x``'s dtype, after the checks."""
    if not isinstance(t, Tensor):
        # (why) a list failed on t.dim() while NeuralODE and LatentODE's query times take one;
        # made as NeuralODE makes its times (solve_times): x's dtype, but at least float32 for
        # a half-precision x, whose dtype rounded t = [100, 100.3] to [100, 100.5]
        t = solve_times(t, x)
    if x.dim() != 3 or t.dim() != 1 or x.shape[1] != t.shape[0]:
        raise ValueError(
            f"expected t (time,) and x (batch, time, channels), got {tuple(t.shape)} and {tuple(x.shape)}"
        )
    if x.shape[-1] != channels:
        # (why) it failed in the GRU cell as "input has inconsistent input_size: got 11
        # expected 9" (its input is [x, mask, dt]), naming neither x nor the channels
        raise ValueError(
            f"expected x of shape (batch, time, channels={channels}) (the encoder's channels), "
            f"got {tuple(x.shape)}"
        )
    check_times(t, decreasing=False, strict=False, what="observation times t")
    if mask is None:
        return t, torch.ones_like(x)
    if mask.shape != x.shape:
        raise ValueError(f"expected mask of x's shape {tuple(x.shape)}, got {tuple(mask.shape)}")
    return t, mask.to(x)


def _observed(x: Tensor, mask: Tensor) -> Tensor:
    """``x * mask`` with unobserved entries exactly 0 whatever they hold (a NaN placeholder for
    a missing value would otherwise leak through ``NaN * 0``)."""
    return x.masked_fill(mask == 0, 0.0) * mask


class GRUEncoder(nn.Module):
    """Backwards GRU over ``[x * mask, mask, dt]``; returns ``(mu, logvar)``, each
    ``(batch, latent)``. Unobserved values are ignored whatever they hold (NaN included)."""

    def __init__(self, channels: int, latent: int, hidden: int = 32) -> None:
        # (why) unchecked, True built a size-1 layer, 0 an empty encoder, and 2.5 or -1 failed
        # inside torch naming no argument
        name = type(self).__name__
        channels = check_int(f"{name}.channels", channels)
        latent = check_int(f"{name}.latent", latent)
        hidden = check_int(f"{name}.hidden", hidden)
        super().__init__()
        self.cell = nn.GRUCell(2 * channels + 1, hidden)
        self.out = nn.Linear(hidden, 2 * latent)
        self.hidden = hidden
        self.channels = channels

    def forward(self, t: Tensor, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``t: (time,)`` non-decreasing observation times, ``x: (batch, time, channels)``,
        ``mask`` of ``x``'s shape (1 observed, 0 not; all observed when None) ->
        ``(mu, logvar)``, each ``(batch, latent)``."""
        t, mask = _check(t, x, mask, self.channels)
        x = _observed(x, mask)
        h = x.new_zeros(x.shape[0], self.hidden)
        # (why) in t's precision, then x's dtype: float64 times with a float32 model failed
        dts = torch.cat([t[1:] - t[:-1], t.new_zeros(1)]).to(x)
        for i in reversed(range(t.numel())):
            dt = dts[i].expand(x.shape[0], 1)
            h = self.cell(torch.cat([x[:, i], mask[:, i], dt], dim=-1), h)
        return self.out(h).chunk(2, dim=-1)


class ODERNNEncoder(GRUEncoder):
    """ODE-RNN: between observations (backwards in time) the hidden state follows
    ``dh/dt = g(h)`` (fixed-step RK4, ``steps`` per interval), then a GRU update.

    A series with nothing observed at a time (its mask row all zero) keeps the ODE-evolved state
    there, as in Rubanova et al.; the GRU's ``dt`` input is the time over which the state evolved
    since its last update (since ``t[-1]`` before the first, reading backwards): the time to
    that series' next observation. A time unobserved in every channel thus changes the encoding
    only through the RK4 grid of the interval it splits.
    """

    def __init__(self, channels: int, latent: int, hidden: int = 32, steps: int = 2) -> None:
        if not is_int(steps) or steps < 1:
            # (why) checked here: steps=0 failed only at the first forward, as a
            # ZeroDivisionError in the RK4 step size span / steps
            raise ValueError(f"expected steps >= 1 RK4 steps per interval (an int), got {steps!r}")
        super().__init__(channels, latent, hidden)
        hidden = self.hidden
        self.ode_net = nn.Sequential(
            nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, hidden)
        )
        self.steps = steps

    def forward(self, t: Tensor, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``t: (time,)`` non-decreasing observation times, ``x: (batch, time, channels)``,
        ``mask`` of ``x``'s shape (1 observed, 0 not; all observed when None) ->
        ``(mu, logvar)``, each ``(batch, latent)``."""
        t, mask = _check(t, x, mask, self.channels)
        x = _observed(x, mask)
        h = x.new_zeros(x.shape[0], self.hidden)
        n = t.numel()
        observed = mask.ne(0).any(dim=-1)  # (batch, time)
        t_next = t[-1].expand(x.shape[0])  # each series' last update (backwards in time)
        for i in reversed(range(n)):
            span = float(t[i + 1] - t[i]) if i < n - 1 else 0.0
            if span > 0:  # two observations at one time: no evolution between them
                # (why) only the interval's end, a grid point, is read: no interpolation needed
                solver = RK4(step_size=span / self.steps, interp="linear")
                node = NeuralODE(Autonomous(self.ode_net), solver)
                # (why) over the interval's length, not its ends: the field is autonomous, and
                # absolute float64 times cast to a float32 state lost the difference (two
                # observations 0.01 apart at t = 1e6 became one time)
                length = t[i + 1] - t[i]
                h = node(h, torch.stack([length, torch.zeros_like(length)]))[-1]
            dt = (t_next - t[i]).to(x).unsqueeze(-1)  # (batch, 1)
            update = self.cell(torch.cat([x[:, i], mask[:, i], dt], dim=-1), h)
            # (why) a GRU step on an empty row would move the state with no information
            h = torch.where(observed[:, i, None], update, h)
            t_next = torch.where(observed[:, i], t[i], t_next)
        return self.out(h).chunk(2, dim=-1)


class LatentODE(nn.Module):
    """Encoder -> ``z_0`` -> :class:`NeuralODE` -> decoder.

    Args:
        encoder: a :class:`GRUEncoder` / :class:`ODERNNEncoder` returning ``(mu, logvar)``.
        dynamics: the :class:`NeuralODE` on the latent state (its regulariser applies).
        channels: observed channels (decoder output).
        latent: latent size.
        decoder: module mapping ``(..., latent) -> (..., channels)``; default
            ``nn.Linear(latent, channels)`` (Rubanova et al.). A nonlinear decoder lets the
            latent dynamics be simpler than the observed ones (e.g. a phase that grows linearly
            while the decoder draws the oscillation), which is where solver-heuristic
            regularisers find their savings.
    """

    def __init__(
        self,
        encoder: nn.Module,
        dynamics: NeuralODE,
        channels: int,
        latent: int,
        *,
        decoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(dynamics, NeuralODE):
            raise TypeError(f"expected dynamics as a NeuralODE, got {type(dynamics).__name__}")
        channels = check_int("LatentODE.channels", channels)
        latent = check_int("LatentODE.latent", latent)
        self.encoder = encoder
        self.dynamics = dynamics
        self.decoder = nn.Linear(latent, channels) if decoder is None else decoder

    def forward(
        self, t_obs: Tensor, x: Tensor, t_query: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Returns ``x_hat: (batch, len(t_query), channels)`` and the KL term (scalar).

        ``t_query[0]`` is the time of ``z_0`` (normally ``t_obs[0]``). In eval mode ``z_0 = mu``.
        """
        mu, logvar = self.encoder(t_obs, x, mask)
        z0 = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        zs = self.dynamics(z0, t_query)  # (time, batch, latent)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()
        return self.decoder(zs).transpose(0, 1), kl

    @property
    def regularisation(self) -> Tensor:
        """``dynamics.regularisation``: the weighted penalty of the ``dynamics`` NeuralODE's
        regulariser from the last forward call, a 0-dim tensor carrying its graph (add it to the
        loss); 0 in eval mode, without gradients, with no regulariser, and before the first call."""
        return self.dynamics.regularisation
