"""sciml.symbolic.fit: constants of a symbolic ODE system fitted to an observed trajectory."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from sciml.data.generators.prose_ode import SYSTEMS, integrate
from sciml.symbolic import estimate_noise, fit_system, free_constants, state_symbols

pytest.importorskip("scipy.optimize")


def _noisy_lorenz(seed: int, noise: float):
    rng = np.random.default_rng(seed)
    spec = SYSTEMS["lorenz"]
    truth = spec.equations(spec.sample_params(rng))  # within 10% of nominal
    t = np.linspace(0.0, 6.0, 192)
    u = integrate(truth, rng.uniform(-2, 2, 3), t, rtol=1e-10, atol=1e-10)
    eps = rng.standard_normal(u.shape)
    return truth, t, u, u + noise * np.linalg.norm(u) / np.linalg.norm(eps) * eps


def test_free_constants_gives_each_occurrence_its_own_symbol_and_keeps_integers():
    u0, u1, u2 = state_symbols(3)
    exprs = [sp.Float(2.5) * u0 - sp.Float(2.5) * u1, -u0 * u2 + sp.Float(28.0) * u0 - u1**2]
    rewritten, symbols, values = free_constants(exprs)
    assert len(symbols) == 3 and sorted(values.tolist()) == [-2.5, 2.5, 28.0]
    back = [e.xreplace(dict(zip(symbols, map(sp.Float, values)))) for e in rewritten]
    assert all(sp.simplify(a - b) == 0 for a, b in zip(back, exprs))
    assert rewritten[1].has(u1**2) and not rewritten[1].has(sp.Float)  # exponent 2 stays fixed


def test_fit_recovers_lorenz_constants_from_nominal_start_and_forecasts_the_chaotic_window():
    truth, t, u, noisy = _noisy_lorenz(seed=0, noise=0.02)
    nominal = SYSTEMS["lorenz"].equations(SYSTEMS["lorenz"].nominal)
    _, _, c_true = free_constants(truth)
    _, _, c_nominal = free_constants(nominal)
    assert np.max(np.abs(c_nominal / c_true - 1)) > 0.03  # the start is really off
    fit = fit_system(nominal, t[:64], noisy[:64])  # the input window [0, 2) only
    assert fit.ok
    assert np.max(np.abs(fit.constants / c_true - 1)) < 0.02
    forecast = fit.system.solve(fit.constants, fit.u0, t)
    window = np.linalg.norm(forecast[64:] - u[64:]) / np.linalg.norm(u[64:])
    start = fit.system.solve(c_nominal, noisy[0], t)  # the unfitted nominal system
    unfitted = np.linalg.norm(start[64:] - u[64:]) / np.linalg.norm(u[64:])
    assert window < 0.05 and unfitted > 4 * window  # over [2, 6]


def test_fit_of_the_initial_state_only_keeps_the_constants():
    truth, t, u, noisy = _noisy_lorenz(seed=1, noise=0.02)
    fit = fit_system(truth, t[:64], noisy[:64], fit_constants=False)
    np.testing.assert_array_equal(fit.constants, free_constants(truth)[2])
    assert np.linalg.norm(fit.u0 - u[0]) < np.linalg.norm(noisy[0] - u[0])  # denoised u(0)
    assert fit.rms < 0.03 * np.sqrt(np.mean(u[:64] ** 2))  # about the noise level


def test_a_system_that_blows_up_is_a_failed_fit_not_an_exception():
    (x,) = state_symbols(1)
    t = np.linspace(0.0, 2.0, 20)
    fit = fit_system([sp.Float(1.0) * x**2], t, np.full((20, 1), 5.0))  # blows up at t = 0.2
    assert not fit.ok and fit.rms == float("inf")
    with pytest.raises(ValueError, match=r"observed of shape \(len\(t\), dim\)"):
        fit_system([x], t, np.zeros(20))
    with pytest.raises(ValueError, match="stages >= 1"):
        fit_system([x], t, np.zeros((20, 1)), stages=0)


def test_estimate_noise_recovers_the_noise_level_of_a_chaotic_trajectory():
    from sciml.symbolic import estimate_noise

    ratios, clean = [], []
    for seed in range(10):
        _, _, u, noisy = _noisy_lorenz(seed=seed, noise=0.02)
        true = np.sqrt(np.mean((noisy[:64] - u[:64]) ** 2))
        ratios.append(estimate_noise(noisy[:64]) / true)
        clean.append(estimate_noise(u[:64]) / true)
    # a median of 174 correlated differences: measured 0.86-1.29 over these seeds, median 0.99
    assert np.median(ratios) == pytest.approx(1.0, abs=0.1)
    assert min(ratios) > 0.75 and max(ratios) < 1.4
    assert max(clean) < 0.01  # the chaotic signal itself hardly counts at dt = 6 / 191
    with pytest.raises(ValueError, match=r"T >= 8"):
        estimate_noise(np.zeros((5, 2)))


def test_prior_gives_the_map_split_of_a_constant_the_data_cannot_split():
    # du/dt = -(a + b) u: the data fix s = a + b only; with independent Gaussian priors of
    # standard deviation p |a0|, p |b0| the MAP moves a by (s - a0 - b0) a0^2 / (a0^2 + b0^2)
    (x,) = state_symbols(1)
    a0, b0, s_true = 0.3, 0.9, 1.5
    t = np.linspace(0.0, 2.0, 40)
    observed = (2.0 * np.exp(-s_true * t))[:, None]
    terms = [sp.Mul(sp.Float(-c), x, evaluate=False) for c in (a0, b0)]
    exprs = [sp.Add(*terms, evaluate=False)]  # kept apart: two constants, one identifiable sum
    fit = fit_system(exprs, t, observed, prior=0.1, noise=1e-4)
    a, b = -fit.constants
    shift = s_true - a0 - b0
    assert a + b == pytest.approx(s_true, rel=1e-6)
    assert a - a0 == pytest.approx(shift * a0**2 / (a0**2 + b0**2), rel=1e-3)
    assert b - b0 == pytest.approx(shift * b0**2 / (a0**2 + b0**2), rel=1e-3)
    plain = fit_system(exprs, t, observed, noise=1e-6)  # without the prior: some split of s
    assert -plain.constants.sum() == pytest.approx(s_true, rel=1e-6)
    with pytest.raises(ValueError, match="prior > 0"):
        fit_system(exprs, t, observed, prior=0.0)
    # five points: too few to estimate the noise; a plain fit still works, a prior needs noise=
    short = fit_system(exprs, t[:5], observed[:5])
    assert -short.constants.sum() == pytest.approx(s_true, rel=1e-5) and np.isnan(short.misfit)
    with pytest.raises(ValueError, match="pass noise="):
        fit_system(exprs, t[:5], observed[:5], prior=0.1)


def test_misfit_is_near_one_for_the_true_equations_and_large_for_wrong_ones():
    truth, t, u, noisy = _noisy_lorenz(seed=2, noise=0.02)
    fit = fit_system(truth, t[:64], noisy[:64], prior=0.1)
    assert fit.ok and 0.7 < fit.misfit < 1.4
    u0, u1, u2 = state_symbols(3)
    wrong = [truth[0], truth[1] + u0 * u2, truth[2]]  # drops the -u0 u2 term of du1/dt
    bad = fit_system(wrong, t[:64], noisy[:64], prior=0.1)
    assert bad.misfit > 5


def test_ok_covers_the_observed_window_only_a_forecast_past_it_can_be_none():
    """``docs/prose.md`` indexed ``fit.system.solve(...)[n_in:]`` after checking ``fit.ok``: a
    system that fits the window but fails past it raised ``TypeError: 'NoneType' object is not
    subscriptable`` there. ``u' = c u^2`` with ``u(0) = 1`` is ``1 / (1 - c t)``, finite on the
    observed ``[0, 0.5]`` and blowing up at ``t = 1``."""
    (u,) = state_symbols(1)
    t_obs = np.linspace(0.0, 0.5, 16)
    fit = fit_system([sp.Float(0.8) * u**2], t_obs, (1 / (1 - t_obs))[:, None], noise=1e-6)
    assert fit.ok and fit.misfit < 1
    assert fit.constants == pytest.approx([1.0], rel=1e-5) and fit.u0 == pytest.approx([1.0])
    on_window = fit.system.solve(fit.constants, fit.u0, t_obs)
    np.testing.assert_allclose(on_window[:, 0], 1 / (1 - t_obs), rtol=1e-6)
    assert fit.system.solve(fit.constants, fit.u0, np.linspace(0.0, 2.0, 64)) is None


def test_fit_refuses_non_finite_unsorted_or_mis_shaped_input_by_name():
    # a NaN observation reached scipy's "Residuals are not finite in the initial point"; unsorted
    # times or a u0 of the wrong size failed every solve and came back as ok=False at the start
    (x,) = state_symbols(1)
    f = [sp.Float(-1.2) * x]
    t = np.linspace(0.0, 1.0, 20)
    obs = np.exp(-t)[:, None]
    nan_obs = obs.copy()
    nan_obs[3] = np.nan
    bad = {
        "expected finite observed, got 1 NaN/inf": dict(observed=nan_obs),
        "expected finite t, got 1 NaN/inf": dict(t=np.r_[t[:-1], np.inf]),
        r"strictly increasing \(or decreasing\) times t": dict(t=np.r_[t[:10], t[9:19]]),
        r"finite u0 of shape \(1,\) \(one value per state variable\), got \[1.0, 1.0\]": dict(
            u0=np.ones(2)
        ),
        "expected stages >= 1 \\(an int\\), got 1.5": dict(stages=1.5),
        "expected max_evals >= 1 \\(an int\\), got True": dict(max_evals=True),
        r"expected prior > 0 \(a relative standard deviation, finite\) or None, got True": dict(
            prior=True
        ),
        r"expected noise > 0 \(finite\) or None, got inf": dict(noise=float("inf")),
        r"expected t of shape \(T,\), got \(20, 1\)": dict(t=t[:, None]),
    }
    for message, change in bad.items():
        args = {"t": t, "observed": obs, **change}
        with pytest.raises(ValueError, match=message):
            fit_system(f, args.pop("t"), args.pop("observed"), **args)
    # exact data of du/dt = -u: the fit finds c = -1 and u(0) = 1, from either end of the window
    for order in (slice(None), slice(None, None, -1)):
        fit = fit_system(f, t[order], obs[order], u0=obs[order][0])
        assert fit.ok
        np.testing.assert_allclose(fit.constants, [-1.0], rtol=1e-5)
        np.testing.assert_allclose(fit.u0, obs[order][0], rtol=1e-5)


def test_a_floating_point_exponent_is_fitted_like_any_constant_an_integer_one_is_kept():
    # docs/prose.md said fit_system keeps exponents: it keeps integer ones (u^2) only; a float
    # exponent, a <C> of the skeleton ('pow u_0 + N130 E-2'), is a free constant
    (x,) = state_symbols(1)
    t = np.linspace(0.0, 2.0, 30)
    u = 4.0 / (t + 2.0) ** 2  # du/dt = -u^1.5 from u(0) = 1
    fit = fit_system([-sp.Float(1.0) * x ** sp.Float(1.3)], t, u[:, None])
    assert fit.ok and sorted(free_constants([-sp.Float(1.0) * x ** sp.Float(1.3)])[2]) == [-1, 1.3]
    np.testing.assert_allclose(sorted(fit.constants), [-1.0, 1.5], atol=1e-4)
    kept = fit_system([sp.Float(-0.8) * x**2], t, (1 / (1 + t))[:, None])  # du/dt = -u^2
    assert kept.expressions[0].has(x**2)
    np.testing.assert_allclose(kept.constants, [-1.0], atol=1e-4)


def test_estimate_noise_refuses_an_order_that_is_not_an_int_of_at_least_one():
    # order 0 returned 1.4826 median |u| (the signal, not its noise), order=True ran as 1
    u = np.cos(np.linspace(0.0, 1.0, 50))[:, None]
    for order in (0, True, 2.5, -1):
        with pytest.raises(ValueError, match=f"expected order to be an int >= 1, got {order!r}"):
            estimate_noise(u, order=order)
    # first differences of u = t (step h, no noise): |diff| / sqrt(C(2, 1)) = h / sqrt(2)
    h = 0.1
    got = estimate_noise(np.arange(20.0)[:, None] * h, order=1)
    assert got == pytest.approx(1.4826 * h / np.sqrt(2), rel=1e-12)


def test_the_exponent_of_a_decoded_abs_stays_fixed_and_the_fit_recovers_a_drag():
    # decode writes |u| ('pow pow2 u 0.5') as Abs(u)**1.0: its 1.0 was fitted as a constant
    from scipy.integrate import solve_ivp

    from sciml.symbolic import decode, encode

    u0, u1 = state_symbols(2)
    rewritten, symbols, values = free_constants([sp.Abs(u0) ** sp.Float(1.0)])
    assert rewritten == [sp.Abs(u0) ** sp.Float(1.0)] and symbols == [] and values.size == 0
    # u'' = -2 u - 0.5 u' |u'| (quadratic drag), from the decoded start -1.8, -0.6
    start = decode(encode([u1, sp.Float(-1.8) * u0 + sp.Float(-0.6) * u1 * sp.Abs(u1)]))
    assert start.valid and start.expressions[1].has(sp.Abs(u1) ** sp.Float(1.0))
    t = np.linspace(0.0, 5.0, 41)
    truth = solve_ivp(lambda _t, y: [y[1], -2.0 * y[0] - 0.5 * y[1] * abs(y[1])], (0.0, 5.0),
                      [1.0, 0.5], t_eval=t, rtol=1e-11, atol=1e-12).y.T  # fmt: skip
    fit = fit_system(list(start.expressions), t, truth)
    assert fit.ok and fit.expressions[1].has(sp.Abs(u1) ** sp.Float(1.0))
    np.testing.assert_allclose(fit.constants, [-2.0, -0.5], atol=1e-6)
    np.testing.assert_allclose(fit.u0, [1.0, 0.5], atol=1e-6)


def test_a_symbol_that_is_neither_a_state_nor_a_constant_is_refused_by_name():
    # lambdify left u_3 of a 2-d system (or a decoded skeleton's C_0) as a free name: every
    # solve raised NameError, which came out of fit_system
    from sciml.symbolic import ParametricSystem, decode, encode, skeleton

    u0, u1 = state_symbols(2)
    t = np.linspace(0.0, 1.0, 12)
    obs = np.stack([np.exp(-t), np.exp(-2 * t)], 1)
    c0 = decode(skeleton(encode([-1.5 * u0])), allow_placeholders=True).expressions[0]
    for f, names in ((sp.Symbol("u_3", real=True) * u1, "['u_3']"), (c0, "['C_0']"),
                     (sp.Symbol("x") * sp.Symbol("a") * u1, "['a', 'x']")):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(f"got symbols {names} in")):
            fit_system([-1.0 * u0, f], t, obs)
        with pytest.raises(ValueError, match="expected right-hand sides in u_0 ... u_1"):
            ParametricSystem([-1.0 * u0, f], [], 2)
    # the same system with u_1 fits: constants -1 and -2, u(0) = (1, 1)
    fit = fit_system([-1.1 * u0, -1.9 * u1], t, obs)
    np.testing.assert_allclose(fit.constants, [-1.0, -2.0], rtol=1e-5)
    np.testing.assert_allclose(fit.u0, [1.0, 1.0], rtol=1e-5)


def test_fit_system_takes_a_decoded_system_and_refuses_an_invalid_one_by_its_error():
    # fit_system(decode(tokens), ...) raised "TypeError: 'Decoded' object is not iterable"; it
    # needed list(d.expressions)
    from sciml.symbolic import decode, encode

    u0, u1 = state_symbols(2)
    t = np.linspace(0.0, 1.0, 12)
    obs = np.stack([np.exp(-t), np.exp(-2 * t)], 1)
    d = decode(encode([sp.Float(-1.1) * u0, sp.Float(-1.9) * u1]))
    fit = fit_system(d, t, obs)
    assert fit.ok and fit.expressions == fit_system(list(d.expressions), t, obs).expressions
    np.testing.assert_allclose(fit.constants, [-1.0, -2.0], rtol=1e-5)
    np.testing.assert_allclose(fit.u0, [1.0, 1.0], rtol=1e-5)
    with pytest.raises(
        ValueError, match=r"^cannot fit an invalid system: expected 2 equations, got 1$"
    ):
        fit_system(decode(["u_0"], dim=2), t, obs)
