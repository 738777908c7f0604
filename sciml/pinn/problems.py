"""Transport-dominated model problems on a periodic interval ``x in [0, L)``, ``t in [0, T]``.

All three are ``u_t + F(u) u_x = nu u_xx`` with ``u(x, 0) = u0(x)``:

=====================  ============  ======
problem                ``F(u)``       ``nu``
=====================  ============  ======
:class:`Convection`     ``beta``      0
:class:`ConvectionDiffusion`  ``beta``  ``nu``
:class:`Burgers`        ``u``          ``nu``
=====================  ============  ======

``F`` is the characteristic speed: along ``dx/dt = F(u)`` the equation reduces to
``du/dt = nu u_xx``, which is what :class:`~sciml.pinn.LagrangianPINN` solves. Each problem gives
its Eulerian PINN residual (:meth:`~PeriodicProblem.residual`) and a reference solution on a grid
(:meth:`~PeriodicProblem.reference`). The default is the setting of Mojgani, Balajewicz &
Hassanzadeh (2022): ``u0 = sin(x)`` on ``[0, 2 pi)``, ``T = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .._scalars import is_int
from ._checks import check_float_points, is_number
from .constraints import _call_fixed
from .derivatives import grad, grads
from .reference import (
    burgers_spectral,
    convection_diffusion_fourier,
    convection_exact,
    periodic_grid,
)

__all__ = ["PeriodicProblem", "Convection", "ConvectionDiffusion", "Burgers"]


@dataclass(frozen=True)
class PeriodicProblem:
    """Base: ``u_t + F(u) u_x = nu u_xx`` on ``[0, length) x [0, t_final]``.

    Attributes:
        u0: the initial condition, a function of ``x`` applied elementwise. The problem's own
            evaluations (the periodicity check, the references) call it on float64 CPU points,
            or, for an ``nn.Module`` with floating parameters or buffers, on points of their
            dtype and device; the values come back as float64 on the CPU.
        length: the period ``L``.
        t_final: the final time ``T``.
    """

    u0: Callable[[torch.Tensor], torch.Tensor] = field(default=torch.sin, repr=False)
    length: float = 2 * math.pi
    t_final: float = 1.0

    def __post_init__(self) -> None:
        # (why) a string failed in the comparisons below with Python's "'<' not supported",
        # True ran as 1 (beta=True: speed 1), and a u0 that is not callable failed with
        # "'float' object is not callable", naming no field
        for name in ("length", "t_final", "viscosity", "beta"):
            if hasattr(self, name) and not is_number(getattr(self, name)):
                raise TypeError(
                    f"{type(self).__name__} expected a real number {name}, got "
                    f"{getattr(self, name)!r}"
                )
        if not callable(self.u0):
            raise TypeError(
                f"{type(self).__name__} expected u0 as a function of x (e.g. torch.sin), got "
                f"{self.u0!r}"
            )
        # (why) inf passed '> 0': a t_final of inf was kept, a length of inf refused as a u0
        # that is not periodic (u0(L) = nan)
        if not (0 < self.length < math.inf and 0 < self.t_final < math.inf):
            raise ValueError(
                f"expected a finite, positive period and final time, got length={self.length}, "
                f"t_final={self.t_final}"
            )
        # (why) nu < 0 trained a PINN on the ill-posed backward heat equation (only reference()
        # refused it), and a nan viscosity or an inf speed gave nan residuals
        if not 0 <= self.nu < math.inf:
            raise ValueError(f"expected a finite viscosity >= 0, got viscosity={self.nu}")
        beta = getattr(self, "beta", 0.0)
        if not math.isfinite(beta):
            raise ValueError(f"expected a finite speed beta, got beta={beta}")
        # (why) every model here is exactly L-periodic in x and the references wrap x - beta t
        # into [0, L): a u0 whose periodic extension jumps at x = 0 (the default sin with a
        # length other than 2 pi) gave a reference with a jump and a problem no periodic network
        # can fit, silently. A jump below 1e-4 of the scale (a bump whose tails do not quite
        # vanish at 0 and L) is far under what a PINN resolves and passes
        ends = self._u0_at(torch.tensor([0.0, self.length], dtype=torch.float64))
        jump = float((ends[1] - ends[0]).abs())
        scale = 1.0 + float(ends.abs().max())
        if not jump <= 1e-4 * scale:
            raise ValueError(
                f"expected an initial condition u0 that is continuous as an L-periodic function "
                f"(L = length = {self.length:g}), got u0(0) = {float(ends[0]):.4g} and "
                f"u0(L) = {float(ends[1]):.4g}; pass a periodic u0 (for L != 2 pi: "
                f"u0=lambda x: torch.sin(2 * math.pi * x / L)) or length=2 * math.pi"
            )

    def _u0_at(self, x: torch.Tensor) -> torch.Tensor:
        """``u0`` at the float64 points ``x``, as float64 on ``x``'s device.

        (why) a plain callable gets float64 points, the references' precision; an ``nn.Module``
        with float32 (or CUDA) weights cannot take them (a dtype / device error in ``Linear``),
        so it gets ``x`` in its own dtype and on its own device."""
        u = _call_fixed(self.u0, x)
        return u.detach() if isinstance(self.u0, torch.nn.Module) else u

    def _check_period(self, model_length: float) -> None:
        """Raise unless a model built with period ``model_length`` has this problem's period
        ``L``.

        A multiple ``k L`` is refused too: the collocation points lie in ``[0, L)``, so nothing
        ties the model on ``[L, k L)`` to the problem, yet that is where inflow at ``x = 0``
        comes from (a periodic wrap), and ``LagrangianPINN.evaluate`` starts half or more of
        its characteristics there."""
        if abs(model_length - self.length) > 1e-9 * self.length:
            raise ValueError(
                f"expected a model of the problem's period length={self.length:g}, got a model "
                f"built with length={model_length:g}; build it with length=problem.length"
            )

    @property
    def nu(self) -> float:
        """The ``nu`` of the residual's ``- nu u_xx`` term: 0.0 (no diffusion) unless a
        subclass has a viscosity."""
        return 0.0

    def speed(self, u: torch.Tensor) -> torch.Tensor:
        """The characteristic speed ``F(u)``, with the shape of ``u``."""
        raise NotImplementedError

    def residual(self, u: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Eulerian residual ``u_t + F(u) u_x - nu u_xx`` for ``u = net(x, t)``.

        Args:
            u: ``(n, 1)`` network output computed from the leaves ``x`` and ``t``.
            x: ``(n, 1)`` positions (``requires_grad=True``).
            t: ``(n, 1)`` times (``requires_grad=True``).

        Returns:
            ``(n, 1)``.
        """
        for name, v in (("x", x), ("t", t)):
            check_float_points(f"{type(self).__name__}.residual", name, v)
        # (why) u of shape (n,) (a network output squeezed) against x, t of shape (n, 1)
        # broadcast in F(u) u_x: an (n, n) residual, and its mean square a wrong loss, silently
        if not (torch.is_tensor(u) and u.shape == x.shape == t.shape):
            raise ValueError(
                f"{type(self).__name__}.residual expected u, x and t of one shape (n, 1), got u "
                f"{tuple(getattr(u, 'shape', ()))}, x {tuple(x.shape)} and t {tuple(t.shape)}"
            )
        # (why) one backward pass for both: two grad calls walked the network twice, which made
        # an Adam step ~1.7x DeepXDE's on convection (benchmarks/README.md, lpinn)
        u_x, u_t = grads(u, x, t)
        r = u_t + self.speed(u) * u_x
        if self.nu:
            r = r - self.nu * grad(u_x, x)
        return r

    def reference(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Reference solution ``(nt, nx)`` on ``x = periodic_grid(nx, L)`` and times ``t: (nt,)``."""
        raise NotImplementedError

    def _check_grid(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim != 1 or x.shape[0] < 2:
            raise ValueError(
                f"expected x as a 1-d periodic grid of n >= 2 points, got shape {tuple(x.shape)}"
            )
        expect = periodic_grid(x.shape[0], self.length)
        if not torch.allclose(x, expect, atol=1e-9 * self.length):
            off = int((x - expect).abs().argmax())
            raise ValueError(
                f"expected x on the periodic grid j * L / n, j = 0..n-1 with L={self.length:g} "
                f"(sciml.pinn.reference.periodic_grid({x.shape[0]}, L)); got x[{off}] = "
                f"{float(x[off]):.6g} where the grid has {float(expect[off]):.6g}"
            )
        return x


@dataclass(frozen=True)
class Convection(PeriodicProblem):
    """``u_t + beta u_x = 0``; exact solution ``u0(x - beta t)``.

    Attributes:
        beta: the advection speed (default 30).
    """

    beta: float = 30.0

    def speed(self, u: torch.Tensor) -> torch.Tensor:
        """``F(u) = beta``: ``beta`` in the shape of ``u``."""
        return torch.full_like(u, self.beta)

    def reference(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The exact solution ``u0((x - beta t) mod L)``, ``(nt, nx)``, at positions
        ``x: (nx,)`` and times ``t: (nt,)``."""
        return convection_exact(self._u0_at, self.beta, x, t, self.length)


@dataclass(frozen=True)
class ConvectionDiffusion(PeriodicProblem):
    """``u_t + beta u_x = nu u_xx``; reference: exact Fourier-mode decay of the sampled ``u0``.

    Attributes:
        beta: the advection speed (default 30).
        viscosity: the diffusion coefficient ``nu`` (default 0.01).
    """

    beta: float = 30.0
    viscosity: float = 0.01

    @property
    def nu(self) -> float:
        """``viscosity``, the ``nu`` of the residual's ``- nu u_xx`` term (read-only)."""
        return self.viscosity

    def speed(self, u: torch.Tensor) -> torch.Tensor:
        """``F(u) = beta``: ``beta`` in the shape of ``u``."""
        return torch.full_like(u, self.beta)

    def reference(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The reference ``(nt, nx)`` on ``x = periodic_grid(nx, L)`` (checked) at times
        ``t: (nt,)``: every Fourier mode of ``u0`` sampled on ``x``, advected and damped
        exactly."""
        x = self._check_grid(x)
        return convection_diffusion_fourier(
            self._u0_at(x), t, beta=self.beta, nu=self.viscosity, length=self.length
        )


@dataclass(frozen=True)
class Burgers(PeriodicProblem):
    """Viscous Burgers ``u_t + u u_x = nu u_xx``; reference: pseudo-spectral ETDRK4.

    ``reference_points`` is the resolution of the spectral solve (it must resolve the viscous
    shock width); results are sampled back onto the requested grid, which must divide it.

    Attributes:
        viscosity: the viscosity ``nu`` (default 0.01).
        reference_points: grid points of the reference's spectral solve (default 2048).
        reference_dt: the largest time step of the reference's ETDRK4 solve (default ``5e-4``;
            steps are shortened to land on every requested time).
    """

    viscosity: float = 0.01
    reference_points: int = 2048
    reference_dt: float = 5e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        # (why) checked only by reference(): 2048.0 failed there in a slice ('slice indices
        # must be integers'), a dt of -1 or nan as burgers_spectral's 'dt', a name the
        # problem does not have, after a model had been trained
        if not is_int(self.reference_points):
            raise TypeError(
                f"expected an int reference_points (grid points of the reference solve), got "
                f"{self.reference_points!r}"
            )
        if self.reference_points < 2:
            raise ValueError(f"expected reference_points >= 2, got {self.reference_points}")
        if not is_number(self.reference_dt) or not 0 < self.reference_dt < math.inf:
            raise ValueError(
                f"expected a finite reference_dt > 0 (the reference solve's largest time "
                f"step), got {self.reference_dt!r}"
            )

    @property
    def nu(self) -> float:
        """``viscosity``, the ``nu`` of the residual's ``- nu u_xx`` term (read-only)."""
        return self.viscosity

    def speed(self, u: torch.Tensor) -> torch.Tensor:
        """``F(u) = u``: ``u`` itself."""
        return u

    def reference(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The reference ``(nt, nx)`` on ``x = periodic_grid(nx, L)`` (checked; ``nx`` must
        divide ``reference_points``) at times ``t: (nt,)``: a pseudo-spectral ETDRK4 solve on
        ``reference_points`` points with steps of at most ``reference_dt``, sampled onto ``x``."""
        x = self._check_grid(x)
        n = self.reference_points
        if n % x.shape[0]:
            raise ValueError(
                f"expected a grid size dividing reference_points={n}, got {x.shape[0]} points"
            )
        fine = periodic_grid(n, self.length)
        u0 = self._u0_at(fine)
        # Galilean split u = c + v (c the conserved mean): v_t + c v_x + v v_x = nu v_xx, with
        # the advection c v_x integrated exactly in the linear part, so a large mean (a moving
        # shock) does not restrict the explicit step of the nonlinear term
        c = float(u0.mean())
        v = burgers_spectral(
            u0 - c, t, nu=self.viscosity, length=self.length, dt=self.reference_dt, beta=c
        )
        return c + v[:, :: n // x.shape[0]]
