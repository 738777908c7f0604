"""FNO: its positional grid against neuraloperator's in 1D and 3D, and its resolution claim."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sciml.models import FNO, FNOConfig


def _band_limited(shape: tuple[int, ...], k: int, seed: int) -> torch.Tensor:
    """A real trigonometric polynomial of degree ``k`` per dim on the periodic grid ``i / n``,
    ``(1, 1, *shape)`` in float64: the same function at every resolution."""
    g = torch.Generator().manual_seed(seed)
    axes = [torch.arange(n, dtype=torch.float64) / n for n in shape]
    grid = torch.meshgrid(*axes, indexing="ij")
    out = torch.zeros(shape, dtype=torch.float64)
    for freq in itertools.product(range(-k, k + 1), repeat=len(shape)):
        phase = sum(2 * math.pi * f * x for f, x in zip(freq, grid))
        wave = torch.cos(phase) if sum(freq) % 2 == 0 else torch.sin(phase)
        out += torch.randn((), generator=g, dtype=torch.float64) * wave
    return out[None, None]


@pytest.mark.parametrize(
    "n_modes, grid",
    [((8,), (20,)), ((4, 6, 4), (8, 10, 6))],  # 2D (16, 12): test_convert_neuraloperator.py
)
def test_fno_with_its_grid_embedding_matches_neuraloperator_in_1d_and_3d(n_modes, grid):
    """neuraloperator's ``GridEmbeddingND`` appends ``i / n_k`` along each dim ``k`` (its
    ``linspace(0, 1, n + 1)[:-1]``); a grid on non-cubic 3D points would show an axis mix-up."""
    pytest.importorskip("neuralop")
    from neuralop.models import FNO as NFNO

    from sciml.pretrained.convert_neuraloperator import fno_from_neuraloperator

    torch.manual_seed(0)
    src = NFNO(n_modes=n_modes, in_channels=2, out_channels=1, hidden_channels=6, n_layers=2)
    with torch.no_grad():
        for p in src.parameters():  # off the initial values (soft gates start at 1)
            p.add_(0.1 * torch.randn_like(p))
    dst = fno_from_neuraloperator(src.eval())
    assert dst.config.positional_embedding
    u = torch.randn(2, 2, *grid)
    with torch.no_grad():
        torch.testing.assert_close(dst(u), src(u), rtol=1e-5, atol=1e-6)


def _gap(modes: tuple[int, ...], low: tuple[int, ...], **options) -> float:
    """Relative difference of a float64 FNO's outputs for one band-limited function sampled on
    ``low`` and on the grid twice as fine, at the shared points."""
    high = tuple(2 * n for n in low)
    every_other = (..., *[slice(None, None, 2)] * len(low))
    u_low, u_high = _band_limited(low, 2, seed=1), _band_limited(high, 2, seed=1)
    torch.testing.assert_close(u_high[every_other], u_low, rtol=0, atol=1e-12)
    torch.manual_seed(0)
    model = FNO(FNOConfig(modes=modes, width=8, **options)).double().eval()
    with torch.no_grad():
        a, b = model(u_low), model(u_high)[every_other]
    assert a.abs().max() > 1e-2  # not vacuous: the outputs are not near zero
    return ((a - b).norm() / a.norm()).item()


@pytest.mark.parametrize(
    "modes, low", [((6,), (16,)), ((5, 4), (24, 20)), ((3, 3, 3), (12, 10, 14))]
)
def test_the_same_function_at_two_resolutions_gives_the_same_output(modes, low):
    """FNO claims ``resolution_invariant``: a band-limited input on a grid and on one twice as
    fine gives the same output at the shared points, up to aliasing.

    One Fourier layer without the positional embedding is exact: its spectral convolution sees
    a band-limited input and everything after it is pointwise. With three layers the
    activations' harmonics alias into the kept modes, differently on the two grids: a gap that
    falls fast as both grids are refined (here by 12x to 1e8x per doubling). The embedding's
    coordinates ``i / n`` jump from ``(n - 1) / n`` back to 0 at the edge, a sawtooth whose
    slowly decaying harmonics alias too (a few percent at these sizes)."""
    assert FNO.resolution_invariant
    assert _gap(modes, low, n_layers=1, positional_embedding=False) < 1e-12
    coarse = _gap(modes, low, n_layers=3, positional_embedding=False)
    fine = _gap(modes, tuple(2 * n for n in low), n_layers=3, positional_embedding=False)
    assert fine < coarse / 5 and coarse < 0.05, (coarse, fine)
    assert _gap(modes, low, n_layers=3) < 0.05
