"""``sciml.kernels`` where Triton is not installed: the one case where its error message
matters, so this file does not ``importorskip("triton")`` as ``test_kernels.py`` does (there,
on a machine without Triton, a test of that message was always skipped). Triton is hidden from
``sys.modules`` for the test, whether or not it is installed, and put back afterwards."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

import sciml.kernels
from sciml.kernels import TritonSpectral
from sciml.layers import SpectralConv
from sciml.layers.spectral_backends import FFT


def test_without_triton_the_error_names_the_extra(monkeypatch):
    """A missing Triton surfaced as Python's bare ``No module named 'triton'`` at the first
    transform; now an ImportError naming the extra (``sciml[kernels]``, which pyproject fills
    with triton), while ``impl="torch"`` keeps working and matches the FFT backend."""
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^kernels = \[\s*"triton[>=<]', pyproject, re.M)
    # no Triton: `import triton` raises, and the kernels module must be imported afresh
    monkeypatch.setitem(sys.modules, "triton", None)
    monkeypatch.delitem(sys.modules, "sciml.kernels.triton_kernels", raising=False)
    monkeypatch.delattr(sciml.kernels, "triton_kernels", raising=False)
    layer = SpectralConv(2, 3, (2, 3), backend=FFT()).double()
    u = torch.randn(2, 2, 8, 10, dtype=torch.float64)
    ref = layer(u)
    layer.backend = TritonSpectral(impl="triton")
    with pytest.raises(ImportError, match=r"need Triton: pip install 'sciml\[kernels\]'"):
        layer(u)
    assert "sciml.kernels.triton_kernels" not in sys.modules  # no half-imported module kept
    layer.backend = TritonSpectral(impl="torch")
    torch.testing.assert_close(layer(u), ref, rtol=0, atol=1e-12)
