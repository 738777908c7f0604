"""Config dataclasses <-> JSON: NumPy scalars are stored as the Python numbers they equal."""

from __future__ import annotations

import dataclasses
import json
import math
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


def test_yaml_reads_yaml_1_2_floats_and_nothing_else_changes():
    """PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``1e-3`` was the
    string '1e-3'. ``load_yaml`` reads every YAML 1.2 float as a float; ints, .inf / .nan and
    quoted scalars read as ``yaml.safe_load`` reads them, and yaml.safe_load itself is unchanged."""
    import yaml

    from sciml._yaml import load_yaml

    text = "\n".join(
        ["a: 1e-3", "b: 1E+5", "c: -2e4", "d: 1.0e3", "e: -.5", "f: 1.0e-3", "g: 1.5"]
        + ["h: '1e-3'", 'i: "1e-3"', "j: 10", "k: 1_000", "l: 1:30", "m: 0x1F", "n: 1e3x"]
        + ["o: .inf", "p: -.inf", "q: .nan", "r: 2001-12-14", "s: true", "t: e3"]
    )
    got, old = load_yaml(text), yaml.safe_load(text)
    floats = {"a": 1e-3, "b": 1e5, "c": -2e4, "d": 1e3, "e": -0.5, "f": 1e-3, "g": 1.5}
    for key, value in floats.items():
        assert type(got[key]) is float and got[key] == value, key
    assert [old[k] for k in "abcde"] == ["1e-3", "1E+5", "-2e4", "1.0e3", "-.5"]  # YAML 1.1
    for key in "fghijklmnoprst":
        assert type(got[key]) is type(old[key]) and got[key] == old[key], key
    assert got["h"] == got["i"] == "1e-3" and got["j"] == 10 and got["k"] == 1000
    assert got["l"] == 90 and got["m"] == 31 and got["o"] == math.inf and got["p"] == -math.inf
    assert math.isnan(got["q"]) and math.isnan(old["q"])


def test_an_experiment_yaml_with_lr_1e_3_loads_and_quoted_numbers_stay_strings(tmp_path):
    """``train: {lr: 1e-3}`` in an experiment YAML was refused ("expected a number, got
    '1e-3'"); now it is 0.001, ints stay ints, a quoted '1e-3' stays a string (a path, the out
    directory), and the config's type checks still refuse a quoted number for lr."""
    from sciml.experiment import load_experiment
    from sciml.train import TrainConfig

    path = tmp_path / "exp.yaml"
    path.write_text(
        "model: {family: fno, config: {in_channels: 1, out_channels: 1}}\n"
        "data: {path: '1e-3', view: static_pairs}\n"
        "train: {epochs: 10, batch_size: 1_000, lr: 1e-3, weight_decay: 2E-5}\n"
        "out: '1e-3'\n"
    )
    experiment = load_experiment(path)
    config = config_from_dict(TrainConfig, experiment.train, where="train")
    assert type(config.lr) is float and config.lr == 0.001
    assert type(config.weight_decay) is float and config.weight_decay == 2e-5
    assert type(config.epochs) is int and config.epochs == 10
    assert type(config.batch_size) is int and config.batch_size == 1000
    assert experiment.out == "1e-3" and experiment.data.path == "1e-3"
    path.write_text(path.read_text().replace("lr: 1e-3", "lr: '1e-3'"))
    with pytest.raises(ConfigError, match=r"expected a number, got '1e-3'"):
        config_from_dict(TrainConfig, load_experiment(path).train, where="train")
