"""Lagrangian PINNs (Mojgani, Balajewicz & Hassanzadeh 2022).

For ``u_t + F(u) u_x = nu u_xx`` the information travels along characteristics. An LPINN labels
each characteristic by its start point ``x0`` and learns, with two branches on the inputs
``(cos x0, sin x0, t)``,

* the **characteristic curves** ``x(x0, t) = x0 + d(x0, t)`` (``d`` periodic in ``x0``), and
* the **state on them** ``u(x0, t)``,

from the residuals

    R_x = dx/dt - F(u),        R_u = du/dt - nu d^2u/dx0^2,

and the initial conditions ``x(x0, 0) = x0``, ``u(x0, 0) = u0(x0)``. The Lagrangian state varies
slowly along a characteristic even when the Eulerian field moves fast, which is why LPINNs do not
show the failure of Eulerian PINNs at large convection speed.

``d^2u/dx0^2`` (derivative in the *label*) is the paper's diffusion term: it equals the Eulerian
``u_xx`` while the curves stay equally spaced (``dx/dx0 = 1``, exact for constant-speed
convection-diffusion). ``exact_diffusion=True`` uses the chain rule instead,
``u_xx = (u_x0 / x_x0)_x0 / x_x0``, exact also where characteristics converge (Burgers).

To compare with Eulerian solutions, :meth:`LagrangianPINN.evaluate` maps the Lagrangian result
back onto a fixed grid: positions are wrapped into ``[0, L)``, sorted, and the state interpolated
periodically.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real

import torch
from torch import nn

from ._checks import check_bool
from .constraints import PeriodicEmbedding, _call_u0, _set_fixed
from .derivatives import grad, grads
from .networks import MLP, _check_length, _check_points, _check_u0, _grid_axis
from .problems import PeriodicProblem

__all__ = ["LagrangianPINN", "periodic_interp"]


class LagrangianPINN(nn.Module):
    """The two-branch LPINN for a problem on a periodic interval ``[0, L)``.

    Args:
        length: the period ``L``.
        width: hidden units of both branches.
        state_depth: hidden layers of the state branch ``u(x0, t)``.
        curve_depth: hidden layers of the characteristic branch ``d(x0, t)`` (a low-dimensional
            object: a shallow branch suffices).
        u0: when given, the initial conditions are hard: ``u = u0(x0) + t N_u``, ``x = x0 + t N_x``;
            otherwise they are penalised (:meth:`loss_terms`). Not trained, and checked
            against the problem's ``u0`` (:meth:`residuals`), as in :class:`~sciml.pinn.PINN`.
        curve_scale: the characteristic branch's output is multiplied by this constant (an
            output normalisation: set it to a typical speed times ``T`` so the branch learns an
            O(1) function; finite and > 0; 1 by default).
        exact_diffusion: chain-rule Eulerian ``u_xx`` in ``R_u`` instead of the label derivative
            (a bool).
    """

    def __init__(
        self,
        length: float = 2 * math.pi,
        *,
        width: int = 50,
        state_depth: int = 4,
        curve_depth: int = 2,
        u0: Callable[[torch.Tensor], torch.Tensor] | None = None,
        curve_scale: float = 1.0,
        exact_diffusion: bool = False,
    ) -> None:
        super().__init__()
        _check_length("LagrangianPINN", length)
        self.length = float(length)
        self.embed = PeriodicEmbedding([self.length, None])
        self.state = MLP(self.embed.out_features, 1, width=width, depth=state_depth)
        self.curve = MLP(self.embed.out_features, 1, width=width, depth=curve_depth)
        _set_fixed(self, "u0", u0)
        # (why) inf or nan made every position non-finite at the first forward pass, 0 froze
        # the curves at x = x0; True was taken as 1
        if isinstance(curve_scale, bool) or not isinstance(curve_scale, Real):
            raise TypeError(f"expected a real number curve_scale, got {curve_scale!r}")
        if not 0 < curve_scale < math.inf:
            raise ValueError(
                f"expected a finite, positive curve_scale (a typical speed times T), got "
                f"{curve_scale}"
            )
        self.curve_scale = float(curve_scale)
        check_bool("LagrangianPINN", "exact_diffusion", exact_diffusion)
        self.exact_diffusion = bool(exact_diffusion)

    def forward(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Characteristic position and state.

        Args:
            x0: ``(n, 1)`` labels (start points).
            t: ``(n, 1)`` times (both in the parameters' dtype and on their device).

        Returns:
            ``x(x0, t)`` (not wrapped into ``[0, L)``) and ``u(x0, t)``, both ``(n, 1)``.
        """
        _check_points("LagrangianPINN", self.state[0].weight, x0=x0, t=t)
        if x0.shape != t.shape or x0.shape[-1] != 1:
            raise ValueError(
                f"expected x0 and t of the same shape (n, 1), got {tuple(x0.shape)} and "
                f"{tuple(t.shape)}"
            )
        h = self.embed(torch.cat([x0, t], dim=-1))
        d = self.curve_scale * self.curve(h)
        u = self.state(h)
        if self.u0 is not None:
            d, u = t * d, _call_u0(self.u0, x0) + t * u
        return x0 + d, u

    def residuals(
        self, problem: PeriodicProblem, x0: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``R_x = dx/dt - F(u)`` and ``R_u = du/dt - nu u_xx`` at ``x0, t: (n, 1)`` (leaves with
        ``requires_grad=True``). Both ``(n, 1)``.

        Raises:
            ValueError: if the problem's period is not the model's ``length``, or the model's
                hard ``u0`` differs from ``problem.u0``.
        """
        problem._check_period(self.length)
        _check_u0(self, "LagrangianPINN", problem)
        x, u = self(x0, t)
        if not problem.nu:
            return grad(x, t) - problem.speed(u), grad(u, t)
        # (why) each output's derivatives in t and x0 come from one backward pass, not two
        u_t, u_l = grads(u, t, x0)
        if self.exact_diffusion:
            x_t, jac = grads(x, t, x0)  # jac = dx/dx0
            u_xx = grad(u_l / jac, x0) / jac
        else:
            x_t = grad(x, t)
            u_xx = grad(u_l, x0)
        return x_t - problem.speed(u), u_t - problem.nu * u_xx

    def loss_terms(
        self,
        problem: PeriodicProblem,
        x0: torch.Tensor,
        t: torch.Tensor,
        x0_initial: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mean-square terms: ``"r_x"``, ``"r_u"`` at the collocation points and, for soft
        initial conditions, ``"ic_x"``, ``"ic_u"`` at ``x0_initial: (m, 1)``."""
        r_x, r_u = self.residuals(problem, x0, t)
        terms = {"r_x": r_x.square().mean(), "r_u": r_u.square().mean()}
        if self.u0 is None:
            if x0_initial is None:
                raise ValueError("soft initial conditions need x0_initial points, got None")
            _check_points("LagrangianPINN", self.state[0].weight, x0_initial=x0_initial)
            xi, ui = self(x0_initial, torch.zeros_like(x0_initial))
            terms["ic_x"] = (xi - x0_initial).square().mean()
            terms["ic_u"] = (ui - _call_u0(problem.u0, x0_initial)).square().mean()
        return terms

    @torch.no_grad()
    def evaluate(
        self, x: torch.Tensor, t: torch.Tensor, *, labels: int | None = None
    ) -> torch.Tensor:
        """The state on a fixed Eulerian grid: ``x: (nx,)`` in ``[0, L)``, ``t: (nt,)`` ->
        ``(nt, nx)``.

        ``labels`` characteristics (default ``2 nx``) start on an equispaced grid; at each time
        their positions are wrapped into ``[0, L)`` and ``u`` is interpolated linearly, periodically,
        at ``x``. ``x`` and ``t`` are converted to the parameters' dtype and device; a ValueError
        names a shape that is not 1-d.
        """
        p = next(self.parameters())
        x, t = _grid_axis("LagrangianPINN", "x", x, p), _grid_axis("LagrangianPINN", "t", t, p)
        # (why) max(., 1): on an empty grid 2 * nx = 0 labels divided by zero; one label gives
        # the (nt, 0) result the grid asks for
        if labels is not None and (isinstance(labels, bool) or not isinstance(labels, Integral)):
            raise TypeError(f"expected an int labels, got {labels!r}")  # (why) int() truncated
        m = max(2 * x.shape[0], 1) if labels is None else int(labels)
        if m < 1:
            raise ValueError(f"expected at least 1 label (characteristic), got labels={labels}")
        x0 = torch.arange(m, dtype=p.dtype, device=p.device) * (self.length / m)
        xx0 = x0[None, :].expand(t.shape[0], m).reshape(-1, 1)
        tt = t[:, None].expand(t.shape[0], m).reshape(-1, 1)
        pos, u = self(xx0, tt)
        return periodic_interp(pos.reshape(t.shape[0], m), u.reshape(t.shape[0], m), x, self.length)


def periodic_interp(
    xp: torch.Tensor, fp: torch.Tensor, x: torch.Tensor, length: float
) -> torch.Tensor:
    """Linear interpolation of ``L``-periodic data, row by row.

    Args:
        xp: ``(nt, m)`` sample positions (any real values; wrapped into ``[0, L)``, need not be
            sorted).
        fp: ``(nt, m)`` values there.
        x: ``(nx,)`` query points (any real values; wrapped into ``[0, L)``).
        length: the period ``L``.

    Returns:
        ``(nt, nx)``; nan where ``fp`` or ``x`` is nan.

    Raises:
        ValueError: for rows without samples (``m = 0``), a non-finite position in ``xp``, a
            period that is not finite and positive, or ``x`` that is not 1-d.
    """
    if xp.shape != fp.shape or xp.ndim != 2:
        raise ValueError(f"expected xp, fp of one shape (nt, m), got {xp.shape} and {fp.shape}")
    # (why) length -1 gave -1.6e38 (a negative spacing clamped to tiny), 0 gave nan, and a 2-d
    # x failed in expand() with a message about sizes
    if not 0 < length < math.inf:
        raise ValueError(f"expected a finite period length > 0, got {length}")
    if x.ndim != 1:
        raise ValueError(f"expected query points x of shape (nx,), got {tuple(x.shape)}")
    # (why) no samples failed in the clamp below with torch's "index -2 is out of bounds for
    # dimension 1 with size 0"; a nan / inf position wrapped to nan, sorted last, and gave nan
    # at some queries and finite values at others, silently
    if xp.shape[1] == 0 and xp.shape[0] > 0:
        raise ValueError(
            f"expected at least one sample per row (xp, fp of shape (nt, m) with m >= 1), got "
            f"shape {tuple(xp.shape)}"
        )
    bad = ~torch.isfinite(xp)
    if bool(bad.any()):
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"expected finite sample positions xp, got {int(bad.sum())} non-finite of "
            f"{xp.numel()} (the first, {float(xp[row, col])}, at row {row}, column {col})"
        )
    xw = torch.remainder(xp, length)
    xs, order = torch.sort(xw, dim=1)
    fs = torch.gather(fp, 1, order)
    # close the circle: one copy of the last sample before 0, one of the first after L
    xs = torch.cat([xs[:, -1:] - length, xs, xs[:, :1] + length], dim=1)
    fs = torch.cat([fs[:, -1:], fs, fs[:, :1]], dim=1)
    q = torch.remainder(x, length)[None, :].expand(xs.shape[0], -1).contiguous()
    hi = torch.searchsorted(xs.contiguous(), q, right=True).clamp(1, xs.shape[1] - 1)
    lo = hi - 1
    x_lo, x_hi = torch.gather(xs, 1, lo), torch.gather(xs, 1, hi)
    f_lo, f_hi = torch.gather(fs, 1, lo), torch.gather(fs, 1, hi)
    w = (q - x_lo) / (x_hi - x_lo).clamp_min(torch.finfo(xs.dtype).tiny)
    return f_lo + w * (f_hi - f_lo)
