"""sciml.pinn references against independent solutions, and the checks on problem settings."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp, trapezoid

from sciml.pinn import PINN, Box, Burgers, Convection, ConvectionDiffusion, LagrangianPINN, sobol
from sciml.pinn.reference import burgers_spectral, convection_diffusion_fourier, periodic_grid

TWO_PI = 2 * math.pi


def _heat_kernel_burgers(x, t, nu, shift=0.0, ny=8001):
    """Viscous Burgers for ``u0 = shift + sin x`` by the Cole-Hopf transform in integral form
    (no Fourier series, no time stepping): ``u = shift + v(x - shift t, t)`` with

        v(x, t) = int (x - y) / t e^{-G / 2 nu} dy / int e^{-G / 2 nu} dy,
        G(y) = 1 - cos y + (x - y)^2 / (2 t),

    both integrals by the trapezoidal rule over the Gaussian's support, exponent shifted by its
    maximum so that nu = 0.01 (e^{-G / 2 nu} down to e^{-100}) keeps every digit."""
    out = np.empty((len(t), len(x)))
    for i, tk in enumerate(t):
        if tk == 0:
            out[i] = shift + np.sin(x)
            continue
        half = 12 * math.sqrt(2 * nu * tk) + 2 * tk  # the peak sits within |x - y| <= t
        for j, xj in enumerate(np.asarray(x) - shift * tk):
            y = np.linspace(xj - half, xj + half, ny)
            e = -((1 - np.cos(y)) + (xj - y) ** 2 / (2 * tk)) / (2 * nu)
            w = np.exp(e - e.max())
            # (why) SciPy's trapezoid: np.trapezoid is NumPy 2.0's (pyproject.toml allows 1.24)
            out[i, j] = shift + trapezoid((xj - y) / tk * w, y) / trapezoid(w, y)
    return out


@pytest.mark.parametrize("shift", [0.0, 10.0])
def test_burgers_reference_at_nu_001_matches_the_cole_hopf_integral(shift):
    # the benchmark's setting (nu = 0.01, a shock of width ~0.01) which the Fourier-series
    # Cole-Hopf of reference.py cannot reach; shift = 10: the moving shock of burgers_moving
    nu = 0.01
    x = periodic_grid(64)
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    want = _heat_kernel_burgers(x.numpy(), t.numpy(), nu, shift)
    prob = Burgers(viscosity=nu, u0=lambda z: shift + torch.sin(z))
    got = prob.reference(x, t).numpy()
    # measured: 3.6e-13 (shift 0) and 1.4e-7 (shift 10), the ETDRK4 step of 5e-4: 8.6e-9 at half
    # the step (fourth order); twice the viscosity is 0.09-0.1 off
    assert np.abs(got - want).max() < (1e-9 if shift == 0 else 1e-6)
    assert np.abs(want[-1] - (shift + np.sin(x.numpy()))).max() > 0.5  # a shock has formed
    twice = Burgers(viscosity=2 * nu, u0=prob.u0).reference(x, t).numpy()
    assert np.abs(twice - want).max() > 0.05  # the comparison sees a wrong viscosity


def _method_of_lines(u0, beta, nu, n, t_eval):
    """u_t + beta u_x = nu u_xx on [0, 2 pi): sixth-order central differences, SciPy DOP853."""
    h = TWO_PI / n

    def rhs(_, u):
        def s(k):
            return np.roll(u, -k), np.roll(u, k)

        (p1, m1), (p2, m2), (p3, m3) = s(1), s(2), s(3)
        ux = (45 * (p1 - m1) - 9 * (p2 - m2) + (p3 - m3)) / (60 * h)
        uxx = (270 * (p1 + m1) - 27 * (p2 + m2) + 2 * (p3 + m3) - 490 * u) / (180 * h**2)
        return -beta * ux + nu * uxx

    sol = solve_ivp(
        rhs, (0, t_eval[-1]), u0, t_eval=t_eval, method="DOP853", rtol=1e-11, atol=1e-12
    )
    return sol.y.T


def test_convection_diffusion_reference_matches_a_scipy_method_of_lines_solve():
    # a u0 with every Fourier mode (exp(sin x)) against finite differences + DOP853 on a 2x
    # finer grid: independent of the FFT the reference uses
    beta, nu = 5.0, 0.05

    def u0(z):
        return torch.exp(torch.sin(z)) + 0.3 * torch.cos(3 * z)

    x = periodic_grid(128)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    fine = _method_of_lines(u0(periodic_grid(256)).numpy(), beta, nu, 256, t.numpy())[:, ::2]
    got = ConvectionDiffusion(beta=beta, viscosity=nu, u0=u0).reference(x, t).numpy()
    assert np.abs(got - fine).max() < 1e-6  # measured 4.2e-8 (the FD truncation); flipped: 2.5
    flipped = ConvectionDiffusion(beta=-beta, viscosity=nu, u0=u0).reference(x, t).numpy()
    assert np.abs(flipped - fine).max() > 0.5


def test_a_u0_that_is_not_periodic_is_refused():
    # the default u0 = sin with length = 1: the reference wrapped x - beta t into [0, 1) and had
    # a jump of 0.84, and no periodic network could fit the problem; nothing said so
    with pytest.raises(
        ValueError, match=r"L = length = 1\), got u0\(0\) = 0 and u0\(L\) = 0\.8415"
    ):
        Convection(beta=1.0, length=1.0)
    # u0 need only be given on [0, L): a bump with tails of 6e-5 at the ends passes
    Convection(length=1.5, u0=lambda z: 0.8 + 0.5 * torch.exp(-((z - 0.3) ** 2) / 0.01))
    with pytest.raises(ValueError, match="positive period"):
        Burgers(length=-1.0)
    prob = Convection(beta=1.0, length=1.0, u0=lambda z: torch.sin(TWO_PI * z))
    x = periodic_grid(50, 1.0)
    got = prob.reference(x, torch.tensor([0.3], dtype=torch.float64))
    torch.testing.assert_close(got[0], torch.sin(TWO_PI * (x - 0.3)), rtol=0, atol=1e-14)


def test_a_model_of_another_period_is_refused():
    # PINN() has period 2 pi; on a problem of period 2 its loss was computed without a word
    prob = Convection(beta=2.0, length=2.0, u0=lambda z: torch.sin(math.pi * z))
    pts = sobol(32, Box((0.0, 0.0), (2.0, 1.0)))
    x, t = pts[:, :1].clone().requires_grad_(), pts[:, 1:].clone().requires_grad_()
    x_ic = periodic_grid(8, 2.0).float()[:, None]
    # a multiple is refused too: trained on [0, 2) only, a model of period 4 is free on [2, 4),
    # where the inflow at x = 0 comes from, and an LPINN of period 4 evaluates characteristics
    # that start there (labels j * 4 / m: half of them in [2, 4), never trained)
    for model in (PINN(), LagrangianPINN(), PINN(length=4.0), LagrangianPINN(length=4.0)):
        with pytest.raises(
            ValueError, match=rf"period length=2, got a model built with length={model.length:g}"
        ):
            model.loss_terms(prob, x, t, x_ic)
    # the problem's period is fine: the residual of the exact solution u0(x - beta t) is ~0
    pinn, lpinn = PINN(length=2.0, u0=prob.u0), LagrangianPINN(length=2.0)
    assert set(pinn.loss_terms(prob, x, t)) == {"r"}
    assert set(lpinn.loss_terms(prob, x, t, x_ic)) == {"r_x", "r_u", "ic_x", "ic_u"}
    u = prob.u0(x - prob.beta * t)
    assert float(prob.residual(u, x, t).detach().abs().max()) < 1e-5


def test_burgers_spectral_refuses_a_step_that_is_not_positive():
    # dt < 0 took a single step over the whole span (0.07 off at t = 1), dt = 0 divided by 0
    u0 = torch.sin(periodic_grid(64))
    t = torch.tensor([1.0], dtype=torch.float64)
    for dt in (-1e-3, 0.0, math.inf):
        with pytest.raises(ValueError, match=rf"positive, finite time step dt, got dt={dt}"):
            burgers_spectral(u0, t, nu=0.1, dt=dt)
    with pytest.raises(ValueError, match=r"finite reference_dt > 0"):  # now when built
        Burgers(reference_dt=-1e-3)


def test_reference_grid_errors_say_what_was_given():
    with pytest.raises(ValueError, match=r"1-d periodic grid of n >= 2 points, got shape \(8, 1\)"):
        Burgers().reference(periodic_grid(8)[:, None], torch.zeros(1))
    with pytest.raises(
        ValueError, match=r"periodic_grid\(5, L\)\); got x\[4\] = 1 where the grid has 5\.0265"
    ):
        Burgers().reference(torch.linspace(0, 1, 5), torch.zeros(1))


class _Float32Sine(torch.nn.Module):
    """``u0(x) = a sin(x) + b`` with float32 weights (a = 1, b = 0) that refuses float64 input,
    as a float32 network (or one on another device) does."""

    def __init__(self, a=1.0, b=0.0):
        super().__init__()
        self.ab = torch.nn.Parameter(torch.tensor([a, b], dtype=torch.float32))

    def forward(self, x):
        if x.dtype != torch.float32:
            raise TypeError(f"expected float32 input, got {x.dtype}")
        return self.ab[0] * torch.sin(x) + self.ab[1]


def test_a_float32_module_u0_builds_and_gives_the_references():
    # the periodicity check evaluated u0 on a float64 CPU tensor when the problem was built, so
    # a float32 (or CUDA) nn.Module u0 raised there ('mat1 and mat2 must have the same dtype'
    # for a Linear), and so did every reference
    x, t = periodic_grid(64), torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    for cls, kw in (
        (Convection, {"beta": 5.0}),
        (ConvectionDiffusion, {"beta": 5.0, "viscosity": 0.05}),
        (Burgers, {"viscosity": 0.1, "reference_points": 256}),
    ):
        got = cls(u0=_Float32Sine(), **kw).reference(x, t)
        ref = cls(u0=torch.sin, **kw).reference(x, t)  # the float64 callable
        assert got.dtype == torch.float64
        # float32 sampling of u0 (eps 6e-8 on values up to 1), carried by a linear or
        # dissipative evolution to t = 1
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
        assert float((got - ref).abs().max()) > 0  # it was evaluated in float32
    # the check still runs on a module: sin on [0, 1) has u0(1) - u0(0) = 0.8415
    with pytest.raises(ValueError, match=r"got u0\(0\) = 0 and u0\(L\) = 0\.8415"):
        Convection(length=1.0, u0=_Float32Sine())


def test_a_plain_callable_u0_still_gets_float64_points():
    seen = []

    def u0(z):
        seen.append(z.dtype)
        return torch.sin(z)

    x = periodic_grid(32)
    got = Convection(beta=3.0, u0=u0).reference(x, torch.tensor([0.5], dtype=torch.float64))
    assert seen == [torch.float64, torch.float64]  # the check, then the reference
    torch.testing.assert_close(got[0], torch.sin(x - 1.5), rtol=0, atol=1e-15)


def test_burgers_spectral_refuses_an_output_time_that_is_not_finite():
    """A nan time passed the non-negative, non-decreasing check (comparisons with nan are
    False) and its row was the solution at the time before it (t = 0.1 for t = nan), silently;
    an inf time failed with 'cannot convert float infinity to integer'."""
    u0 = torch.sin(periodic_grid(32))
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite, non-negative, non-decreasing output times"):
            burgers_spectral(u0, torch.tensor([0.1, bad], dtype=torch.float64), nu=0.1)
    with pytest.raises(ValueError, match=r"got t = \[0.2, 0.1\]"):
        burgers_spectral(u0, torch.tensor([0.2, 0.1], dtype=torch.float64), nu=0.1)


def test_a_problem_refuses_a_negative_viscosity_or_a_speed_that_is_not_finite():
    """ConvectionDiffusion(viscosity=-0.01) and Burgers(viscosity=-0.01) were accepted: their
    residual u_t + F(u) u_x - nu u_xx trained a PINN on the ill-posed backward heat equation,
    and only reference() refused nu < 0; a nan viscosity or an inf speed gave nan residuals."""
    for make in (
        lambda: ConvectionDiffusion(viscosity=-0.01),
        lambda: Burgers(viscosity=-0.01),
        lambda: Burgers(viscosity=math.nan),
    ):
        with pytest.raises(ValueError, match="finite viscosity >= 0"):
            make()
    for make in (lambda: Convection(beta=math.inf), lambda: ConvectionDiffusion(beta=math.nan)):
        with pytest.raises(ValueError, match="finite speed beta"):
            make()
    # inviscid Burgers has a residual (its reference needs nu > 0 and says so)
    p = Burgers(viscosity=0.0)
    x = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[0.2]], dtype=torch.float64, requires_grad=True)
    u = torch.sin(x) * (1 + t)  # u_t + u u_x = sin x + (1 + t)^2 sin x cos x
    want = math.sin(0.3) + 1.2**2 * math.sin(0.3) * math.cos(0.3)
    assert p.residual(u, x, t).item() == pytest.approx(want, rel=1e-14)


def test_convection_diffusion_reference_refuses_negative_times_with_diffusion():
    """With nu > 0 a negative time runs the heat equation backwards: mode k grows by
    exp(nu k^2 |t|), and ConvectionDiffusion().reference at t = -1 returned values of 7e53
    (rounding noise amplified) without a word. Refused with nu > 0; pure advection (nu = 0)
    is reversible and still takes t < 0: sin(x - beta t) at t = -0.5."""
    x = periodic_grid(64)
    with pytest.raises(ValueError, match=r"times >= 0 with nu > 0 .*got t = \[-1.0, 0.5\]"):
        ConvectionDiffusion().reference(x, torch.tensor([-1.0, 0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="finite"):
        convection_diffusion_fourier(torch.sin(x), torch.tensor([math.nan]), beta=1.0, nu=0.0)
    back = convection_diffusion_fourier(torch.sin(x), torch.tensor([-0.5]), beta=2.0, nu=0.0)
    torch.testing.assert_close(back[0], torch.sin(x + 1.0), rtol=0, atol=1e-13)


def test_a_problem_refuses_an_infinite_period_or_final_time():
    """t_final=inf passed 't_final > 0'; length=inf did too and was then refused as 'an
    initial condition u0 that is continuous as an L-periodic function', u0(L) = nan."""
    for kw in ({"length": math.inf}, {"t_final": math.inf}, {"t_final": math.nan}):
        with pytest.raises(ValueError, match="finite, positive period and final time"):
            Convection(**kw)
    p = Convection(length=TWO_PI, t_final=2.0, beta=1.0)
    x, t = periodic_grid(8), torch.tensor([2.0], dtype=torch.float64)
    torch.testing.assert_close(p.reference(x, t)[0], torch.sin(x - 2.0), rtol=0, atol=1e-15)


def test_periodic_grid_refuses_a_count_that_is_not_an_int_and_a_period_that_is_not_positive():
    """periodic_grid(4.5) gave arange(4.5) * L / 4.5: 5 points that are not a periodic grid of
    [0, L) (the last at 4 L / 4.5); a length of -1 gave points in (-1, 0], an infinite one
    [nan, inf, ...], silently. Refused now; periodic_grid(4, 2) is [0, 0.5, 1, 1.5]."""
    with pytest.raises(TypeError, match=r"expected an int number of grid points n, got 4\.5"):
        periodic_grid(4.5)
    with pytest.raises(TypeError, match="got True"):
        periodic_grid(True)
    for length in (-1.0, 0.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="expected a finite period length > 0, got"):
            periodic_grid(4, length)
    assert periodic_grid(4, 2).tolist() == [0.0, 0.5, 1.0, 1.5]
    assert periodic_grid(np.int64(3), np.float64(3.0)).tolist() == [0.0, 1.0, 2.0]


def test_burgers_checks_its_reference_settings_when_built():
    """Burgers(reference_points=2048.0) was built and failed in reference() with Python's
    'slice indices must be integers', reference_dt=-1 (or nan) there as burgers_spectral's
    'dt', a name the problem does not have: after a model had been trained. Checked when the
    problem is built, by their names; valid settings give the same reference as before (the
    Cole-Hopf solution for sin x to 1e-9 at nu = 0.1)."""
    for bad in (2048.0, True, "2048"):
        with pytest.raises(TypeError, match=r"expected an int reference_points \(grid points"):
            Burgers(reference_points=bad)
    for bad in (1, 0, -64):
        with pytest.raises(ValueError, match=r"expected reference_points >= 2, got"):
            Burgers(reference_points=bad)
    for bad in (-1.0, 0.0, math.nan, math.inf, None):
        with pytest.raises(ValueError, match=r"expected a finite reference_dt > 0 \(the"):
            Burgers(reference_dt=bad)
    from sciml.pinn.reference import burgers_cole_hopf_sine

    prob = Burgers(viscosity=0.1, reference_points=np.int64(256), reference_dt=1e-3)
    x, t = periodic_grid(64), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    ref = burgers_cole_hopf_sine(x, t, nu=0.1)
    torch.testing.assert_close(prob.reference(x, t), ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "cls,field",
    [
        (Convection, "beta"),
        (ConvectionDiffusion, "viscosity"),
        (Burgers, "length"),
        (Convection, "t_final"),
    ],
)
def test_problems_name_a_field_that_is_not_a_real_number(cls, field):
    """A string field failed in a comparison with Python's "'<' not supported between ...",
    beta=True ran as speed 1, and u0=0.5 failed with "'float' object is not callable", naming
    no field. Each is a TypeError naming the class and the field; NumPy numbers are taken
    (Convection with beta np.float64(2) has the exact solution sin(x - 2 t))."""
    import numpy as np

    for bad in ("1", True, None):
        with pytest.raises(
            TypeError, match=rf"^{cls.__name__} expected a real number {field}, got"
        ):
            cls(**{field: bad})
    with pytest.raises(TypeError, match=rf"^{cls.__name__} expected u0 as a function of x"):
        cls(u0=0.5)
    x, t = periodic_grid(16), torch.tensor([0.0, 0.3], dtype=torch.float64)
    prob = Convection(beta=np.float64(2.0), t_final=np.float32(1.0))
    want = torch.sin(x[None, :] - 2.0 * t[:, None])
    torch.testing.assert_close(prob.reference(x, t), want, rtol=0, atol=1e-12)


def test_reference_solvers_refuse_a_nan_speed_or_viscosity_and_a_period_that_is_not_positive():
    """convection_exact, convection_diffusion_fourier, burgers_spectral and
    burgers_cole_hopf_sine gave nan solutions for a nan beta or nu (the 'nu < 0' / 'nu <= 0'
    checks let nan through) or a period of 0, and wrapped into (L, 0] for a negative period,
    silently. Each names the setting now; valid settings: convection_exact(sin, 2) is
    sin(x - 2 t) and the Fourier solution of beta = 2, nu = 0.1 is e^{-0.1 t} sin(x - 2 t)."""
    from sciml.pinn.reference import burgers_cole_hopf_sine, convection_exact

    x, t = periodic_grid(16), torch.tensor([0.0, 0.5], dtype=torch.float64)
    u0 = torch.sin(x)
    calls = {
        "convection_exact": lambda L, b, nu: convection_exact(torch.sin, b, x, t, L),
        "convection_diffusion_fourier": lambda L, b, nu: convection_diffusion_fourier(
            u0, t, beta=b, nu=nu, length=L
        ),
        "burgers_spectral": lambda L, b, nu: burgers_spectral(u0, t, nu=nu, length=L, beta=b),
        "burgers_cole_hopf_sine": lambda L, b, nu: burgers_cole_hopf_sine(x, t, nu=nu),
    }
    for name, call in calls.items():
        if name != "burgers_cole_hopf_sine":
            for bad in (0.0, -TWO_PI, math.inf, math.nan):
                with pytest.raises(ValueError, match=rf"^{name} expected a finite period length"):
                    call(bad, 1.0, 0.1)
            with pytest.raises(ValueError, match=rf"^{name} expected a finite real number beta"):
                call(TWO_PI, math.nan, 0.1)
        if name != "convection_exact":
            for bad in (math.nan, math.inf):
                with pytest.raises(ValueError, match=rf"^{name} expected a finite real number nu"):
                    call(TWO_PI, 1.0, bad)
    want = torch.sin(x[None, :] - 2.0 * t[:, None])
    torch.testing.assert_close(calls["convection_exact"](TWO_PI, 2.0, 0.0), want)
    got = calls["convection_diffusion_fourier"](TWO_PI, 2.0, 0.1)
    torch.testing.assert_close(got, torch.exp(-0.1 * t)[:, None] * want, rtol=0, atol=1e-13)
