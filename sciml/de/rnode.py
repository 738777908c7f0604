"""RNODE baseline (Finlay et al., ICML 2020): kinetic energy and Jacobian Frobenius norm.

The state is augmented with two integrals, per batch element ``b``,

    e_K(T) = int_{t_0}^T ||f(t, y)||^2 dt,        e_J(T) = int_{t_0}^T ||eps^T d f / d y||^2 dt,

where ``eps ~ N(0, I)`` is drawn once per solve (Hutchinson: ``E ||eps^T J||^2 = ||J||_F^2``).
The penalty is the time average ``(w_K mean_b e_K + w_J mean_b e_J) / (T - t_0)`` (positive
for decreasing times too: the integrals and the span change sign together). Because the
integrals are part of the ODE state, it works with direct backprop and with the adjoint alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .schedules import WeightSchedule, check_weights, weight_at
from .tableaus import _abs2

__all__ = ["RNODE"]


@dataclass(frozen=True)
class RNODE:
    """Kinetic-energy (``kinetic_weight``) and Jacobian-Frobenius (``jacobian_weight``) penalty.

    Args:
        kinetic_weight: ``w_K``, a number or a schedule of the training iteration.
        jacobian_weight: ``w_J``, a number or a schedule of the training iteration.

    Attributes:
        needs_graph: False (set by the class, not an argument): the integrals are part of the
            ODE state, so the penalty works with the adjoint as with direct backpropagation.
    """

    kinetic_weight: float | WeightSchedule = 0.01
    jacobian_weight: float | WeightSchedule = 0.01
    needs_graph: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        check_weights(self, "kinetic_weight", "jacobian_weight")

    def weights(self, iteration: int) -> tuple[float, float]:
        """``(kinetic_weight, jacobian_weight)`` at the training ``iteration`` (schedules
        evaluated there)."""
        return weight_at(self, "kinetic_weight", self.kinetic_weight, iteration), weight_at(
            self, "jacobian_weight", self.jacobian_weight, iteration
        )


class AugmentedField(nn.Module):
    """``(y, e_K, e_J) -> (f, ||f||^2, ||eps^T J||^2)`` with shapes ``(b, ...), (b,), (b,)``."""

    def __init__(self, field: nn.Module, eps: Tensor) -> None:
        super().__init__()
        self.field = field
        self.eps = eps

    def forward(self, t: Tensor, state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, ...]:
        y = state[0]
        # (why) outside a graph (torchdiffeq's no_grad evaluations) y is made a leaf: the
        # adjoint's field evaluation at the output times, for the times' gradient, passes a
        # view of its saved solution that requires grad with no graph to it, and the vjp
        # below failed with "appears to not have been used in the graph"
        outside = not torch.is_grad_enabled()
        with torch.enable_grad():
            if outside or not y.requires_grad:
                y = y.detach().requires_grad_(True)
            f = self.field(t, y)
            (vjp,) = torch.autograd.grad(f, y, self.eps, create_graph=True)
        # (why) reshape, not flatten(1): a state (batch,) with no state dims has no dim 1;
        # |.|^2, not pow(2), which made the penalty of a complex state complex
        kinetic = _abs2(f).reshape(f.shape[0], -1).sum(1)
        frob = _abs2(vjp).reshape(vjp.shape[0], -1).sum(1)
        return f, kinetic, frob

    # forward torchdiffeq's step callbacks to the wrapped field (step counts stay available)
    def callback_step(self, t0: Tensor, y0, dt: Tensor) -> None:
        getattr(self.field, "callback_step", _noop)(t0, y0[0], dt)


class _AdaptiveAugmentedField(AugmentedField):
    """:class:`AugmentedField` with an adaptive solver's accept / reject callbacks too."""

    def callback_accept_step(self, t0: Tensor, y0, dt: Tensor) -> None:
        getattr(self.field, "callback_accept_step", _noop)(t0, y0[0], dt)

    def callback_reject_step(self, t0: Tensor, y0, dt: Tensor) -> None:
        getattr(self.field, "callback_reject_step", _noop)(t0, y0[0], dt)


def augment(field: nn.Module, eps: Tensor) -> AugmentedField:
    """The :class:`AugmentedField` of ``field`` with the step callbacks ``field`` has. (why)
    torchdiffeq warns about each callback a solver does not call: with the accept / reject
    ones always defined, every RNODE solve by a fixed-step solver warned that 'sciml_rk4'
    does not support them."""
    adaptive = hasattr(field, "callback_accept_step") or hasattr(field, "callback_reject_step")
    return (_AdaptiveAugmentedField if adaptive else AugmentedField)(field, eps)


def _noop(*args: object) -> None:
    return None
