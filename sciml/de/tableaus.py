"""Butcher tableaus of the embedded Runge-Kutta pairs whose error estimates we regularise.

An explicit ``s``-stage method with nodes ``c``, matrix ``A`` (strictly lower triangular) and two
weight vectors ``b`` (the propagated solution) and ``b*`` (the embedded, lower-order one) takes a
step of size ``h`` from ``(t, y)`` as

    k_i = f(t + c_i h, y + h sum_{j<i} A_ij k_j),      i = 1..s
    y_1 = y + h sum_i b_i k_i
    err = h sum_i (b_i - b*_i) k_i                      (the embedded local error estimate)

Adaptive solvers accept the step when ``||err / (atol + rtol max(|y|, |y_1|))||_rms <= 1``.
The stiffness estimate (Shampine; Pal et al. 2021) is the Lipschitz quotient of the last two
stages, ``S = ||k_s - k_{s-1}|| / ||Y_s - Y_{s-1}||`` with ``Y_i`` the stage inputs.

The pairs below are the ones torchdiffeq 0.2.5 integrates with (``dopri5`` uses the
Dormand-Prince-Shampine embedded weights, not the original 5179/57600 ones); ``tests/test_de_ode.py``
checks that they still agree with torchdiffeq's own tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ButcherTableau", "DOPRI5", "BOSH3", "rk_step", "RKStep", "rms_norm"]


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit embedded Runge-Kutta pair.

    Attributes:
        name: torchdiffeq's method name.
        c: nodes, length ``s``.
        a: rows of the strictly lower-triangular matrix; row ``i`` has ``i`` entries.
        b: weights of the propagated solution (order ``order``).
        b_star: weights of the embedded solution.
        order: order of the propagated solution (the exponent torchdiffeq's step control uses).
    """

    name: str
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_star: tuple[float, ...]
    order: int

    @property
    def stages(self) -> int:
        """The number of stages ``s`` (``len(c)``)."""
        return len(self.c)

    @property
    def b_error(self) -> tuple[float, ...]:
        """``b - b_star``, length ``s``: the weights of the embedded error estimate
        ``err = h sum_i (b_i - b*_i) k_i``."""
        return tuple(bi - bs for bi, bs in zip(self.b, self.b_star))


#: Dormand-Prince 5(4) pair, as torchdiffeq's ``dopri5`` (Shampine's embedded weights).
DOPRI5 = ButcherTableau(
    name="dopri5",
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    b_star=(1951 / 21600, 0.0, 22642 / 50085, 451 / 720, -12231 / 42400, 649 / 6300, 1 / 60),
    order=5,
)

#: Bogacki-Shampine 3(2) pair, as torchdiffeq's ``bosh3``.
BOSH3 = ButcherTableau(
    name="bosh3",
    c=(0.0, 1 / 2, 3 / 4, 1.0),
    a=((), (1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
    b=(2 / 9, 1 / 3, 4 / 9, 0.0),
    b_star=(7 / 24, 1 / 4, 1 / 3, 1 / 8),
    order=3,
)


def _abs2(x: Tensor) -> Tensor:
    """``|x|^2`` elementwise, real also for a complex ``x`` (whose ``x.pow(2)`` is complex)."""
    return x.abs().pow(2) if x.is_complex() else x.pow(2)


def rms_norm(x: Tensor) -> Tensor:
    """Root-mean-square of ``|x|`` over every element (torchdiffeq's default norm for one
    tensor, complex ones included)."""
    return _abs2(x).mean().sqrt()


@dataclass
class RKStep:
    """Result of one embedded RK step: the new state, error estimate, scaled error and stiffness."""

    y1: Tensor
    error: Tensor  # h sum (b - b*) k, same shape as y
    error_ratio: Tensor  # scalar: rms(error / (atol + rtol max(|y|, |y1|)))
    stiffness: Tensor  # scalar: ||k_s - k_{s-1}|| / ||Y_s - Y_{s-1}||


def rk_step(
    func: Callable[[Tensor, Tensor], Tensor],
    t: Tensor | float,
    y: Tensor,
    h: Tensor | float,
    tableau: ButcherTableau,
    *,
    rtol: float,
    atol: float,
    f0: Tensor | None = None,
) -> RKStep:
    """Take one step of ``tableau`` from ``(t, y)`` with size ``h``; differentiable in ``y`` and ``func``.

    Costs ``s`` evaluations of ``func`` (``s - 1`` when ``f0 = func(t, y)`` is given).
    """
    ks: list[Tensor] = []
    ys: list[Tensor] = []
    for i in range(tableau.stages):
        yi = y
        for aij, kj in zip(tableau.a[i], ks):
            if aij != 0.0:
                yi = yi + (h * aij) * kj
        ys.append(yi)
        ks.append(f0 if (i == 0 and f0 is not None) else func(t + tableau.c[i] * h, yi))
    return _combine(y, ks, ys, h, tableau, rtol=rtol, atol=atol)


def _combine(
    y: Tensor,
    ks: list[Tensor],
    ys: list[Tensor],
    h: Tensor | float,
    tableau: ButcherTableau,
    *,
    rtol: float,
    atol: float,
) -> RKStep:
    """Error estimate and stiffness from the stages ``ks`` (with inputs ``ys``) of one step."""
    y1 = y
    error = torch.zeros_like(y)
    for bi, bei, k in zip(tableau.b, tableau.b_error, ks):
        if bi != 0.0:
            y1 = y1 + (h * bi) * k
        if bei != 0.0:
            error = error + (h * bei) * k
    tol = atol + rtol * torch.maximum(y.abs(), y1.abs())
    ratio = rms_norm(error / tol)
    # (why) |.|^2: for a complex state pow(2) made the norms complex and clamp_min failed
    dk = _abs2(ks[-1] - ks[-2]).sum().sqrt()
    dy = _abs2(ys[-1] - ys[-2]).sum().sqrt()
    stiffness = dk / dy.clamp_min(torch.finfo(dy.dtype).tiny)
    return RKStep(y1=y1, error=error, error_ratio=ratio, stiffness=stiffness)
