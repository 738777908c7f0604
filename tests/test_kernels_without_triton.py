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


def test_dispatch_takes_a_device_or_its_name(monkeypatch):
    """backend_for is public and documented for a device: given its name ("cpu") it raised
    "'str' object has no attribute 'type'". Off CUDA it answers None (PyTorch) for a name as
    for a torch.device, even with a measurement recorded for the shape."""
    monkeypatch.setitem(sciml.kernels.DISPATCH_TABLE, ("", 1), [(1, 10**9)])
    for device in ("cpu", torch.device("cpu"), "meta"):
        assert sciml.kernels.backend_for((64,), (8,), device) is None
    with pytest.raises(RuntimeError, match="Expected one of"):
        sciml.kernels.backend_for((64,), (8,), "gpu")
