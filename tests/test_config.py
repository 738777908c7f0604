"""Config dataclasses <-> JSON: NumPy scalars are stored as the Python numbers they equal."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest
import torch

from sciml._config import config_from_dict, config_to_dict
from sciml.errors import ConfigError
from sciml.models import FNO, FNOConfig, NODEConfig


def test_numpy_scalars_in_a_config_save_as_the_python_numbers_they_equal(tmp_path):
    # built from NumPy values (a sweep over np.arange, a step from an array): the config
    # checks accepted them, and save_pretrained failed at the end of the run before
    config = FNOConfig(
        in_channels=np.int64(1), out_channels=1, width=np.int32(6), modes=(np.int64(4), 4),
        n_layers=2,
    )  # fmt: skip
    data = config_to_dict(config)
    text = json.dumps(data)  # raised ConfigError before: np.int64 is not JSON-serialisable
    back = config_from_dict(FNOConfig, json.loads(text))
    assert back == config
    assert type(data["width"]) is int and data["width"] == 6
    assert data["modes"] == [4, 4] and all(type(m) is int for m in data["modes"])

    torch.manual_seed(0)
    model = FNO(config)
    model.save_pretrained(tmp_path / "m")
    loaded = FNO.from_pretrained(tmp_path / "m")
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)

    node = NODEConfig(rtol=np.float32(1e-4), atol=np.float64(1e-6))
    saved = config_to_dict(node)
    # float32's 1e-4 is stored as the float it is, not re-rounded to 1e-4
    assert saved["rtol"] == float(np.float32(1e-4)) != 1e-4
    assert json.loads(json.dumps(saved))["atol"] == 1e-6  # np.float64 is a float already


@dataclasses.dataclass(frozen=True)
class _Holder:
    value: Any = None


def test_values_json_cannot_hold_are_still_refused_by_name():
    for bad in (np.zeros(2), np.complex64(1j), np.datetime64("2026-01-01"), object()):
        with pytest.raises(ConfigError, match="not JSON-serialisable"):
            config_to_dict(_Holder(bad))
    assert config_to_dict(_Holder(np.bool_(True))) == {"value": True}
