"""The wrapper around a user's vector field: counts evaluations and watches the solver's steps.

torchdiffeq (0.2.5) calls ``callback_step(t0, y0, dt)`` before each attempted step of an adaptive
RK solver, then evaluates the field at the new stages, then ``callback_accept_step`` or
``callback_reject_step``. The first step's ``k_1`` is the very first evaluation of the solve and
later ones reuse the last stage of the previous accepted step (FSAL). We rely on exactly this
order to rebuild each accepted step's stages and error estimate without re-evaluating the field;
``tests/test_de_ode.py`` checks it against torchdiffeq's own error ratio, and the recorder raises
if the number of evaluations per step is not what the tableau says.

For decreasing output times torchdiffeq integrates ``-f(-s, y)`` forwards in ``s = -t`` and hands
the callbacks the true ``t0`` but the positive step of the flipped problem; the recorder is told
the direction and stores the signed step ``dt < 0``, so each step covers ``[t0 + dt, t0]`` and its
stages (the true ``f``) combine with ``h = dt`` into the solver's own ``y1`` and error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .tableaus import ButcherTableau, RKStep, _combine

# inclusive range whose rk_common we checked; 0.2.3 calls no callback_step (pyproject.toml's bound)
SUPPORTED_TORCHDIFFEQ = ("0.2.4", "0.2.6")


_MODULE_SLOTS = ("_parameters", "_buffers", "_modules")


def _detached(obj: Any) -> Any:
    """``obj`` with every tensor in it (through lists, tuples, dicts and dataclasses) detached;
    containers without tensors are returned as they are."""
    if isinstance(obj, Tensor):
        return obj.detach()
    if isinstance(obj, (list, tuple)):
        items = [_detached(v) for v in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    if isinstance(obj, dict):
        items = {k: _detached(v) for k, v in obj.items()}
        return obj if all(items[k] is v for k, v in obj.items()) else items
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init)
        changed = {k: new for k, v in fields if (new := _detached(v)) is not v}
        return dataclasses.replace(obj, **changed) if changed else obj
    return obj


class DetachedState(nn.Module):
    """Mixin: copies and pickles hold what the last forward pass left on the module (the
    ``regularisation``, the watched steps and stages) detached from its graph. torch refuses to
    deep-copy non-leaf tensors, so ``copy.deepcopy`` and ``torch.optim.swa_utils.AveragedModel``
    failed on a NeuralODE after its first forward pass."""

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        for k, v in state.items():
            if k not in _MODULE_SLOTS:
                state[k] = _detached(v)
        return state


@dataclass
class AcceptedStep:
    """One accepted step from ``t0`` to ``t0 + dt`` (``dt < 0`` when the solve runs backwards).

    ``y0`` is the state at ``t0`` for an adaptive solver's step while a regulariser that reads
    it is active (``LocalHeuristic(sampling=AcceptedStepTime())`` starts its step there; kept
    for ``GlobalHeuristic`` too), else ``None`` (and always for a fixed-step solver's, which no
    regulariser takes)."""

    t0: float
    dt: float
    y0: Tensor | None
    heuristics: RKStep | None = None


class CountingField(DetachedState):
    """``f(t, y)`` of the wrapped network, with counters ``nfe_forward/backward/regulariser``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.reset()

    def reset(
        self,
        *,
        tableau: ButcherTableau | None = None,
        rtol: float = 0.0,
        atol: float = 0.0,
        record_stages: bool = False,
        keep_states: bool = False,
        reverse: bool = False,
    ) -> None:
        self.phase = "forward"
        # (why) an adaptive step's y0 only for a regulariser that reads it: kept always, every
        # accepted step's state stayed on the module until the next forward, after backward,
        # also with the adjoint, whose forward otherwise holds O(1) states
        self._keep_states = keep_states or record_stages
        self._sign = -1.0 if reverse else 1.0  # torchdiffeq's callbacks get |dt|
        self.nfe_forward = 0
        self.nfe_backward = 0
        self.nfe_regulariser = 0
        self._steps: list[AcceptedStep] = []
        self._fixed: list[tuple[Tensor, Tensor]] = []  # (t0, |dt|) of fixed steps not yet read
        self.rejected = 0
        self._tableau = tableau
        self._rtol, self._atol = rtol, atol
        self._record = record_stages and tableau is not None
        self._calls: list[tuple[Tensor, Tensor]] = []  # (y, f) since the last callback_step
        self._k0: tuple[Tensor, Tensor] | None = None

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        f = self.net(t, y)
        if self.phase == "forward":
            self.nfe_forward += 1
            if self._record:
                self._calls.append((y, f))
        elif self.phase == "regulariser":
            self.nfe_regulariser += 1
        else:
            self.nfe_backward += 1
        return f

    # torchdiffeq looks its callbacks up by name on the function it is given.
    def callback_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        """A fixed-step solver's step (torchdiffeq calls this before each one and has no
        accept / reject): every step is accepted. (why) without it ``steps_accepted`` of an RK4
        or Euler solve read 0. The state is not kept: holding every step's ``y0`` made an
        adjoint solve's (no-grad) forward keep O(steps) states where it keeps O(1). The times
        stay tensors until :attr:`steps` is read: ``float()`` of them synchronised the device
        twice a step, in a loop that otherwise queues work without waiting."""
        if self.phase == "forward":
            self._fixed.append((t0.detach(), dt.detach()))

    @property
    def steps(self) -> list[AcceptedStep]:
        """The accepted steps of the last forward solve."""
        if self._fixed:
            times = torch.stack([torch.stack(p) for p in self._fixed]).tolist()  # one sync
            self._fixed = []
            self._steps.extend(AcceptedStep(t0, self._sign * dt, None) for t0, dt in times)
        return self._steps


class StepWatchingField(CountingField):
    """:class:`CountingField` plus the step callbacks of torchdiffeq's adaptive RK solvers."""

    def callback_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        # an adaptive attempt: accepted or rejected later (callback_accept_step records it)
        if self.phase != "forward":
            return
        if self._record:
            if self._k0 is None:
                if not self._calls:
                    raise RuntimeError("expected torchdiffeq to evaluate f(t0, y0) before stepping")
                self._k0 = self._calls[0]
            self._calls = []

    def callback_accept_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        if self.phase != "forward":
            return
        h = self._sign * float(dt.detach())
        heur = None
        if self._record:
            tab = self._tableau
            if len(self._calls) != tab.stages - 1 or self._k0 is None:
                raise RuntimeError(
                    f"torchdiffeq took {len(self._calls)} evaluations in a {tab.name} step, expected "
                    f"{tab.stages - 1}; its internals changed (checked for torchdiffeq "
                    f"{SUPPORTED_TORCHDIFFEQ[0]}..{SUPPORTED_TORCHDIFFEQ[1]})"
                )
            stages = [self._k0, *self._calls]
            heur = _combine(
                stages[0][0],
                [f for _, f in stages],
                [y for y, _ in stages],
                h,
                tab,
                rtol=self._rtol,
                atol=self._atol,
            )
            self._k0 = self._calls[-1]  # FSAL: the last stage is f(t1, y1)
            self._calls = []
        kept = y0 if self._keep_states else None
        self.steps.append(AcceptedStep(float(t0.detach()), h, kept, heur))

    def callback_reject_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        if self.phase != "forward":
            return
        self.rejected += 1
        self._calls = []


def step_containing(steps: list[AcceptedStep], t: float) -> AcceptedStep:
    """The accepted step whose interval between ``t0`` and ``t0 + dt`` contains ``t`` (the
    nearest if none)."""
    if not steps:
        raise RuntimeError("no accepted steps were recorded; is the solver adaptive?")
    for s in steps:
        if min(s.t0, s.t0 + s.dt) <= t <= max(s.t0, s.t0 + s.dt):
            return s
    return min(steps, key=lambda s: min(abs(s.t0 - t), abs(s.t0 + s.dt - t)))
