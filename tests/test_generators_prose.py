"""prose-ode generator: the faster right-hand side keeps every number of the data it writes."""

import numpy as np
import pytest
import sympy as sp

from sciml.data.generators import prose_ode
from sciml.symbolic import state_symbols


def _old_numpy_rhs(system, dim):
    """The right-hand side as the generator built it before the speed-up (the shipped data
    sets were made with it): lambdify with its docstring, then a broadcast against ones."""
    fn = sp.lambdify([state_symbols(dim)], list(system), modules="numpy")
    return lambda t, y: np.array(fn(y), dtype=np.float64) * np.ones(dim)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_prose_ode_samples_are_bit_identical_to_the_old_right_hand_side(seed, monkeypatch):
    """One sample of each of the 15 systems (redraws included: the same rng stream), written
    with the current right-hand side and with the old one: every field, parameter and token
    string is the same, bit for bit."""
    new = prose_ode.generate_prose_ode(15, 48, seed=seed, n_input=16)
    monkeypatch.setattr(prose_ode, "_numpy_rhs", _old_numpy_rhs)
    old = prose_ode.generate_prose_ode(15, 48, seed=seed, n_input=16)
    for group in ("fields", "params"):
        assert new[group].keys() == old[group].keys()
        for key in new[group]:
            assert new[group][key].tobytes() == old[group][key].tobytes(), (group, key)
    assert new["attrs"]["equations"] == old["attrs"]["equations"]
    assert new["attrs"]["input_skeletons"] == old["attrs"]["input_skeletons"]
    # the samples are real trajectories, not zeros that would compare equal anyway
    assert np.abs(new["fields"]["u_0"]).max() > 0.1


def test_numpy_rhs_values_and_constant_equations():
    """Values against a hand computation: Lorenz at (1, 2, 3) with sigma 10, rho 28, beta 8/3
    (rounded 2.67) is (10, 23, -6.01); Duffing's constant first equation stays 1.0; a single
    constant for a 2-dimensional state is still spread over both components, as before."""
    lorenz = prose_ode.SYSTEMS["lorenz"]
    rhs = prose_ode._numpy_rhs(lorenz.equations(lorenz.nominal), 3)
    got = rhs(0.0, np.array([1.0, 2.0, 3.0]))
    assert got.dtype == np.float64 and got.shape == (3,)
    np.testing.assert_allclose(got, [10.0, 23.0, 2.0 - 2.67 * 3.0], rtol=1e-15)
    duffing = prose_ode.SYSTEMS["duffing"]
    rhs = prose_ode._numpy_rhs(duffing.equations(duffing.nominal), 3)
    assert rhs(0.0, np.array([0.0, 1.0, 0.5]))[0] == 1.0
    np.testing.assert_array_equal(prose_ode._numpy_rhs([sp.Integer(1)], 2)(0.0, np.zeros(2)), 1.0)
    np.testing.assert_array_equal(
        prose_ode._numpy_rhs([sp.Integer(1)], 2)(0.0, np.zeros(2)),
        _old_numpy_rhs([sp.Integer(1)], 2)(0.0, np.zeros(2)),
    )


def test_prose_ode_refuses_a_non_positive_t_final_or_a_negative_noise():
    # t_final = 0 was "'list' object has no attribute 'shape'"; -1 integrated backward, where
    # the chaotic systems blow up, and redrew each sample 100 times (minutes) before failing
    for t_final in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=rf"^expected a finite t_final > 0, got {t_final}$"):
            prose_ode.generate_prose_ode(1, 20, systems="lorenz", n_input=5, t_final=t_final)
    with pytest.raises(ValueError, match=r"^expected a finite noise level >= 0, got -0.5$"):
        prose_ode.generate_prose_ode(1, 20, systems="lorenz", n_input=5, noise=-0.5)
    # noise = 0: the noisy fields are the clean ones; the trajectory solves Lorenz from u(0)
    d = prose_ode.generate_prose_ode(1, 20, systems="lorenz", n_input=5, noise=0.0, t_final=0.5)
    f = d["fields"]
    for k in range(3):
        np.testing.assert_array_equal(f[f"noisy_u_{k}"], f[f"u_{k}"])
    np.testing.assert_allclose(d["time"], np.linspace(0.0, 0.5, 20))
    np.testing.assert_allclose(
        [f[f"u_{k}"][0, 0] for k in range(3)], d["params"]["initial_state"][0, :3], rtol=1e-6
    )


def test_prose_ode_refuses_no_samples_and_integrates_one():
    # n = 0 returned a data set of no samples; resolution 1 was named only through n_input
    for n, r in ((0, 20), (True, 20), (1, 1)):
        with pytest.raises(
            ValueError,
            match=rf"^expected integers n >= 1 and resolution >= 2, got n={n}, resolution={r}$",
        ):
            prose_ode.generate_prose_ode(n, r, systems="lorenz", n_input=5)
    # accepted n = 1: the stored Lorenz trajectory solves its own stored equation (decoded from
    # the tokens) from the stored u(0), against SciPy's DOP853 at rtol 1e-11
    from scipy.integrate import solve_ivp

    from sciml.symbolic import decode

    d = prose_ode.generate_prose_ode(1, 20, systems="lorenz", n_input=5, t_final=0.5, seed=3)
    system = decode(d["attrs"]["equations"][0].split(" "), dim=3)
    assert system.valid
    rhs = sp.lambdify([state_symbols(3)], list(system.expressions), modules="numpy")
    u0 = d["params"]["initial_state"][0, :3]
    ref = solve_ivp(lambda t, y: np.array(rhs(y), dtype=float), (0, 0.5), u0, method="DOP853",
                    t_eval=d["time"], rtol=1e-11, atol=1e-11).y  # fmt: skip
    got = np.stack([d["fields"][f"u_{k}"][0] for k in range(3)])
    assert np.abs(ref).max() > 1.0
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_prose_ode_refuses_a_fractional_n_input_and_nan_probabilities():
    # n_input = 5.5 was stored as 5.5 and read back as 5; a NaN probability reached numpy's
    # bare 'Probabilities contain NaN'
    with pytest.raises(
        ValueError,
        match=r"^expected an integer 0 < n_input < resolution, got n_input=5.5, resolution=20$",
    ):
        prose_ode.generate_prose_ode(1, 20, systems="lorenz", n_input=5.5)
    for kw in ({"add_prob": float("nan")}, {"delete_prob": float("nan")}):
        with pytest.raises(ValueError, match=r"^expected probabilities with sum <= 1, got "):
            prose_ode.generate_prose_ode(1, 20, systems="lorenz", n_input=5, **kw)
    # accepted: add_prob = 1 adds a term to every sample's input skeleton (perturbation +1) and
    # delete_prob = 1 deletes one (-1); the stored equations are the same systems either way
    added = prose_ode.generate_prose_ode(3, 20, systems="lorenz", n_input=5, add_prob=1.0,
                                         delete_prob=0.0)  # fmt: skip
    deleted = prose_ode.generate_prose_ode(3, 20, systems="lorenz", n_input=5, add_prob=0.0,
                                           delete_prob=1.0)  # fmt: skip
    np.testing.assert_array_equal(added["params"]["perturbation"], 1.0)
    np.testing.assert_array_equal(deleted["params"]["perturbation"], -1.0)
    for d, more in ((added, True), (deleted, False)):
        for eq, sk in zip(d["attrs"]["equations"], d["attrs"]["input_skeletons"]):
            n_eq, n_sk = eq.count("add") + eq.count("sub"), sk.count("add") + sk.count("sub")
            assert (n_sk > n_eq) if more else (n_sk < n_eq), (eq, sk)
