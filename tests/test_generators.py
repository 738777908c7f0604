"""Classical PDE data generators against analytical solutions, invariants and their own files."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from sciml.data.generators import (
    GENERATORS,
    SMALL_RUNS,
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
from sciml.data.generators.navier_stokes import fno_forcing, generate_navier_stokes


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


@pytest.mark.parametrize("dim, tau", [(1, 5.0), (2, 7.0)])
def test_grf_variance_and_spectrum_default_to_sample_grfs_sigma(dim, tau):
    """grf_variance is "the variance of the field sample_grf draws", but with sigma=1 by default
    against sample_grf's tau^(alpha - dim/2) the same arguments gave two fields: in 1D at
    tau = 5, 0.0020 against the drawn field's 0.25. Left out, sigma is sample_grf's in all
    three, so the drawn field's variance is grf_variance's, and the spectrum is the one with
    that sigma (the closed form sigma^2 (4 pi^2 k^2 + tau^2)^-alpha at |k| = 1)."""
    n, N, alpha = 400, 32, 2.0
    sigma = tau ** (alpha - dim / 2)
    u = sample_grf(n, N, dim=dim, alpha=alpha, tau=tau, seed=5)
    assert abs(u.var(0).mean() / grf_variance(N, dim=dim, alpha=alpha, tau=tau) - 1.0) < 0.1
    assert grf_variance(N, dim=dim, alpha=alpha, tau=tau) == grf_variance(
        N, dim=dim, alpha=alpha, tau=tau, sigma=sigma
    )
    lam = grf_spectrum(N, dim=dim, alpha=alpha, tau=tau)
    closed = sigma**2 * (4 * math.pi**2 + tau**2) ** -alpha
    assert lam[(0, 1) if dim == 2 else 1] == pytest.approx(closed, rel=1e-12)


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


def test_navier_stokes_default_amplitude_is_the_fno_reference_samplers():
    """The FNO code's GaussianRF written out: the real part of the inverse FFT of
    N^2 sqrt(2) 7^(3/2) (4 pi^2 |k|^2 + 49)^(-5/4) (a + i b), a, b ~ N(0, 1). Its variance is
    twice that of sigma = 7^(3/2) here, and equal to the generator's default sqrt(2) 7^(3/2)."""
    N, n = 32, 2000
    k = np.fft.fftfreq(N, 1.0 / N)
    KX, KY = np.meshgrid(k, k, indexing="ij")
    sqrt_eig = N**2 * math.sqrt(2) * 7**1.5 * (4 * math.pi**2 * (KX**2 + KY**2) + 49.0) ** -1.25
    sqrt_eig[0, 0] = 0.0
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((n, N, N)) + 1j * rng.standard_normal((n, N, N))
    fno = np.fft.ifft2(sqrt_eig * noise).real
    var = fno.var(0).mean()
    # sampling sd about 1 % (6 seeds: 0.983 ... 1.007): the variance sits in a few low shells
    default = generator_options("navier_stokes")["sigma"]
    assert abs(var / grf_variance(N, dim=2, alpha=2.5, tau=7.0, sigma=default) - 1.0) < 0.05
    assert abs(var / grf_variance(N, dim=2, alpha=2.5, tau=7.0, sigma=7**1.5) - 2.0) < 0.1


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


def test_darcy_harmonic_faces_stay_second_order_across_a_jump_between_nodes():
    """Layered a = 12 (x < 1/2), 3 (x > 1/2), the jump mid-cell (R - 1 odd). Exact solution
    u = g(x) sin(pi y) with a g' = q = cos(pi x) + C smooth (the flux is continuous, u is
    not smooth), C such that g(1) = 0, and f = (-q' + pi^2 a g) sin(pi y). The harmonic face
    mean is the flux-continuous one: second order; the arithmetic mean (FNO's) first order."""
    a1, a2 = 12.0, 3.0
    c = -(1 / (math.pi * a1) - 1 / (math.pi * a2)) / (0.5 / a1 + 0.5 / a2)

    def g(x):  # int_0^x q / a in closed form
        lo, hi = np.minimum(x, 0.5), np.maximum(x, 0.5)
        return (np.sin(math.pi * lo) / math.pi + c * lo) / a1 + (
            (np.sin(math.pi * hi) - 1.0) / math.pi + c * (hi - 0.5)
        ) / a2

    assert abs(g(1.0)) < 1e-15
    sizes = (18, 34, 66)
    errors = {"harmonic": [], "arithmetic": []}
    for R in sizes:
        X, Y = np.meshgrid(np.linspace(0, 1, R), np.linspace(0, 1, R), indexing="ij")
        a = np.where(X < 0.5, a1, a2)
        u = g(X) * np.sin(math.pi * Y)
        f = (math.pi * np.sin(math.pi * X) + math.pi**2 * a * g(X)) * np.sin(math.pi * Y)
        for face in errors:
            err = np.abs(solve_darcy(a, f, face_average=face) - u).max()
            errors[face].append(err / np.abs(u).max())
    hs = [1 / (R - 1) for R in sizes]
    assert 1.9 < _order(hs, errors["harmonic"]) < 2.1, errors  # 1.98: 7.5e-3 ... 5.3e-4
    assert _order(hs, errors["arithmetic"]) < 1.0, errors  # 0.76: 1.8e-2 ... 6.4e-3


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


def test_darcy_without_scipy_says_how_to_install_it(monkeypatch):
    """The hint named the extra sciml[interop], which holds netCDF4, not SciPy (a core
    dependency)."""
    import sys

    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(ImportError, match=r"dependency of sciml.*: pip install scipy$"):
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


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_records_what_docs_generators_md_promises(name, tmp_path):
    """docs/generators.md: every file records pde, generator, generator_settings (every option
    with its default, n, resolution, seed), sciml_version and units, and stores its fields as
    float32 (prose-ode recorded no units)."""
    resolution = SMALL_RUNS[name]["resolution"]
    path = generate(name, n=2, resolution=resolution, out=tmp_path / "g.h5", seed=3)
    with h5py.File(path, "r") as f:
        stored = {
            key: str(f[group][key].dtype)
            for group in ("fields", "static_fields")
            if group in f
            for key in f[group]
        }
        units = f.attrs["units"]
        units = json.loads(units) if isinstance(units, str) else units
        assert f.attrs["pde"] and f.attrs["sciml_version"]
        assert f.attrs["generator"] == GENERATORS[name].__module__
        s = _settings(f)
    assert stored and set(units) == set(stored)
    assert stored == dict.fromkeys(stored, "float32")
    assert (s["n"], s["resolution"], s["seed"]) == (2, resolution, 3)
    assert set(generator_options(name)) <= set(s)


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


def test_generate_darcy_draws_and_solves_a_few_samples_at_a_time():
    # the FNO 421-grid set (examples/fno_darcy.py --full) drew all its coefficients at once on
    # the 840^2 box: 22 GB of peak memory for 1000 samples. Now drawn, solved and subsampled a
    # few at a time: the same numbers as the one-shot draw, in the memory of a few samples
    import tracemalloc

    from sciml.data.generators.darcy import generate_darcy

    n, R = 128, 33
    a_full = sample_darcy_coefficient(n, R, seed=5)  # one draw of all n (and SciPy imported)
    u_ends = solve_darcy(a_full[[0, -1]])  # a sample of the first chunk and of the last
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    data = generate_darcy(n, R, subsample=4, seed=5)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    a, u = data["static_fields"]["a"], data["static_fields"]["u"]
    np.testing.assert_array_equal(a, a_full[:, ::4, ::4].astype(np.float32))
    np.testing.assert_array_equal(u[[0, -1]], u_ends[:, ::4, ::4].astype(np.float32))
    # one float64 noise draw of all n samples on the 2(R - 1) box: the old code held about 4
    # times this (17.1 MB measured), the chunked one 1.9 MB
    whole = n * (2 * (R - 1)) ** 2 * 8
    assert peak < whole, (peak, whole)


def test_generate_darcy_holds_its_stored_fields_once():
    # 31f3d32 kept the subsampled chunks in lists and concatenated them: the stored fields were
    # held twice at the end (3.4 GB instead of 1.7 for the 1200-sample 421-grid recipe). Here
    # they dominate (512 samples at 33, a chunk's draw and solve ~1 MB): peak 2.07 x the fields
    # before, 1.39 x now
    import tracemalloc

    from sciml.data.generators.darcy import generate_darcy

    n, R = 512, 33
    generate_darcy(2, 9)  # SciPy imported, the solver's first allocations made
    tracemalloc.start()
    data = generate_darcy(n, R, seed=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    a, u = data["static_fields"]["a"], data["static_fields"]["u"]
    assert peak < 1.6 * (a.nbytes + u.nbytes), (peak, a.nbytes + u.nbytes)
    np.testing.assert_array_equal(a, sample_darcy_coefficient(n, R, seed=1).astype(np.float32))
    np.testing.assert_array_equal(u[-1], solve_darcy(a[-1].astype(np.float64)).astype(np.float32))


def test_darcy_coefficient_refuses_too_few_samples_or_nodes():
    # 31f3d32 moved the draw out of sample_grf, whose check refused these; resolution 1 (a GRF
    # box of 0 points) then failed with a ZeroDivisionError from the draw's scale
    for n, resolution, match in ((2, 1, "resolution >= 2.*got 1"), (2, 0, "resolution >= 2"),
                                 (0, 9, "n >= 1 samples, got 0")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            sample_darcy_coefficient(n, resolution)
    # the smallest grid draws: 2 nodes on the box [0, 2) of 2 points, the threshold of the field
    g = sample_grf(3, 2, dim=2, length=2.0, seed=4)
    np.testing.assert_array_equal(
        sample_darcy_coefficient(3, 2, seed=4), np.where(g >= 0.0, 12.0, 3.0)
    )


def test_bad_names_and_options_raise_clear_errors(tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(ValueError, match=r"unknown option.*'nu'.*valid options.*face_average"):
        generate("darcy", n=1, resolution=9, out=out, nu=0.1)
    with pytest.raises(ValueError, match=r"unknown generator 'heat'.*navier_stokes"):
        generate("heat", n=1, resolution=9, out=out)
    # the type by name: these read "is not a valid <class 'float'>" / "<class 'int'>"
    with pytest.raises(ValueError, match=r"option nu='fast' is not a valid float$"):
        generate("burgers", n=1, resolution=16, out=out, nu="fast")
    with pytest.raises(ValueError, match=r"option n_steps='2.5' is not a valid int$"):
        generate("burgers", n=1, resolution=16, out=out, n_steps="2.5")
    with pytest.raises(ValueError, match=r"option dt='x' is not a valid float \| None$"):
        generate("burgers", n=1, resolution=16, out=out, dt="x")
    with pytest.raises(ValueError, match="dt to divide"):
        generate("navier_stokes", n=1, resolution=16, out=out, T=1, dt=0.3)
    with pytest.raises(ValueError, match="face_average"):
        generate("darcy", n=1, resolution=9, out=out, face_average="geometric")
    # a subsample < 1 is refused before solving: -2 used to store burgers on a reversed grid
    # (x = 0.969, 0.906, ...) and navier_stokes failed in torch after the whole solve
    for name, res in (("burgers", 32), ("navier_stokes", 16)):
        for step in (0, -2):
            with pytest.raises(ValueError, match=rf"subsample >= 1 .*{step}"):
                generate(name, n=1, resolution=res, out=out, subsample=step)
    # batch_size 0 raised range()'s 'arg 3 must not be zero', -1 numpy's 'need at least one array'
    for size in (0, -1):
        with pytest.raises(ValueError, match=rf"batch_size >= 1 .*got {size}"):
            generate("navier_stokes", n=1, resolution=16, out=out, batch_size=size)
    with pytest.raises(TypeError):
        GENERATORS["mine"] = GENERATORS["grf"]  # type: ignore[index]
    assert not out.exists()
    generate("grf", n=1, resolution=8, out=out)
    with pytest.raises(FileExistsError):
        generate("grf", n=1, resolution=8, out=out)
    generate("grf", n=1, resolution=8, out=out, overwrite=True)


@pytest.mark.parametrize(
    ("name", "resolution", "key", "value"),
    [
        # each was let through: NaN passes no `x > 0` check, inf passed them
        ("burgers", 32, "nu", "nan"),  # NaN data, then the writer's 'non-finite value' error
        ("burgers", 32, "T", "inf"),  # 'cannot convert float infinity to integer'
        ("navier_stokes", 16, "dt", "nan"),  # 'cannot convert float NaN to integer'
        ("navier_stokes", 16, "nu", float("inf")),  # a NaN solution
        ("lotka_volterra", 20, "t_final", "inf"),  # numpy warnings, then a failed solve
        ("diffusion_reaction", 20, "diffusion", float("nan")),  # "Newton's method did not converge"
        ("darcy", 9, "tau", "-inf"),
    ],
)
def test_a_non_finite_option_is_refused_naming_it(tmp_path, name, resolution, key, value):
    out = tmp_path / "x.h5"
    with pytest.raises(ValueError, match=rf"generator '{name}': option {key}=\S*: expected a "
                       r"finite number"):  # fmt: skip
        generate(name, n=2, resolution=resolution, out=out, **{key: value})
    assert not out.exists()


def test_burgers_dt_and_grf_length_must_be_positive(tmp_path):
    out = tmp_path / "x.h5"
    # dt=0 divided by zero; dt=-1 was taken as 'no substeps': one ETDRK4 step of the whole T
    for dt in (0.0, -1.0):
        with pytest.raises(ValueError, match=rf"expected dt > 0 or None, got dt={dt}"):
            generate("burgers", n=1, resolution=32, out=out, dt=dt)
    # length=0 divided by zero; a negative box stored a decreasing grid
    for length in (0.0, -2.0):
        with pytest.raises(ValueError, match=rf"expected a box length > 0, got length={length}"):
            generate("grf", n=1, resolution=8, out=out, length=length)
        with pytest.raises(ValueError, match="box length > 0"):
            sample_grf(1, 8, length=length)
    assert not out.exists()
    # a positive dt is still the solver's step: dt = T / 50 is 50 substeps of one record
    u0 = sample_grf(2, 32, dim=1, seed=1)
    fine = solve_burgers(u0, 0.1, 0.1, 1, dt=0.002)
    coarse = solve_burgers(u0, 0.1, 0.1, 1, dt=0.1)
    assert 0 < np.abs(fine - coarse).max() < 2e-3 * np.abs(fine).max()  # measured 7.1e-4


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


def _drop_revision(path: Path, expected: int) -> None:
    """Make ``path``'s record what the code before the revision record wrote."""
    with h5py.File(path, "r+") as f:
        settings = _settings(f)
        assert settings.pop("revision") == expected
        f.attrs["generator_settings"] = json.dumps(settings)


def test_generate_reuse_refuses_a_file_from_an_older_generator_revision(tmp_path):
    """The GRF fix changed log-normal Darcy coefficients for unchanged settings, so a file made
    before it (no ``revision`` record) must not be handed back by reuse as if it were current."""
    import sciml
    from sciml.data.generators import generate

    out = tmp_path / "d.h5"
    generate("darcy", n=2, resolution=9, out=out, seed=4, coefficient="lognormal")
    new = sciml.data.open(out).read_static(slice(None), ["a"])
    _drop_revision(out, 2)  # what the old code recorded: the same, without a revision
    with pytest.raises(FileExistsError, match=r"other settings \(revision: 1 -> 2\)"):
        generate("darcy", n=2, resolution=9, out=out, seed=4, coefficient="lognormal", reuse=True)
    generate("darcy", n=2, resolution=9, out=out, seed=4, coefficient="lognormal", reuse=True,
             overwrite=True)  # fmt: skip
    np.testing.assert_array_equal(sciml.data.open(out).read_static(slice(None), ["a"]), new)
    # generators that did not change take a file without the record as current
    b = generate("burgers", n=1, resolution=32, out=tmp_path / "b.h5", n_steps=2)
    _drop_revision(b, 1)
    stamp = b.stat().st_mtime_ns
    generate("burgers", n=1, resolution=32, out=b, n_steps=2, reuse=True)
    assert b.stat().st_mtime_ns == stamp


def test_generate_reuse_keeps_old_files_whose_data_the_grf_fix_left_unchanged(tmp_path):
    """The GRF box normalisation halved the field on Darcy's [0, 2)^2 box and left the unit box
    alone, so piecewise-constant Darcy files (the sign of the field) and grf files with
    length 1 made before it hold what the new code writes, bit for bit; reuse refused them all
    ('revision: 1 -> 2', the revision being per generator) and regenerated them under
    overwrite. The old law written out (2 x the new field on [0, 2)^2) is the reference."""
    import sciml
    from sciml.data.generators import generate

    R, seed = 9, 4
    g_old = 2.0 * sample_grf(2, 2 * (R - 1), dim=2, alpha=2.0, tau=3.0, length=2.0, seed=seed)
    a_old = np.where(g_old[:, :R, :R] >= 0.0, 12.0, 3.0)
    out = tmp_path / "pc.h5"
    generate("darcy", n=2, resolution=R, out=out, seed=seed)
    _drop_revision(out, 1)
    stamp = out.stat().st_mtime_ns
    assert generate("darcy", n=2, resolution=R, out=out, seed=seed, reuse=True) == out
    assert out.stat().st_mtime_ns == stamp
    a, u = sciml.data.open(out).read_static(slice(None), ["a", "u"]).transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(a, a_old.astype(np.float32))
    np.testing.assert_array_equal(u, solve_darcy(a_old, 1.0).astype(np.float32))

    # grf: length 1 unchanged (kept), length 2 halved (refused)
    unit = generate("grf", n=2, resolution=16, out=tmp_path / "g1.h5", seed=seed)
    _drop_revision(unit, 1)
    stamp = unit.stat().st_mtime_ns
    assert generate("grf", n=2, resolution=16, out=unit, seed=seed, reuse=True) == unit
    assert unit.stat().st_mtime_ns == stamp
    u_old = sample_grf(2, 16, dim=2, alpha=2.0, tau=3.0, seed=seed).astype(np.float32)
    np.testing.assert_array_equal(
        sciml.data.open(unit).read_static(slice(None), ["u"])[:, 0], u_old
    )
    box = generate("grf", n=2, resolution=16, out=tmp_path / "g2.h5", seed=seed, length=2.0)
    _drop_revision(box, 2)
    with pytest.raises(FileExistsError, match=r"\(revision: 1 -> 2\)"):
        generate("grf", n=2, resolution=16, out=box, seed=seed, length=2.0, reuse=True)


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


# --- independent references ------------------------------------------------------------------


def _darcy_by_loops(a: np.ndarray, face) -> np.ndarray:
    """The 5-point flux form assembled node by node (no slicing), solved with spsolve."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    R = a.shape[0]
    m, h2 = R - 2, 1.0 / (R - 1) ** 2
    mat = sp.lil_matrix((m * m, m * m))
    for i in range(1, R - 1):
        for j in range(1, R - 1):
            row = (i - 1) * m + (j - 1)
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                c = face(a[i, j], a[i + di, j + dj]) / h2
                mat[row, row] += c
                if 1 <= i + di <= R - 2 and 1 <= j + dj <= R - 2:
                    mat[row, (i + di - 1) * m + (j + dj - 1)] -= c
    u = np.zeros_like(a)
    u[1:-1, 1:-1] = spla.spsolve(mat.tocsc(), np.ones(m * m)).reshape(m, m)
    return u


def test_darcy_matches_an_independently_assembled_system_across_coefficient_jumps():
    # the manufactured test has a smooth a; here a jumps 12 <-> 3 between nodes, where the
    # harmonic and arithmetic face means differ at O(1)
    a = sample_darcy_coefficient(1, 17, seed=2)[0]
    harmonic = _darcy_by_loops(a, lambda p, q: 2 * p * q / (p + q))
    arithmetic = _darcy_by_loops(a, lambda p, q: 0.5 * (p + q))
    scale = np.abs(harmonic).max()
    assert np.abs(solve_darcy(a) - harmonic).max() < 1e-13 * scale  # 6.9e-18 measured
    u_arith = solve_darcy(a, face_average="arithmetic")
    assert np.abs(u_arith - arithmetic).max() < 1e-13 * scale
    assert np.abs(harmonic - arithmetic).max() > 0.02 * scale  # the test tells the two apart


def test_darcy_coefficients_have_the_statistics_of_the_grf_on_the_doubled_box():
    """Thresholding a centred Gaussian pair of correlation rho: P(same sign) = 1/2 +
    arcsin(rho)/pi; rho from the covariance sum_k sigma^2 (pi^2 |k|^2 + tau^2)^-alpha cos(pi k r)
    of the periodic field on [0, 2)^2 (sigma = tau^(alpha - 1) = 3), written out here."""
    R, n = 33, 1000
    a = sample_darcy_coefficient(n, R, seed=1)
    assert set(np.unique(a)) == {3.0, 12.0}
    M = 2 * (R - 1)  # GRF points per axis on [0, 2)
    k = np.fft.fftfreq(M, 1.0 / M)
    KX, KY = np.meshgrid(k, k, indexing="ij")
    lam = 9.0 * (math.pi**2 * (KX**2 + KY**2) + 9.0) ** -2.0
    lam[0, 0] = 0.0
    for lag in (2, 8):  # in nodes, h = 1/32: distances 1/16 and 1/4
        rho = (lam * np.cos(math.pi * KX * lag / (R - 1))).sum() / lam.sum()
        expected = 0.5 + math.asin(rho) / math.pi  # 0.891 and 0.700
        for same in ((a[:, lag:] == a[:, :-lag]).mean(), (a[:, :, lag:] == a[:, :, :-lag]).mean()):
            # sampling sd ~ 0.004; a field on [0, 1)^2 instead would give 0.912 and 0.738
            assert abs(same - expected) < 0.015, (lag, same, expected)
    log_a = np.log(sample_darcy_coefficient(n, R, seed=1, coefficient="lognormal"))
    np.testing.assert_array_equal(log_a >= 0, a == 12.0)  # one GRF, 12 where it is >= 0
    # the modes e^{i pi k.x} / 2 are orthonormal on the [0, 2)^2 box: Var log a = sum(lam) / 4,
    # 0.0546 on every node (0.0549 measured; without the 1/4 it was 0.218)
    assert abs(log_a.var(0).mean() / (lam.sum() / 4) - 1.0) < 0.05


def test_grf_on_a_large_box_has_the_variance_of_the_stationary_field_on_the_line():
    """On [0, L) the modes are normalised by L^-1/2, so as L grows the field tends to the
    stationary one on the line: Var u = sigma^2 int (k^2 + tau^2)^-2 dk / 2 pi = 1/4 with
    sigma^2 = tau^3, less the missing constant mode sigma^2 tau^-4 / L (closed forms)."""
    tau, L = 5.0, 100.0
    expected = 0.25 - 1.0 / (tau * L)  # 0.248
    assert grf_variance(8192, alpha=2.0, tau=tau, sigma=tau**1.5, length=L) == pytest.approx(
        expected, rel=1e-3
    )
    u = sample_grf(200, 8192, alpha=2.0, tau=tau, length=L, seed=0)  # default sigma = tau^1.5
    assert abs(u.var(0).mean() / expected - 1.0) < 0.03  # 0.247 measured; 24.8 unnormalised


def test_darcy_lognormal_variance_against_the_fno_cosine_series():
    """The FNO MATLAB GRF.m field, written out: coefficients s * 3 (pi^2 |k|^2 + 9)^-1 on
    k in {0..s-1}^2 (k = 0 dropped) through an orthonormal inverse DCT-II, so its variance at
    cell centre x_j is sum_k (s coef_k)^2 w_k1^2 w_k2^2 cos^2 cos^2. Its Neumann covariance is the
    periodic one on [0, 2)^2 plus three mirror images, which coincide at a corner."""
    s = 64
    k = np.arange(s)
    K1, K2 = np.meshgrid(k, k, indexing="ij")
    coef = 3.0 * (math.pi**2 * (K1**2 + K2**2) + 9.0) ** -1.0
    coef[0, 0] = 0.0
    w = np.where(k == 0, math.sqrt(1.0 / s), math.sqrt(2.0 / s))
    basis2 = (w * np.cos(math.pi * np.outer(2 * k + 1, k) / (2 * s))) ** 2  # (point, mode)
    var_matlab = basis2 @ (s * coef) ** 2 @ basis2.T  # (s, s) cell centres
    ours = grf_variance(2 * 32, dim=2, tau=3.0, sigma=3.0, length=2.0)  # Darcy's box at R = 33
    assert ours == pytest.approx(0.0546, abs=1e-4)
    assert var_matlab.mean() == pytest.approx(0.0853, abs=1e-4)
    assert 1.55 < var_matlab.mean() / ours < 1.58  # 1.56; it was 0.39 before the 1/L^2
    assert var_matlab[0, 0] / ours == pytest.approx(4.0, rel=0.01)  # 0.2173 at x = 1/128
    assert var_matlab[s // 2, s // 2] < 0.5 * ours  # 0.0255: odd cosines vanish at the centre
    log_a = np.log(sample_darcy_coefficient(400, 33, seed=3, coefficient="lognormal"))
    assert abs(log_a.var(0).mean() / ours - 1.0) < 0.05


def _burgers_radau(u0: np.ndarray, nu: float, T: float, M: int) -> np.ndarray:
    """u0 interpolated to M points, collocation with dense DFT-matrix derivatives and 2/3-rule
    projection, integrated by SciPy's Radau with the exact Jacobian; read back on u0's grid."""
    from scipy.integrate import solve_ivp

    N = u0.shape[-1]
    c = np.zeros(M // 2 + 1, complex)
    c[: N // 2] = np.fft.rfft(u0)[: N // 2] * (M / N)
    k = np.fft.fftfreq(M, 1.0 / M)
    dft = np.exp(-2j * math.pi * np.outer(k, np.arange(M)) / M)
    inv = dft.conj().T / M

    def op(symbol):
        return (inv @ (symbol[:, None] * dft)).real

    d_proj = op(2j * math.pi * k * (np.abs(k) <= M / 3))  # d/dx after the 2/3 rule
    d2 = op(-((2 * math.pi * k) ** 2))
    sol = solve_ivp(
        lambda t, u: -0.5 * d_proj @ (u * u) + nu * d2 @ u,
        (0.0, T),
        np.fft.irfft(c, n=M),
        method="Radau",
        jac=lambda t, u: -d_proj * u[None, :] + nu * d2,
        rtol=1e-11,
        atol=1e-12,
    )
    return sol.y[:: M // N, -1]


def test_burgers_fno_data_match_an_independent_radau_reference_at_twice_the_resolution():
    # the FNO initial law and the automatic time step (5e-8 relative measured); nu and 2 nu
    # differ by 86% of max |u|
    u0 = sample_grf(1, 32, alpha=2.0, tau=5.0, sigma=25.0, seed=0)[0]
    nu = 0.05
    ref = _burgers_radau(u0, nu, 1.0, 64)
    scale = np.abs(ref).max()
    err = np.abs(solve_burgers(u0, nu, 1.0, 1)[-1] - ref).max()
    assert err < 1e-6 * scale, err / scale
    assert np.abs(solve_burgers(u0, 2 * nu, 1.0, 1)[-1] - ref).max() > 0.5 * scale


def _navier_stokes_galerkin(w0: np.ndarray, f: np.ndarray, nu: float, T: float, K: int):
    """Galerkin truncation to |k_x|, |k_y| <= K with products on a grid twice as fine (no
    aliasing, unlike the solver's 2/3 rule on its own grid), integrated by DOP853."""
    from scipy.integrate import solve_ivp

    N, M = w0.shape[-1], 2 * w0.shape[-1]
    k = np.fft.fftfreq(N, 1.0 / N)
    KX, KY = np.meshgrid(k, k, indexing="ij")
    keep = (np.abs(KX) <= K) & (np.abs(KY) <= K)
    lap = 4 * math.pi**2 * (KX**2 + KY**2)
    inv_lap = np.where(lap > 0, 1.0 / np.where(lap > 0, lap, 1.0), 0.0)
    low = np.flatnonzero(np.abs(k) <= K)
    big = np.ix_(k[low].astype(int) % M, k[low].astype(int) % M)

    def to_fine(c):
        out = np.zeros((M, M), complex)
        out[big] = c[np.ix_(low, low)]
        return np.fft.ifft2(out).real * (M / N) ** 2

    def from_fine(g):
        out = np.zeros((N, N), complex)
        out[np.ix_(low, low)] = np.fft.fft2(g)[big] * (N / M) ** 2
        return out

    f_h = np.fft.fft2(f) * keep

    def rhs(t, y):
        w_h = (y[: N * N] + 1j * y[N * N :]).reshape(N, N)
        psi = w_h * inv_lap
        u, v = to_fine(2j * math.pi * KY * psi), to_fine(-2j * math.pi * KX * psi)
        w_x, w_y = to_fine(2j * math.pi * KX * w_h), to_fine(2j * math.pi * KY * w_h)
        d = (f_h - from_fine(u * w_x + v * w_y) - nu * lap * w_h) * keep
        return np.concatenate([d.real.ravel(), d.imag.ravel()])

    w_h = np.fft.fft2(w0) * keep
    y0 = np.concatenate([w_h.real.ravel(), w_h.imag.ravel()])
    y = solve_ivp(rhs, (0, T), y0, method="DOP853", rtol=1e-10, atol=1e-10).y[:, -1]
    return np.fft.ifft2(w_h).real, np.fft.ifft2((y[: N * N] + 1j * y[N * N :]).reshape(N, N)).real


def test_navier_stokes_matches_an_aliasing_free_galerkin_reference():
    # w0 band-limited to |k_i| <= 10 < 32/3: with the 2/3 rule the solver is exactly this
    # Galerkin system, up to its O(dt^2) time error; without it, aliasing costs ~1e-3
    N = 32
    w0 = sample_grf(1, N, dim=2, alpha=2.5, tau=7.0, sigma=math.sqrt(2) * 7**1.5, seed=3)[0] * 3
    f = fno_forcing(N)
    w0, ref = _navier_stokes_galerkin(w0, f, 1e-3, 1.0, 10)
    errors = [np.abs(solve_navier_stokes(w0, f, 1e-3, 1.0, dt, 1)[-1] - ref).max()
              for dt in (0.01, 0.005)]  # fmt: skip
    assert np.abs(ref).max() > 1.0 and errors[1] < 2e-5, errors  # 5.2e-5, 1.3e-5 measured
    assert 1.8 < math.log2(errors[0] / errors[1]) < 2.2, errors
    aliased = np.abs(solve_navier_stokes(w0, f, 1e-3, 1.0, 0.005, 1, dealias=False)[-1] - ref)
    assert aliased.max() > 20 * errors[1]  # 9.0e-4 measured: the test sees the dealiasing


# --- prose-ode -------------------------------------------------------------------------------


def test_prose_ode_refuses_a_param_range_that_draws_unencodable_constants():
    """A parameter v is drawn from v (1 +- r); below 1e-8 encode cannot write it (it would drop
    the term), so the generator refuses r >= 1 - 1e-8 / min |v| up front instead of failing,
    with a chance of about 1e-8 per draw, in the middle of a run."""
    from sciml.data.generators.prose_ode import generate_prose_ode
    from sciml.symbolic.vocabulary import encode_float

    # four_wing's b = 0.01 is the smallest nominal: the bound is 1 - 1e-6 over all systems
    with pytest.raises(ValueError, match=r"param_range < 0\.999999 for all systems, got 1\.0"):
        generate_prose_ode(1, 16, n_input=8, param_range=1.0)
    with pytest.raises(ValueError, match="four_wing's parameter b .* would reach 5e-09"):
        generate_prose_ode(1, 16, n_input=8, param_range=0.9999995)
    with pytest.raises(ValueError, match="param_range >= 0"):
        generate_prose_ode(1, 16, n_input=8, param_range=-0.1)
    # the bound is encode's: the lowest draw at 0.9999995 is refused, the one at 0.999998 written
    with pytest.raises(ValueError, match="below the smallest nonzero magnitude"):
        encode_float((1 - 0.9999995) * 0.01)
    assert encode_float((1 - 0.999998) * 0.01) == ["+", "N200", "E-10"]
    # a system whose parameters are all large keeps a range close to 1
    out = generate_prose_ode(1, 16, n_input=8, param_range=0.99, systems="lorenz")
    assert out["attrs"]["equations"][0].startswith("add mul")


def test_prose_ode_double_pendulum_conserves_its_energy():
    """Equal masses and lengths, g / l = 10 (so the encoded -3g/l, -g/l, 4g/l are exact): the
    energy w1^2 + w2^2 / 2 + w1 w2 cos(q1 - q2) - 10 (2 cos q1 + cos q2) (per m l^2) is
    conserved. The PROSE authors' code writes u_3^2 cos(u_0 - u_1) in the last equation where the
    physics has 2 u_3^2 cos(u_0 - u_1); that variant drifts by 1.8 on the same orbit."""
    import sympy as sp

    from sciml.data.generators.prose_ode import SYSTEMS, integrate
    from sciml.symbolic import state_symbols

    def energy(y):
        q1, q2, w1, w2 = y.T
        return w1**2 + 0.5 * w2**2 + w1 * w2 * np.cos(q1 - q2) - 10 * (2 * np.cos(q1) + np.cos(q2))

    eqs = SYSTEMS["double_pendulum"].equations({"g": 10.0, "l": 1.0})
    t = np.linspace(0.0, 6.0, 193)
    u0 = np.array([1.2, -0.7, 0.5, -1.0])
    e = energy(integrate(eqs, u0, t))
    assert np.abs(e - e[0]).max() < 1e-5  # 7.6e-7 measured (LSODA at rtol 1e-9), |E| <= 14
    u = state_symbols(4)
    d = u[0] - u[1]
    authors = [*eqs[:3], sp.sin(d) * (4 * u[2] ** 2 + 40 * sp.cos(u[0]) + u[3] ** 2 * sp.cos(d))
               / (3 - sp.cos(2 * d))]  # fmt: skip
    e_authors = energy(integrate(authors, u0, t))
    assert np.abs(e_authors - e_authors[0]).max() > 0.5  # the test tells the two apart


def _prose_reference_rhs(name, p, u):
    """The 15 systems written out in NumPy from their textbook forms (the Fabrikant, Aizawa and
    L96 ones as in the PROSE authors' list; see docs/generators.md for where theirs differ)."""
    third = 0.333  # 1/3 at the encoding's 3 digits
    x, y, z = u[0], u[1], u[2]
    if name == "thomas":
        return [np.sin(y) - p["b"] * x, np.sin(z) - p["b"] * y, np.sin(x) - p["b"] * z]
    if name == "lorenz":
        return [p["sigma"] * (y - x), x * (p["rho"] - z) - y, x * y - p["beta"] * z]
    if name == "aizawa":
        return [
            (z - p["b"]) * x - p["d"] * y,
            p["d"] * x + (z - p["b"]) * y,
            p["c"] + p["a"] * z - third * z**3 - (x**2 + y**2) * (1 + p["e"] * z)
            + p["f"] * z * x**3,
        ]  # fmt: skip
    if name == "chen_lee":
        return [p["a"] * x - y * z, p["b"] * y + x * z, p["d"] * z + third * x * y]
    if name == "dadras":
        return [0.5 * y - p["a"] * x + p["b"] * y * z, p["c"] * y - 0.5 * x * z + 0.5 * z,
                p["d"] * x * y - p["e"] * z]  # fmt: skip
    if name == "rossler":
        return [-y - z, x + p["a"] * y, p["b"] + z * (x - p["c"])]
    if name == "halvorsen":
        a = p["a"]
        return [a * x - y - z - 0.25 * y**2, a * y - z - x - 0.25 * z**2,
                a * z - x - y - 0.25 * x**2]  # fmt: skip
    if name == "fabrikant":
        return [y * (z - 1 + x**2) + p["gamma"] * x, x * (3 * z + 1 - x**2) + p["gamma"] * y,
                p["alpha"] * z - 2 * x * y * z]  # fmt: skip
    if name == "sprott_b":
        return [p["a"] * y * z, x - p["b"] * y, p["c"] - x * y]
    if name == "sprott_linz_f":
        return [y + z, -x + p["a"] * y, x**2 - z]
    if name == "four_wing":
        return [p["a"] * x + y * z, p["b"] * x + p["c"] * y - x * z, -z - x * y]
    if name.startswith("lorenz96"):
        n = len(u)
        return [(u[(i + 1) % n] - u[i - 2]) * u[i - 1] - u[i] + p["F"] for i in range(n)]
    if name == "duffing":
        return [np.ones_like(x), z, p["delta"] * z + p["alpha"] * y + p["beta"] * y**3
                + p["gamma"] * np.cos(p["omega"] * x)]  # fmt: skip
    if name == "double_pendulum":  # equal masses and lengths, G = g / l
        G = p["g"] / p["l"]
        q1, q2, w1, w2 = u
        d, den = q1 - q2, 3 - np.cos(2 * (q1 - q2))
        return [w1, w2,
                (-3 * G * np.sin(q1) - G * np.sin(q1 - 2 * q2)
                 - 2 * np.sin(d) * (w2**2 + w1**2 * np.cos(d))) / den,
                2 * np.sin(d) * (2 * w1**2 + 2 * G * np.cos(q1) + w2**2 * np.cos(d)) / den]  # fmt: skip
    raise AssertionError(name)


def test_prose_ode_systems_match_their_written_out_right_hand_sides():
    import sympy as sp

    from sciml.data.generators.prose_ode import SYSTEMS
    from sciml.symbolic import round_sig, state_symbols

    rng = np.random.default_rng(0)
    assert len(SYSTEMS) == 15
    for name, spec in SYSTEMS.items():
        # g / l = 10 keeps the pendulum's rounded -3g/l, -g/l, 4g/l exact
        params = {"g": 10.0, "l": 1.0} if name == "double_pendulum" else spec.nominal
        p = {k: round_sig(v) for k, v in params.items()}
        f = sp.lambdify([state_symbols(spec.dim)], spec.equations(params), modules="numpy")
        u = rng.uniform(-2, 2, (spec.dim, 50))
        ours = np.array([np.broadcast_to(c, (50,)) for c in f(u)])
        ref = np.array(_prose_reference_rhs(name, p, u))
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12, err_msg=name)


def test_cli_list_gives_each_generators_whole_first_paragraph(capsys):
    """``sciml data generate --list`` printed each docstring's first line, which stopped
    mid-sentence where the paragraph wraps ("nonlinear_ode  ``n`` pairs ... on ``resolution``
    points of"). Each line is now the whole first paragraph, a sentence ending in a period,
    without reST's double backquotes."""
    from sciml.cli import main

    assert main(["data", "generate", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(GENERATORS)
    for line in lines:
        assert line.endswith(".") and "``" not in line, line
    nonlinear = next(line for line in lines if line.startswith("nonlinear_ode "))
    assert "s(0) = 0 on resolution points of [0, 1]: static fields u and s" in nonlinear


def test_navier_stokes_refuses_non_finite_scalars_instead_of_returning_nan():
    w0 = sample_grf(1, 8, dim=2, seed=0)[0]
    msg = r"expected finite nu, T, dt > 0 and an integer record_steps >= 1, got "
    # nu = NaN returned an all-NaN trajectory; T = inf and dt = NaN reached round()
    for nu, T, dt, steps in [
        (math.nan, 0.1, 0.01, 1),
        (1e-3, math.inf, 0.01, 1),
        (1e-3, 0.1, math.nan, 1),
        (1e-3, 0.1, 0.01, 1.0),
        (1e-3, 0.1, 0.01, True),
    ]:
        with pytest.raises(ValueError, match=msg + rf"nu={nu}, T={T}, dt={dt}, "):
            solve_navier_stokes(w0, 0.0, nu, T, dt, steps)
    # good scalars still solve: with f = 0, the mean-free vorticity's L2 norm only decays
    w = solve_navier_stokes(w0, 0.0, 1e-2, 0.1, 0.01, 2)
    norms = np.sqrt((w**2).mean(axis=(-2, -1)))
    assert norms[0] > norms[1] > norms[2] > 0.5 * norms[0]


def test_darcy_refuses_a_mismatched_or_non_finite_right_hand_side():
    a = np.ones((5, 5))
    with pytest.raises(ValueError, match=r"expected a finite f: a scalar or of shape \(5, 5\) or "
                       r"\(1, 5, 5\), got shape \(4, 4\)$"):  # fmt: skip
        solve_darcy(a, np.ones((4, 4)))
    for bad in (math.nan, math.inf):  # NaN came back as an all-NaN solution
        with pytest.raises(ValueError, match=r"got shape \(\) with non-finite values$"):
            solve_darcy(a, bad)
    # an accepted f: a = 1, f = 2 pi^2 sin(pi x) sin(pi y) solved exactly by sin sin, to O(h^2)
    x = np.linspace(0.0, 1.0, 33)
    exact = np.sin(np.pi * x)[:, None] * np.sin(np.pi * x)[None, :]
    u = solve_darcy(np.ones((2, 33, 33)), 2 * np.pi**2 * exact)
    assert np.abs(u - exact).max() < 2e-3  # (pi h)^2 / 12 ~ 8e-4


def test_navier_stokes_refuses_a_mismatched_or_non_finite_forcing_or_initial_state():
    w0 = sample_grf(2, 8, dim=2, seed=0)
    for f in (np.zeros((4, 4)), np.zeros((3, 8, 8))):
        with pytest.raises(ValueError, match=r"^expected f a scalar or of shape \(8, 8\) or "
                           rf"\(2, 8, 8\) \(batch, N, N\), got shape {re.escape(str(f.shape))}$"):  # fmt: skip
            solve_navier_stokes(w0, f, 1e-2, 0.1, 0.01, 1)
    bad = w0.copy()
    bad[1, 3, 3] = np.nan  # came back as an all-NaN trajectory
    for w, f in ((bad, 0.0), (w0, np.full((8, 8), np.inf))):
        with pytest.raises(ValueError, match=r"^expected finite w0 and f, got NaN or inf values$"):
            solve_navier_stokes(w, f, 1e-2, 0.1, 0.01, 1)
    # a per-sample forcing (2, 8, 8) is each sample's own: equal to solving them one by one
    fs = np.stack([fno_forcing(8), -0.5 * fno_forcing(8)])
    both = solve_navier_stokes(w0, fs, 1e-2, 0.1, 0.01, 1)
    for i in range(2):
        alone = solve_navier_stokes(w0[i], fs[i], 1e-2, 0.1, 0.01, 1)
        np.testing.assert_allclose(both[i], alone, rtol=0, atol=1e-12)
    assert np.abs(both[0, -1] - both[1, -1]).max() > 1e-3  # the forcings differ


def test_burgers_refuses_a_non_integer_n_steps_and_a_non_finite_u0():
    x = np.arange(16) / 16
    u0 = 1e-6 * np.sin(2 * np.pi * x)
    # n_steps = 1.5 was range()'s "'float' object cannot be interpreted as an integer"
    for steps in (1.5, True):
        with pytest.raises(ValueError, match=r"^expected finite nu > 0, T > 0 and an integer "
                           rf"n_steps >= 1, got nu=0.1, T=0.1, n_steps={steps}$"):  # fmt: skip
            solve_burgers(u0, 0.1, 0.1, steps)
    bad = u0.copy()
    bad[3] = np.nan  # came back as an all-NaN trajectory
    with pytest.raises(ValueError, match=r"^expected a finite u0, got NaN or inf values$"):
        solve_burgers(bad, 0.1, 0.1, 1)
    # accepted: at amplitude 1e-6 the flux is 1e-12, so u decays as the heat equation's mode
    u = solve_burgers(u0, 0.1, 0.1, 2)
    decay = np.exp(-0.1 * 4 * np.pi**2 * np.array([0.0, 0.05, 0.1]))
    np.testing.assert_allclose(u, decay[:, None] * u0, rtol=0, atol=1e-12)


def test_grf_refuses_non_finite_law_parameters_and_bool_sizes():
    nan = float("nan")
    for kw in ({"tau": nan}, {"alpha": nan}, {"sigma": nan}):  # every sample came back NaN
        shown = {"alpha": 2.0, "tau": 3.0, "sigma": None, **kw}
        msg = (r"^expected finite alpha, tau and sigma \(or sigma None\), got "
               rf"alpha={shown['alpha']}, tau={shown['tau']}, sigma={shown['sigma']}$")  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            sample_grf(2, 8, **kw)
        with pytest.raises(ValueError, match=msg):
            sample_darcy_coefficient(1, 5, **kw)
    # n = True was numpy's "an integer is required"
    with pytest.raises(ValueError, match=r"^expected n >= 1 and resolution >= 2, got n=True, "):
        sample_grf(True, 8)
    with pytest.raises(ValueError, match=r"^expected dim 1 or 2, got True$"):
        sample_grf(2, 8, dim=True)
    # accepted: the pointwise variance of 20000 draws is grf_variance's (1% standard error)
    u = sample_grf(20000, 8, alpha=2.0, tau=3.0, seed=3)
    assert abs(u.var(axis=0).mean() / grf_variance(8, alpha=2.0, tau=3.0) - 1) < 0.05


def test_lotka_volterra_refuses_empty_sizes_and_non_finite_settings():
    from sciml.data.generators.lotka_volterra import (
        generate_lotka_volterra,
        lotka_volterra_invariant,
    )

    # n = 0 wrote no samples; resolution 0 was "'list' object has no attribute 'reshape'"
    for n, res in ((0, 5), (2, 0), (2, 1), (True, 5)):
        with pytest.raises(ValueError, match=r"^expected integers n >= 1 and resolution >= 2, "
                           rf"got n={n}, resolution={res}$"):  # fmt: skip
            generate_lotka_volterra(n, res)
    # a NaN rate reached SciPy's "All components of the initial state `y0` must be finite"
    with pytest.raises(ValueError, match=r"^expected finite positive rates alpha, beta, gamma, "
                       r"delta, got \(nan, 1.0, 3.0, 1.0\)$"):  # fmt: skip
        generate_lotka_volterra(2, 5, alpha=float("nan"))
    with pytest.raises(ValueError, match=r"^expected finite 0 < ic_low <= ic_high, got "):
        generate_lotka_volterra(2, 5, ic_high=float("inf"))
    with pytest.raises(ValueError, match=r"^expected a finite t_final > 0, got nan$"):
        generate_lotka_volterra(2, 5, t_final=float("nan"))
    # accepted: the first integral V stays at its initial value along each stored orbit
    d = generate_lotka_volterra(3, 2, t_final=2.0)
    state = np.stack([d["fields"]["prey"], d["fields"]["predator"]], axis=-1).astype(np.float64)
    v = lotka_volterra_invariant(state, 1.5, 1.0, 3.0, 1.0)
    v0 = lotka_volterra_invariant(d["params"]["initial_state"], 1.5, 1.0, 3.0, 1.0)
    np.testing.assert_allclose(v, np.repeat(v0[:, None], 2, axis=1), rtol=1e-6)


def test_generate_and_recipes_refuse_bool_string_or_negative_sizes_and_seeds(tmp_path):
    out = tmp_path / "x.h5"
    # n=True ran as 1 sample; n='abc' was int()'s "invalid literal for int() with base 10"; a
    # negative seed NumPy's "expected non-negative integer"
    for kw, msg in [
        ({"n": True}, r"^expected integers n >= 1 and resolution >= 2, got n=True, resolution=8$"),
        ({"n": "abc"}, r"^expected integers n >= 1 and resolution >= 2, got n='abc', "),
        ({"resolution": 8.5}, r"got n=2, resolution=8.5$"),
        ({"seed": -1}, r"^expected an integer seed >= 0, got seed=-1$"),
        ({"seed": True}, r"^expected an integer seed >= 0, got seed=True$"),
    ]:
        with pytest.raises(ValueError, match=msg):
            generate("grf", out=out, **{"n": 2, "resolution": 8, **kw})
    assert not out.exists()
    # a recipe is refused when it is read, not only when it runs
    recipe = tmp_path / "r.yaml"
    recipe.write_text("generator: grf\nn: true\nresolution: 8\nout: x.h5\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(recipe))}: expected integers n >= 1 "):
        load_recipe(recipe)
    # accepted, YAML's float spelling of a whole number included: the file holds the GRF draw
    recipe.write_text("generator: grf\nn: 2.0e0\nresolution: 8\nseed: 4\nout: x.h5\n")
    path = generate_from_recipe(recipe, out=out, dim=1)
    with h5py.File(path) as f:
        np.testing.assert_allclose(f["static_fields/u"][()], sample_grf(2, 8, seed=4), atol=1e-6)


def test_darcy_refuses_non_positive_piecewise_constant_values():
    msg = (r"^expected finite a_high > 0 and a_low > 0 \(the piecewise-constant coefficient's "
           r"values\), got a_high=12.0, a_low=")  # fmt: skip
    for a_low in (-3.0, 0.0, float("nan")):  # -3 came back as the coefficient where g < 0
        with pytest.raises(ValueError, match=msg + rf"{a_low}$"):
            sample_darcy_coefficient(1, 5, a_low=a_low)
    with pytest.raises(ValueError, match=msg + r"-3.0$"):  # drawn, then refused naming neither
        generate("darcy", n=1, resolution=9, out=Path("/nonexistent/x.h5"), a_low=-3.0)
    # lognormal ignores the levels; accepted levels give exactly {a_low, a_high} by g's sign
    g = sample_grf(1, 8, dim=2, seed=2, length=2.0, tau=3.0)[0][:5, :5]
    a = sample_darcy_coefficient(1, 5, a_low=0.5, a_high=7.0, seed=2)[0]
    np.testing.assert_array_equal(a, np.where(g >= 0, 7.0, 0.5))
    lognormal = sample_darcy_coefficient(1, 5, coefficient="lognormal", a_low=-1.0, seed=2)[0]
    np.testing.assert_allclose(lognormal, np.exp(g), rtol=1e-12)


def test_generate_navier_stokes_records_one_state_per_whole_time_unit():
    # the default record_steps: a state at t = 1, 2, 3 for T = 3, the solver's own at those times
    d = generate_navier_stokes(1, 8, T=3.0, dt=0.1, seed=2, precision="float64")
    np.testing.assert_array_equal(d["time"], [0.0, 1.0, 2.0, 3.0])
    w0 = sample_grf(1, 8, dim=2, alpha=2.5, tau=7.0, sigma=math.sqrt(2) * 7**1.5, seed=2)
    ref = solve_navier_stokes(w0, fno_forcing(8), 1e-3, 3.0, 0.1, 3)
    np.testing.assert_allclose(d["fields"]["w"], ref.astype(np.float32), rtol=1e-6, atol=1e-6)
    # round(T) recorded 2 states for T = 2.5 (t = 1.25, 2.5) and 1 for T = 0.5
    for T in (2.5, 0.5):
        with pytest.raises(ValueError, match=rf"T must be a whole number >= 1, got T={T}"):
            generate_navier_stokes(1, 8, T=T, dt=0.05)
    assert generate_navier_stokes(1, 8, T=2.5, dt=0.05, record_steps=5)["fields"]["w"].shape[1] == 6
    # a bool batch_size or subsample ran as 1; 1.5 reached range()'s TypeError
    for size in (True, 1.5):
        with pytest.raises(ValueError, match=rf"integer batch_size >= 1 .*got {size}"):
            generate_navier_stokes(1, 8, T=1.0, dt=0.1, batch_size=size)
    with pytest.raises(ValueError, match="subsample >= 1 .*subsample=True"):
        generate_navier_stokes(1, 8, T=1.0, dt=0.1, subsample=True)


def test_grf_refuses_a_negative_tau_or_a_zero_tau_with_the_default_sigma():
    """tau < 0 made the default amplitude tau^(alpha - d/2) complex: tau = -7 (alpha 2.5, 2D) drew
    fields of variance 0.0235 where grf_variance says 0.0342; tau = 0 made every sample zero."""
    msg = (r"^expected tau > 0 \(an inverse length scale\), or tau = 0 with an explicit sigma "
           r"\(sigma=None means tau\^\(alpha - dim/2\), zero at tau = 0\), got tau={}, sigma=None$")  # fmt: skip
    for tau, dim, alpha in ((-7.0, 2, 2.5), (-3.0, 1, 2.0), (0.0, 1, 2.0)):
        with pytest.raises(ValueError, match=msg.format(tau)):
            sample_grf(2, 8, dim=dim, alpha=alpha, tau=tau)
        with pytest.raises(ValueError, match=msg.format(tau)):
            grf_variance(8, dim=dim, alpha=alpha, tau=tau)
    with pytest.raises(ValueError, match=msg.format(-3.0)):
        sample_darcy_coefficient(1, 5, tau=-3.0)
    # accepted: tau = 0 with sigma given is the law sigma^2 (4 pi^2 |k|^2)^-alpha (no mean mode);
    # the pointwise variance of 20000 draws is 2 sum_{k=1}^{4} (4 pi^2 k^2)^-2 (1 for Nyquist)
    u = sample_grf(20000, 8, alpha=2.0, tau=0.0, sigma=1.0, seed=2)
    lam = [(4 * math.pi**2 * k**2) ** -2.0 for k in range(1, 5)]
    exact = 2 * sum(lam[:3]) + lam[3]
    assert math.isclose(grf_variance(8, alpha=2.0, tau=0.0, sigma=1.0), exact, rel_tol=1e-12)
    assert abs(u.var(axis=0).mean() / exact - 1) < 0.05


def test_burgers_and_navier_stokes_refuse_grids_the_two_thirds_rule_leaves_without_modes():
    """At N = 2 the 2/3 rule kept only the mean of the flux / advection term (the heat equation
    came back as Burgers or Navier-Stokes data); at N = 3 Burgers' kept k = 1 took the aliased
    k = 2 (7.5e-3 off the |k| <= 1 Galerkin solution)."""
    nu, T = 0.1, 0.5
    for n in (2, 3):
        with pytest.raises(ValueError, match=rf"^expected u0 on N >= 4 grid points, got N={n}: "):
            solve_burgers(np.cos(2 * np.pi * np.arange(n) / n), nu, T, 5)
    with pytest.raises(ValueError, match=r"^expected u0 on N >= 4 grid points, got N=2: "):
        GENERATORS["burgers"](1, 2)
    with pytest.raises(
        ValueError, match=r"^expected subsample >= 1 dividing resolution 8, got 2.0"
    ):
        GENERATORS["burgers"](1, 8, subsample=2.0)  # was numpy's slice TypeError, after the solve
    ns = r"^expected w0 of shape \(N, N\) or \(batch, N, N\) with N even and >= 4 .*, got \(2, 2\)$"
    with pytest.raises(ValueError, match=ns):
        solve_navier_stokes(np.zeros((2, 2)), 0.0, 1e-2, 1.0, 1e-2, 1)
    with pytest.raises(ValueError, match=r"^expected an even resolution >= 4 .*resolution=2, "):
        generate_navier_stokes(1, 2, T=1.0, dt=0.1)
    # accepted N = 4: u0 = 1/2 + 3/10 cos(2 pi x) is the |k| <= 1 Galerkin solution
    # 1/2 + 3/10 exp(-4 pi^2 nu t) cos(2 pi (x - t/2)) (the flux's k = 2 part is dropped)
    x = np.arange(4) / 4
    t = np.linspace(0.0, T, 6)[:, None]
    galerkin = 0.5 + 0.3 * np.exp(-4 * np.pi**2 * nu * t) * np.cos(2 * np.pi * (x - 0.5 * t))
    assert (
        np.abs(solve_burgers(0.5 + 0.3 * np.cos(2 * np.pi * x), nu, T, 5) - galerkin).max() < 1e-6
    )
    # and Navier-Stokes from rest on 4^2: w(t) = (1 - exp(-8 pi^2 nu t)) / (8 pi^2 nu) f exactly
    # (w depends on x + y only, so it is not advected)
    data = generate_navier_stokes(1, 4, T=1.0, dt=1e-2, nu=0.01, sigma=0.0, precision="float64")
    lam = 8 * np.pi**2 * 0.01
    shell = (1 - np.exp(-lam)) / lam * fno_forcing(4)
    assert np.abs(data["fields"]["w"][0, -1] - shell).max() < 2e-4 * np.abs(shell).max()


def test_burgers_and_navier_stokes_refuse_an_unstable_step_instead_of_returning_garbage():
    """|u| of a Burgers solution never grows and |w(t)| <= |w0| + t |f| for Navier-Stokes (both
    L2): a given dt past the stable step returned NaN or finite garbage as data."""
    u0 = sample_grf(2, 128, alpha=2.0, tau=5.0, sigma=25.0, seed=0)
    for dt in (0.2, 0.5):  # NaN, and |u(1)| / |u0| = 1.0e14
        with pytest.raises(RuntimeError, match=rf"^solve_burgers: .* dt={dt:g} is unstable here"):
            solve_burgers(u0, 0.01, 1.0, 1, dt=dt)
    # accepted: dt = 0.05 agrees with the default step (about 1e-3) to 2.5e-4 (max |u| 1.17)
    ref = solve_burgers(u0, 0.01, 1.0, 1)
    assert np.abs(solve_burgers(u0, 0.01, 1.0, 1, dt=0.05) - ref).max() < 1e-3
    w0 = 100 * sample_grf(1, 32, dim=2, alpha=2.5, tau=7.0, sigma=math.sqrt(2) * 7**1.5, seed=0)
    for dt in (0.01, 0.002):  # NaN, and max |w(1)| = 1562 where dt = 0.001 gives 70
        with pytest.raises(RuntimeError, match=rf"^solve_navier_stokes: .* dt={dt:g} is unstable"):
            solve_navier_stokes(w0, 0.0, 1e-3, 1.0, dt, 1)
    with pytest.raises(RuntimeError, match=r"^solve_navier_stokes: .* dt=0.1 is unstable"):
        generate_navier_stokes(1, 16, dt=0.1, sigma=10 * math.sqrt(2) * 7**1.5)
    # accepted: dt = 0.001 keeps |w| (unforced) non-increasing and the mean vorticity zero
    w = solve_navier_stokes(w0, 0.0, 1e-3, 1.0, 1e-3, 4)
    norms = np.sqrt((w[0] ** 2).sum(axis=(-2, -1)))
    assert np.all(np.diff(norms) <= 1e-9 * norms[0]) and norms[-1] < norms[0]
    assert np.abs(w[0].mean(axis=(-2, -1))).max() < 1e-10


def test_grf_refuses_an_alpha_without_finite_variance_and_matches_the_coth_sum_at_alpha_one():
    """alpha <= dim/2: the variance grew with the grid (alpha 0.5, 1D: 749, 1025, 1301 at
    N = 64, 256, 1024) and Burgers from alpha = -2 ran for minutes at a vanishing step."""
    for dim, alpha in ((1, 0.5), (1, -2.0), (2, 1.0)):
        msg = (
            rf"^expected alpha > dim/2 = {dim / 2:g} \(a field of finite variance; .*alpha={alpha}$"
        )
        with pytest.raises(ValueError, match=msg):
            sample_grf(2, 16, dim=dim, alpha=alpha, tau=5.0, sigma=25.0)
    with pytest.raises(ValueError, match=r"^expected alpha > dim/2 = 0.5 .*alpha=-2.0$"):
        GENERATORS["burgers"](1, 64, alpha=-2.0)
    # accepted alpha = 1 (1D): sum_{k != 0} (4 pi^2 k^2 + tau^2)^-1 = coth(tau/2) / (2 tau) - 1/tau^2
    # (sum 1/(k^2 + a^2) = pi coth(pi a) / a); the modes past N/2 hold about 1 / (pi^2 N) of it
    tau, N = 2.0, 4096
    exact = 1 / (2 * tau * math.tanh(tau / 2)) - 1 / tau**2
    tail = exact - grf_variance(N, alpha=1.0, tau=tau, sigma=1.0)
    assert 0.999 < tail * math.pi**2 * N < 1.001
    u = sample_grf(4000, 64, alpha=1.0, tau=tau, sigma=1.0, seed=1)
    assert abs(u.var(axis=0).mean() / grf_variance(64, alpha=1.0, tau=tau, sigma=1.0) - 1) < 0.05
