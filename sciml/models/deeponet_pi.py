"""Physics-informed DeepONet (Wang, Wang & Perdikaris, "Learning the solution operator of
parametric partial differential equations with physics-informed DeepONets", Sci. Adv. 2021) for
the diffusion-reaction problem of the DeepONet paper (Lu et al. 2021):

    s_t = D s_xx + k s^2 + u(x),   (x, t) in [0, 1] x [0, 1],
    s(x, 0) = 0,   s(0, t) = s(1, t) = 0,          D = k = 0.01.

The operator ``u -> s`` is learnt without solution data: the loss is the mean squared PDE
residual at collocation points plus the mean squared initial and boundary values,

    L = w_r mean (s_t - D s_xx - k s^2 - f)^2 + w_ic mean s(x, 0)^2 + w_bc mean s(x_b, t)^2,

where ``s = G(u)(x, t)`` is the network and ``f`` the source at the collocation points (``u(x)``;
a manufactured test may pass any ``f(x, t)``). Derivatives are taken by autograd through the
query locations, so any model ``model(u, x=y)`` works (DeepONet, or a closed-form solution).
Each function gets its own points, ``y`` of shape ``(batch, points, 2)`` with columns ``(x, t)``:
then every output depends only on its own location and one backward pass of the summed output
gives all first derivatives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._scalars import is_real
from ..layers._checks import check_int

__all__ = [
    "DiffusionReaction",
    "space_time_derivatives",
    "diffusion_reaction_loss",
    "interp1d",
    "PhysicsInformedDiffusionReaction",
]


@dataclass(frozen=True)
class DiffusionReaction:
    """``s_t = D s_xx + k s^2 + f`` on ``[0, 1] x [0, 1]`` with zero initial and boundary values."""

    diffusion: float = 0.01
    reaction: float = 0.01

    def __post_init__(self) -> None:
        # (why) NaN made every residual NaN, a string failed inside the first loss
        for name in ("diffusion", "reaction"):
            value = getattr(self, name)
            if not math.isfinite(_as_real(value)):
                raise ValueError(
                    f"DiffusionReaction.{name}: expected a finite number, got {value!r}"
                )

    def residual(
        self, s: torch.Tensor, s_t: torch.Tensor, s_xx: torch.Tensor, source: torch.Tensor
    ) -> torch.Tensor:
        """``s_t - D s_xx - k s^2 - f``, elementwise."""
        return s_t - self.diffusion * s_xx - self.reaction * s**2 - source


def _as_real(value: object) -> float:
    """``value`` as a float if it is a real number or a one-element floating tensor (a learned
    coefficient), else NaN."""
    if is_real(value):
        return float(value)  # type: ignore[arg-type]
    if torch.is_tensor(value) and value.numel() == 1 and value.is_floating_point():
        return float(value.detach())
    return math.nan


def _check_weights(weights: tuple[float, float, float]) -> tuple[float, float, float]:
    """``weights`` unchanged if they are three finite numbers >= 0, else a ValueError."""
    ok = (
        isinstance(weights, (tuple, list))
        and len(weights) == 3
        and all(0 <= _as_real(w) < math.inf for w in weights)
    )
    if not ok:
        # (why) a negative weight made the optimiser ascend its term (as sciml.pinn's
        # LossWeights refuse), NaN made the loss NaN, two weights failed in the unpacking
        raise ValueError(
            f"expected weights (w_residual, w_initial, w_boundary): three finite numbers >= 0, "
            f"got {weights!r}"
        )
    return tuple(weights)  # type: ignore[return-value]


def _check_points(y: torch.Tensor, batch: int, name: str) -> None:
    if y.ndim != 3 or y.shape[0] != batch or y.shape[-1] != 2:
        raise ValueError(
            f"expected {name} of shape (batch={batch}, points, 2) with columns (x, t), got "
            f"{tuple(y.shape)}"
        )


def space_time_derivatives(
    model: nn.Module, u: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``s``, ``s_t`` and ``s_xx`` of ``s = model(u, x=y)[..., 0]`` at ``y`` ``(batch, points, 2)``.

    Returns three ``(batch, points)`` tensors, differentiable w.r.t. the model's parameters
    when called with gradients enabled (training); under ``torch.no_grad()`` detached values.
    """
    _check_points(y, u.shape[0], "y")
    keep_graph = torch.is_grad_enabled()  # False under no_grad (validation): plain values
    with torch.enable_grad():  # derivatives in y are needed even under no_grad
        y = y.detach().requires_grad_(True)
        s = model(u, x=y)[..., 0]  # (B, P)
        (ds,) = torch.autograd.grad(s.sum(), y, create_graph=True)  # (B, P, 2)
        s_x, s_t = ds[..., 0], ds[..., 1]
        (d2s,) = torch.autograd.grad(s_x.sum(), y, create_graph=keep_graph)
    if not keep_graph:
        s, s_t = s.detach(), s_t.detach()
    return s, s_t, d2s[..., 0]


def diffusion_reaction_loss(
    model: nn.Module,
    u: torch.Tensor,
    *,
    y_residual: torch.Tensor,
    source: torch.Tensor,
    y_initial: torch.Tensor,
    y_boundary: torch.Tensor,
    problem: DiffusionReaction | None = None,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> dict[str, torch.Tensor]:
    """Physics-informed loss of ``model`` on the diffusion-reaction problem (module doc).

    Args:
        model: ``model(u, x=y) -> (batch, points, 1)``.
        u: the branch input ``(batch, sensors)``.
        y_residual: collocation points ``(batch, P_r, 2)``, columns ``(x, t)``.
        source: ``f`` at the collocation points ``(batch, P_r)`` (``u(x)`` there).
        y_initial: points on ``t = 0``, ``(batch, P_i, 2)``.
        y_boundary: points on ``x = 0`` or ``x = 1``, ``(batch, P_b, 2)``.
        problem: the coefficients (default ``D = k = 0.01``).
        weights: ``(w_r, w_ic, w_bc)``.

    Returns:
        ``{"residual", "initial", "boundary", "loss"}``: the three mean squares and the weighted sum.
    """
    problem = problem or DiffusionReaction()
    w_r, w_i, w_b = _check_weights(weights)
    batch = u.shape[0]
    for name, y in (("y_initial", y_initial), ("y_boundary", y_boundary)):
        _check_points(y, batch, name)
    if source.shape != y_residual.shape[:-1]:
        raise ValueError(
            f"expected source of shape {tuple(y_residual.shape[:-1])} (one value per collocation "
            f"point), got {tuple(source.shape)}"
        )
    s, s_t, s_xx = space_time_derivatives(model, u, y_residual)
    terms = {
        "residual": problem.residual(s, s_t, s_xx, source).square().mean(),
        "initial": model(u, x=y_initial)[..., 0].square().mean(),
        "boundary": model(u, x=y_boundary)[..., 0].square().mean(),
    }
    terms["loss"] = w_r * terms["residual"] + w_i * terms["initial"] + w_b * terms["boundary"]
    return terms


def interp1d(values: torch.Tensor, grid: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of ``values`` ``(batch, n)`` on the increasing 1D ``grid``
    ``(n,)`` at ``x`` ``(batch, P)`` (clamped to the grid's range): ``(batch, P)``.

    Raises ValueError for a grid that is not 1D, has fewer than 2 points or is not strictly
    increasing.
    """
    # (why) searchsorted assumes a sorted grid: a decreasing or repeated one gave wrong values
    # (or a 0/0 weight) without an error
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(f"expected a 1D grid (n,) with n >= 2 points, got {tuple(grid.shape)}")
    steps = grid.diff()
    if not bool((steps > 0).all()):
        k = int((~(steps > 0)).nonzero()[0, 0])
        raise ValueError(
            "expected a strictly increasing grid, got grid["
            f"{k}] = {float(grid[k]):g} followed by grid[{k + 1}] = {float(grid[k + 1]):g}; "
            "sort it (and values with it) and drop repeated points"
        )
    if values.ndim != 2 or values.shape[1] != grid.shape[0] or x.ndim != 2:
        raise ValueError(
            f"expected values (batch, n={grid.shape[0]}) and x (batch, P), got "
            f"{tuple(values.shape)} and {tuple(x.shape)}"
        )
    x = x.clamp(grid[0], grid[-1])
    j = torch.searchsorted(grid, x.contiguous()).clamp(1, len(grid) - 1)  # right neighbour
    x0, x1 = grid[j - 1], grid[j]
    v0, v1 = values.gather(1, j - 1), values.gather(1, j)
    w = (x - x0) / (x1 - x0)
    return v0 + w * (v1 - v0)


def _sensor_message(n: int, given: str) -> str:
    return (
        f"expected one input value per sensor location: sensor_x holds {n} locations, {given} "
        "(pass sensor_x with the x of each of u's values)"
    )


class PhysicsInformedDiffusionReaction(nn.Module):
    """A model trained by the physics-informed loss inside the common :class:`sciml.train.Trainer`.

    ``forward`` is the wrapped model's (so validation and prediction are unchanged);
    ``training_loss(batch, loss_fn)`` ignores the batch's targets and returns
    :func:`diffusion_reaction_loss` at fresh random points for the batch's input functions
    ``batch["input"]`` ``(batch, sensors)``, the source ``u`` sampled at the sensors
    ``sensor_x`` ``(sensors,)`` on ``[0, 1]``: collocation points ``(x_j, t)`` with ``x_j`` a random
    sensor (so ``f = u(x_j)`` exactly) and ``t ~ U(0, 1)``; initial points ``(x ~ U(0, 1), 0)``;
    boundary points ``(0 or 1, t ~ U(0, 1))``; ``points`` of each per function.
    """

    def __init__(
        self,
        model: nn.Module,
        sensor_x: torch.Tensor,
        *,
        points: int = 100,
        problem: DiffusionReaction | None = None,
        weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> None:
        super().__init__()
        # (why) checked here: a bad count failed only inside Trainer.fit, in the first training
        # step (0: "cannot reshape tensor of 0 elements", -1: "negative dimension")
        points = check_int("points", points)
        sensors = getattr(getattr(model, "config", None), "sensors", None)
        if sensors is not None and sensor_x.numel() != sensors:
            raise ValueError(_sensor_message(sensor_x.numel(), f"the model's {sensors} sensors"))
        self.model = model
        self.register_buffer("sensor_x", sensor_x.reshape(-1))
        weights = _check_weights(weights)
        self.points, self.problem, self.weights = points, problem or DiffusionReaction(), weights

    def forward(self, u: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.model(u, **kwargs)

    def collocation(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Random residual / initial / boundary points for the functions ``u`` (see class doc)."""
        b, p, dev = u.shape[0], self.points, u.device
        values = u.reshape(b, -1)  # (b, sensors)
        if values.shape[1] != self.sensor_x.shape[0]:
            # (why) with more values than sensor_x holds, each collocation point was paired
            # with the value of another sensor, silently; with fewer, gather failed ("index
            # out of bounds")
            raise ValueError(
                _sensor_message(self.sensor_x.shape[0], f"u of shape {tuple(u.shape)}")
            )
        j = torch.randint(0, self.sensor_x.shape[0], (b, p), device=dev)
        rand = torch.rand(4, b, p, device=dev, dtype=self.sensor_x.dtype)
        return {
            "y_residual": torch.stack([self.sensor_x[j], rand[0]], -1),
            "source": values.gather(1, j),
            "y_initial": torch.stack([rand[1], torch.zeros_like(rand[1])], -1),
            "y_boundary": torch.stack([(rand[2] < 0.5).to(rand.dtype), rand[3]], -1),
        }

    def training_loss(self, batch: dict[str, torch.Tensor], loss_fn: object = None) -> torch.Tensor:
        u = batch["input"]
        terms = diffusion_reaction_loss(
            self.model, u, **self.collocation(u), problem=self.problem, weights=self.weights
        )
        return terms["loss"]
