"""``NeuralSDE``: drift and diffusion networks integrated by torchsde, with NFE counting and
step-doubling error regularisers.

    dy = mu_theta(t, y) dt + sigma_theta(t, y) dW   (Ito),

returns ``y`` at the requested times, shape ``(time, batch, state)`` (torchsde's layout). The
noise is one of torchsde's four types (``noise_type``; ``W`` has ``m`` channels):

* ``"diagonal"`` (default): ``diffusion(t, y)`` is the diagonal of ``sigma``, ``(batch, state)``;
  ``m = state``, each channel driven by its own Brownian motion. With ``adjoint=True`` its
  channel ``i`` may depend on ``y_i`` (and ``t``) alone: torchsde's Ito adjoint corrects the
  drift by ``J^T g`` (``J = dg/dy``), which is ``diag(J) g`` only then, and a diffusion network
  that mixes the channels got gradients 17% off backprop's, however small ``dt``. Return
  ``torch.diag_embed(g)`` as ``"general"`` noise for such a diffusion (what
  :class:`~sciml.de.NaiveSDE` does under the adjoint), or use direct backprop.
* ``"additive"``: ``sigma(t)`` does not depend on ``y``; ``(batch, state, m)``, or
  ``(batch, state)`` for a diagonal ``sigma(t)`` (``m = state``). Euler-Maruyama has strong order
  1 for additive noise, so this is the type under which its adaptive step control converges
  (torchsde warns for the other types).
* ``"scalar"``: one Brownian motion, ``(batch, state)`` or ``(batch, state, 1)``.
* ``"general"``: ``(batch, state, m)``, any ``m``.

Declaring ``"additive"`` for a ``sigma`` that depends on ``y`` is not detected and makes the
solve and the adjoint wrong, as in torchsde. A 2-D ``"additive"`` output is handed to torchsde
as a ``(batch, state, state)`` matrix (memory ``batch x state^2``); for a large state
``"diagonal"`` solves the same SDE (torchsde then warns about adaptive steps, not knowing that
``sigma`` is additive).

Regularisers (SDE versions of :mod:`sciml.de.heuristics` / :mod:`sciml.de.local`): the local
error of one Euler-Maruyama step of size ``h`` is estimated by step doubling with shared Brownian
increments ``dW = dW_1 + dW_2``,

    y_full = y + mu(t, y) h + sigma(t, y) dW
    y_half = y_m + mu(t + h/2, y_m) h/2 + sigma(t + h/2, y_m) dW_2,   y_m = y + mu h/2 + sigma dW_1
    E = ||(y_half - y_full) / (atol + rtol max(|y_full|, |y_half|))||_rms

(the estimate torchsde's own adaptive stepping uses), penalised as ``E |h|``:
:class:`~sciml.de.LocalHeuristic` at one time ``t*`` per forward pass (any gradient method),
:class:`~sciml.de.GlobalHeuristic` averaged over every step of the forward solve (direct
backprop only, two extra drift and two diffusion evaluations per step, at its start and its
midpoint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchsde
from torch import Tensor, nn

from ..errors import ConfigError
from ._field import DetachedState
from .heuristics import GlobalHeuristic
from .local import LocalHeuristic, UniformTime
from .neural_ode import (
    _SavesIteration,
    check_field,
    check_step_advances,
    check_times,
    insert_time,
    rounding_note,
    solve_times,
)
from .schedules import ConstantWeight, as_schedule
from .solvers import EulerMaruyama, SDESolver
from .tableaus import rms_norm

__all__ = ["NeuralSDE", "step_doubling_error", "accepted_em_steps", "NOISE_TYPES"]

NOISE_TYPES = ("diagonal", "additive", "scalar", "general")
# what _SDEFunc.calls keeps of each forward drift evaluation (see _SDEFunc.reset)
_KEEP = ("nothing", "times", "states", "graph")
_DIFFUSION_SHAPES = {
    "diagonal": "(batch, state)",
    "additive": "(batch, state) or (batch, state, m)",
    "scalar": "(batch, state) or (batch, state, 1)",
    "general": "(batch, state, m)",
}


def _noise_product(g: Tensor, dw: Tensor) -> Tensor:
    """``sigma dW`` for a diffusion in torchsde's shape: ``(batch, state)`` (diagonal) or
    ``(batch, state, m)``, with ``dW: (batch, m)``."""
    return g * dw if g.dim() == 2 else torch.einsum("bsm,bm->bs", g, dw)


def _in_state_dtype(t: Tensor, y: Tensor) -> Tensor:
    """The time ``t`` as the networks see it: in ``y``'s dtype, as torchdiffeq hands a field
    its times. (why) a half-precision state solves on float32 times (``solve_times``), and a
    network that concatenates ``t`` to a bfloat16 ``y`` got a float32 input."""
    if isinstance(t, Tensor) and t.dtype != y.dtype and y.is_floating_point():
        return t.to(y.dtype)
    return t


class _SDEFunc(DetachedState):
    """torchsde's interface around the two networks, counting drift evaluations.

    ``g`` returns the diffusion in torchsde's shape for ``noise_type``: a 2-D output is taken as
    the diagonal for ``"additive"`` and as the column for ``"scalar"``. (A diagonal ``sigma``
    embedded in a ``(batch, state, state)`` matrix gives exactly the same ``sigma dW``: every
    off-diagonal product is an exact zero.)
    """

    sde_type = "ito"

    def __init__(self, drift: nn.Module, diffusion: nn.Module, noise_type: str) -> None:
        super().__init__()
        self.drift = drift
        self.diffusion = diffusion
        self.noise_type = noise_type
        self.reset("nothing")

    def reset(self, keep: str) -> None:
        """Before a solve: zero the counters and choose what ``calls`` keeps of each forward
        drift evaluation, for the regulariser that reads the steps from them: ``"nothing"``
        (no active regulariser), ``"times"`` (``(t, None)``: LocalHeuristic with UniformTime
        needs the step sizes alone), ``"states"`` (``(t, y)`` with ``y`` detached:
        AcceptedStepTime starts its step from one) or ``"graph"`` (``(t, y)`` with ``y``'s
        graph: GlobalHeuristic differentiates through them)."""
        if keep not in _KEEP:
            raise ValueError(f"expected keep in {_KEEP}, got {keep!r}")
        self.phase = "forward"
        self.nfe_forward = self.nfe_backward = self.nfe_regulariser = 0
        # (why) only for a regulariser: kept always, every step's state stayed on the module
        # until the next forward (6.4 MiB for 100 steps of a (256, 64) state, measured), also
        # with the adjoint, whose forward otherwise holds O(1) states
        self.keep = keep
        # (t, y) at each forward drift evaluation, y None unless keep is "states" or "graph"
        self.calls: list[tuple[float, Tensor | None]] = []

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        if self.phase == "forward":
            self.nfe_forward += 1
            if self.keep != "nothing":
                kept = None if self.keep == "times" else y if self.keep == "graph" else y.detach()
                self.calls.append((float(t), kept))
        elif self.phase == "regulariser":
            self.nfe_regulariser += 1
        else:
            self.nfe_backward += 1
        return self.drift(_in_state_dtype(t, y), y)

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        g = self.diffusion(_in_state_dtype(t, y), y)
        kind = self.noise_type
        ok = (
            tuple(g.shape[:2]) == tuple(y.shape)
            and (g.dim() == 2 and kind != "general" or g.dim() == 3 and kind != "diagonal")
            and not (kind == "scalar" and g.dim() == 3 and g.shape[2] != 1)
        )
        if not ok:
            raise ValueError(
                f"expected the diffusion output of shape {_DIFFUSION_SHAPES[kind]} for "
                f"noise_type={kind!r} with (batch, state) = {tuple(y.shape)}, got {tuple(g.shape)}"
            )
        if g.dim() == 2 and kind == "additive":
            return torch.diag_embed(g)
        if g.dim() == 2 and kind == "scalar":
            return g.unsqueeze(-1)
        return g

    def brownian_channels(self, t: Tensor, y: Tensor) -> int:
        """``m``, the number of Brownian motions (one diffusion evaluation for ``"general"`` and
        ``"additive"``, none otherwise)."""
        if self.noise_type == "diagonal":
            return y.shape[1]
        if self.noise_type == "scalar":
            return 1
        with torch.no_grad():
            return self.g(t, y).shape[2]


def step_doubling_error(
    sde: nn.Module, t: float, y: Tensor, h: float, *, rtol: float, atol: float
) -> Tensor:
    """Scaled error ratio ``E`` of one Euler-Maruyama step of size ``h`` from ``(t, y)`` by step
    doubling (see the module docstring); ``sde`` has ``f(t, y)`` and ``g(t, y)``, the latter
    ``(batch, state)`` (diagonal) or ``(batch, state, m)``."""
    tt = torch.tensor(t, dtype=y.dtype, device=y.device)
    half = 0.5 * h
    f0, g0 = sde.f(tt, y), sde.g(tt, y)
    shape = y.shape if g0.dim() == 2 else (*y.shape[:1], g0.shape[2])
    dw1 = torch.randn(shape, dtype=y.dtype, device=y.device) * math.sqrt(half)
    dw2 = torch.randn(shape, dtype=y.dtype, device=y.device) * math.sqrt(half)
    y_full = y + f0 * h + _noise_product(g0, dw1 + dw2)
    y_mid = y + f0 * half + _noise_product(g0, dw1)
    tm = tt + half
    y_half = y_mid + sde.f(tm, y_mid) * half + _noise_product(sde.g(tm, y_mid), dw2)
    # (why) the same scale as torchsde's step control (``compute_error``), so that ``E <= 1`` is
    # exactly its acceptance test
    tol = atol + rtol * torch.maximum(y_full.abs(), y_half.abs())
    return rms_norm((y_half - y_full) / tol)


class NeuralSDE(_SavesIteration, DetachedState):
    """A neural SDE block (Ito).

    Args:
        drift: module ``drift(t, y) -> (batch, state)``.
        diffusion: module ``diffusion(t, y)``: ``(batch, state)`` (the diagonal of sigma) for the
            default ``noise_type="diagonal"``; see the module docstring for the other types.
        solver: an :class:`~sciml.de.SDESolver` (default ``EulerMaruyama()``).
        adjoint: use torchsde's stochastic adjoint for gradients; its backward solve steps as
            ``solver`` does (adaptive with the same ``rtol`` and ``atol``, or fixed ``dt``), by
            torchsde's default method for the adjoint (Milstein for diagonal noise, else Euler).
            As for :class:`~sciml.de.NeuralODE`, a parameter that ``drift`` or ``diffusion``
            never uses gets ``grad`` zeros under the adjoint and None under direct backprop.
        regulariser: ``None``, :class:`~sciml.de.LocalHeuristic` or
            :class:`~sciml.de.GlobalHeuristic` (direct backprop only), with ``error_weight``
            only (a nonzero ``stiffness_weight`` is a ``ConfigError``: Euler-Maruyama has no
            stages to estimate stiffness from); the weighted penalty is
            ``self.regularisation`` after each training forward pass.
        noise_type: ``"diagonal"`` or another torchsde noise type (see the module docstring);
            it sets the shape ``diffusion`` returns.

    ``nfe_forward`` counts drift evaluations (each comes with one diffusion evaluation).
    ``iteration`` is the training iteration of the weight schedules, as in
    :class:`~sciml.de.NeuralODE`, and saved in ``state_dict`` as there.
    """

    def __init__(
        self,
        drift: nn.Module,
        diffusion: nn.Module,
        solver: SDESolver | None = None,
        *,
        adjoint: bool = False,
        regulariser: GlobalHeuristic | LocalHeuristic | None = None,
        noise_type: str = "diagonal",
    ) -> None:
        super().__init__()
        check_field("NeuralSDE", "drift", drift)
        check_field("NeuralSDE", "diffusion", diffusion)
        if noise_type not in NOISE_TYPES:
            raise ValueError(f"expected noise_type in {NOISE_TYPES}, got {noise_type!r}")
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
        if regulariser is not None and not _is_zero(regulariser.stiffness_weight):
            # (why) an Euler-Maruyama step has no stages to estimate stiffness from: the SDE
            # penalty is the step-doubling error alone, and a stiffness weight was dropped
            raise ConfigError(
                f"NeuralSDE regularises the step-doubling error only; {type(regulariser).__name__}"
                f"(stiffness_weight={regulariser.stiffness_weight!r}) would be ignored: leave "
                "stiffness_weight at 0 (the stiffness estimate needs the stages of an ODE RK pair)"
            )
        self.sde = _SDEFunc(drift, diffusion, noise_type)
        self.solver = solver
        self.adjoint = adjoint
        self.regulariser = regulariser
        self.iteration = 0
        # (why) the key that files written before it was saved lack (_SavesIteration)
        self.optional_state_keys = ("iteration",)
        self.regularisation: Tensor = torch.zeros(())

    @property
    def noise_type(self) -> str:
        """torchsde's noise type, as given to the constructor (``"diagonal"`` by default); it
        sets the shape ``diffusion`` returns. Read-only."""
        return self.sde.noise_type

    @property
    def nfe_forward(self) -> int:
        """Drift evaluations in the last forward solve (each comes with one diffusion
        evaluation). 0 before the first call; reset by each call."""
        return self.sde.nfe_forward

    @property
    def nfe_backward(self) -> int:
        """Drift evaluations in the stochastic adjoint solve of the last ``backward``: 0 for
        direct backpropagation and until ``backward`` runs; reset by each forward call."""
        return self.sde.nfe_backward

    @property
    def nfe_regulariser(self) -> int:
        """Drift evaluations spent on the step-doubling penalty in the last forward call (0 with
        no active regulariser). Reset by each call."""
        return self.sde.nfe_regulariser

    def forward(
        self,
        y0: Tensor,
        t: Tensor,
        *,
        bm: torchsde.BrownianInterval | None = None,
        adjoint_params: Sequence[Tensor] | None = None,
    ) -> Tensor:
        """Integrate from ``y0`` of shape ``(batch, state)`` over ``t`` ``(time,)``; returns
        ``(time, batch, state)``; a single time returns ``y0[None]`` without evaluating the
        drift or diffusion. ``bm`` (of size ``(batch, m)``) fixes the Brownian path; a
        ``BrownianInterval`` made without a ``dt`` hint gets a fixed-step solver's ``dt`` as
        its hint (set on it, as the default one is made; see torchsde#36). By default a fresh
        ``BrownianInterval`` whose entropy is drawn from torch's global generator, so that
        ``torch.manual_seed`` makes the whole solve reproducible (torchsde on its own draws the
        entropy from numpy's global generator). ``adjoint_params``: with ``adjoint=True``, the
        tensors the adjoint differentiates (default: the drift's and diffusion's parameters);
        name them when the drift or diffusion reads tensors they do not hold."""
        if not isinstance(y0, Tensor) or y0.dim() != 2:
            raise ValueError(f"expected y0 of shape (batch, state), got {getattr(y0, 'shape', y0)}")
        if not y0.is_floating_point():
            # (why) an integer y0 failed in torchsde's Brownian sampling (normal_kernel_cpu)
            raise TypeError(
                f"expected a floating-point y0, got {y0.dtype}; convert it with y0.float() (or "
                "y0.double())"
            )
        given = t
        t = solve_times(t, y0)
        if t.dim() != 1 or t.numel() < 1:
            raise ValueError(f"expected t of shape (time,) with time >= 1, got {tuple(t.shape)}")
        try:
            check_times(t, decreasing=False)
        except ValueError as err:
            if not (note := rounding_note(given, t, decreasing=False)):
                raise
            raise ValueError(f"{err}{note}") from None
        if t.numel() == 1:
            # (why) as NeuralODE (and torchdiffeq, torchsde) do: y0 at its one time, with no
            # drift or diffusion evaluated and no interval to penalise; it was refused
            self.sde.reset("nothing")
            self.regularisation = y0.new_zeros(())
            return y0.unsqueeze(0).clone()
        if not self.solver.adaptive:
            check_step_advances(t, self.solver.dt, name="dt")
        reg = self.regulariser
        active = reg is not None and self.training and torch.is_grad_enabled()
        uniform = (
            active and isinstance(reg, LocalHeuristic) and isinstance(reg.sampling, UniformTime)
        )
        if not active:
            keep = "nothing"
        elif isinstance(reg, GlobalHeuristic):
            keep = "graph"
        else:  # (why) UniformTime reads y(t*) off the solve and only the step sizes from calls
            keep = "times" if uniform else "states"
        self.sde.reset(keep)
        t_solve, extra, added, t_star = t, None, False, None
        if uniform:
            lo, hi = float(t[0]), float(t[-1])
            u = float(torch.rand((), dtype=torch.float64))
            t_solve, extra, added, t_star = insert_time(t, lo + (hi - lo) * u)
        kw = self.solver.sdeint_kwargs()
        if bm is None:
            bm = torchsde.BrownianInterval(
                t0=float(t_solve[0]),
                t1=float(t_solve[-1]),
                size=(y0.shape[0], self.sde.brownian_channels(t_solve[0], y0)),
                dtype=y0.dtype,
                device=y0.device,
                entropy=int(torch.randint(0, 2**31 - 1, ())),
                # (why) the fixed step as the tree's hint: without one, torchsde sizes the tree
                # on its first query after 100, and when that is the rounding sliver that ends
                # a fixed-step solve (dt = 0.05 on [0, 5] stops at 4.99999999999999) it built
                # pieces of 1e-14 over the span and never returned
                dt=None if kw["adaptive"] else kw["dt"],
            )
        elif not kw["adaptive"]:
            _hint_step(bm, kw["dt"])
        if self.adjoint:
            # (why) the backward solve takes the forward's step control: torchsde's default is
            # fixed steps of ``dt``, which for an adaptive solver is only the first step's size
            # (gradients 14% off with dt = 0.5 at rtol 1e-4)
            ys = torchsde.sdeint_adjoint(
                self.sde,
                y0,
                t_solve,
                bm=bm,
                adjoint_params=adjoint_params,
                adjoint_adaptive=kw["adaptive"],
                adjoint_rtol=kw["rtol"],
                adjoint_atol=kw["atol"],
                **kw,
            )
        else:
            ys = torchsde.sdeint(self.sde, y0, t_solve, bm=bm, **kw)
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
                        if added:
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


def _hint_step(bm, dt: float) -> None:
    """Give a caller's ``torchsde.BrownianInterval`` made without a ``dt`` hint the fixed step
    ``dt`` as its hint, as ``BrownianInterval(..., dt=dt)`` would have. (why) the sliver hang
    that the default path's hint fixed (torchsde#36, #109) hung a caller's path too:
    ``EulerMaruyama(dt=0.05)`` on float64 [0, 5] with ``bm=BrownianInterval(0, 5, size)``
    never returned (its 101st query, the 1e-14 step that ends the solve at 4.99999999999999,
    sized the tree). Through torchsde 0.2.6's private fields: where they are missing (another
    version) the path is left as given."""
    if (
        isinstance(bm, torchsde.BrownianInterval)
        and bm.dt is None
        and not bm.halfway_tree
        and hasattr(bm, "_create_dependency_tree")
        and hasattr(bm, "_dt")
    ):
        bm._dt = float(dt)
        bm._create_dependency_tree(float(dt))


def _is_zero(weight) -> bool:
    """A regulariser weight that is 0 at every iteration (a number, or ``ConstantWeight(0)``)."""
    schedule = as_schedule(weight)
    return isinstance(schedule, ConstantWeight) and schedule(0) == 0


def accepted_em_steps(
    calls: list[tuple[float, Tensor | None]], t_end: float, adaptive: bool
) -> list[tuple[float, float, Tensor | None]]:
    """The accepted Euler-Maruyama steps ``(t_start, h, y_start)`` of a torchsde solve, rebuilt
    from the drift evaluations ``calls = [(t, y), ...]`` in call order (the times alone give
    the steps: a ``y`` given as None is ``y_start`` None).

    Fixed steps: one evaluation per step at its start (after torchsde's one-off shape check at
    ``t_0``), so the starts are the distinct times and ``h`` their spacing (the last step ends at
    ``t_end``); a last step shorter than 1e-6 of the longest, the rounding sliver torchsde
    takes when its steps add up to just below ``t_end``, is left out. Adaptive steps (torchsde 0.2.x ``BaseSDESolver.integrate``): every attempt from
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
        steps = [(a, b - a, firsts[a]) for a, b in zip(starts, ends) if b > a]
        # (why) torchsde adds its steps up in floating point: dt = 0.1 on [0, 1] stops at
        # 0.9999999999999999 and takes a last step of 1.1e-16, which counted as an 11th step
        # (GlobalHeuristic's mean 10/11 of the 10 steps'; AcceptedStepTime could draw it)
        if len(steps) > 1 and steps[-1][1] < 1e-6 * max(st[1] for st in steps):
            steps.pop()
        return steps
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


def _containing(
    steps: list[tuple[float, float, Tensor | None]], t: float
) -> tuple[float, float, Tensor | None]:
    """The accepted step whose interval contains ``t`` (the nearest if none does)."""
    for st in steps:
        if st[0] <= t <= st[0] + st[1]:
            return st
    return min(steps, key=lambda st: min(abs(st[0] - t), abs(st[0] + st[1] - t)))
