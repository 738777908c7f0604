"""The Eulerian PINN network and the MLP both PINN architectures are built from."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .._scalars import is_int
from ..layers._checks import check_input_dtype
from ._checks import check_float_points, is_number
from .constraints import PeriodicEmbedding, _call_u0, _set_fixed

# (why) a run-time import, not one under TYPE_CHECKING: typing.get_type_hints(PINN.loss_terms)
# raised NameError on the annotation. No cycle: problems.py does not import this module.
from .problems import PeriodicProblem
from .reference import periodic_grid

__all__ = ["MLP", "PINN"]


class MLP(nn.Sequential):
    """``depth`` hidden layers of ``width`` units with ``activation`` (default tanh, smooth
    enough for second derivatives), Xavier-normal weights and zero biases; ``(..., in) ->
    (..., out)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        width: int = 50,
        depth: int = 4,
        activation: Callable[[], nn.Module] = nn.Tanh,
    ) -> None:
        sizes = {"in_features": in_features, "out_features": out_features}
        for name, v in {**sizes, "width": width, "depth": depth}.items():
            # (why) a float failed inside nn.Linear with torch's argument list
            if not is_int(v):
                raise TypeError(f"expected an int {name}, got {v!r}")
        if width < 1 or depth < 1:
            raise ValueError(f"expected width >= 1 and depth >= 1, got {width} and {depth}")
        layers: list[nn.Module] = []
        n = in_features
        for _ in range(depth):
            layers += [nn.Linear(n, width), activation()]
            n = width
        layers.append(nn.Linear(n, out_features))
        super().__init__(*layers)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)


def _check_length(owner: str, length: float) -> None:
    """(why) float(length) took the string '6.28' and True (a period of 1) without a word."""
    if not is_number(length):
        raise TypeError(f"{owner} expected a real number period length, got {length!r}")


def _check_points(owner: str, weight: torch.Tensor, **points: torch.Tensor) -> None:
    """Each of ``points`` a floating-point tensor in the dtype of the parameter ``weight`` (a
    half-precision mismatch is left to ``torch.autocast``; float64 it does not cast, so it is
    refused there too, see :func:`check_input_dtype`) and on its device.

    (why) float64 points into a float32 model failed inside the first nn.Linear with torch's
    "mat1 and mat2 must have the same dtype, but got Double and Float", naming no input; an
    integer x ran (the embedding promoted it) and then failed in autograd, see ``_checks``."""
    dtype = weight.dtype
    for name, v in points.items():
        check_float_points(owner, name, v, dtype, " (the dtype of its parameters)")
        check_input_dtype(owner, name, v, dtype)
        # (why) CPU points for a CUDA model failed in the first nn.Linear with torch's
        # 'Expected all tensors to be on the same device ... argument mat1', naming no input
        if v.device != weight.device:
            raise ValueError(
                f"{owner} expected {name} on the device of its parameters, {weight.device}, "
                f"got {name} on {v.device}; move it with {name}.to('{weight.device}')"
            )


def _grid_axis(owner: str, name: str, v: object, weight: torch.Tensor) -> torch.Tensor:
    """``v`` as a 1-d tensor in ``weight``'s dtype and on its device: one axis of the grid
    ``evaluate`` returns ``u`` on.

    (why) ``reshape(-1)`` flattened any shape: ``PINN().evaluate(torch.rand(3, 2), t)`` gave
    ``u`` on 6 points, shaped ``(nt, 6)``, as if they were one axis, without a word."""
    v = torch.as_tensor(v, dtype=weight.dtype, device=weight.device)
    if v.ndim != 1:
        fix = (
            f"pass [{name}] for one value"
            if v.ndim == 0
            else f"pass the axes, not a mesh ({name}.reshape(-1) for a column)"
        )
        raise ValueError(
            f"{owner}.evaluate expected {name} as one axis of the grid, a 1-d tensor of shape "
            f"(n{name},), got shape {tuple(v.shape)}; it returns u on the product of the axes "
            f"x and t, (nt, nx): {fix}"
        )
    return v


def _check_u0(model: nn.Module, owner: str, problem: PeriodicProblem) -> None:
    """Raise unless ``model``'s hard initial condition ``model.u0`` (if any) is ``problem``'s
    ``u0``: the same function, or one with the same values at 256 points of ``[0, L)`` (to
    ``1e-4 (1 + max |problem.u0|)``, far above float32 rounding).

    (why) ``PINN(u0=f)`` imposes ``f`` exactly and ``loss_terms(problem, ...)`` never read the
    problem's ``u0``: a model trained to an initial condition other than the one
    ``problem.reference`` solves from, without a word. Checked once per pair of functions (a
    plain attribute, not a submodule, remembers the last pair that agreed), so a training loop
    pays nothing after its first step."""
    u0 = model.u0
    if u0 is None or u0 is problem.u0:
        return
    seen = vars(model).get("_u0_agrees")
    if seen is not None and seen[0] is u0 and seen[1] is problem.u0:
        return
    p = next(model.parameters())
    x = periodic_grid(256, problem.length)
    want = problem._u0_at(x)
    got = _call_u0(u0, x.to(dtype=p.dtype, device=p.device)[:, None]).detach()
    got = torch.broadcast_to(got, (x.shape[0], 1))[:, 0].to(dtype=torch.float64, device="cpu")
    diff = (got - want).abs()
    worst = int(torch.nan_to_num(diff, nan=math.inf).argmax())
    if not float(diff[worst]) <= 1e-4 * (1.0 + float(want.abs().max())):
        raise ValueError(
            f"expected the {owner}'s initial condition u0 to be the problem's, got one that "
            f"differs from it by {float(diff[worst]):.4g} at x = {float(x[worst]):.4g} "
            f"(model.u0: {float(got[worst]):.4g}, problem.u0: {float(want[worst]):.4g}; "
            f"256 points of [0, {problem.length:g}) compared): the model imposes its u0 "
            f"exactly, the problem's references start from its own. Build the model with "
            f"u0=problem.u0, or the problem with the model's u0"
        )
    object.__setattr__(model, "_u0_agrees", (u0, problem.u0))


class PINN(nn.Module):
    """A standard (Eulerian) PINN for ``u(x, t)`` on a periodic interval.

    ``u(x, t) = MLP(cos(2 pi x / L), sin(2 pi x / L), t)`` — exactly ``L``-periodic in ``x``
    (:class:`PeriodicEmbedding`), so there is no boundary term. With ``u0`` given the initial
    condition is hard, ``u = u0(x) + t * MLP(...)``; without it, train with an initial-condition
    penalty.

    Args:
        length: the period ``L``.
        width: hidden width of the MLP.
        depth: number of hidden layers of the MLP.
        u0: optional initial condition for the hard constraint; not trained (an ``nn.Module``
            u0 is not a submodule: its parameters stay out of ``parameters()``, and it is
            called in its own dtype and on its own device). It must be the problem's ``u0``
            (``u0=problem.u0``): :meth:`loss_terms` raises a ValueError where their values
            differ.
        harmonics: ``K``: the embedding feeds ``cos, sin(2 pi k x / L)`` for ``k = 1..K``.
    """

    def __init__(
        self,
        length: float = 2 * math.pi,
        *,
        width: int = 50,
        depth: int = 4,
        u0: Callable[[torch.Tensor], torch.Tensor] | None = None,
        harmonics: int = 1,
    ) -> None:
        super().__init__()
        _check_length("PINN", length)
        self.length = float(length)
        self.embed = PeriodicEmbedding([self.length, None], harmonics=harmonics)
        self.net = MLP(self.embed.out_features, 1, width=width, depth=depth)
        _set_fixed(self, "u0", u0)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x, t: (n, 1)`` -> ``u: (n, 1)``, in the parameters' dtype (a TypeError names
        both dtypes otherwise, integer points included: convert the points, or the model with
        ``.double()``) and on their device (a ValueError names both otherwise)."""
        _check_points("PINN", self.net[0].weight, x=x, t=t)
        if x.shape != t.shape or x.shape[-1] != 1:
            raise ValueError(
                f"expected x and t of the same shape (n, 1), got {tuple(x.shape)} and "
                f"{tuple(t.shape)}"
            )
        out = self.net(self.embed(torch.cat([x, t], dim=-1)))
        if self.u0 is not None:
            out = _call_u0(self.u0, x) + t * out
        return out

    def loss_terms(
        self,
        problem: PeriodicProblem,
        x: torch.Tensor,
        t: torch.Tensor,
        x_initial: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mean-square terms: ``"r"``, the PDE residual at the collocation points ``x, t:
        (n, 1)`` (leaves with ``requires_grad=True``), and, for a soft initial condition,
        ``"ic"`` at ``x_initial: (m, 1)``.

        Raises:
            ValueError: if the problem's period is not the model's ``length``, or the model's
                hard ``u0`` differs from ``problem.u0``.
        """
        problem._check_period(self.length)
        _check_u0(self, "PINN", problem)
        terms = {"r": problem.residual(self(x, t), x, t).square().mean()}
        if self.u0 is None:
            if x_initial is None:
                raise ValueError("a soft initial condition needs x_initial points, got None")
            _check_points("PINN", self.net[0].weight, x_initial=x_initial)
            u = self(x_initial, torch.zeros_like(x_initial))
            terms["ic"] = (u - _call_u0(problem.u0, x_initial)).square().mean()
        return terms

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``u`` on the grid ``x: (nx,)`` x ``t: (nt,)``: ``(nt, nx)``, ``u[i, j] = u(x_j,
        t_i)``. ``x`` and ``t`` are converted to the parameters' dtype and device; a ValueError
        names a shape that is not 1-d."""
        p = next(self.parameters())
        x, t = _grid_axis("PINN", "x", x, p), _grid_axis("PINN", "t", t, p)
        xx = x[None, :].expand(t.shape[0], -1).reshape(-1, 1)
        tt = t[:, None].expand(-1, x.shape[0]).reshape(-1, 1)
        return self(xx, tt).reshape(t.shape[0], x.shape[0])
