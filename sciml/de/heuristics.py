"""Global solver-heuristic regularisation (Pal, Ma, Shah, Rackauckas; ICML 2021).

For the accepted steps ``j = 1..N`` of the adaptive solve with sizes ``h_j``, embedded error
ratios ``E_j = ||err_j / (atol + rtol max(|y_j|, |y_{j+1}|))||_rms`` and stiffness estimates
``S_j`` (see :mod:`sciml.de.tableaus`), the penalty is

    R = w_E(i) * mean_j E_j |h_j|  +  w_S(i) * mean_j S_j

The stages are taken from the forward solve itself, so the penalty costs no extra evaluations,
but it needs the forward graph: it works with direct backpropagation only (use
:class:`~sciml.de.LocalHeuristic` with the adjoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ._field import AcceptedStep
from .schedules import WeightSchedule, check_weights, weight_at

__all__ = ["GlobalHeuristic", "global_penalty"]


@dataclass(frozen=True)
class GlobalHeuristic:
    """Penalise the mean error estimate times step size and the mean stiffness estimate.

    Args:
        error_weight: ``w_E``, a number or a schedule of the training iteration.
        stiffness_weight: ``w_S``.

    Attributes:
        needs_graph: True (set by the class, not an argument): the penalty is read off the
            stages the forward solve recorded, so it needs direct backpropagation through that
            solve (with ``adjoint=True`` it is refused).
    """

    error_weight: float | WeightSchedule = 1.0
    stiffness_weight: float | WeightSchedule = 0.0
    needs_graph: bool = field(default=True, init=False, repr=False)

    def __post_init__(self) -> None:
        check_weights(self, "error_weight", "stiffness_weight")

    def weights(self, iteration: int) -> tuple[float, float]:
        """``(w_E, w_S)`` at the training ``iteration`` (schedules evaluated there)."""
        return weight_at(self, "error_weight", self.error_weight, iteration), weight_at(
            self, "stiffness_weight", self.stiffness_weight, iteration
        )


def global_penalty(steps: list[AcceptedStep]) -> tuple[Tensor, Tensor]:
    """``(mean_j E_j |h_j|, mean_j S_j)`` over the recorded accepted steps."""
    heur = [(s.heuristics, s.dt) for s in steps if s.heuristics is not None]
    if not heur:
        raise RuntimeError("no step heuristics were recorded; the solver must be Dopri5 or Bosh3")
    err = torch.stack([h.error_ratio * abs(dt) for h, dt in heur]).mean()
    stiff = torch.stack([h.stiffness for h, _ in heur]).mean()
    return err, stiff
