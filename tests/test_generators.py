"""Classical PDE data generators against analytical solutions, invariants and their own files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from sciml.data.generators import (
    GENERATORS,
    generate,
    generate_from_recipe,
    generator_options,
    grf_spectrum,
    grf_variance,
    load_recipe,
    sample_darcy_coefficient,
    sample_grf,
    solve_burgers,
    solve_darcy,
    solve_navier_stokes,
)
from sciml.data.generators.navier_stokes import fno_forcing


def _order(hs, errors) -> float:
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


# --- Gaussian random fields ------------------------------------------------------------------


def test_grf_1d_spectrum_and_variance_match_covariance():
    n, N = 4000, 64
    kw = dict(alpha=2.0, tau=5.0, sigma=25.0)
    u = sample_grf(n, N, seed=1, **kw)
    power = (np.abs(np.fft.rfft(u, axis=-1)) ** 2).mean(0) / N**2  # E|u_k|^2
    lam = grf_spectrum(N, **kw)
    rel = np.abs(power[1:] / lam[1:] - 1.0)
    # |xi_k|^2 ~ Exp(1) (chi^2_1 at Nyquist): relative sampling std 1/sqrt(n) = 1.6% (2.2%)
    assert rel.max() < 0.08, rel.max()
    assert np.abs(u.mean(-1)).max() < 1e-12  # zero constant mode
    var = u.var(axis=0).mean()
    assert abs(var / grf_variance(N, **kw) - 1.0) < 0.05
    # sigma^2 (4 pi^2 k^2 + tau^2)^-alpha by hand at k = 3
    assert lam[3] == pytest.approx(625.0 * (4 * math.pi**2 * 9 + 25.0) ** -2, rel=1e-12)


def test_grf_2d_torch_backend_spectrum_and_seeding():
    n, N = 800, 32
    kw = dict(dim=2, alpha=2.5, tau=7.0, sigma=7.0**1.5)
    u = sample_grf(n, N, backend="torch", dtype=torch.float64, seed=3, **kw)
    assert isinstance(u, torch.Tensor) and u.shape == (n, N, N)
    power = (torch.fft.rfft2(u).abs() ** 2).mean(0).numpy() / N**4
    lam = grf_spectrum(N, **kw)
    for kx, ky in [(1, 0), (0, 1), (1, 1), (-1, 2), (2, 2)]:
        # each mode has relative sampling std 1/sqrt(n) = 3.5%
        assert abs(power[kx, ky] / lam[kx, ky] - 1.0) < 0.15, (kx, ky)
    assert abs(u.var(0).mean().item() / grf_variance(N, **kw) - 1.0) < 0.08
    again = sample_grf(n, N, backend="torch", dtype=torch.float64, seed=3, **kw)
    other = sample_grf(n, N, backend="torch", dtype=torch.float64, seed=4, **kw)
    assert torch.equal(u, again) and not torch.allclose(u, other)


# --- Darcy ----------------------------------------------------------------------------------


def _darcy_manufactured(R: int):
    x = np.linspace(0.0, 1.0, R)
    X, Y = np.meshgrid(x, x, indexing="ij")
    p = math.pi
    a = 1.0 + 0.5 * np.sin(2 * p * X) * np.cos(3 * p * Y) + X * Y
    a_x = p * np.cos(2 * p * X) * np.cos(3 * p * Y) + Y
    a_y = -1.5 * p * np.sin(2 * p * X) * np.sin(3 * p * Y) + X
    u = np.sin(p * X) * np.sin(2 * p * Y) * np.exp(X)
    u_x = (p * np.cos(p * X) + np.sin(p * X)) * np.sin(2 * p * Y) * np.exp(X)
    u_y = 2 * p * np.sin(p * X) * np.cos(2 * p * Y) * np.exp(X)
    u_xx = (2 * p * np.cos(p * X) + (1 - p**2) * np.sin(p * X)) * np.sin(2 * p * Y) * np.exp(X)
    u_yy = -4 * p**2 * u
    f = -(a_x * u_x + a * u_xx + a_y * u_y + a * u_yy)
    return a, f, u


@pytest.mark.parametrize("face_average", ["harmonic", "arithmetic"])
def test_darcy_manufactured_solution_converges_second_order(face_average):
    sizes = (17, 33, 65)
    errors = []
    for R in sizes:
        a, f, u = _darcy_manufactured(R)
        errors.append(np.abs(solve_darcy(a, f, face_average=face_average) - u).max())
    order = _order([1 / (R - 1) for R in sizes], errors)
    assert 1.9 < order < 2.1, (order, errors)
    assert errors[-1] < 2e-3


def test_darcy_piecewise_constant_coefficients_and_maximum_principle():
    a = sample_darcy_coefficient(3, 33, seed=0)
    assert set(np.unique(a)) == {3.0, 12.0}
    assert 0.2 < (a == 12.0).mean() < 0.8  # the GRF is centred: both phases present
    u = solve_darcy(a)
    assert u.shape == (3, 33, 33)
    assert np.all(u[:, 0, :] == 0) and np.all(u[:, :, -1] == 0)
    assert u[:, 1:-1, 1:-1].min() > 0  # f = 1 > 0 and zero boundary values
    # constant a = c scales the solution by 1 / c
    u3, u12 = solve_darcy(np.full((33, 33), 3.0)), solve_darcy(np.full((33, 33), 12.0))
    np.testing.assert_allclose(u3, 4.0 * u12, rtol=1e-12, atol=1e-15)


def test_darcy_without_scipy_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(ImportError, match=r"pip install sciml\[interop\]"):
        solve_darcy(np.ones((5, 5)))


# --- Burgers --------------------------------------------------------------------------------

NU_CH = 0.02


def _cole_hopf(N: int, t: float) -> np.ndarray:
    """u = -2 nu phi_x / phi with phi solving the heat equation phi_t = nu phi_xx (exactly)."""
    x = np.arange(N) / N
    p = math.pi
    e1, e3 = np.exp(-4 * p**2 * NU_CH * t), np.exp(-36 * p**2 * NU_CH * t)
    phi = 1.5 + e1 * np.cos(2 * p * x) + 0.3 * e3 * np.sin(6 * p * x)
    phi_x = -2 * p * e1 * np.sin(2 * p * x) + 1.8 * p * e3 * np.cos(6 * p * x)
    return -2 * NU_CH * phi_x / phi


def test_burgers_matches_cole_hopf_to_spectral_accuracy():
    u = solve_burgers(_cole_hopf(128, 0.0), NU_CH, 0.5, 5, dt=1e-3)
    assert u.shape == (6, 128)
    for m, t in enumerate(np.linspace(0.0, 0.5, 6)):
        assert np.abs(u[m] - _cole_hopf(128, t)).max() < 1e-9


def test_burgers_etdrk4_is_fourth_order_in_time():
    dts = (0.04, 0.02, 0.01, 0.005)
    exact = _cole_hopf(256, 0.5)
    errors = [np.abs(solve_burgers(_cole_hopf(256, 0.0), NU_CH, 0.5, 1, dt=dt)[-1] - exact).max()
              for dt in dts]  # fmt: skip
    order = _order(dts, errors)
    assert 3.5 < order < 4.5, (order, errors)


def test_burgers_conserves_mean_and_dissipates_energy_batched_torch():
    u0 = torch.as_tensor(sample_grf(4, 256, alpha=2.0, tau=5.0, sigma=25.0, seed=2)) + 0.3
    u = solve_burgers(u0, 0.01, 1.0, 10)  # automatic dt
    assert isinstance(u, torch.Tensor) and u.shape == (4, 11, 256)
    mean0 = u0.mean(-1, keepdim=True).expand(4, 11)
    torch.testing.assert_close(u.mean(-1), mean0, atol=1e-12, rtol=0)
    energy = (u**2).mean(-1)
    assert torch.all(energy[:, 1:] < energy[:, :-1])


# --- Navier-Stokes --------------------------------------------------------------------------


def _grid(N: int):
    x = torch.arange(N, dtype=torch.float64) / N
    return torch.meshgrid(x, x, indexing="ij")


def test_navier_stokes_taylor_green_decay_second_order():
    X, Y = _grid(32)
    w0 = torch.sin(2 * math.pi * X) * torch.sin(2 * math.pi * Y)
    nu = 0.01
    exact = w0 * math.exp(-8 * math.pi**2 * nu)  # u . grad w = 0 for a single |k| shell
    dts = (0.1, 0.05, 0.025, 0.0125)
    errors = [(solve_navier_stokes(w0, 0.0, nu, 1.0, dt, 1)[-1] - exact).abs().max().item()
              for dt in dts]  # fmt: skip
    order = _order(dts, errors)
    assert 1.9 < order < 2.1, (order, errors)
    assert errors[-1] < 5e-6


def test_navier_stokes_forced_shell_solution():
    # w = c(t) f with f the FNO forcing (one |k|^2 = 2 shell): c' = 1 - 8 pi^2 nu c, c(0) = 0
    N, nu = 32, 0.01
    f = torch.as_tensor(fno_forcing(N))
    w = solve_navier_stokes(torch.zeros(2, N, N, dtype=torch.float64), f, nu, 1.0, 1e-2, 4)
    lam = 8 * math.pi**2 * nu
    for m, t in enumerate(np.linspace(0.0, 1.0, 5)):
        c = (1 - math.exp(-lam * t)) / lam
        assert (w[:, m] - c * f).abs().max().item() < 2e-4 * max(c, 1e-3)


def test_navier_stokes_advection_sign_and_velocity_convention():
    # w = sin(2 pi x) + cos(4 pi y): psi_y = u = -sin(4 pi y)/(4 pi), v = -psi_x =
    # -cos(2 pi x)/(2 pi), so u . grad w = 1.5 cos(2 pi x) sin(4 pi y) and w_t = -that.
    X, Y = _grid(32)
    w0 = torch.sin(2 * math.pi * X) + torch.cos(4 * math.pi * Y)
    h = 1e-5
    w = solve_navier_stokes(w0, 0.0, 1e-12, h, h, 1)
    rate = (w[1] - w[0]) / h
    expected = -1.5 * torch.cos(2 * math.pi * X) * torch.sin(4 * math.pi * Y)
    assert (rate - expected).abs().max().item() < 1e-3


def test_navier_stokes_conserves_mean_vorticity_float32_close_to_float64():
    N = 32
    w0 = torch.as_tensor(sample_grf(3, N, dim=2, alpha=2.5, tau=7.0, seed=5)) * 30 + 0.7
    f = fno_forcing(N)
    w = solve_navier_stokes(w0, f, 1e-3, 1.0, 1e-3, 4)
    assert w.shape == (3, 5, N, N)
    mean = w.mean((-1, -2))
    assert (mean - 0.7).abs().max().item() < 1e-12
    assert w[:, -1].std().item() > 0.1  # the flow did not die out
    w32 = solve_navier_stokes(w0.float(), torch.as_tensor(f).float(), 1e-3, 1.0, 1e-3, 4)
    assert w32.dtype == torch.float32
    assert (w32.double() - w).abs().max().item() < 1e-3 * w.abs().max().item()


# --- generate() and files -------------------------------------------------------------------


def _settings(f: h5py.File) -> dict:
    return json.loads(f.attrs["generator_settings"])


def test_generate_burgers_file_matches_solver(tmp_path):
    path = generate("burgers", n=3, resolution=128, out=tmp_path / "b.h5", seed=7, nu=0.05,
                    n_steps=4, subsample=2)  # fmt: skip
    u0 = sample_grf(3, 128, alpha=2.0, tau=5.0, sigma=25.0, seed=7)
    ref = solve_burgers(u0, 0.05, 1.0, 4)[..., ::2]
    with h5py.File(path, "r") as f:
        np.testing.assert_allclose(f["fields/u"][...], ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(f["time"][...], np.linspace(0, 1, 5))
        np.testing.assert_allclose(f["coords/x"][...], np.arange(0, 128, 2) / 128)
        np.testing.assert_array_equal(f["params/nu"][...], [0.05] * 3)
        assert f["boundary_conditions/x"].attrs["type"] == "periodic"
        assert f.attrs["pde"] == "burgers_1d_viscous"
        assert f.attrs["generator"] == "sciml.data.generators.burgers"
        assert f.attrs["sciml_version"]
        s = _settings(f)
    assert s["seed"] == 7 and s["nu"] == 0.05 and s["resolution"] == 128 and s["T"] == 1.0
    assert set(generator_options("burgers")) <= set(s)


def test_generate_navier_stokes_file_matches_solver(tmp_path):
    path = generate("navier_stokes", n=2, resolution=16, out=tmp_path / "ns.h5", seed=1,
                    T="1", dt="1e-2", nu="1e-3")  # strings as from a CLI / YAML  # fmt: skip
    w0 = torch.as_tensor(
        sample_grf(2, 16, dim=2, alpha=2.5, tau=7.0, sigma=math.sqrt(2) * 7**1.5, seed=1),
        dtype=torch.float32,
    )
    ref = solve_navier_stokes(w0, torch.as_tensor(fno_forcing(16), dtype=torch.float32),
                              1e-3, 1.0, 1e-2, 1).numpy()  # fmt: skip
    with h5py.File(path, "r") as f:
        np.testing.assert_allclose(f["fields/w"][...], ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(f["static_fields/f"][0], fno_forcing(16), atol=1e-7)
        assert f["fields/w"].shape == (2, 2, 16, 16)
        assert f.attrs["pde"] == "navier_stokes_2d_vorticity"
        s = _settings(f)
    assert s["dt"] == 0.01 and s["T"] == 1.0 and s["record_steps"] == 1 and s["seed"] == 1


def test_generate_darcy_and_grf_files_match_solvers(tmp_path):
    path = generate("darcy", n=2, resolution=17, out=tmp_path / "d.h5", seed=3,
                    coefficient="lognormal", subsample=2)  # fmt: skip
    a = sample_darcy_coefficient(2, 17, coefficient="lognormal", seed=3)
    with h5py.File(path, "r") as f:
        np.testing.assert_allclose(f["static_fields/a"][...], a[:, ::2, ::2], rtol=1e-6)
        np.testing.assert_allclose(f["static_fields/u"][...], solve_darcy(a)[:, ::2, ::2],
                                   rtol=1e-6, atol=1e-9)  # fmt: skip
        assert f["boundary_conditions/y"].attrs["type"] == "dirichlet"
        assert _settings(f)["coefficient"] == "lognormal"
    path = generate("grf", n=3, resolution=16, out=tmp_path / "g.h5", dim=1, tau=2)
    with h5py.File(path, "r") as f:
        ref = sample_grf(3, 16, dim=1, tau=2.0, seed=0)
        np.testing.assert_allclose(f["static_fields/u"][...], ref, rtol=1e-6, atol=1e-7)


def test_bad_names_and_options_raise_clear_errors(tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(ValueError, match=r"unknown option.*'nu'.*valid options.*face_average"):
        generate("darcy", n=1, resolution=9, out=out, nu=0.1)
    with pytest.raises(ValueError, match=r"unknown generator 'heat'.*navier_stokes"):
        generate("heat", n=1, resolution=9, out=out)
    with pytest.raises(ValueError, match="not a valid"):
        generate("burgers", n=1, resolution=16, out=out, nu="fast")
    with pytest.raises(ValueError, match="dt to divide"):
        generate("navier_stokes", n=1, resolution=16, out=out, T=1, dt=0.3)
    with pytest.raises(ValueError, match="face_average"):
        generate("darcy", n=1, resolution=9, out=out, face_average="geometric")
    with pytest.raises(TypeError):
        GENERATORS["mine"] = GENERATORS["grf"]  # type: ignore[index]
    assert not out.exists()
    generate("grf", n=1, resolution=8, out=out)
    with pytest.raises(FileExistsError):
        generate("grf", n=1, resolution=8, out=out)
    generate("grf", n=1, resolution=8, out=out, overwrite=True)


# --- recipes --------------------------------------------------------------------------------

RECIPES = sorted((Path(__file__).parents[1] / "datasets").glob("*.yaml"))


def test_recipes_cover_the_fno_data_sets_and_validate():
    names = {p.stem for p in RECIPES}
    assert {"burgers_nu1e-1", "darcy_pwc_r421", "navier_stokes_nu1e-3", "navier_stokes_nu1e-4",
            "navier_stokes_nu1e-5"} <= names  # fmt: skip
    for p in RECIPES:
        recipe = load_recipe(p)
        assert recipe["generator"] in GENERATORS
        if recipe["generator"] == "navier_stokes":
            o = recipe["options"]
            assert o["dt"] == 1e-4 and o["record_steps"] == o["T"]
            assert {1e-3: 50, 1e-4: 30, 1e-5: 20}[o["nu"]] == o["T"]


def test_recipe_runs_scaled_down(tmp_path):
    path = generate_from_recipe(
        Path(__file__).parents[1] / "datasets" / "navier_stokes_nu1e-3.yaml",
        out=tmp_path / "ns.h5", n=2, resolution=16, T=2, record_steps=2, dt=0.01, device="cpu",
    )  # fmt: skip
    with h5py.File(path, "r") as f:
        assert f["fields/w"].shape == (2, 3, 4, 4)
        s = _settings(f)
    assert s["nu"] == 1e-3 and s["subsample"] == 4 and s["n"] == 2
    with pytest.raises(ValueError, match="unknown option"):
        generate_from_recipe(RECIPES[0], out=tmp_path / "x.h5", viscosity=1.0)


def test_navier_stokes_nonlinear_flow_converges_second_order_in_time():
    # self-convergence against a 16x finer step, with the advection term active
    w0 = torch.as_tensor(sample_grf(2, 32, dim=2, alpha=2.5, tau=7.0, seed=8)) * 10
    f = fno_forcing(32)
    ref = solve_navier_stokes(w0, f, 1e-3, 0.5, 0.01 / 16, 1)[:, -1]
    dts = (0.01, 0.005, 0.0025)
    errors = [(solve_navier_stokes(w0, f, 1e-3, 0.5, dt, 1)[:, -1] - ref).abs().max().item()
              for dt in dts]  # fmt: skip
    order = _order(dts, errors)
    assert 1.8 < order < 2.3, (order, errors)
    assert w0.std() > 1.0 and errors[0] > 1e-6  # advection matters


def test_generate_reuse_keeps_a_file_made_with_the_same_settings_only(tmp_path):
    import sciml
    from sciml.data.generators import generate

    def a_field():
        return sciml.data.open(out).read_static(slice(None), ["a"])

    out = tmp_path / "d.h5"
    generate("darcy", n=3, resolution=9, out=out, seed=4)
    first, stamp = a_field(), out.stat().st_mtime_ns
    # the same settings (a default spelled out or not): the file is returned, not rewritten
    assert generate("darcy", n=3, resolution=9, out=out, seed=4, reuse=True) == out
    generate("darcy", n=3, resolution=9, out=out, seed=4, reuse=True, a_high=12.0)
    assert out.stat().st_mtime_ns == stamp and np.array_equal(a_field(), first)
    # other settings: refused without overwrite (naming them), replaced with it
    with pytest.raises(FileExistsError, match=r"other settings \(n: 3 -> 4\); pass overwrite=True"):
        generate("darcy", n=4, resolution=9, out=out, seed=4, reuse=True)
    with pytest.raises(FileExistsError, match=r"a_high: 12.0 -> 10.0"):
        generate("darcy", n=3, resolution=9, out=out, seed=4, reuse=True, a_high=10.0)
    generate("darcy", n=4, resolution=9, out=out, seed=4, reuse=True, overwrite=True)
    assert out.stat().st_mtime_ns != stamp and a_field().shape[0] == 4
    np.testing.assert_array_equal(a_field()[:3], first)  # seeded per sample: the same first 3


def test_generate_reuse_with_overwrite_replaces_a_damaged_file(tmp_path):
    """reuse=True, overwrite=True (what examples/demo.py passes) died on a truncated file (an
    interrupted copy) in its settings check, so it could never regenerate it; without overwrite
    the error says to pass it."""
    import sciml
    from sciml.data.generators import generate

    out = tmp_path / "d.h5"
    generate("darcy", n=3, resolution=9, out=out, seed=4)
    good = sciml.data.open(out).read_static(slice(None))
    out.write_bytes(out.read_bytes()[:1000])
    with pytest.raises(FileExistsError, match=r"d\.h5: exists but cannot be read \(.*truncated"):
        generate("darcy", n=3, resolution=9, out=out, seed=4, reuse=True)
    assert generate("darcy", n=3, resolution=9, out=out, seed=4, reuse=True, overwrite=True) == out
    np.testing.assert_array_equal(sciml.data.open(out).read_static(slice(None)), good)
