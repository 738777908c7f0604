"""``NeuralSDE``: drift and diffusion networks integrated by torchsde, with NFE counting and
step-doubling error regularisers.

    dy = mu_theta(t, y) dt + sigma_theta(t, y) dW   (Ito, diagonal noise),

returns ``y`` at the requested times, shape ``(time, batch, state)`` (torchsde's layout).

Regularisers (SDE versions of :mod:`sciml.de.heuristics` / :mod:`sciml.de.local`): the local
error of one Euler-Maruyama step of size ``h`` is estimated by step doubling with shared Brownian
increments ``dW = dW_1 + dW_2``,

    y_full = y + mu(t, y) h + sigma(t, y) dW
    y_half = y_m + mu(t + h/2, y_m) h/2 + sigma(t + h/2, y_m) dW_2,   y_m = y + mu h/2 + sigma dW_1
    E = ||(y_half - y_full) / (atol + rtol max(|y_full|, |y_half|))||_rms

(the estimate torchsde's own adaptive stepping uses), penalised as ``E |h|``:
:class:`~sciml.de.LocalHeuristic` at one time ``t*`` per forward pass (any gradient method),
:class:`~sciml.de.GlobalHeuristic` averaged over every step of the forward solve (direct
backprop only, three extra drift/diffusion evaluations per step).
"""

from __future__ import annotations

import math

import torch
import torchsde
from torch import Tensor, nn

from ..errors import ConfigError
from .heuristics import GlobalHeuristic
from .local import LocalHeuristic, UniformTime
from .solvers import EulerMaruyama, SDESolver
from .tableaus import rms_norm

__all__ = ["NeuralSDE", "step_doubling_error", "accepted_em_steps"]


class _SDEFunc(nn.Module):
    """torchsde's interface around the two networks, counting drift evaluations."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, drift: nn.Module, diffusion: nn.Module) -> None:
        super().__init__()
        self.drift = drift
        self.diffusion = diffusion
        self.reset(record=False)

    def reset(self, *, record: bool) -> None:
        self.phase = "forward"
        self.nfe_forward = self.nfe_backward = self.nfe_regulariser = 0
        self.record = record
        self.calls: list[tuple[float, Tensor]] = []  # (t, y) at each forward drift evaluation

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        if self.phase == "forward":
            self.nfe_forward += 1
            self.calls.append((float(t), y if self.record else y.detach()))
        elif self.phase == "regulariser":
            self.nfe_regulariser += 1
        else:
            self.nfe_backward += 1
        return self.drift(t, y)

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        return self.diffusion(t, y)


def step_doubling_error(
    sde: nn.Module, t: float, y: Tensor, h: float, *, rtol: float, atol: float
) -> Tensor:
    """Scaled error ratio ``E`` of one Euler-Maruyama step of size ``h`` from ``(t, y)`` by step
    doubling (see the module docstring); ``sde`` has ``f(t, y)`` and ``g(t, y)`` (diagonal)."""
    tt = torch.tensor(t, dtype=y.dtype, device=y.device)
    half = 0.5 * h
    dw1 = torch.randn_like(y) * math.sqrt(half)
    dw2 = torch.randn_like(y) * math.sqrt(half)
    f0, g0 = sde.f(tt, y), sde.g(tt, y)
    y_full = y + f0 * h + g0 * (dw1 + dw2)
    y_mid = y + f0 * half + g0 * dw1
    tm = tt + half
    y_half = y_mid + sde.f(tm, y_mid) * half + sde.g(tm, y_mid) * dw2
    # (why) the same scale as torchsde's step control (``compute_error``), so that ``E <= 1`` is
    # exactly its acceptance test
    tol = atol + rtol * torch.maximum(y_full.abs(), y_half.abs())
    return rms_norm((y_half - y_full) / tol)


class NeuralSDE(nn.Module):
    """A neural SDE block (Ito, diagonal noise).

    Args:
        drift: module ``drift(t, y) -> (batch, state)``.
        diffusion: module ``diffusion(t, y) -> (batch, state)`` (diagonal of sigma).
        solver: an :class:`~sciml.de.SDESolver` (default ``EulerMaruyama()``).
        adjoint: use torchsde's stochastic adjoint for gradients.
        regulariser: ``None``, :class:`~sciml.de.LocalHeuristic` or
            :class:`~sciml.de.GlobalHeuristic` (direct backprop only); the weighted penalty is
            ``self.regularisation`` after each training forward pass.

    ``nfe_forward`` counts drift evaluations (each comes with one diffusion evaluation).
    """

    def __init__(
        self,
        drift: nn.Module,
        diffusion: nn.Module,
        solver: SDESolver | None = None,
        *,
        adjoint: bool = False,
        regulariser: GlobalHeuristic | LocalHeuristic | None = None,
    ) -> None:
        super().__init__()
        solver = EulerMaruyama() if solver is None else solver
        if not isinstance(solver, SDESolver):
            raise TypeError(
                f"expected an SDESolver (e.g. EulerMaruyama()), got {type(solver).__name__}"
            )
        if regulariser is not None and not isinstance(
            regulariser, (GlobalHeuristic, LocalHeuristic)
        ):
            raise TypeError(
                f"expected regulariser None, GlobalHeuristic or LocalHeuristic, got {type(regulariser).__name__}"
            )
        if isinstance(regulariser, GlobalHeuristic) and adjoint:
            raise ConfigError(
                "GlobalHeuristic needs adjoint=False; use LocalHeuristic with the adjoint"
            )
        self.sde = _SDEFunc(drift, diffusion)
        self.solver = solver
        self.adjoint = adjoint
        self.regulariser = regulariser
        self.iteration = 0
        self.regularisation: Tensor = torch.zeros(())

    @property
    def nfe_forward(self) -> int:
        return self.sde.nfe_forward

    @property
    def nfe_backward(self) -> int:
        return self.sde.nfe_backward

    @property
    def nfe_regulariser(self) -> int:
        return self.sde.nfe_regulariser

    def forward(
        self, y0: Tensor, t: Tensor, *, bm: torchsde.BrownianInterval | None = None
    ) -> Tensor:
        """Integrate from ``y0`` of shape ``(batch, state)`` over ``t`` ``(time,)``; returns
        ``(time, batch, state)``. ``bm`` fixes the Brownian path; by default a fresh
        ``BrownianInterval`` whose entropy is drawn from torch's global generator, so that
        ``torch.manual_seed`` makes the whole solve reproducible (torchsde on its own draws the
        entropy from numpy's global generator)."""
        if not isinstance(y0, Tensor) or y0.dim() != 2:
            raise ValueError(f"expected y0 of shape (batch, state), got {getattr(y0, 'shape', y0)}")
        t = torch.as_tensor(t, dtype=y0.dtype, device=y0.device)
        if t.dim() != 1 or t.numel() < 2:
            raise ValueError(f"expected t of shape (time,) with time >= 2, got {tuple(t.shape)}")
        reg = self.regulariser
        active = reg is not None and self.training and torch.is_grad_enabled()
        self.sde.reset(record=active and isinstance(reg, GlobalHeuristic))
        t_solve, extra, t_star = t, None, None
        if active and isinstance(reg, LocalHeuristic) and isinstance(reg.sampling, UniformTime):
            lo, hi = float(t[0]), float(t[-1])
            t_star = lo + (hi - lo) * float(torch.rand((), dtype=torch.float64))
            t_solve, order = torch.sort(torch.cat([t, t.new_tensor([t_star])]))
            extra = int((order == t.numel()).nonzero()[0])
        kw = self.solver.sdeint_kwargs()
        if bm is None:
            bm = torchsde.BrownianInterval(
                t0=float(t_solve[0]),
                t1=float(t_solve[-1]),
                size=y0.shape,
                dtype=y0.dtype,
                device=y0.device,
                entropy=int(torch.randint(0, 2**31 - 1, ())),
            )
        integrate = torchsde.sdeint_adjoint if self.adjoint else torchsde.sdeint
        ys = integrate(self.sde, y0, t_solve, bm=bm, **kw)
        self.sde.phase = "backward"
        self.regularisation = y0.new_zeros(())
        if active:
            we, _ = reg.weights(self.iteration)
            self.sde.phase = "regulariser"
            try:
                steps = accepted_em_steps(self.sde.calls, float(t[-1]), self.solver.adaptive)
                if isinstance(reg, GlobalHeuristic):
                    terms = [
                        step_doubling_error(
                            self.sde, a, ya, h, rtol=self.solver.rtol, atol=self.solver.atol
                        )
                        * h
                        for a, h, ya in steps
                    ]
                    self.regularisation = we * torch.stack(terms).mean()
                else:
                    if extra is not None:
                        y_star = ys[extra]
                        ys = ys[[i for i in range(ys.shape[0]) if i != extra]]
                        h = _containing(steps, t_star)[1]
                    else:
                        j = int(torch.randint(len(steps), ()).item())
                        t_star, h, y_star = steps[j]
                    e = step_doubling_error(
                        self.sde, t_star, y_star, h, rtol=self.solver.rtol, atol=self.solver.atol
                    )
                    self.regularisation = we * e * h
            finally:
                self.sde.phase = "backward"
        if self.training and torch.is_grad_enabled():
            self.iteration += 1
        return ys


def accepted_em_steps(
    calls: list[tuple[float, Tensor]], t_end: float, adaptive: bool
) -> list[tuple[float, float, Tensor]]:
    """The accepted Euler-Maruyama steps ``(t_start, h, y_start)`` of a torchsde solve, rebuilt
    from the drift evaluations ``calls = [(t, y), ...]`` in call order.

    Fixed steps: one evaluation per step at its start (after torchsde's one-off shape check at
    ``t_0``), so the starts are the distinct times and ``h`` their spacing (the last step ends at
    ``t_end``). Adaptive steps (torchsde 0.2.x ``BaseSDESolver.integrate``): every attempt from
    ``s`` with size ``h`` evaluates ``f(s, y_s)`` twice (full step, first half step) and then
    ``f(s + h/2, .)``; a rejected attempt is followed by another from the same ``s``, so the
    last attempt from each start is the accepted one and its size is ``2 (mid - s)``. (The
    spacing of the evaluation times would be ``h/2`` and would also mix in rejected attempts.)
    """
    if not calls:
        raise RuntimeError("no drift evaluations were recorded")
    if not adaptive:
        firsts: dict[float, Tensor] = {}
        for tc, yc in calls:
            firsts.setdefault(tc, yc)
        starts = sorted(firsts)
        ends = [*starts[1:], t_end]
        return [(a, b - a, firsts[a]) for a, b in zip(starts, ends) if b > a]
    by_start: dict[float, tuple[float, Tensor]] = {}
    for i in range(1, len(calls) - 1):
        (tp, yp), (tc, _), (tn, _) = calls[i - 1], calls[i], calls[i + 1]
        if tc == tp and tn > tc:
            by_start[tc] = (2.0 * (tn - tc), yp)
    if not by_start:
        raise RuntimeError(
            "could not find torchsde's adaptive step pattern f(s), f(s), f(s + h/2) in the drift "
            "evaluations; its internals changed (checked for torchsde 0.2.x)"
        )
    return [(s, h, y) for s, (h, y) in sorted(by_start.items(), key=lambda kv: kv[0])]


def _containing(steps: list[tuple[float, float, Tensor]], t: float) -> tuple[float, float, Tensor]:
    """The accepted step whose interval contains ``t`` (the nearest if none does)."""
    for st in steps:
        if st[0] <= t <= st[0] + st[1]:
            return st
    return min(steps, key=lambda st: min(abs(st[0] - t), abs(st[0] + st[1] - t)))
