"""Config dataclasses <-> JSON: NumPy scalars are stored as the Python numbers they equal."""

from __future__ import annotations

import dataclasses
import json
import math
import os
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


def test_a_points_experiment_from_yaml_feeds_static_fields_to_the_branch(tmp_path):
    """``data: {view: points, inputs: [u], static_fields: [c]}`` from a YAML file: the branch
    input of every item is [u(input_step), c] (the written arrays, exactly), the Normalized
    wrapper's input statistics are [mu_u, mu_c] / [s_u, s_c] and its output statistics [mu_u]
    / [s_u], against numpy over the training split (1e-6), and the trained checkpoint applies
    them: its output equals the inner DeepONet on the input normalised by hand. Fails on the
    code before (build_views refused static_fields for view points)."""
    import sciml
    import sciml.data as sd
    from sciml.experiment import build_views, load_experiment, run

    rng = np.random.default_rng(0)
    n, steps, xs = 8, 4, 6
    u = (rng.standard_normal((n, steps, xs)) * 2 + 1).astype(np.float32)
    c = (1 + rng.random((n, xs))).astype(np.float32)
    data = tmp_path / "wave.h5"
    sd.write(data, fields={"u": u}, static_fields={"c": c}, coords={"x": np.linspace(0, 1, xs)})
    path = tmp_path / "exp.yaml"
    path.write_text(
        "model: {family: deeponet, config: {sensors: 12, coord_dim: 1, basis: 4,\n"
        "        branch: {hidden: [8]}, trunk: {hidden: [8]}}}\n"
        f"data: {{path: '{data}', view: points, inputs: [u], targets: [u], static_fields: [c],\n"
        "       input_step: 1, target_step: -1, n_points: 3, split: [0.5, 0.25, 0.25],\n"
        "       seed: 0, normalize: true}\n"
        "train: {epochs: 2, batch_size: 2, lr: 1e-3}\n"
        f"out: '{tmp_path / 'run'}'\n"
    )
    experiment = load_experiment(path)
    result = run(experiment, progress=False)
    spec = experiment.data
    splits = sd.split(n, spec.split, seed=spec.seed)
    train = list(splits.train)
    model = sciml.load(result["best_checkpoint"])
    u64, c64 = u[train].astype(np.float64), c[train].astype(np.float64)
    np.testing.assert_allclose(model.in_mean.numpy(), [u64.mean(), c64.mean()], rtol=1e-6)
    np.testing.assert_allclose(model.in_std.numpy(), [u64.std(), c64.std()], rtol=1e-6)
    np.testing.assert_allclose(model.out_mean.numpy(), [u64.mean()], rtol=1e-6)
    np.testing.assert_allclose(model.out_std.numpy(), [u64.std()], rtol=1e-6)

    test_view = build_views(spec, samples=list(splits.test))
    s = int(splits.test[0])
    item = test_view[0]
    np.testing.assert_array_equal(item["input"].numpy(), np.stack([u[s, 1], c[s]]))
    np.testing.assert_array_equal(item["target"][:, 0].numpy(), u[s, -1])
    x, pts = item["input"][None], item["x"][None]
    with torch.no_grad():
        got = model(x, x=pts)
        z = (x - model.in_mean[:, None]) / model.in_std[:, None]
        want = model.inner(z, x=pts) * model.out_std + model.out_mean
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    # a time-dependent name in static_fields is refused when the view is made, naming it
    bad = dataclasses.replace(spec, static_fields=("u",))
    with pytest.raises(ValueError, match=r"PointSamples expected static_fields .* got \['u'\]; "):
        build_views(bad)


def test_an_experiment_picks_best_by_its_monitor_and_mode(tmp_path):
    """``monitor: mse`` and ``mode: min`` beside ``loss`` in an experiment YAML reach the
    Trainer: `best` is the checkpoint at the step where the logged validation mse is lowest,
    read from metrics.json. Fails on the code before: the experiment refused both keys
    (``sciml train`` always kept the lowest rel_l2). (``mode: max`` is refused: see below.)"""
    mode = "min"
    from sciml.data.generators import generate
    from sciml.experiment import load_experiment, run

    data = tmp_path / "darcy.h5"
    generate("darcy", n=10, resolution=8, out=data, seed=0)
    path = tmp_path / "exp.yaml"
    path.write_text(
        "model: {family: fno, config: {modes: [3, 3], width: 4, n_layers: 1,\n"
        "        projection_channels: 4}}\n"
        f"data: {{path: '{data}', view: static_pairs, inputs: [a], targets: [u],\n"
        "       split: [0.6, 0.2, 0.2]}\n"
        "train: {epochs: 3, batch_size: 2, lr: 0.01, eval_every: 1, schedule: constant}\n"
        f"monitor: mse\nmode: {mode}\nout: '{tmp_path / 'run'}'\n"
    )
    experiment = load_experiment(path)
    assert (experiment.monitor, experiment.mode) == ("mse", mode)
    run(experiment, progress=False)
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rows = [r for r in rows if r.get("val_mse") is not None]
    assert len(rows) == 9  # 6 training samples, 3 steps an epoch, validated at each
    step = min(rows, key=lambda r: r["val_mse"])["step"]
    assert os.readlink(tmp_path / "run" / "best") == f"ckpt-{step}"
    assert step == 9  # training lowers the mse at every step here


@pytest.mark.parametrize("monitor", ["rel_l2", "mse", "loss"])
def test_an_experiment_refuses_mode_max_since_every_monitor_is_an_error(tmp_path, monitor):
    """``mode: max`` kept the highest validation error as `best`: with ``monitor: mse`` on the
    run above, `best` was ckpt-1, the worst of its 9 validations, and that model was the one
    evaluated on the test split. Every metric ``sciml train`` can monitor is lower-better, so
    ``max`` is refused when the file is read (before the data, here missing, are opened),
    naming the metrics, and so is an Experiment built in Python. Fails on the code before
    (DID NOT RAISE)."""
    from sciml.experiment import DataSpec, Experiment, ModelSpec, load_experiment

    message = (
        f"mode: max keeps the highest {monitor} as best, but every metric sciml train can "
        "monitor (rel_l2, mse, loss) is an error, lower is better; write mode: min (the "
        "default) or leave mode out"
    )
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"model: {{family: fno}}\ndata: {{path: missing.h5}}\nmonitor: {monitor}\nmode: max\n"
    )
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == f"{path}: {message}"
    with pytest.raises(ValueError) as info:
        Experiment(ModelSpec("fno"), DataSpec("missing.h5"), monitor=monitor, mode="max")
    assert str(info.value) == message
    path.write_text(f"model: {{family: fno}}\ndata: {{path: missing.h5}}\nmonitor: {monitor}\n")
    assert load_experiment(path).mode == "min"  # the default, and the only value


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "monitor: accuracy",
            r"exp\.yaml: monitor: expected one of \['rel_l2', 'mse', 'loss'\], got 'accuracy'",
        ),
        ("mode: MAX", r"exp\.yaml: mode: expected one of \['min', 'max'\], got 'MAX'"),
        ("train: {epochs: 1, monitor: mse}", r"train\.monitor: .*a key of the experiment"),
        ("train: {mode: max}", r"train\.mode: .*a key of the experiment"),
    ],
)
def test_an_experiment_refuses_an_unknown_monitor_or_mode_when_read(tmp_path, line, message):
    """An unknown metric name or mode is refused by load_experiment, before any data is read
    (the data file here does not exist); ``monitor`` / ``mode`` under ``train`` (where
    TrainConfig's fields go) is refused naming the experiment's own keys."""
    from sciml.experiment import load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text("model: {family: fno}\ndata: {path: missing.h5}\n" + line + "\n")
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


@pytest.mark.parametrize(
    ("name", "text", "key", "lines"),
    [
        ("exp.yaml", "model: {family: fno}\ndata: {path: a.h5}\ntrain: {epochs: 1}\n"
         "train: {epochs: 2}\n", "train", (3, 4)),
        ("exp.yaml", "model: {family: fno}\ndata: {path: a.h5}\n"
         "train:\n  epochs: 1\n  lr: 1e-3\n  epochs: 2\n", "epochs", (4, 6)),
        ("exp.json", '{"model": {"family": "fno"}, "data": {"path": "a.h5"},\n'
         '"train": {"epochs": 1, "epochs": 2}}\n', "epochs", None),
    ],
)  # fmt: skip
def test_an_experiment_with_a_duplicate_key_is_refused_naming_it(tmp_path, name, text, key, lines):
    """YAML and JSON readers keep the last of two equal keys: ``train: {epochs: 1, epochs: 2}``
    trained 2 epochs and a second ``train:`` block replaced the first whole, without a word.
    A YAML mapping's keys are unique by the spec; both readers now refuse a repeated key,
    naming it (and the YAML lines of both), and a merge key (``<<: *base``) may still be
    overridden."""
    from sciml._yaml import load_yaml
    from sciml.experiment import load_experiment

    path = tmp_path / name
    path.write_text(text)
    message = rf"{path.name}: .*duplicate key '{key}'"
    if lines:
        message += rf".*line {lines[1]}.*first at line {lines[0]}"
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)
    merged = load_yaml("base: &b {epochs: 1, lr: 0.5}\ntrain: {<<: *b, epochs: 3}\n")
    assert merged["train"] == {"epochs": 3, "lr": 0.5}
    assert load_yaml("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


def test_a_recipe_with_a_duplicate_key_is_refused(tmp_path):
    """``n: 4`` then ``n: 8`` in a data recipe generated 8 samples without a word."""
    from sciml.data.generators.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("generator: darcy\nn: 4\nresolution: 8\nn: 8\nout: r.h5\n")
    with pytest.raises(Exception, match=r"duplicate key 'n'.*line 4.*first at line 2"):
        load_recipe(path)


def test_a_relative_data_path_found_in_two_places_is_refused_naming_both(tmp_path, monkeypatch):
    """A relative ``data.path`` is read from the current folder, else beside the experiment
    file. Where both hold a file of that name (two different files), the run trained on the
    current folder's without a word, though the file's author meant the one beside it (and
    the code's own comment said paths are relative to the experiment file): refused, naming
    both. One file in one place (or the same file reached both ways) is taken as before."""
    from sciml.experiment import load_experiment

    cwd, cfg = tmp_path / "cwd", tmp_path / "cfg dir"
    for folder in (cwd, cfg):
        (folder / "data").mkdir(parents=True)
    exp = cfg / "e s.yaml"
    exp.write_text("model: {family: fno}\ndata: {path: data/d.h5}\n")
    monkeypatch.chdir(cwd)
    assert load_experiment(exp).data.path == "data/d.h5"  # in neither place: left as written
    (cfg / "data" / "d.h5").write_bytes(b"beside")
    assert load_experiment(exp).data.path == str(cfg / "data" / "d.h5")
    (cwd / "data" / "d.h5").write_bytes(b"in cwd")
    with pytest.raises(ConfigError, match=r"data\.path: data/d\.h5 names two files") as info:
        load_experiment(exp)
    assert str(cwd / "data" / "d.h5") in str(info.value)
    assert str(cfg / "data" / "d.h5") in str(info.value)
    (cfg / "data" / "d.h5").unlink()
    assert load_experiment(exp).data.path == "data/d.h5"  # the current folder's alone
    monkeypatch.chdir(cfg)  # one file reached both ways: no ambiguity
    (cfg / "data" / "d.h5").write_bytes(b"beside")
    assert load_experiment(exp).data.path == "data/d.h5"


def test_sciml_train_names_data_path_when_its_file_does_not_exist(tmp_path, capsys, monkeypatch):
    """``data: {path: nope.h5}`` said only ``sciml: error: nope.h5: no such file``, naming
    neither the key nor where a relative path is looked up."""
    from sciml.cli import main

    monkeypatch.chdir(tmp_path)
    exp = tmp_path / "e.yaml"
    exp.write_text(
        "model: {family: fno, config: {in_channels: 1, out_channels: 1}}\n"
        "data: {path: data/nope.h5}\nout: run\n"
    )
    assert main(["train", str(exp), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sciml: error: {exp}: data.path: "), err
    assert "data/nope.h5" in err and "does not exist" in err
    assert "current folder" in err and "experiment file" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("subsample: 0", "subsample: expected an integer >= 1 (keep every subsample-th grid point)"
         ", got 0"),
        ("subsample: -1", "subsample: expected an integer >= 1 (keep every subsample-th grid "
         "point), got -1"),
        ("seed: -1", "seed: expected an integer >= 0 (the seed of the split's shuffle), got -1"),
        ("n_in: 0", "n_in: expected an integer >= 1, got 0"),
        ("n_out: 0", "n_out: expected an integer >= 1, got 0"),
        ("stride: 0", "stride: expected an integer >= 1, got 0"),
        ("max_lead: -1", "max_lead: expected an integer >= 0 or null (no limit), got -1"),
        ("n_points: 0", "n_points: expected an integer >= 1 or null (every grid point), got 0"),
    ],
)  # fmt: skip
def test_a_data_spec_out_of_range_is_refused_naming_its_key_when_read(tmp_path, entry, message):
    """``data: {subsample: 0}`` was refused only by the view, after the data file was opened,
    as ``f.h5: expected a spatial selection of an int stride >= 1 ...`` (no key named), and
    ``seed: -1`` as ``data.split: expected non-negative integer`` (NumPy's words, the wrong
    key). Each is refused when the experiment is read (the data file need not exist),
    naming the key, what it expects and what it got; n_out: 0 under a view that does not use
    it (snapshots) trained on."""
    from sciml.experiment import DataSpec, load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text(
        f"model: {{family: fno}}\ndata: {{path: missing.h5, view: snapshots, {entry}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == f"{path}: data.{message}"
    assert DataSpec(path="f.h5", subsample=2, seed=0, max_lead=None, n_points=3).subsample == 2


def test_an_experiment_json_with_a_utf8_byte_order_mark_loads(tmp_path):
    """Windows editors (Notepad, PowerShell's Out-File) start a UTF-8 file with a byte order
    mark. The YAML reader skipped it, but a .json experiment was refused as "not valid JSON
    (Unexpected UTF-8 BOM (decode using utf-8-sig) ...)". It loads as the file without it."""
    from sciml.experiment import load_experiment

    text = '{"model": {"family": "fno"}, "data": {"path": "d.h5"}, "train": {"epochs": 2}}'
    plain, marked = tmp_path / "plain.json", tmp_path / "marked.json"
    plain.write_text(text, encoding="utf-8")
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_experiment(marked) == load_experiment(plain)
    assert load_experiment(marked).train == {"epochs": 2}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ({"input_step": 9}, r"data\.input_step: expected a step of .*b\.h5's 9 steps \(0 to 8, "
         r"or -9 to -1 from the end\), got 9"),
        ({"target_step": -10}, r"data\.target_step: expected a step of .*b\.h5's 9 steps \(0 to "
         r"8, or -9 to -1 from the end\), got -10"),
    ],
)  # fmt: skip
def test_a_snapshot_step_outside_the_file_names_its_key(tmp_path, steps, message):
    """``data: {view: snapshots, input_step: 50}`` said ``b.h5: step 50 out of range
    n_steps=9``, naming neither input_step nor target_step. The view names the key; the
    steps at both ends of the range build the pair the file holds there."""
    import h5py

    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, build_views

    path = generate("burgers", n=2, resolution=8, n_steps=8, out=tmp_path / "b.h5", seed=0)
    with pytest.raises(ValueError, match=message):
        build_views(DataSpec(path=str(path), view="snapshots", **steps))
    view = build_views(DataSpec(path=str(path), view="snapshots", input_step=-9, target_step=8))
    with h5py.File(path, "r") as f:
        u = np.asarray(f["fields/u"])
    np.testing.assert_array_equal(view[1]["input"][0].numpy(), u[1, 0])
    np.testing.assert_array_equal(view[1]["target"][0].numpy(), u[1, 8])


def test_a_split_of_integer_counts_is_taken_as_counts(tmp_path):
    """``split: [2, 1, 1]`` was read as the fractions [2.0, 1.0, 1.0] (the field was typed
    float) and refused as "fractions [2.0, 1.0, 1.0] sum to 4.0 > 1", though
    :func:`sciml.data.split` takes all-integer sizes as counts. They are counts now; a mix of
    counts and fractions is refused naming the key."""
    import sciml.data as sd
    from sciml.data.generators import generate
    from sciml.experiment import _splits, load_experiment

    data = generate("darcy", n=4, resolution=8, out=tmp_path / "d.h5", seed=1)
    path = tmp_path / "exp.yaml"
    path.write_text(f"model: {{family: fno}}\ndata: {{path: {data}, split: [2, 1, 1], seed: 3}}\n")
    spec = load_experiment(path).data
    assert spec.split == (2, 1, 1) and all(type(s) is int for s in spec.split)
    made = _splits(sd.open(data), spec, tmp_path / "splits.json", resume=False)
    assert (len(made.train), len(made.val), len(made.test)) == (2, 1, 1)
    assert sorted(made.train + made.val + made.test) == [0, 1, 2, 3]
    assert made == sd.split(4, [2, 1, 1], seed=3)
    fractions = tmp_path / "fractions.yaml"
    fractions.write_text("model: {family: fno}\ndata: {path: d.h5, split: [0.5, 0.5, 0]}\n")
    assert load_experiment(fractions).data.split == (0.5, 0.5, 0)
    path.write_text("model: {family: fno}\ndata: {path: d.h5, split: [16, 0.1, 0.1]}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == (
        f"{path}: data.split: expected fractions (summing to at most 1) or sample counts (all "
        "integers), got [16, 0.1, 0.1], a mix of counts and fractions; write all three as "
        "counts or all three as fractions"
    )
    # [1, 0, 0] meant every sample for training when splits were fractions; as counts it is
    # one sample, so it is refused as ambiguous rather than changing an old experiment silently
    path.write_text("model: {family: fno}\ndata: {path: d.h5, split: [1, 0, 0]}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == (
        f"{path}: data.split: [1, 0, 0] is ambiguous: integers are sample counts (here one "
        "sample in all), where it once meant fractions; write [1.0, 0.0, 0.0] for fractions, "
        "or counts summing to 2 or more"
    )
    path.write_text("model: {family: fno}\ndata: {path: d.h5, split: [1.0, 0, 0]}\n")
    assert load_experiment(path).data.split == (1.0, 0, 0)


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ("[a, 0.1, 0.1]", "data.split[0]: expected a number, got 'a'"),
        ("[0.8, true, 0.1]", "data.split[1]: expected a number, got True"),
        ("[2, 1, null]", "data.split[2]: expected a number, got None"),
    ],
)  # fmt: skip
def test_a_split_entry_that_is_not_a_number_says_a_number_is_expected(tmp_path, split, message):
    """``split: [a, 0.1, 0.1]`` said ``data.split[0]: 'a' matches none of int | float``, in
    Python's types; it says a number is expected (the key says what for: data.split takes
    counts or fractions, as its docs say)."""
    from sciml.experiment import load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text(f"model: {{family: fno}}\ndata: {{path: d.h5, split: {split}}}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"inputs": ["b"], "targets": ["u"]},
         "data.inputs: D: no field 'b'; static fields are ['a', 'u']"),
        ({"inputs": ["a"], "targets": ["x"]},
         "data.targets: D: no field 'x'; static fields are ['a', 'u']"),
        ({"view": "windows", "inputs": ["q"]}, "data.inputs: B: no field 'q'; fields are ['u']"),
        ({"view": "all_pairs", "targets": ["q"]},
         "data.targets: B: no field 'q'; fields are ['u']"),
        ({"view": "snapshots", "inputs": ["q"], "targets": ["q"]},
         "data.inputs and data.targets: B: no field 'q'; fields are ['u']"),
        ({"view": "points", "inputs": ["u"], "targets": ["q"]},
         "data.targets: B: no field 'q'; fields are ['u']"),
        ({"view": "snapshots", "static_fields": ["q"]}, "data.static_fields: B: SnapshotPairs "
         "expected static_fields among the file's static fields [], got ['q']"),
        ({"view": "windows", "static_fields": ["q"]}, "data.static_fields: B: Windows expected "
         "static_fields among the file's static fields [], got ['q']"),
        ({"view": "all_pairs", "static_fields": ["u"]}, "data.static_fields: B: AllPairs "
         "expected static_fields among the file's static fields [], got ['u']; ['u'] are "
         "time-dependent: they go in fields / inputs, which give them at each step"),
        ({"view": "points", "inputs": ["u"], "targets": ["u"], "static_fields": ["q"]},
         "data.static_fields: B: PointSamples expected static_fields among the file's static "
         "fields [], got ['q']"),
    ],
)  # fmt: skip
def test_a_field_the_file_lacks_names_its_key(tmp_path, data, message):
    """``data: {inputs: [b]}`` said ``d.h5: no field 'b'; static fields are ['a', 'u']``,
    naming no key of the experiment; the key (or keys) holding the name now lead the
    message. A static field the file lacks (``b.h5: SnapshotPairs expected static_fields
    among the file's static fields [], got ['q']``) is led by ``data.static_fields``."""
    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, build_views

    d = generate("darcy", n=2, resolution=8, out=tmp_path / "d.h5", seed=1)
    b = generate("burgers", n=2, resolution=8, n_steps=4, out=tmp_path / "b.h5", seed=0)
    path = b if data.get("view") else d
    with pytest.raises(ValueError) as info:
        build_views(DataSpec(path=str(path), **data))
    assert str(info.value) == message.replace("D", str(d)).replace("B", str(b))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("inputs: [a, a]", "inputs: expected each field name once, got ['a', 'a'], which "
         "repeats 'a'; a field is one channel, list it once"),
        ("targets: [u, v, u, v, w]", "targets: expected each field name once, got ['u', 'v', "
         "'u', 'v', 'w'], which repeats 'u', 'v'; a field is one channel, list it once"),
        ("static_fields: [c, c]", "static_fields: expected each field name once, got ['c', "
         "'c'], which repeats 'c'; a field is one channel, list it once"),
    ],
)  # fmt: skip
def test_a_field_named_twice_in_one_list_is_refused_naming_the_key(tmp_path, entry, message):
    """``data: {inputs: [a, a]}`` trained on two identical channels of ``a`` without a word.
    A repeat within one list is refused when the experiment is read; the same field in
    inputs and targets (u -> later u) is still accepted."""
    from sciml.experiment import load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text(f"model: {{family: fno}}\ndata: {{path: d.h5, view: snapshots, {entry}}}\n")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(info.value) == f"{path}: data.{message}"
    path.write_text("model: {family: fno}\ndata: {path: d.h5, view: snapshots, inputs: [u, v], "
                    "targets: [v, u], static_fields: [c]}\n")  # fmt: skip
    spec = load_experiment(path).data
    assert (spec.inputs, spec.targets, spec.static_fields) == (("u", "v"), ("v", "u"), ("c",))


def test_a_tilde_in_data_path_and_out_is_the_home_folder(tmp_path, monkeypatch):
    """A shell expands ``~`` on its command line, not inside an experiment file:
    ``data.path: ~/d.h5`` was looked up as ``./~/d.h5`` and ``out: ~/runs/x`` made a folder
    named ``~``. Both are expanded when the file is read; other paths are kept as written."""
    from sciml.experiment import load_experiment

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "exp.yaml"
    path.write_text("model: {family: fno}\ndata: {path: ~/d.h5}\nout: ~/runs/x\n")
    experiment = load_experiment(path)
    assert (experiment.data.path, experiment.out) == (f"{home}/d.h5", f"{home}/runs/x")
    path.write_text("model: {family: fno}\ndata: {path: data/d~.h5}\nout: runs/~x\n")
    experiment = load_experiment(path)
    assert (experiment.data.path, experiment.out) == ("data/d~.h5", "runs/~x")
