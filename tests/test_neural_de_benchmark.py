"""The synthetic data of ``benchmarks/neural_de.py`` against their generating ODEs.

The latent-ODE rows of that benchmark are read against an "exact ODE" row: the generating
dynamics solved by the same Dopri5 and scored like the models. These tests check that this row is
what it claims: the closed forms used to make the data and the ODE solves agree to within the
observation noise, so the exact row's error is the noise floor and nothing else.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "neural_de.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("neural_de_benchmark", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sparse_series_exact_row_is_the_noise_floor(bench):
    torch.set_num_threads(1)
    t, x, mask, enc, params = bench.sparse_series(200, torch.Generator().manual_seed(3))
    # observed with probability 0.3, the encoder sees half of those: binomial bands of 4 sigma
    n = mask.numel()
    assert abs(float(mask.mean()) - 0.3) < 4 * (0.3 * 0.7 / n) ** 0.5
    assert abs(float(enc.mean()) - 0.15) < 4 * (0.15 * 0.85 / n) ** 0.5
    assert torch.all(enc <= mask) and torch.all(x[mask == 0] == 0)
    out = bench.exact_sparse((t, None, (x, mask, enc), params), bench.TOL["sparse"])
    # the mean of ~ 28,800 squared N(0, 0.05^2) draws (200 x 40 x 12 x 0.3): relative sd
    # sqrt(2 / 28800) = 0.8%; measured -2.1%
    assert out["metric"] == pytest.approx(0.05**2, rel=0.04)
    assert 20 < out["nfe"] < 500
    # rates 10% off: the observations see it above the noise floor (measured 1.18x)
    k, e, z0 = params
    off = bench.exact_sparse((t, None, (x, mask, enc), (1.1 * k, e, z0)), bench.TOL["sparse"])
    assert off["metric"] > 1.1 * out["metric"]


def test_oscillators_exact_row_is_the_noise_floor(bench):
    torch.set_num_threads(1)
    t, x, params = bench.oscillators(200, torch.Generator().manual_seed(3))
    out = bench.exact_latent((t, None, x, params), bench.TOL["latent"])
    # 200 x 30 x 2 squared N(0, 0.02^2) draws: relative sd 1.3%; measured -1.4%
    assert out["metric"] == pytest.approx(0.02**2, rel=0.06)
    # a wrong rate in the ODE is seen well above the floor
    a, c, w, p = params
    off = bench.exact_latent((t, None, x, (a, c, 1.05 * w, p)), bench.TOL["latent"])
    assert off["metric"] > 5 * 0.02**2
