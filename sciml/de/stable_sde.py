"""Stable neural SDE classes for irregular time series (Oh, Lim, Kim; ICLR 2024).

Observations ``x_i`` at times ``t_i`` (shared by the batch, missing values as NaN-free zeros plus
an optional mask channel) define a controlled path ``X(t)``, here the piecewise-linear
interpolant. The hidden state starts at ``z(t_0) = h(x_0)`` (linear) and a control network
folds the path into the drift, ``zbar(t) = zeta(t, z(t), X(t))``. With ``gamma`` a bounded
Lipschitz network (tanh output) and ``sigma`` a network of time only:

* Langevin-type (LSDE):   ``dz = gamma(zbar) dt + sigma(t) dW``
* linear noise (LNSDE):   ``dz = gamma(t, zbar) dt + sigma(t) * z dW``
* geometric (GSDE):       ``dz / z = gamma(t, zbar) dt + sigma(t) dW``, i.e.
  ``dz = z * gamma dt + z * sigma(t) dW``

(diagonal noise throughout; the Langevin class declares it additive, under which adaptive
Euler-Maruyama converges with strong order 1). Because the drift is bounded and the diffusion
is additive or linear in ``z`` with a state-independent coefficient, solutions exist, are unique
and cannot explode in finite time whatever the input; :class:`NaiveSDE` (drift and diffusion unconstrained networks
of ``(t, z, X)``) is the baseline that can. The readout is a linear map of ``z(t_end)``.
``docs/neural_de.md`` lists where this differs from the authors' code (cubic-spline path,
clipped diffusion, MLP readout) and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._scalars import is_int
from ..errors import ConfigError
from .heuristics import GlobalHeuristic
from .local import LocalHeuristic
from .neural_ode import check_times
from .neural_sde import NeuralSDE
from .solvers import EulerMaruyama, SDESolver

__all__ = [
    "LinearPath",
    "StableSDEConfig",
    "LangevinSDE",
    "LinearNoiseSDE",
    "GeometricSDE",
    "NaiveSDE",
]


class LinearPath:
    """Piecewise-linear interpolant ``X(t)`` of ``x: (batch, time, channels)`` at ``t: (time,)``."""

    def __init__(self, t: Tensor, x: Tensor) -> None:
        # (why) a list of times takes x's dtype: torch's default float32 rounded the times of a
        # float64 model (0.3 -> 0.30000001, a different solve from the same times as a tensor)
        t = torch.as_tensor(t, dtype=None if isinstance(t, Tensor) else x.dtype, device=x.device)
        if not t.is_floating_point():
            # (why) query times are cast to t's dtype: integer times would truncate every query
            # to the observation before it (a piecewise-constant path)
            t = t.to(x.dtype)
        if x.dim() != 3 or t.dim() != 1 or x.shape[1] != t.shape[0]:
            raise ValueError(
                f"expected t (time,) and x (batch, time, channels), got {tuple(t.shape)} and {tuple(x.shape)}"
            )
        # (why) the one rule of the solvers, whose message names the times: this one said
        # only "expected strictly increasing observation times", and let an inf time through
        check_times(
            t,
            decreasing=False,
            what="observation times t",
            repeat_hint="merge the observations at a repeated time into one",
        )
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(
                f"expected finite observations x, got {bad} NaN/inf values; fill missing values "
                "(e.g. with zeros or the last observation) and add a mask channel"
            )
        self.t, self.x = t, x

    def __call__(self, t: Tensor) -> Tensor:
        """``X(t)``: ``(batch, channels)``; constant outside ``[t_0, t_end]``."""
        tq = t.reshape(()).to(self.t.dtype).clamp(self.t[0], self.t[-1])
        i = int(torch.searchsorted(self.t, tq.detach()).clamp(1, self.t.numel() - 1))
        t0, t1 = self.t[i - 1], self.t[i]
        w = (tq - t0) / (t1 - t0)
        return self.x[:, i - 1] + w * (self.x[:, i] - self.x[:, i - 1])


@dataclass(frozen=True)
class StableSDEConfig:
    """Sizes of a stable SDE model (each a positive int).

    Args:
        in_channels: channels of the input series, the last dim of ``x`` ``(batch, time,
            channels)``, which the control path ``X(t)`` interpolates.
        hidden: size of the hidden SDE state ``z``.
        width: width of the one hidden layer of each network of the drift and diffusion.
        out_channels: channels of the output, the linear readout of ``z`` at the last time.
    """

    in_channels: int
    hidden: int = 16
    width: int = 32
    out_channels: int = 1

    def __post_init__(self) -> None:
        for name in ("in_channels", "hidden", "width", "out_channels"):
            v = getattr(self, name)
            # (why) numbers.Integral as the other configs (sciml.layers._checks): a NumPy int
            # such as np.prod(shape) or a size read from an array is a valid size
            if not is_int(v) or v < 1:
                raise ConfigError(
                    f"expected StableSDEConfig.{name} a positive int, got {v!r}; "
                    "in_channels is the last dim of x (batch, time, channels)"
                )
            object.__setattr__(self, name, int(v))


def _mlp(i: int, o: int, w: int, out_act: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(i, w), nn.ReLU(), nn.Linear(w, o)]
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class _Drift(nn.Module):
    def __init__(self, owner: _PathSDE) -> None:
        super().__init__()
        self._owner = [owner]  # (why) a list: avoid registering the owner as a submodule (cycle)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self._owner[0].drift(t, z)


class _Diffusion(_Drift):
    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        owner = self._owner[0]
        g = owner.diffusion(t, z)
        # a diagonal sigma solved as general noise (NaiveSDE under the adjoint): (batch, h, h)
        return torch.diag_embed(g) if owner.sde.noise_type == "general" else g


class _PathSDE(nn.Module):
    """Shared machinery: initial map, control network, time-only diffusion, readout."""

    noise_type = "diagonal"
    """torchsde's noise type of the diffusion: ``"diagonal"``, a ``(batch, hidden)`` diffusion
    scaling one independent Brownian motion per hidden channel (``"additive"`` for
    :class:`LangevinSDE`, whose ``sigma(t)`` does not depend on ``z``)."""

    def __init__(
        self,
        config: StableSDEConfig,
        solver: SDESolver | None = None,
        *,
        adjoint: bool = False,
        regulariser: GlobalHeuristic | LocalHeuristic | None = None,
    ) -> None:
        super().__init__()
        c, h, w = config.in_channels, config.hidden, config.width
        self.config = config
        self.initial = nn.Linear(c, h)
        self.zeta = _mlp(1 + h + c, h, w)  # zbar = zeta(t, z, X(t))
        self.gamma = _mlp(1 + h, h, w, nn.Tanh())  # bounded Lipschitz drift
        self.sigma = _mlp(1, h, w, nn.Sigmoid())  # diffusion of time only, in (0, 1)
        self.noise_scale = 0.1
        self.readout = nn.Linear(h, config.out_channels)
        self.path: LinearPath | None = None
        self.sde = NeuralSDE(
            _Drift(self),
            _Diffusion(self),
            solver or EulerMaruyama(),
            adjoint=adjoint,
            regulariser=regulariser,
            noise_type=self._solve_noise_type(adjoint),
        )

    def _solve_noise_type(self, adjoint: bool) -> str:
        """The noise type torchsde solves with: :attr:`noise_type`."""
        return self.noise_type

    def _tcol(self, t: Tensor, z: Tensor) -> Tensor:
        return t.reshape(1, 1).to(z).expand(z.shape[0], 1)

    def _control(self, t: Tensor) -> Tensor:
        """``X(t)``, ``(batch, in_channels)``, of the series being solved."""
        if self.path is None:
            # (why) drift and diffusion are public methods, but X exists only inside a solve: a
            # direct call failed with "'NoneType' object is not callable"
            raise RuntimeError(
                "expected the control path X(t) of the series being solved, which "
                f"{type(self).__name__}'s drift reads, got none: call it inside model(t, x) / "
                "hidden_path(t, x), or set model.path = LinearPath(t, x) first"
            )
        return self.path(t)

    def zbar(self, t: Tensor, z: Tensor) -> Tensor:
        """``zbar = zeta(t, z, X(t))``, ``(batch, hidden)``: where the control path ``X`` enters
        the drift. ``X`` is the path of the series being solved, which :meth:`hidden_path` (and
        so :meth:`forward`) sets for the solve only: outside one, what reads it (this, every
        ``drift``, :class:`NaiveSDE`'s ``diffusion``) raises a ``RuntimeError`` unless
        ``model.path`` is set to a :class:`LinearPath` first."""
        return self.zeta(torch.cat([self._tcol(t, z), z, self._control(t)], dim=-1))

    def sig(self, t: Tensor, z: Tensor) -> Tensor:
        """``sigma(t)``, ``(batch, hidden)``: a sigmoid network of time alone, times
        ``noise_scale`` (0.1), so each entry lies in ``(0, 0.1)``."""
        return self.noise_scale * self.sigma(self._tcol(t, z))

    def drift(self, t: Tensor, z: Tensor) -> Tensor:
        """The drift ``(batch, hidden)`` at ``(t, z)``; each model defines it."""
        raise NotImplementedError

    def diffusion(self, t: Tensor, z: Tensor) -> Tensor:
        """The diagonal diffusion ``(batch, hidden)`` at ``(t, z)``; each model defines it."""
        raise NotImplementedError

    @property
    def regularisation(self) -> Tensor:
        """The weighted penalty of ``regulariser`` from the last forward call (``sde.regularisation``
        of the inner :class:`~sciml.de.NeuralSDE`), a 0-dim tensor carrying its graph: add it to
        the loss. 0 in eval mode, without gradients, with no regulariser, and before the first
        call."""
        return self.sde.regularisation

    def hidden_path(self, t: Tensor, x: Tensor) -> Tensor:
        """``z`` at the observation times: ``(time, batch, hidden)``."""
        w = self.initial.weight
        if not isinstance(x, Tensor) or x.dtype != w.dtype:
            raise TypeError(
                f"expected x as a tensor of the model's dtype {w.dtype}, got "
                f"{getattr(x, 'dtype', type(x).__name__)}; convert one of them "
                "(x.to(torch.float32) or model.double())"
            )
        path = LinearPath(t, x)
        c = self.config.in_channels
        if x.shape[-1] != c:
            # (why) it failed inside the initial nn.Linear as torch's "mat1 and mat2 shapes
            # cannot be multiplied", naming neither x nor the config
            raise ValueError(
                f"expected x of shape (batch, time, in_channels={c}) "
                f"(StableSDEConfig.in_channels), got {tuple(x.shape)}"
            )
        t = path.t
        self.path = path
        try:
            z0 = self.initial(x[:, 0])
            if not self.sde.adjoint:
                return self.sde(z0, t)
            # (why) the adjoint evaluates drift and diffusion again in the backward pass: it must
            # be told their parameters (ours; the NeuralSDE holds only proxies) and the path's
            # data, and find this call's path set when it runs (it was None: a TypeError)
            params = [
                p for n, p in self.named_parameters() if not n.startswith(("initial.", "readout."))
            ]
            zs = self.sde(z0, t, adjoint_params=[*params, x])
            if zs.requires_grad:
                zs.register_hook(lambda grad: self._set_path(path))
                if z0.requires_grad:  # reached once the adjoint is done
                    z0.register_hook(lambda grad: self._set_path(None))
            return zs
        finally:
            self.path = None

    def _set_path(self, path: LinearPath | None) -> None:
        self.path = path

    def __getstate__(self) -> dict:
        # a path left for a pending adjoint backward is not part of the model
        return {**super().__getstate__(), "path": None}

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        """``t: (time,)``, ``x: (batch, time, in_channels)`` -> readout of ``z(t_end)``:
        ``(batch, out_channels)``."""
        return self.readout(self.hidden_path(t, x)[-1])


class LangevinSDE(_PathSDE):
    """``dz = gamma(zbar) dt + sigma(t) dW`` (time enters gamma only through zbar)."""

    noise_type = "additive"
    """``"additive"``: the diffusion ``sigma(t)``, ``(batch, hidden)``, does not depend on ``z``
    (one independent Brownian motion per hidden channel)."""

    def drift(self, t: Tensor, z: Tensor) -> Tensor:
        """``gamma(0, zbar)``, ``(batch, hidden)``: the time input of ``gamma`` held at 0."""
        return self.gamma(torch.cat([torch.zeros_like(self._tcol(t, z)), self.zbar(t, z)], dim=-1))

    def diffusion(self, t: Tensor, z: Tensor) -> Tensor:
        """``sigma(t)``, ``(batch, hidden)``: additive noise."""
        return self.sig(t, z)


class LinearNoiseSDE(_PathSDE):
    """``dz = gamma(t, zbar) dt + sigma(t) z dW``."""

    def drift(self, t: Tensor, z: Tensor) -> Tensor:
        """``gamma(t, zbar)``, ``(batch, hidden)``."""
        return self.gamma(torch.cat([self._tcol(t, z), self.zbar(t, z)], dim=-1))

    def diffusion(self, t: Tensor, z: Tensor) -> Tensor:
        """``sigma(t) z``, ``(batch, hidden)``."""
        return self.sig(t, z) * z


class GeometricSDE(_PathSDE):
    """``dz = z gamma(t, zbar) dt + z sigma(t) dW`` (stays at 0 from 0; the exact solution keeps
    the sign of z, Euler-Maruyama while ``1 + gamma h + sigma dW > 0``)."""

    def drift(self, t: Tensor, z: Tensor) -> Tensor:
        """``z gamma(t, zbar)``, ``(batch, hidden)``."""
        return z * self.gamma(torch.cat([self._tcol(t, z), self.zbar(t, z)], dim=-1))

    def diffusion(self, t: Tensor, z: Tensor) -> Tensor:
        """``z sigma(t)``, ``(batch, hidden)``."""
        return self.sig(t, z) * z


class NaiveSDE(_PathSDE):
    """Baseline: ``dz = f(t, z, X) dt + g(t, z, X) dW`` with unconstrained networks.

    ``g`` is diagonal noise (one Brownian motion per hidden channel) whose channel ``i`` reads
    every channel of ``z``; with ``adjoint=True`` torchsde solves it as general noise,
    ``sigma = diag(g)`` (``sde.noise_type`` ``"general"``, the same forward solve), whose
    adjoint is exact for such a ``g``.
    """

    def __init__(self, config: StableSDEConfig, solver: SDESolver | None = None, **kw) -> None:
        super().__init__(config, solver, **kw)
        c, h, w = config.in_channels, config.hidden, config.width
        self.f_net = _mlp(1 + h + c, h, w)
        self.g_net = _mlp(1 + h + c, h, w)

    def _solve_noise_type(self, adjoint: bool) -> str:
        # (why) torchsde's Ito adjoint for diagonal noise corrects the drift by J^T g, which
        # is diag(J) g only for a g whose channel i reads z_i alone (the stable classes' do):
        # this g reads all of z, and the adjoint's gradients were 7% off direct backprop
        # (noise_scale 1), an error that did not shrink with dt. As general noise, diag(g),
        # the correction sums over the columns: exact, at one vjp per hidden channel
        return "general" if adjoint else self.noise_type

    def _inp(self, t: Tensor, z: Tensor) -> Tensor:
        return torch.cat([self._tcol(t, z), z, self._control(t)], dim=-1)

    def drift(self, t: Tensor, z: Tensor) -> Tensor:
        """``f(t, z, X(t))``, ``(batch, hidden)``."""
        return self.f_net(self._inp(t, z))

    def diffusion(self, t: Tensor, z: Tensor) -> Tensor:
        """``g(t, z, X(t))``, ``(batch, hidden)``: ``noise_scale`` (0.1) times a network."""
        return self.noise_scale * self.g_net(self._inp(t, z))
