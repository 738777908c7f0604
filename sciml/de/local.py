"""Local solver-heuristic regularisation (Pal, Edelman, Rackauckas; ICML 2023).

Instead of every step of the solve, one time ``t*`` is drawn per forward pass, the solution
``y(t*)`` is read off the solve, one step of the solver's own embedded RK pair is taken from
there with the step size ``h`` the solver used around ``t*``, and

    R = w_E(i) * E(t*, y(t*), h) |h|  +  w_S(i) * S(t*, y(t*), h)

The extra step is an ordinary differentiable computation (``s`` field evaluations), so it works
with any gradient method for the solve, the adjoint included.

Time sampling:

* :class:`UniformTime` (unbiased in time): ``t* ~ U[t_0, t_end]``, so ``E[R]`` is the time
  average ``(1 / (t_end - t_0)) int R(t) dt``; ``t*`` is added to the output times so ``y(t*)``
  is differentiable through whichever gradient the solve uses.
* :class:`AcceptedStepTime` (biased towards where the solver steps most): ``t*`` is the start of an
  accepted step drawn uniformly; ``y(t*)`` is the solver's own state there (in adjoint mode this
  state carries no graph, and the penalty differentiates through the field only). The step
  from there is the one the solver took, so ``E[R]`` is exactly the
  :class:`~sciml.de.GlobalHeuristic` penalty ``mean_j (w_E E_j |h_j| + w_S S_j)``, a mean over
  steps rather than over time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .schedules import WeightSchedule, check_weights, weight_at

__all__ = ["LocalHeuristic", "UniformTime", "AcceptedStepTime"]


@dataclass(frozen=True)
class UniformTime:
    """Draw ``t*`` uniformly on the integration interval: an unbiased estimate of the local
    penalty's time average (not of :class:`~sciml.de.GlobalHeuristic`'s mean over steps)."""


@dataclass(frozen=True)
class AcceptedStepTime:
    """Draw ``t*`` among the starts of the accepted steps: an unbiased estimate of
    :class:`~sciml.de.GlobalHeuristic`'s penalty (biased in time); needs no extra output time."""


@dataclass(frozen=True)
class LocalHeuristic:
    """One randomly placed step's error estimate (and optionally stiffness) as a penalty.

    Args:
        error_weight: ``w_E``, a number or a schedule of the training iteration.
        stiffness_weight: ``w_S``.
        sampling: :class:`UniformTime` or :class:`AcceptedStepTime`.

    Attributes:
        needs_graph: False (set by the class, not an argument): the penalty re-evaluates one
            step, so it works with the adjoint as with direct backpropagation.
    """

    error_weight: float | WeightSchedule = 1.0
    stiffness_weight: float | WeightSchedule = 0.0
    sampling: UniformTime | AcceptedStepTime = UniformTime()
    needs_graph: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        check_weights(self, "error_weight", "stiffness_weight")
        if not isinstance(self.sampling, (UniformTime, AcceptedStepTime)):
            raise TypeError(
                f"expected sampling=UniformTime() or AcceptedStepTime(), got {self.sampling!r}"
            )

    def weights(self, iteration: int) -> tuple[float, float]:
        """``(w_E, w_S)`` at the training ``iteration`` (schedules evaluated there)."""
        return weight_at(self, "error_weight", self.error_weight, iteration), weight_at(
            self, "stiffness_weight", self.stiffness_weight, iteration
        )
