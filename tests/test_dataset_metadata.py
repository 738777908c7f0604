"""H5Dataset's metadata properties say what they hold in each case (their docstrings are the
API reference's only description of them), checked against files written here."""

from __future__ import annotations

import numpy as np

import sciml.data as sd
from sciml.data.dataset import H5Dataset


def test_time_of_static_only_files(tmp_path):
    # static fields only: n_steps is None, but time is None only where no time axis was stored
    ds = sd.open(sd.write(tmp_path / "a.h5", static_fields={"k": np.ones((2, 4))}))
    assert ds.n_steps is None and ds.time is None
    ds = sd.open(
        sd.write(tmp_path / "b.h5", static_fields={"k": np.ones((2, 4))}, time=[0.0, 0.5, 1.0])
    )
    assert ds.n_steps is None
    np.testing.assert_array_equal(ds.time, [0.0, 0.5, 1.0])
    doc = " ".join(H5Dataset.time.__doc__.split())
    assert "None`` for a file with static fields only" not in doc
    assert "static fields only may still have one" in doc
