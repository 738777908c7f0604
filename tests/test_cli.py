"""The ``sciml`` command: one-line errors, info, generate -> train -> evaluate end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import torchdiffeq

import sciml
import sciml.data as sd
from sciml.cli import main
from sciml.data.generators import GENERATORS
from sciml.models import FNO, FNOConfig


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "does-not-exist.yaml"], "experiment file does-not-exist.yaml does not exist"),
        (["info", "nowhere.h5"], "nowhere.h5: no such file or directory"),
        (
            ["data", "generate", "heat", "--n", "2", "--resolution", "8", "--out", "x.h5"],
            f"unknown generator 'heat'; available: {sorted(GENERATORS)}",
        ),
        (["data", "generate", "darcy", "--n", "2"], "missing --resolution, --out"),
        (  # NumPy's "expected non-negative integer", naming nothing
            [
                "data",
                "generate",
                "darcy",
                "--n",
                "2",
                "--resolution",
                "8",
                "--out",
                "x.h5",
                "--seed",
                "-1",
            ],
            "--seed expects an integer >= 0, got -1",
        ),  # fmt: skip
        (  # the last of two --set nu= won without a word
            [
                "data",
                "generate",
                "burgers",
                "--n",
                "2",
                "--resolution",
                "8",
                "--out",
                "x.h5",
                "--set",
                "nu=0.1",
                "--set",
                "nu=0.2",
            ],
            "--set nu given twice (0.1 and 0.2); give it once",
        ),  # fmt: skip
        (  # generate()'s own "got multiple values for keyword argument 'n'"
            [
                "data",
                "generate",
                "burgers",
                "--n",
                "2",
                "--resolution",
                "8",
                "--out",
                "x.h5",
                "--set",
                "n=3",
            ],
            "--set n=3: n is set by --n, not by --set (which sets the generator's options)",
        ),  # fmt: skip
        (
            [
                "data",
                "generate",
                "burgers",
                "--n",
                "2",
                "--resolution",
                "8",
                "--out",
                "x.h5",
                "--set",
                "out=y.h5",
            ],
            "--set out=y.h5: out is set by --out, not by --set",
        ),  # fmt: skip
        (  # an empty --out ("$OUT" unset) was dropped: the run went to the file's out
            ["train", "e.yaml", "--out", ""],
            "--out expects the run's folder, got ''",
        ),
        (  # out: '' is Path("."): the run's files went into the current folder
            ["train", "empty_out.yaml"],
            "empty_out.yaml: out: expected the run's folder, got ''",
        ),
        (["evaluate", "nowhere", "data.h5"], "nowhere: not a checkpoint directory"),
        (  # the evaluator's checks said "n: ..." / "seed: ...", not the flags
            ["evaluate", "fno-ns2d", "--n", "0"],
            "--n expects a number of fresh test cases >= 1, got 0",
        ),
        (
            ["evaluate", "fno-ns2d", "--seed", "-1"],
            "--seed expects an integer >= 0 (the seed of the fresh data), got -1",
        ),
        (
            ["evaluate", "deeponet-antiderivative", "data.h5"],
            "deeponet-antiderivative records no data view, so it cannot read a DATA file; "
            "'sciml evaluate deeponet-antiderivative' (no DATA) measures it on fresh data",
        ),
        (["export", "fno-ns2d", "--shape", "2,x", "--out", "f.pt2"], "--shape expects positive"),
        (["export", "fno-ns2d", "--shape", "1,1,32,32", "--out", "f.pt2"], "--static-batch"),
        (
            ["export", "scot-ns2d", "--shape", "2,1,32,32", "--out", "s.pt2"],
            "scot-ns2d (ScOT) is time-conditioned: pass its lead time as --t T",
        ),
        (
            ["export", "deeponet-antiderivative", "--shape", "2,100", "--out", "d.pt2"],
            "is evaluated at query points: pass --points P",
        ),
        (
            ["export", "fno-ns2d", "--shape", "2,1,32,32", "--points", "4", "--out", "f.pt2"],
            "--points: fno-ns2d (FNO in Normalized) takes no query points",
        ),
        (
            ["export", "node-lotka-volterra", "--shape", "4,2", "--out", "n.pt2"],
            "is a NODE: its adaptive solver cannot be exported; pass its output times and a "
            "fixed-step solver, e.g. --times 0,0.5,1 --solver rk4 --step-size 0.01 (missing "
            "--times, --solver, --step-size)",
        ),
        (  # with --times and --solver given, the message did not say that --step-size was missing
            [
                "export",
                "node-lotka-volterra",
                "--shape",
                "4,2",
                "--times",
                "0,1",
                "--solver",
                "rk4",
                "--out",
                "n.pt2",
            ],
            "its adaptive solver cannot be exported; pass its output times and a fixed-step "
            "solver, e.g. --times 0,0.5,1 --solver rk4 --step-size 0.01 (missing --step-size)",
        ),  # fmt: skip
        (
            [
                "export",
                "node-lotka-volterra",
                "--shape",
                "4,2",
                "--step-size",
                "0.1",
                "--out",
                "n.pt2",
            ],
            "(missing --times, --solver)",
        ),  # fmt: skip
        (
            ["export", "fno-ns2d", "--shape", "2,1,32,32", "--solver", "rk4", "--out", "f.pt2"],
            "--solver: only for a NODE, got fno-ns2d (FNO in Normalized)",
        ),
        (  # --times replaced --t without a word; --step-size 0 was not named (falsy)
            ["export", "node-lotka-volterra", "--shape", "4,2", "--t", "0.5", "--out", "n.pt2"],
            "--t: a NODE takes its output times as --times T0,...,TK, got --t 0.5",
        ),
        (  # the model's own message named no flag
            ["export", "fno-ns2d", "--shape", "2,1,32,32", "--t", "1", "--out", "f.pt2"],
            "--t: fno-ns2d (FNO in Normalized) takes no lead time; export it without --t",
        ),
        (  # traced, then the program's check failed with nan differences
            ["export", "scot-ns2d", "--shape", "2,1,32,32", "--t", "nan", "--out", "s.pt2"],
            "--t expects a finite lead time, got nan",
        ),
        (  # the NODE's check said "times t", naming no flag
            [
                "export",
                "node-lotka-volterra",
                "--shape",
                "2,2",
                "--times",
                "0,1,0.5",
                "--solver",
                "rk4",
                "--step-size",
                "0.1",
                "--out",
                "n.pt2",
            ],
            "--times 0,1,0.5: expected finite, strictly increasing or strictly decreasing times "
            "t, got [0, 1, 0.5]",
        ),  # fmt: skip
        (  # DCDM took t unused, into a program that then asked for it
            ["export", "dcdm-poisson3d", "--shape", "2,1,8,8,8", "--t", "1", "--out", "d.pt2"],
            "--t: dcdm-poisson3d (DCDMNet) takes no lead time; export it without --t",
        ),
        (
            ["export", "fno-ns2d", "--shape", "2,1,32,32", "--step-size", "0", "--out", "f.pt2"],
            "--step-size: only for a NODE, got fno-ns2d (FNO in Normalized)",
        ),
        (
            [
                "export",
                "node-lotka-volterra",
                "--shape",
                "4,2",
                "--times",
                "0,x",
                "--solver",
                "rk4",
                "--step-size",
                "0.1",
                "--out",
                "n.pt2",
            ],
            "--times expects at least two numbers like 0,0.5,1, got '0,x'",
        ),  # fmt: skip
        (  # inf passed the > 0 check and failed in torchdiffeq as "error: AssertionError"
            [
                "export",
                "node-lotka-volterra",
                "--shape",
                "4,2",
                "--times",
                "0,1",
                "--solver",
                "rk4",
                "--step-size",
                "inf",
                "--out",
                "n.pt2",
            ],
            "expected a finite --step-size > 0, got inf",
        ),  # fmt: skip
        (
            [
                "export",
                "node-lotka-volterra",
                "--shape",
                "4,2",
                "--times",
                "0,1",
                "--solver",
                "euler",
                "--step-size",
                "-0.5",
                "--out",
                "n.pt2",
            ],
            "expected a finite --step-size > 0, got -0.5",
        ),  # fmt: skip
        (
            [
                "export",
                "deeponet-antiderivative",
                "--shape",
                "2,1",
                "--points",
                "4",
                "--out",
                "d.pt2",
            ],
            "DeepONet expected u of shape (batch, 100)",
        ),
    ],
)
def test_bad_arguments_give_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty_out.yaml").write_text("model: {family: fno}\ndata: {path: d.h5}\nout: ''\n")
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("sciml: error: ")
    assert message in err


def test_a_missing_field_is_named_without_the_quotes_of_a_keyerror(capsys, tmp_path):
    """A field the file lacks (a KeyError in sciml.data) was printed as str(KeyError), its
    message in double quotes: sciml: error: "F: no field 'v'; fields are ['u']". It names the
    key that holds the name (it named none): data.inputs for train, and after evaluate's "cannot
    give" the recorded spec's key."""
    from sciml.data.generators import generate

    data = generate("burgers", n=4, resolution=16, out=tmp_path / "b.h5", seed=0)
    path = tmp_path / "e.json"
    path.write_text(json.dumps({
        "model": {"family": "fno", "config": {"modes": [4], "width": 4}},
        "data": {"path": str(data), "view": "snapshots", "inputs": ["v"]},
        "out": str(tmp_path / "run"),
    }))  # fmt: skip
    code, _, err = _run(["train", str(path), "--no-progress"], capsys)
    assert (code, err) == (
        2,
        f"sciml: error: {path}: data.inputs: {data}: no field 'v'; fields are ['u']\n",
    )
    FNO(FNOConfig(in_channels=1, out_channels=1, modes=(4,), width=4)).save_pretrained(
        tmp_path / "ck", metadata={"data": {"path": "x.h5", "view": "snapshots", "inputs": ["w"]}}
    )
    code, _, err = _run(["evaluate", str(tmp_path / "ck"), str(data)], capsys)
    assert code == 2 and err.endswith(
        f"cannot give: data.inputs: {data}: no field 'w'; fields are ['u']\n"
    )


def test_evaluate_shipped_model_errors_name_the_model_not_its_install_path(capsys, tmp_path):
    """`sciml evaluate NAME DATA` named the install folder (.../pretrained/weights/NAME) in
    its errors for a file without the model's fields and for --split (bd03228 fixed the result
    line only): both now start with the name, and name no install path."""
    from sciml.data.generators import generate

    data = generate("burgers", n=2, resolution=16, out=tmp_path / "b.h5", seed=0)
    code, _, err = _run(["evaluate", "fno-ns2d", str(data)], capsys)
    assert code == 2 and err.startswith(
        "sciml: error: fno-ns2d was trained on the 'snapshots' view of inputs ['w'] -> targets "
        f"['w'], which {data} cannot give: data.inputs and data.targets: {data}: no field 'w'"
    ), err
    code, _, err = _run(["evaluate", "fno-ns2d", str(data), "--split", "test"], capsys)
    assert code == 2 and err.startswith(
        "sciml: error: fno-ns2d: no recorded splits file to select --split test"
    ), err
    assert "weights" not in err


def test_a_binary_experiment_file_is_named_as_such(capsys, tmp_path):
    """A binary file as the experiment said only "'utf-8' codec can't decode byte 0x89 in
    position 0: invalid start byte": the suffix is checked before the file is read, and a
    .json that is not UTF-8 text is named as such."""
    blob = bytes([0x89, 0x50, 0x4E, 0x47, 0xAE, 0x00, 0xFF])
    for name, message in (
        ("run.pt2", "run.pt2: expected a .json, .yaml or .yml experiment file"),
        ("exp.json", "exp.json: expected a JSON or YAML text file, got bytes that are not "
         "UTF-8 text (invalid start byte at byte 0)"),
    ):  # fmt: skip
        (tmp_path / name).write_bytes(blob)
        code, _, err = _run(["train", str(tmp_path / name)], capsys)
        assert (code, err) == (2, f"sciml: error: {tmp_path}/{message}\n")


def test_a_binary_recipe_is_named_as_such(capsys, tmp_path, monkeypatch):
    """--recipe on a binary file (an HDF5 file, say) said only "'utf-8' codec can't decode
    byte 0x89 in position 0: invalid start byte"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.yaml").write_bytes(b"\x89HDF\r\n\x1a\n\x00")
    code, out, err = _run(["data", "generate", "--recipe", "d.yaml", "--out", "x.h5"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        "sciml: error: --recipe d.yaml: expected a YAML text file, got bytes that are not UTF-8 "
        "text (invalid start byte at byte 0)\n"
    )


@pytest.mark.parametrize(
    "name, text, got",
    [
        ("e.yaml", "", "an empty file"),
        ("e.yaml", "[1, 2]\n", "list [1, 2]"),
        ("e.json", "3", "int 3"),
    ],
)
def test_an_experiment_that_is_not_a_mapping_says_so(name, text, got, capsys, tmp_path):
    """An empty YAML experiment said "expected a JSON object, got NoneType", a YAML list
    "expected a JSON object, got list"."""
    (tmp_path / name).write_text(text)
    code, _, err = _run(["train", str(tmp_path / name)], capsys)
    assert (code, err) == (
        2,
        f"sciml: error: {tmp_path / name}: expected a mapping with the keys model, data (and "
        f"train, loss, out), got {got}\n",
    )


def test_an_experiment_missing_required_sections_names_them(capsys, tmp_path):
    # it said "cannot build Experiment: Experiment.__init__() missing 2 required positional
    # arguments", Python's words for a JSON file's missing keys
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"train": {"epochs": 1}}))
    code, _, err = _run(["train", str(path)], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "missing required field(s) ['data', 'model'] for Experiment" in err
    assert "valid fields are ['data', 'loss', 'mode', 'model', 'monitor', 'out', 'train']" in err


def test_argparse_errors_are_one_line_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "sciml.cli", "train"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "the following arguments are required: experiment" in proc.stderr


def test_info_describes_a_checkpoint(tmp_path, capsys):
    FNO(FNOConfig(modes=(4, 4), width=8)).save_pretrained(tmp_path / "ck")
    code, out, _ = _run(["info", str(tmp_path / "ck")], capsys)
    assert code == 0
    assert "family:        fno" in out
    assert "modes: [4, 4]" in out


def test_info_describes_a_poseidon_checkpoint_as_sciml_loads_it(capsys):
    """sciml.load reads the public Poseidon layout; `sciml info` said it was not a checkpoint."""
    from dataclasses import asdict
    from pathlib import Path

    folder = Path(__file__).parent / "data" / "scot" / "cond"
    code, out, err = _run(["info", str(folder)], capsys)
    assert code == 0, err
    assert "Poseidon / scOT checkpoint" in out and "family:        scot" in out
    assert f"model.safetensors ({(folder / 'model.safetensors').stat().st_size} bytes)" in out
    for key, value in asdict(sciml.load(folder).config).items():
        assert f"    {key}: {json.dumps(value)}" in out


def test_generate_train_evaluate_end_to_end(tmp_path, capsys):
    data = tmp_path / "darcy.h5"
    code, out, err = _run(
        ["data", "generate", "darcy", "--n", "40", "--resolution", "16", "--out", str(data)], capsys
    )
    assert code == 0, err
    with h5py.File(data, "r") as f:
        assert f.attrs["pde"]
    code, out, _ = _run(["info", str(data)], capsys)
    assert code == 0 and "darcy" in out.lower()
    code, _, err = _run(
        ["data", "generate", "darcy", "--n", "4", "--resolution", "16", "--out", str(data)], capsys
    )
    assert code == 2 and "exists; pass --overwrite" in err

    experiment = {
        "model": {
            "family": "fno",
            "config": {"modes": [6, 6], "width": 12, "n_layers": 2, "projection_channels": 16},
        },
        "data": {
            "path": str(data),
            "view": "static_pairs",
            "inputs": ["a"],
            "targets": ["u"],
            "split": [0.6, 0.2, 0.2],
        },
        "train": {"epochs": 3, "batch_size": 8, "lr": 0.003},
        "out": str(tmp_path / "run"),
    }
    (tmp_path / "exp.json").write_text(json.dumps(experiment))
    code, out, err = _run(["train", str(tmp_path / "exp.json"), "--no-progress"], capsys)
    assert code == 0, err
    assert "test relative L2:" in out
    reported = float(out.split("test relative L2:")[1].split()[0])
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert abs(metrics["test"]["rel_l2"] - reported) < 1e-4
    # 3 epochs of training must beat predicting zeros (relative L2 = 1).
    assert metrics["test"]["rel_l2"] < 0.9

    # evaluate on the recorded test split reproduces the number train reported.
    code, out, err = _run(
        ["evaluate", str(tmp_path / "run" / "best"), str(data), "--split", "test", "--json"], capsys
    )
    assert code == 0, err
    assert abs(json.loads(out)["rel_l2"] - metrics["test"]["rel_l2"]) < 1e-6

    # an independent check of the number: recompute from the raw file with h5py.
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    model = sciml.load(tmp_path / "run" / "best")
    with h5py.File(data, "r") as f:
        a = np.asarray(f["static_fields/a"])[splits["test"]]
        u = np.asarray(f["static_fields/u"])[splits["test"]]
    with torch.no_grad():
        pred = model(torch.from_numpy(a).float()[:, None])[:, 0].numpy()
    rel = np.linalg.norm((pred - u).reshape(len(u), -1), axis=1) / np.linalg.norm(
        u.reshape(len(u), -1), axis=1
    )
    assert abs(rel.mean() - metrics["test"]["rel_l2"]) < 1e-4

    # data that cannot give the trained view: the error says what the checkpoint was trained on
    other = tmp_path / "burgers.h5"
    _run(["data", "generate", "burgers", "--n", "2", "--resolution", "32", "--out", str(other)],
         capsys)  # fmt: skip
    code, _, err = _run(["evaluate", str(tmp_path / "run" / "best"), str(other)], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "was trained on the 'static_pairs' view of inputs ['a'] -> targets ['u']" in err
    assert f"which {other} cannot give:" in err


def test_experiment_model_init_depends_on_the_seed_alone(tmp_path):
    """Earlier RNG use must not change a run: the model is built right after seeding, so a
    single process and every torchrun rank start from the same weights."""
    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, Experiment, ModelSpec, run

    data = generate("darcy", n=20, resolution=12, out=tmp_path / "d.h5", seed=1)
    results = []
    for k in range(2):
        torch.rand(1000 * (k + 1))  # consume the global RNG differently before each run
        exp = Experiment(
            model=ModelSpec("fno", {"modes": [4, 4], "width": 8, "n_layers": 2}),
            data=DataSpec(path=str(data), inputs=("a",), targets=("u",), split=(0.6, 0.2, 0.2)),
            train={"epochs": 1, "batch_size": 4, "seed": 3},
            out=str(tmp_path / f"run{k}"),
        )
        results.append(run(exp, progress=False))
    assert results[0]["train_loss"] == results[1]["train_loss"]
    assert results[0]["test"]["rel_l2"] == results[1]["test"]["rel_l2"]


@pytest.mark.parametrize(
    "split, message",
    [
        ([0.5, 0.6, 0.5], "data.split: fractions [0.5, 0.6, 0.5] sum to 1.6 > 1"),
        ([0.0, 0.5, 0.5], "data.split: [0.0, 0.5, 0.5] of the 4 samples in D leaves none to "
         "train on"),
        ([3, 1, 1], "data.split: split sizes [3, 1, 1] need 5 samples, only 4 exist"),
    ],
)  # fmt: skip
def test_a_bad_split_names_data_split(split, message, tmp_path, capsys):
    """A split that sums past 1 said only the split function's words ("fractions [..] sum
    to 1.6 > 1"), naming no key; one that leaves no training samples failed in the view
    ("StaticPairs expected at least one sample"). Both name data.split, and no run folder
    is made."""
    from sciml.data.generators import generate

    data = generate("darcy", n=4, resolution=8, out=tmp_path / "d.h5", seed=1)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 6, "n_layers": 1}},
        "data": {"path": str(data), "inputs": ["a"], "targets": ["u"], "split": split},
        "out": str(tmp_path / "run"),
    }
    (tmp_path / "exp.json").write_text(json.dumps(experiment))
    code, _, err = _run(["train", str(tmp_path / "exp.json"), "--no-progress"], capsys)
    path = tmp_path / "exp.json"
    assert (code, err) == (2, f"sciml: error: {path}: {message.replace('D', str(data))}\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"data": {"inputs": 3}}, "data.inputs: expected a list, got 3"),
        ({"data": {"seed": -1}}, "data.seed: expected an integer >= 0 (the seed of the split's "
         "shuffle), got -1"),
        ({"train": {"epochs": "x"}}, "train.epochs: expected an integer, got 'x'"),
        ({"model": {"config": {"modes": [3, 3], "width": "x"}}},
         "model.config.width: expected an integer, got 'x'"),
        ({"data": {"inputs": ["q"]}}, "data.inputs: D: no field 'q'; static fields are ['a', 'u']"),
        ({"out": ""}, "out: expected the run's folder, got ''"),
    ],
)  # fmt: skip
def test_every_experiment_file_error_leads_with_the_file_then_the_key(
    tmp_path, capsys, entry, message
):
    """A bad data key said ``e.yaml.data.inputs: ...`` (the file's name run into the key), a
    bad train or model key ``train.epochs: ...`` / ``model.config.width: ...`` (no file): the
    loader named the file, run (which takes an Experiment) did not. Each now reads
    ``e.yaml: <dotted key>: ...``."""
    from sciml.data.generators import generate

    data = generate("darcy", n=4, resolution=8, out=tmp_path / "d.h5", seed=1)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 6, "n_layers": 1}},
        "data": {"path": str(data), "inputs": ["a"], "targets": ["u"]},
        "out": str(tmp_path / "run"),
    }
    for key, value in entry.items():
        experiment[key] = {**experiment.get(key, {}), **value} if key != "out" else value
    path = tmp_path / "e.yaml"
    path.write_text(json.dumps(experiment))  # JSON is YAML
    code, _, err = _run(["train", str(path), "--no-progress"], capsys)
    assert (code, err) == (2, f"sciml: error: {path}: {message.replace('D', str(data))}\n")
    assert not (tmp_path / "run").exists()


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_run_folder(tmp_path, monkeypatch):
    """A model that does not fit the data (3-D modes on 2-D Darcy fields) fails at its first
    step; the run folder, experiment.json, splits.json and the metrics files were left behind.
    A folder the run made is removed; one that existed is kept with what it held."""
    import sciml.experiment
    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, Experiment, ModelSpec, run

    # (why) the pre-flight check refuses this model before any folder is made (tested in
    # test_a_model_that_does_not_fit_the_view_is_refused_before_the_run_folder); without it,
    # the first step fails inside the run, after the folder was written
    monkeypatch.setattr(sciml.experiment, "_check_model_fits", lambda *args: None)
    data = generate("darcy", n=10, resolution=12, out=tmp_path / "d.h5", seed=1)
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    for out in (tmp_path / "new" / "run", kept):
        exp = Experiment(
            model=ModelSpec("fno", {"modes": [4, 4, 4], "width": 4, "n_layers": 1}),
            data=DataSpec(path=str(data), inputs=("a",), targets=("u",), split=(0.6, 0.2, 0.2)),
            train={"epochs": 1, "batch_size": 4},
            out=str(out),
        )
        with pytest.raises(ValueError, match="spatial dims"):
            run(exp, progress=False)
    assert not (tmp_path / "new" / "run").exists()
    assert (kept / "notes.txt").read_text() == "mine"


def test_a_failed_run_removes_the_parent_folders_it_made_and_no_others(tmp_path, monkeypatch):
    """out=new/deep/run with new/ missing: the failed run left new/deep/ behind (the run
    folder alone was removed). Exactly the folders the call made go: one that existed stays,
    and a made one that something else wrote into meanwhile stays with what it holds."""
    import sciml.experiment
    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, Experiment, ModelSpec, run
    from sciml.train import Trainer

    # (why) as above: a failure inside the run, which the pre-flight check would forestall
    monkeypatch.setattr(sciml.experiment, "_check_model_fits", lambda *args: None)
    data = generate("darcy", n=10, resolution=12, out=tmp_path / "d.h5", seed=1)
    (tmp_path / "have").mkdir()

    def exp(out):
        return Experiment(
            model=ModelSpec("fno", {"modes": [4, 4, 4], "width": 4, "n_layers": 1}),
            data=DataSpec(path=str(data), inputs=("a",), targets=("u",), split=(0.6, 0.2, 0.2)),
            train={"epochs": 1, "batch_size": 4},
            out=str(out),
        )

    for out in (tmp_path / "new" / "deep" / "run", tmp_path / "have" / "x" / "y" / "run"):
        with pytest.raises(ValueError, match="spatial dims"):
            run(exp(out), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "have"]
    assert list((tmp_path / "have").iterdir()) == []

    fit = Trainer.fit

    def fit_beside_another_writer(self, *args, **kwargs):
        (tmp_path / "busy" / "other.txt").write_text("not the run's")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit_beside_another_writer)
    with pytest.raises(ValueError, match="spatial dims"):
        run(exp(tmp_path / "busy" / "inner" / "run"), progress=False)
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["other.txt"]


def test_evaluate_split_on_a_smaller_file_names_the_split_and_the_counts(tmp_path, capsys):
    """--split on a file with fewer samples than the run split said only "sample index
    [..] is out of range for n_samples=3"; it now names --split, the splits file and both
    counts, and what to do."""
    from sciml.data.generators import generate

    big = generate("darcy", n=10, resolution=8, out=tmp_path / "d.h5", seed=1)
    small = generate("darcy", n=3, resolution=8, out=tmp_path / "s.h5", seed=2)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 6, "n_layers": 1}},
        "data": {"path": str(big), "inputs": ["a"], "targets": ["u"], "split": [0.5, 0.2, 0.3]},
        "train": {"epochs": 1, "batch_size": 4},
        "out": str(tmp_path / "run"),
    }
    (tmp_path / "exp.json").write_text(json.dumps(experiment))
    code, _, err = _run(["train", str(tmp_path / "exp.json"), "--no-progress"], capsys)
    assert code == 0, err
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    test = splits["test"]
    assert max(test) >= 3  # (else the small file would hold them)
    code, _, err = _run(["evaluate", str(tmp_path / "run" / "best"), str(small), "--split",
                         "test"], capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert (
        f"--split test: {tmp_path / 'run' / 'splits.json'} selects samples {test} of the 10 "
        f"that the run split, and {small} holds fewer (3); --split selects samples of the file "
        "the run trained on" in err
    ), err


def test_train_refuses_a_run_folder_that_is_a_file(tmp_path, capsys, monkeypatch):
    """--out (or the file's out) naming a file, or a path under one, failed only when the run
    folder was made, after the data were read and the model built, as "[Errno 17] File exists"
    / "[Errno 20] Not a directory". It is refused first, naming the flag or key."""
    from sciml.data.generators import generate

    monkeypatch.chdir(tmp_path)
    generate("darcy", n=4, resolution=8, out=tmp_path / "d.h5", seed=1)
    (tmp_path / "taken.txt").write_text("mine")
    experiment = {"model": {"family": "fno", "config": {"modes": [3, 3], "width": 6}},
                  "data": {"path": "d.h5", "inputs": ["a"], "targets": ["u"]},
                  "train": {"epochs": 1}, "out": "taken.txt"}  # fmt: skip
    (tmp_path / "exp.json").write_text(json.dumps(experiment))
    cases = [
        ([], "exp.json: out: expected a folder for the run's files, got the file taken.txt"),
        (["--out", "taken.txt"], "--out: expected a folder for the run's files, got the file "
         "taken.txt"),
        (["--out", "taken.txt/a/run"], "--out: expected a folder for the run's files, got "
         "taken.txt/a/run, whose parent taken.txt is a file"),
    ]  # fmt: skip
    for flags, message in cases:
        code, _, err = _run(["train", "exp.json", "--no-progress", *flags], capsys)
        assert (code, err) == (2, f"sciml: error: {message}\n")
    assert (tmp_path / "taken.txt").read_text() == "mine"


def test_evaluate_an_empty_recorded_split_says_so(tmp_path, capsys):
    """A run split [0.75, 0.25, 0] has no test samples; --split test blamed DATA ("... which
    d.h5 cannot give: SnapshotPairs expected at least one sample"). It now names the split
    and the recorded sizes, and --split val still evaluates the run's 2 validation samples."""
    from sciml.data.generators import generate

    data = generate("darcy", n=8, resolution=8, out=tmp_path / "d.h5", seed=1)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 6, "n_layers": 1}},
        "data": {"path": str(data), "inputs": ["a"], "targets": ["u"], "split": [0.75, 0.25, 0]},
        "train": {"epochs": 1, "batch_size": 4},
        "out": str(tmp_path / "run"),
    }
    (tmp_path / "exp.json").write_text(json.dumps(experiment))
    code, _, err = _run(["train", str(tmp_path / "exp.json"), "--no-progress"], capsys)
    assert code == 0, err
    best = str(tmp_path / "run" / "best")
    code, _, err = _run(["evaluate", best, str(data), "--split", "test"], capsys)
    assert (code, err) == (
        2,
        f"sciml: error: --split test: the run's {tmp_path / 'run' / 'splits.json'} holds no "
        "test samples (train / val / test: 6 / 2 / 0); pass another --split, or leave it out "
        "to evaluate every sample\n",
    )
    code, out, err = _run(["evaluate", best, str(data), "--split", "val", "--json"], capsys)
    assert code == 0 and json.loads(out)["n_samples"] == 2, err


def test_evaluate_split_finds_the_runs_splits_from_any_directory(tmp_path, capsys, monkeypatch):
    """`sciml train` records OUT/splits.json relative to where it ran; `evaluate --split` read
    from another directory (or after the run folder moved) said 'no recorded splits file'. It
    now reads splits.json beside the checkpoint: the test error equals the one train reported,
    recomputed here from the raw file on the test indices."""
    from sciml.data.generators import generate

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    generate("darcy", n=10, resolution=8, out=work / "d.h5", seed=1)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 6, "n_layers": 1}},
        "data": {"path": "d.h5", "inputs": ["a"], "targets": ["u"], "split": [0.5, 0.2, 0.3]},
        "train": {"epochs": 1, "batch_size": 4},
        "out": "run",  # relative, as in the getting-started example
    }
    (work / "exp.json").write_text(json.dumps(experiment))
    monkeypatch.chdir(work)
    code, _, err = _run(["train", "exp.json", "--no-progress"], capsys)
    assert code == 0, err
    reported = json.loads((work / "run" / "test_metrics.json").read_text())["test"]["rel_l2"]

    (work / "run").rename(work / "moved")  # the run folder moved, and read from elsewhere
    monkeypatch.chdir(elsewhere)
    args = [str(work / "moved" / "best"), str(work / "d.h5"), "--split", "test", "--json"]
    code, out, err = _run(["evaluate", *args], capsys)
    assert code == 0, err
    got = json.loads(out)
    test = json.loads((work / "moved" / "splits.json").read_text())["test"]
    assert got["n_samples"] == len(test) == 3
    model = sciml.load(work / "moved" / "best")
    with h5py.File(work / "d.h5", "r") as f:
        a = np.asarray(f["static_fields/a"])[test]
        u = np.asarray(f["static_fields/u"])[test]
    with torch.no_grad():
        pred = model(torch.from_numpy(a).float()[:, None])[:, 0].numpy()
    rel = np.linalg.norm((pred - u).reshape(3, -1), axis=1) / np.linalg.norm(
        u.reshape(3, -1), axis=1
    )
    assert got["rel_l2"] == pytest.approx(rel.mean(), rel=1e-5)
    assert got["rel_l2"] == pytest.approx(reported, rel=1e-6)
    # a checkpoint that records no splits file says so (it said "looked for None")
    code, _, err = _run(["evaluate", "fno-ns2d", "data.h5", "--split", "test"], capsys)
    assert code == 2 and "(the checkpoint records none; sciml train records one)" in err


@pytest.mark.parametrize(
    "command, listed", [("data", "{generate,validate}"), ("pretrained", "{list,show}")]
)
def test_a_command_without_its_sub_command_prints_its_own_help(command, listed, capsys):
    """`sciml data` alone printed the top-level help, which does not list generate / validate."""
    code, out, _ = _run([command], capsys)
    assert code == 2
    assert out.startswith(f"usage: sciml {command} ") and listed in out


def test_generate_from_recipe_with_overrides(tmp_path, capsys):
    # Non-default values, so a CLI that ignored the recipe would fail the asserts below.
    recipe = tmp_path / "burgers.yaml"
    recipe.write_text(
        "generator: burgers\nn: 3\nresolution: 128\nseed: 5\nout: unused.h5\n"
        "options: {nu: 0.05, T: 0.5, n_steps: 2}\n"
    )
    out = tmp_path / "b.h5"
    argv = ["data", "generate", "--recipe", str(recipe), "--n", "2", "--out", str(out)]
    code, _, err = _run([*argv, "--set", "subsample=2"], capsys)
    assert code == 0, err
    with h5py.File(out, "r") as f:
        settings = json.loads(f.attrs["generator_settings"])
        assert f["fields/u"].shape == (2, 3, 64)  # n from the flag, 2 steps + t=0, 128 / 2
    assert (settings["nu"], settings["T"], settings["seed"]) == (0.05, 0.5, 5)  # the recipe's
    assert (settings["n"], settings["resolution"], settings["subsample"]) == (2, 128, 2)

    bad = tmp_path / "bad.yaml"
    bad.write_text("generator: burgers\nn: 2\nresolution: 64\nout: x.h5\nviscosity: 1\n")
    code, _, err = _run(["data", "generate", "--recipe", str(bad)], capsys)
    assert code == 2 and "unknown keys ['viscosity']" in err and err.count("\n") == 1


def test_generate_list_names_every_registered_generator(capsys):
    code, out, _ = _run(["data", "generate", "--list"], capsys)
    assert code == 0
    listed = [line.split()[0] for line in out.strip().splitlines()]
    assert listed == sorted(GENERATORS)


def test_experiment_augment_moves_training_pairs_only(tmp_path):
    """``DataSpec(augment="fno_forcing")``: the training batches change (so does the training
    loss), the normalisation statistics stay those of the unmoved training pairs, and the test
    pairs are scored unmoved."""
    import sciml
    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, Experiment, ModelSpec, build_views, evaluate, run

    data = generate(
        "navier_stokes", n=12, resolution=16, T=0.2, dt=1e-2, record_steps=1,
        out=tmp_path / "ns.h5", seed=0,
    )  # fmt: skip
    results, models = [], []
    for augment in (None, "fno_forcing"):
        spec = DataSpec(
            path=str(data), view="snapshots", inputs=("w",), targets=("w",),
            split=(0.5, 0.25, 0.25), augment=augment,
        )  # fmt: skip
        exp = Experiment(
            model=ModelSpec("fno", {"modes": [4, 4], "width": 8, "n_layers": 2}),
            data=spec,
            train={"epochs": 2, "batch_size": 3, "seed": 3},
            out=str(tmp_path / f"run_{augment}"),
        )
        results.append(run(exp, progress=False))
        models.append(sciml.load(results[-1]["best_checkpoint"]))
    assert results[0]["train_loss"] != results[1]["train_loss"]
    for name in ("in_mean", "in_std", "out_mean", "out_std"):
        torch.testing.assert_close(getattr(models[0], name), getattr(models[1], name))
    splits = sciml.data.split(12, (0.5, 0.25, 0.25), seed=0)
    test_view = build_views(spec, samples=list(splits.test))
    assert evaluate(models[1], test_view)["rel_l2"] == pytest.approx(
        results[1]["test"]["rel_l2"], rel=1e-6
    )
    from sciml.experiment import augment_view

    with pytest.raises(ValueError, match="unknown augmentation 'rot'"):
        augment_view(test_view, "rot", seed=0)
    # (the maps are a function of the seed, the epoch and the item: the same on every torchrun
    # rank as in one process; tests/test_symmetry.py checks that, and an exact resume)


def test_info_takes_a_shipped_model_name(capsys):
    from sciml import pretrained

    code, out, _ = _run(["info", "fno-ns2d"], capsys)
    assert code == 0
    # headed by the name given, not by the folder in sciml's install (which follows it)
    first = out.splitlines()[0]
    assert first == f"shipped model fno-ns2d (files in {pretrained.path_of('fno-ns2d')})"
    assert 'family: "fno"' in out
    assert "sciml pretrained show fno-ns2d" in out
    code, _, err = _run(["info", "fno-ns2"], capsys)
    assert code == 2 and "not a shipped model" in err and "fno-ns2d" in err


def test_optional_missing_names_the_package_and_its_install_command(tmp_path, monkeypatch):
    """The benchmarks' check for a package they compare with (neuraloperator, DeepXDE): None
    where it imports, else the import error and the pip command; its version only where it
    imports, as ``importlib.metadata`` reports it."""
    import importlib.metadata as md

    from sciml import _environment as env

    assert env.optional_missing("json", "json") is None
    assert env.optional_version("h5py", "h5py") == md.version("h5py")
    (tmp_path / "hidden_pkg.py").write_text("raise ImportError('hidden by the test')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert env.optional_missing("hidden_pkg", "hidden-dist") == (
        "hidden-dist is not installed (hidden by the test); pip install hidden-dist"
    )
    # installed as a distribution (h5py's metadata) but not importable: no version
    assert env.optional_version("hidden_pkg", "h5py") is None


def test_info_without_a_path_reports_versions_against_importlib_metadata(capsys, monkeypatch):
    """``sciml info`` without a path was a usage error ("the following arguments are required:
    path"); it reports sciml's version and where it is imported from, torch and its devices,
    Triton, and every dependency and optional package at its installed version
    (``importlib.metadata``), a missing one with the extra that installs it."""
    import importlib.metadata as md
    import re
    from pathlib import Path

    from sciml import _environment as env

    real = md.version

    def version(name):
        if name in ("matplotlib", "triton"):  # as if not installed
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(md, "version", version)
    code, out, err = _run(["info"], capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert real("sciml") == sciml.__version__
    assert lines[0] == f"sciml {sciml.__version__} from {Path(sciml.__file__).parent}"
    assert lines[1].startswith(f"python {sys.version.split()[0]} ({sys.executable}) on ")
    assert lines[2].startswith(f"torch {torch.__version__}")
    assert ("CPU only" in lines[2]) == (not torch.cuda.is_available())
    if torch.cuda.is_available():
        assert torch.cuda.get_device_name(0) in lines[2]
    assert lines[3] == (
        "triton: not installed (sciml's Triton kernels off; pip install 'sciml[kernels]')"
    )
    at = lines.index("dependencies:"), lines.index("optional:")
    required = dict(line.split(None, 1) for line in lines[at[0] + 1 : at[1]])
    optional = dict(line.split(None, 1) for line in lines[at[1] + 1 :])
    assert required == {name: real(name) for name in env.REQUIRED}
    for name, extra in env.OPTIONAL.items():
        try:
            want = version(name)
        except md.PackageNotFoundError:
            want = f"not installed (pip install 'sciml[{extra}]')"
        assert optional[name] == want, name
    assert optional["matplotlib"] == "not installed (pip install 'sciml[plot]')"
    # the lists are the installed metadata's: every requirement, each optional one in its extra
    requires = md.requires("sciml")
    runtime = {re.split(r"[<>=!~;\[ ]", r)[0].lower() for r in requires if "extra ==" not in r}
    assert runtime == {name.lower() for name in env.REQUIRED}
    for name, extra in env.OPTIONAL.items():
        assert any(
            re.split(r"[<>=!~;\[ ]", r)[0] == name and f'extra == "{extra}"' in r for r in requires
        ), (name, extra)
    # a checkout imported ahead of another installed version says both
    monkeypatch.setattr(md, "version", lambda name: "9.9" if name == "sciml" else real(name))
    code, out, _ = _run(["info"], capsys)
    assert out.splitlines()[0].endswith("(the installed distribution is 9.9)")
    # the triton line follows sciml.kernels.triton_available where triton is installed
    monkeypatch.setattr(md, "version", lambda name: "3.0.0" if name == "triton" else real(name))
    code, out, _ = _run(["info"], capsys)
    from sciml.kernels import triton_available

    assert out.splitlines()[3].startswith("triton 3.0.0: ")
    assert ("Triton kernels available" in out) == triton_available()


def _run_and_rescore(model_spec, spec, train, tmp_path):
    """``run`` an experiment, then score its best checkpoint afresh on the test split (it must
    equal what ``run`` reported). Returns ``(result, splits, test_view, model)``."""
    import sciml
    from sciml.experiment import Experiment, build_views, evaluate, run

    exp = Experiment(model=model_spec, data=spec, train=train, out=str(tmp_path / "run"))
    result = run(exp, progress=False)
    splits = sciml.data.split(len(sciml.data.open(spec.path)), spec.split, seed=spec.seed)
    test_view = build_views(spec, samples=list(splits.test))
    model = sciml.load(result["best_checkpoint"])
    assert evaluate(model, test_view)["rel_l2"] == pytest.approx(result["test"]["rel_l2"], rel=1e-6)
    return result, splits, test_view, model


def test_experiment_all_pairs_trains_a_time_conditioned_operator(tmp_path):
    """``view: all_pairs``: every pair j >= i of a trajectory with the lead time as ``t``, so
    ``sciml train`` covers scOT; the test score is a fresh evaluation of the best checkpoint."""
    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, ModelSpec, build_views

    data = generate(
        "navier_stokes", n=8, resolution=16, T=0.3, dt=1e-2, record_steps=3,
        out=tmp_path / "ns.h5", seed=0,
    )  # fmt: skip
    spec = DataSpec(path=str(data), view="all_pairs", inputs=("w",), split=(0.5, 0.25, 0.25))
    scot = {
        "in_channels": 1, "out_channels": 1, "image_size": 16, "patch_size": 2,
        "embed_dim": 8, "depths": [1, 1], "num_heads": [2, 2], "window_size": 4,
        "skip_blocks": [1, 0],
    }  # fmt: skip
    result, splits, test_view, model = _run_and_rescore(
        ModelSpec("scot", scot), spec, {"epochs": 2, "batch_size": 8, "lr": 1e-3}, tmp_path
    )
    assert len(test_view) == 2 * (4 + 3 + 2 + 1)  # 2 trajectories, 4 snapshots, j >= i
    item = test_view[3]  # trajectory 0: i = 0, j = 3
    assert float(item["t"]) == pytest.approx(0.3)
    with torch.no_grad():  # the lead time reaches the model
        u = item["input"][None]
        assert not torch.allclose(model(u, t=torch.tensor([0.1])), model(u, t=torch.tensor([0.3])))
    bad = DataSpec(path=str(data), view="all_pairs", inputs=("w",), targets=("u",))
    with pytest.raises(ValueError, match="all_pairs maps fields to the same fields"):
        build_views(bad)


def test_experiment_points_trains_a_deeponet(tmp_path):
    """``view: points``: input functions on the grid -> values at query points, so ``sciml
    train`` covers DeepONet. Training draws ``n_points`` per function; evaluation scores every
    grid point; the normalisation maps inputs along dim 1 and point values along the last dim."""
    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, ModelSpec, build_views

    data = generate("antiderivative", n=200, resolution=50, out=tmp_path / "anti.h5", seed=0)
    spec = DataSpec(
        path=str(data), view="points", inputs=("v",), targets=("u",), n_points=10,
        split=(0.7, 0.1, 0.2),
    )  # fmt: skip
    net = {"sensors": 50, "coord_dim": 1, "basis": 20, "branch": {"hidden": [20]},
           "trunk": {"hidden": [20]}}  # fmt: skip
    result, splits, test_view, model = _run_and_rescore(
        ModelSpec("deeponet", net), spec, {"epochs": 30, "batch_size": 10, "lr": 3e-3}, tmp_path
    )
    train_view = build_views(spec, samples=list(splits.train), training=True)
    assert train_view[0]["x"].shape == (10, 1) and test_view[0]["x"].shape == (50, 1)
    assert model.config.out_channel_dim == -1
    # an independent yardstick: the training functions' mean antiderivative scores ~1
    targets = torch.stack([test_view[i]["target"] for i in range(len(test_view))])
    mean = torch.stack([build_views(spec, samples=list(splits.train))[i]["target"]
                        for i in range(len(splits.train))]).mean(0)  # fmt: skip
    baseline = ((targets - mean).flatten(1).norm(dim=1) / targets.flatten(1).norm(dim=1)).mean()
    assert result["test"]["rel_l2"] < 0.5 * float(baseline)  # measured 0.172 against 0.98
    with pytest.raises(ValueError, match="points needs inputs"):
        build_views(DataSpec(path=str(data), view="points", inputs=("v",)))


def test_normalized_maps_inputs_and_point_values_along_their_own_channel_dims():
    from sciml.models import DeepONet, DeepONetConfig, Normalized
    from sciml.models.deeponet import MLPSpec

    inner = DeepONet(DeepONetConfig(sensors=8, coord_dim=1, basis=4, out_channels=2,
                                    branch=MLPSpec((8,)), trunk=MLPSpec((8,))))  # fmt: skip
    model = Normalized.wrap(
        inner, in_mean=[1.0], in_std=[2.0], out_mean=[3.0, -1.0], out_std=[4.0, 0.5],
        out_channel_dim=-1,
    )  # fmt: skip
    u, x = torch.randn(3, 1, 8), torch.rand(3, 5, 1)
    want = inner((u - 1.0) / 2.0, x=x) * torch.tensor([4.0, 0.5]) + torch.tensor([3.0, -1.0])
    torch.testing.assert_close(model(u, x=x), want)


def test_export_writes_a_program_equal_to_the_model(capsys, tmp_path, monkeypatch):
    """``sciml export`` with a lead time: the .pt2 program, at a batch other than the example's,
    gives the shipped scOT's outputs; with --static-batch the batch is fixed."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(
        ["export", "scot-ns2d", "--shape", "2,1,32,32", "--t", "0.5", "--out", "s.pt2"], capsys
    )
    assert code == 0 and "wrote s.pt2" in out and "batch free" in out, err
    u, t = torch.randn(3, 1, 32, 32), torch.full((3,), 0.7)
    with torch.no_grad():
        want = sciml.load("scot-ns2d").eval()(u, t=t)
    got = torch.export.load("s.pt2").module()(u, t=t)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    code, out, _ = _run(
        ["export", "fno-ns2d", "--shape", "1,1,32,32", "--static-batch", "--out", "f.pt2"], capsys
    )
    assert code == 0 and "batch fixed" in out
    with pytest.raises(AssertionError, match="Guard failed"):
        torch.export.load("f.pt2").module()(torch.randn(2, 1, 32, 32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pt2", "s.pt2"]  # no temporaries


def test_export_with_query_points_gives_a_program_free_in_batch_and_points(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    argv = ["export", "deeponet-pendulum", "--shape", "3,100", "--points", "3", "--out", "d.pt2"]
    code, out, err = _run(argv, capsys)
    assert code == 0 and "module()(u, x=x)" in out, err
    program, model = torch.export.load("d.pt2").module(), sciml.load("deeponet-pendulum").eval()
    u, x = torch.randn(4, 100), torch.rand(9, 1)
    with torch.no_grad():
        torch.testing.assert_close(program(u, x=x), model(u, x=x), rtol=1e-5, atol=1e-6)


def test_export_of_a_node_with_a_fixed_step_solver_equals_that_solve(capsys, tmp_path, monkeypatch):
    """``sciml export NODE --times --solver rk4 --step-size``: the program (the times built in)
    at a batch other than the example's equals torchdiffeq's RK4 solve of the shipped field, and
    the printed distance to the adaptive model is the one measured here."""
    monkeypatch.chdir(tmp_path)
    argv = [
        "export", "node-lotka-volterra", "--shape", "3,2", "--times", "0,0.3,1", "--solver",
        "rk4", "--step-size", "0.25", "--out", "n.pt2",
    ]  # fmt: skip
    code, out, err = _run(argv, capsys)
    assert code == 0 and "at the 3 times 0,0.3,1" in out and ".module()(u)" in out, err
    node = sciml.load("node-lotka-volterra").eval()
    program = torch.export.load("n.pt2").module()
    t = torch.tensor([0.0, 0.3, 1.0])
    u = torch.tensor([[2.5, 1.2], [3.5, 1.9], [3.0, 1.0], [2.0, 2.0], [3.1, 1.4]])
    with torch.no_grad():
        # torchdiffeq's own rk4 (sciml's RK4 shares the export's output schedule)
        options = {"step_size": 0.25, "interp": "cubic"}
        want = torchdiffeq.odeint(node.ode.field.net, u, t, method="rk4", options=options)
        want = want.transpose(0, 1)
    torch.testing.assert_close(program(u), want, rtol=0, atol=1e-6)
    # the example: seed 0's standard normals at the NODE's center and scale
    example = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    example = torch.tensor(node.config.center) + torch.tensor(node.config.scale) * example
    with torch.no_grad():
        gap = float((program(example) - node(example, t=t)).abs().max())
    assert f"by at most {gap:.3g} " in out


def test_export_of_a_fixed_step_node_uses_its_own_solver_unless_replaced(
    capsys, tmp_path, monkeypatch
):
    """A NODE saved with ``NODEConfig(solver="rk4", step_size=h)`` exports with --times alone
    (``--solver`` / ``--step-size`` were required, and the message called its solve adaptive);
    --solver alone replaces its rk4 and keeps its step."""
    from sciml.models import NODE, NODEConfig

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    node = NODE(NODEConfig(hidden=(8,), solver="rk4", step_size=0.125)).eval()
    node.save_pretrained(tmp_path / "ck")
    t = torch.tensor([0.0, 0.3, 1.0])
    u = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))

    def torchdiffeq_solve(method, interp):
        with torch.no_grad():
            options = {"step_size": 0.125, "interp": interp}
            out = torchdiffeq.odeint(node.ode.field.net, u, t, method=method, options=options)
        return out.transpose(0, 1)

    base = ["export", "ck", "--shape", "3,2", "--times", "0,0.3,1", "--out", "n.pt2"]
    code, out, err = _run(base, capsys)
    assert code == 0, err
    assert "its own rk4 solve (step 0.125) differs from the model's rk4 one by at most 0\n" in out
    program = torch.export.load("n.pt2").module()
    rk4 = torchdiffeq_solve("rk4", "cubic")
    torch.testing.assert_close(program(u), rk4, rtol=0, atol=1e-6)

    code, out, err = _run([*base, "--solver", "euler"], capsys)
    assert code == 0 and "its euler solve (step 0.125) differs from the model's rk4 one" in out
    program = torch.export.load("n.pt2").module()
    euler = torchdiffeq_solve("euler", "linear")
    torch.testing.assert_close(program(u), euler, rtol=0, atol=1e-6)
    assert (euler - rk4).abs().max() > 1e-4  # a real change

    code, _, err = _run(base[:4] + ["--out", "n.pt2"], capsys)
    assert code == 2
    assert "is a NODE with a fixed-step rk4 solver: pass its output times, e.g. --times" in err


def test_export_names_the_replacing_solver_by_the_flag_given():
    """`sciml export --solver F` says "its F solve": for each value docs/cli.md lists
    (rk4|euler), parsed as the command line parses it, the message names the solver built from
    it by that flag (read back through the flag table, not from the class name)."""
    from sciml import de
    from sciml.cli import _FIXED_STEP, _build_parser, _solve_name

    assert set(_FIXED_STEP) == {"rk4", "euler"}  # docs/cli.md: --solver rk4|euler
    parser = _build_parser()
    base = ["export", "ck", "--shape", "3,2", "--times", "0,1", "--out", "n.pt2"]
    for flag in ("rk4", "euler"):
        args = parser.parse_args([*base, "--solver", flag])
        solver = getattr(de, _FIXED_STEP[args.solver])(step_size=0.125)
        assert _solve_name(None, {"solver": solver}) == f"{flag} solve (step 0.125)"


def test_export_of_prose_gives_its_data_path_free_in_batch_and_query_times(
    capsys, tmp_path, monkeypatch
):
    """PROSE's query times x are (points,): with --points the program takes any number of
    them and any batch, and equals the checkpoint's forward(u, x=x)."""
    from sciml.models import PROSE, PROSEConfig

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    PROSE(PROSEConfig.small()).save_pretrained("prose")
    code, _, err = _run(["export", "prose", "--shape", "2,10,6", "--out", "p.pt2"], capsys)
    assert code == 2 and "pass --points P (the program takes x of shape (points,)" in err
    argv = ["export", "prose", "--shape", "2,10,6", "--points", "7", "--out", "p.pt2"]
    code, out, err = _run(argv, capsys)
    assert code == 0 and "module()(u, x=x)" in out, err
    program, model = torch.export.load("p.pt2").module(), sciml.load("prose").eval()
    for batch, points in ((3, 5), (4, 12)):
        u, x = torch.randn(batch, 10, 6), torch.rand(points)
        with torch.no_grad():
            torch.testing.assert_close(program(u, x=x), model(u, x=x), rtol=1e-5, atol=1e-6)


def test_export_of_a_normalized_deeponet_asks_for_and_takes_its_query_points(
    capsys, tmp_path, monkeypatch
):
    """A DeepONet inside Normalized (what `sciml train` saves from a points view) could not be
    exported: without --points DeepONet's own "needs query locations x" named no flag, and
    --points was refused as "(Normalized) takes no query points". The inner family decides:
    the error names --points and x's shape, and the program equals the model's forward."""
    from sciml.models import DeepONet, DeepONetConfig, Normalized
    from sciml.models.deeponet import MLPSpec

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    inner = DeepONet(DeepONetConfig(sensors=8, coord_dim=2, basis=4, branch=MLPSpec((8,)),
                                    trunk=MLPSpec((8,))))  # fmt: skip
    Normalized.wrap(
        inner, in_mean=[1.0], in_std=[2.0], out_mean=[3.0], out_std=[4.0], out_channel_dim=-1
    ).save_pretrained("nd")
    code, _, err = _run(["export", "nd", "--shape", "2,1,8", "--out", "d.pt2"], capsys)
    assert code == 2 and "nd (DeepONet in Normalized) is evaluated at query points: pass " in err
    assert "--points P (the program takes x of shape (points, 2) with any P)" in err
    argv = ["export", "nd", "--shape", "2,1,8", "--points", "5", "--out", "d.pt2"]
    code, out, err = _run(argv, capsys)
    assert code == 0 and "module()(u, x=x)" in out, err
    program = torch.export.load("d.pt2").module()
    u, x = torch.randn(3, 1, 8), torch.rand(7, 2)
    with torch.no_grad():  # the wrapper's maps by hand around the inner DeepONet
        want = inner((u - 1.0) / 2.0, x=x) * 4.0 + 3.0
    torch.testing.assert_close(program(u, x=x), want, rtol=1e-5, atol=1e-6)


def test_export_of_a_pod_deeponet_needs_no_query_points(capsys, tmp_path, monkeypatch):
    """A POD-DeepONet evaluates only at its training points, but the command asked it for
    --points (its config has a coord_dim) and then the model refused the random points: it
    could not be exported at all. Now it exports without --points, its program equals the POD
    reconstruction of the branch's coefficients, and --points is refused naming why."""
    from sciml.models import PODDeepONet, PODDeepONetConfig
    from sciml.models.deeponet import MLPSpec

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = PODDeepONet(PODDeepONetConfig(sensors=8, points=6, modes=3, branch=MLPSpec((8,))))
    model.fit_basis(torch.randn(10, 6), torch.linspace(0, 1, 6)[:, None])
    with torch.no_grad():
        model.bias.fill_(0.25)
    model.save_pretrained("pod")
    code, out, err = _run(["export", "pod", "--shape", "2,8", "--out", "p.pt2"], capsys)
    assert code == 0 and "module()(u)" in out, err
    u = torch.randn(5, 8)
    with torch.no_grad():  # mean + sum_i a_i phi_i + bias, with a_i the branch's outputs
        want = model.reconstruct(model.branch(u)) + 0.25
    torch.testing.assert_close(torch.export.load("p.pt2").module()(u), want)
    argv = ["export", "pod", "--shape", "2,8", "--points", "6", "--out", "q.pt2"]
    code, _, err = _run(argv, capsys)
    assert code == 2 and "--points: pod (PODDeepONet) evaluates only at its 6 training" in err
    assert not os.path.exists("q.pt2")


def test_export_recognises_a_prose_subclass_by_isinstance(capsys, tmp_path, monkeypatch):
    """The export command told PROSE by its class name, so a subclass of PROSE was refused
    ("takes no query points") although it exports like PROSE; now isinstance: the program of
    a subclass equals its forward(u, x=x)."""
    import sciml.operator
    from sciml.models import PROSE, PROSEConfig

    class MyPROSE(PROSE):
        pass

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = MyPROSE(PROSEConfig.small())
    monkeypatch.setattr(sciml.operator, "load", lambda path, **kw: model)
    argv = ["export", "mine", "--shape", "2,10,6", "--points", "7", "--out", "p.pt2"]
    code, out, err = _run(argv, capsys)
    assert code == 0 and "module()(u, x=x)" in out, err
    u, x = torch.randn(3, 10, 6), torch.rand(5)
    with torch.no_grad():
        want = model.eval()(u, x=x)
    torch.testing.assert_close(torch.export.load("p.pt2").module()(u, x=x), want)


def test_every_recipe_the_docs_name_exists():
    """sciml.cli's usage named datasets/darcy_pwc.yaml, which does not exist (the recipe is
    darcy_pwc_r421.yaml): every datasets/<name>.yaml in the package's sources, the docs and
    the README names a shipped recipe (upper-case placeholders such as RECIPE aside)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [*(root / "sciml").rglob("*.py"), *(root / "docs").glob("*.md"), root / "README.md"]
    named = {
        (path.relative_to(root), name)
        for path in files
        for name in re.findall(r"datasets/([A-Za-z0-9_.-]+\.yaml)", path.read_text())
        if not name[:-5].isupper()
    }
    assert ("sciml/cli.py", "darcy_pwc_r421.yaml") in {(str(p), n) for p, n in named}
    missing = sorted((str(p), n) for p, n in named if not (root / "datasets" / n).is_file())
    assert missing == []


def test_every_argument_has_help_text():
    """`sciml CMD --help` explains every argument (several printed a bare name)."""
    import argparse

    from sciml.cli import _build_parser

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{prefix} {name}")
            elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                yield f"{prefix} {action.dest}", action.help

    missing = [where for where, text in walk(_build_parser(), "sciml") if not text]
    assert missing == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "folder"], "expected an experiment file (.json / .yaml), got the folder folder"),
        # the multi-line YAML error is kept whole: its later lines say where the file is wrong
        (["train", "bad.yaml"], "bad.yaml: not valid YAML (while parsing a flow node expected"),
        (["train", "bad.yaml"], "line 2, column 1"),
        (["evaluate", "fno-ns2d", "folder"], "expected DATA to be an HDF5 file, got the folder"),
        (["data", "validate", "folder"], "expected an HDF5 file, got the folder folder"),
        (["data", "generate", "--recipe", "folder"], "expected --recipe to be a YAML file, got"),
        (["data", "generate", "--recipe", "none.yaml"], "--recipe: no such file: none.yaml"),
        (["data", "generate", "--recipe", "bad.yaml"], "--recipe bad.yaml: not valid YAML (while"),
        (["data", "generate", "--recipe", "bad.yaml"], "line 2, column 1"),
        (
            ["data", "generate", "darcy", "--n", "2", "--resolution", "8", "--out", "folder"],
            "expected --out to name the .h5 file to write, got the folder folder",
        ),
        (
            ["data", "generate", "darcy", "--n", "2", "--resolution", "8", "--out", "x.txt"],
            "--out expects an HDF5 file name ending in .h5 / .hdf5 / .hdf / .he5, got 'x.txt'",
        ),
        (
            ["export", "fno-ns2d", "--shape", "2,1,32,32", "--out", "folder"],
            "expected --out to name the .pt2 file to write, got the folder folder",
        ),
        (
            ["solve", "--matrix", "folder"],
            "--matrix: expected a .npz, .mtx or .mtx.gz file, got the folder 'folder'",
        ),
        # solved, then wrote folder.npy beside the folder, exit 0, naming no file
        (
            ["solve", "--poisson", "8x8", "--out", "folder"],
            "expected --out to name the .npy file to write, got the folder folder",
        ),
        (["solve", "--poisson", "8x8", "--rhs", "folder"], "--rhs: expected a .npy file, got"),
        (["solve", "--poisson", "0"], "--poisson: expected a grid shape such as 64x64x64, got '0'"),
        (["solve", "--poisson", "4x4x4x4"], "--poisson: expected a grid shape such as 64x64x64"),
    ],
)
def test_folders_wrong_names_and_bad_yaml_give_one_line_errors_naming_them(
    argv, message, capsys, tmp_path, monkeypatch
):
    # before: 'experiment file folder does not exist'; HDF5's errno dump cut after its first
    # line; '[Errno 21] Is a directory: ...' for a recipe; a folder as --out of generate said to
    # pass --overwrite, of export named a temporary file after the export ran; an x.txt --out
    # was written; a YAML error was cut to 'while parsing a flow node', without the file's name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "bad.yaml").write_text("model: [\n")
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sciml: error: "), err
    assert message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "folder"]  # nothing written
    assert list((tmp_path / "folder").iterdir()) == []


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--k", "16"], "--k: only for --method dcdm, got --method cg"),
        (["--model", "nope"], "--model: only for --method dcdm, got --method cg"),
        (["--method", "amg", "--model", "x", "--k", "3"],
         "--model, --k: only for --method dcdm, got --method amg"),
        (["--grid", "8x8"], "--grid gives the grid of a --matrix; --poisson 8x8 is its own grid"),
        # the solvers' messages named their parameters: "rtol: ...", "maxiter must be >= 0",
        # "k (directions kept) must be >= 1", "block must be an integer >= 1"
        (["--rtol", "nan"], "--rtol expects a finite number > 0 (the relative residual to "
         "reach), got nan"),
        (["--rtol", "0"], "--rtol expects a finite number > 0 (the relative residual to "
         "reach), got 0.0"),
        (["--maxiter", "-1"], "--maxiter expects an iteration cap (0: only check x0), an "
         "integer >= 0, got -1"),
        (["--method", "dcdm", "--k", "0"], "--k expects the number of directions kept, an "
         "integer >= 1, got 0"),
        (["--deflate", "0"], "--deflate expects the aggregates' block size B, an integer >= 1, "
         "got 0"),
        # --spacing: one number or one per axis, each finite and > 0
        (["--spacing", "1,2,3"], "--spacing: expected one number, or 2 comma-separated ones (one "
         "per axis of the 2-D grid, e.g. 1.0,0.5), got 3 numbers: '1,2,3'"),
        (["--spacing", "1,x"], "--spacing: expected one number, or 2 comma-separated ones (one "
         "per axis of the 2-D grid, e.g. 1.0,0.5), got '1,x'"),
        (["--spacing", "0"], "--spacing: expected finite numbers > 0 (grid spacings), got '0'"),
        (["--spacing", "1,nan"], "--spacing: expected finite numbers > 0 (grid spacings), got "
         "'1,nan'"),
        (["--spacing", "1,inf"], "--spacing: expected finite numbers > 0 (grid spacings), got "
         "'1,inf'"),
        (["--spacing", "1,1e-200"], "--spacing: expected a spacing h whose 1 / h^2 (the scale of "
         "A) keeps A's entries normal float64 numbers, about 1e-154 < h < 1e154, got 1e-200"),
    ],
)  # fmt: skip
def test_solve_refuses_options_the_method_does_not_use(flags, message, capsys):
    """--k / --model were dropped without a word by every method but dcdm ('--method cg --k
    16' ran plain CG; '--model nope' solved and exited 0), and --grid beside --poisson too;
    out-of-range values were refused in the solvers' words, naming no flag."""
    code, out, err = _run(["solve", "--poisson", "8x8", *flags], capsys)
    assert (code, out, err) == (2, "", f"sciml: error: {message}\n")


def test_solve_poisson_takes_a_spacing_per_axis(capsys, tmp_path):
    """``solve --poisson 6x5 --spacing 1.0,0.5`` solves the anisotropic grid (there was no
    spacing option): x is the minimum-norm solution of the Kronecker sum of the 1-D Neumann
    matrices, divided by h_a^2 per axis, from spsolve of the bordered system
    [[A, 1], [1^T, 0]]; one number scales every axis (h = 0.5: a quarter of h = 1's x). Beside
    --matrix it is refused."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    def neumann_1d(n, h):  # tridiag(-1, 2, -1) with 1 in the corners, over h^2
        main = np.full(n, 2.0)
        main[[0, -1]] = 1.0
        return sp.diags([-np.ones(n - 1), main, -np.ones(n - 1)], [-1, 0, 1]) / h**2

    A = sp.kron(neumann_1d(6, 1.0), sp.eye(5)) + sp.kron(sp.eye(6), neumann_1d(5, 0.5))
    ones = np.ones((30, 1))
    bordered = sp.bmat([[A, ones], [ones.T, None]], format="csc")
    b = np.random.default_rng(0).standard_normal(30)  # the CLI's default b
    exact = spsolve(bordered, np.append(b, 0.0))[:30]  # mean 0: the minimum-norm solution
    xs = {}
    for spacing in ("1.0,0.5", "0.5", None):
        out = tmp_path / f"x{spacing}.npy"
        flags = [] if spacing is None else ["--spacing", spacing]
        argv = ["solve", "--poisson", "6x5", *flags, "--rtol", "1e-12", "--out", str(out)]
        code, stdout, err = _run(argv, capsys)
        assert code == 0 and err == "" and json.loads(stdout)["status"] == "converged"
        xs[spacing] = np.load(out)
    np.testing.assert_allclose(xs["1.0,0.5"], exact, rtol=0, atol=1e-9 * np.abs(exact).max())
    assert np.abs(xs["1.0,0.5"] - xs[None]).max() > 0.1 * np.abs(exact).max()  # it mattered
    np.testing.assert_allclose(xs["0.5"], 0.25 * xs[None], rtol=0, atol=1e-9)
    code, stdout, err = _run(["solve", "--matrix", "A.npz", "--spacing", "0.5"], capsys)
    assert (code, stdout) == (2, "") and err == (
        "sciml: error: --spacing: only for --poisson (a --matrix is assembled already), got "
        "--spacing 0.5 beside --matrix A.npz\n"
    )


def test_solve_makes_the_folder_of_its_out_file(capsys, tmp_path, monkeypatch):
    """--out new/dir/x solved and then failed ("[Errno 2] ... cannot create its temporary
    file"); export and data generate make their --out's folder. The folder is made at writing
    (x equals the one --out x writes), and a file where a folder should be is refused before
    the solve, writing nothing."""
    monkeypatch.chdir(tmp_path)
    for out in ("x", "new/dir/x"):
        code, stdout, err = _run(["solve", "--poisson", "6x6", "--out", out], capsys)
        assert code == 0 and json.loads(stdout)["out"] == f"{out}.npy", err
    np.testing.assert_array_equal(np.load("new/dir/x.npy"), np.load("x.npy"))
    (tmp_path / "taken").write_text("mine")
    code, stdout, err = _run(["solve", "--poisson", "6x6", "--out", "taken/y"], capsys)
    assert (code, stdout) == (2, "")
    assert err == (
        f"sciml: error: expected --out in a folder, got taken/y, where {tmp_path / 'taken'} "
        "is a file\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "taken", "x.npy"]


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "generate", "darcy", "--n", "2", "--resolution", "8", "--out", "taken/x.h5"],
        ["export", "fno-ns2d", "--shape", "2,1,32,32", "--out", "taken/sub/x.pt2"],
    ],
)
def test_an_out_file_under_a_file_is_refused_before_the_work(argv, capsys, tmp_path, monkeypatch):
    """--out taken/x.h5 with taken a file: data generate solved and export traced, then both
    failed making the folder with "[Errno 17] File exists: 'taken'"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("mine")
    code, out, err = _run(argv, capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"sciml: error: expected --out in a folder, got {argv[-1]}, where {tmp_path / 'taken'} "
        "is a file\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_solve_refuses_a_folder_named_like_its_npy_out_before_solving(
    capsys, tmp_path, monkeypatch
):
    # before: solved, then "[Errno 21] Is a directory: '.x.npy.7e1abe24.tmp' -> 'x.npy'"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.npy").mkdir()
    for out in ("x.npy", "x"):  # np.save's name: "x" is written as x.npy
        code, stdout, err = _run(["solve", "--poisson", "8x8", "--out", out], capsys)
        assert (code, stdout) == (2, "")
        assert (
            err
            == "sciml: error: expected --out to name the .npy file to write, got the folder x.npy\n"
        )
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"] and not any(
        (tmp_path / "x.npy").iterdir()
    )


def test_evaluate_shipped_model_on_another_grid_notes_its_training_grid(
    tmp_path, capsys, monkeypatch
):
    """A shipped model scored on DATA at another resolution than its card's says so on stderr
    (mgno-darcy scored 0.5 on a 33x33 file without a word); at its own 64x64 no note, and the
    line names the model, not its install path. The printed error is the one computed here."""
    monkeypatch.chdir(tmp_path)
    opts = ["--n", "2", "--set", "coefficient=piecewise_constant", "--seed", "3"]
    for res in ("33", "64"):
        code, _, err = _run(
            ["data", "generate", "darcy", "--resolution", res, *opts, "--out", f"d{res}.h5"],
            capsys,
        )
        assert code == 0, err
    code, out, err = _run(["evaluate", "mgno-darcy", "d33.h5", "--json"], capsys)
    assert code == 0, err
    assert "mgno-darcy was trained on a grid of 64 points per axis, d33.h5 holds 33x33" in err
    with h5py.File("d33.h5", "r") as f:
        a = torch.from_numpy(np.asarray(f["static_fields/a"])).float()[:, None]
        u = torch.from_numpy(np.asarray(f["static_fields/u"])).float()[:, None]
    with torch.no_grad():
        pred = sciml.load("mgno-darcy").eval()(a)
    rel = ((pred - u).flatten(1).norm(dim=1) / u.flatten(1).norm(dim=1)).mean()
    assert json.loads(out)["rel_l2"] == pytest.approx(float(rel), rel=1e-5)
    assert float(rel) > 0.1  # far off the card's 0.011: why the note matters
    code, out, err = _run(["evaluate", "mgno-darcy", "d64.h5"], capsys)
    assert code == 0 and "note:" not in err, err
    assert out.startswith("mgno-darcy on d64.h5 (2 samples): relative L2 ")
    assert "weights" not in out


def test_evaluate_on_a_grid_the_model_refuses_names_the_model_the_file_and_the_grid(
    tmp_path, capsys, monkeypatch
):
    """fno-ns2d (trained at 32x32, 12 modes) on a 16x16 file said only "modes=(12, 12) keep 24
    frequencies along a dim of size 16 ...": no model, no file, and the training-grid note
    came only after a successful evaluation."""
    monkeypatch.chdir(tmp_path)
    # (why) record_steps: a T under one time unit needs it since b23e872
    argv = ["data", "generate", "navier_stokes", "--n", "2", "--resolution", "16", "--set",
            "T=0.01", "--set", "record_steps=1", "--out", "ns.h5"]  # fmt: skip
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    code, out, err = _run(["evaluate", "fno-ns2d", "ns.h5"], capsys)
    assert (code, out) == (2, "")
    note, error = err.splitlines()
    assert note.startswith("note: fno-ns2d was trained on a grid of 32 points per axis, ns.h5 "
                           "holds 16x16")  # fmt: skip
    assert error.startswith(
        "sciml: error: fno-ns2d cannot be evaluated on ns.h5: modes=(12, 12) keep 24 "
        "frequencies along a dim of size 16"
    ), error


@pytest.mark.parametrize(
    "argv, message",
    [
        # was torch's "batch_size should be a positive integer value, but got batch_size=0"
        (["d.h5", "--batch-size", "0"], "--batch-size expects an integer >= 1, got 0"),
        # these two were ignored: the card's evaluation ran, on every fresh case, at its own batch
        (["--split", "test"], "--split / --batch-size apply to 'sciml evaluate CHECKPOINT DATA'"),
        (["--batch-size", "4"], "--split / --batch-size apply to 'sciml evaluate CHECKPOINT DATA'"),
    ],
)
def test_evaluate_refuses_a_batch_size_below_1_and_flags_that_fresh_data_ignores(
    argv, message, capsys
):
    code, out, err = _run(["evaluate", "fno-ns2d", *argv], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("sciml: error: ") and message in err, err


def test_evaluate_name_with_fewer_cases_than_the_card_says_why_it_may_miss(capsys):
    # 50 fresh cases give 0.00862 against the card's 0.01035 (2000 cases): 16.8% > 10%
    code, out, _ = _run(["evaluate", "deeponet-antiderivative", "--n", "50"], capsys)
    assert code == 1
    assert "(tolerance 10%): MISMATCH" in out
    assert "on 50 of the card's 2000 cases the difference includes more sampling noise" in out


def test_train_fresh_optimizer_reaches_the_trainer_and_needs_resume(tmp_path, capsys, monkeypatch):
    """``--fresh-optimizer`` is the CLI's way to ``fit(resume=..., optimizer_state=False)``, the
    way on that the Trainer's CheckpointError names for an optimiser state that no longer fits."""
    import sciml.experiment

    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"train": {"epochs": 1}}))
    code, _, err = _run(["train", str(path), "--fresh-optimizer"], capsys)
    assert code == 2 and "--fresh-optimizer applies to a resume: pass --resume" in err

    seen = {}

    def fake_run(experiment, **kwargs):
        seen.update(kwargs)
        return {"interrupted": True}

    monkeypatch.setattr(sciml.experiment, "load_experiment", lambda p: type("E", (), {"out": "x"}))
    monkeypatch.setattr(sciml.experiment, "run", fake_run)
    code, _, _ = _run(["train", str(path), "--resume", "--fresh-optimizer"], capsys)
    assert (seen["resume"], seen["optimizer_state"]) == ("auto", False)
    _run(["train", str(path), "--resume"], capsys)
    assert seen["optimizer_state"] is True


def test_experiment_resume_keeps_the_recorded_split_when_the_file_grew(tmp_path):
    """A resume trains on the split the run recorded: splitting the grown file again moved
    samples the run had held out for test into training (``split`` of 20 samples is another
    permutation than of 10: sample 8, held out for validation, goes to training at 20). A shrunk file or a changed split spec is refused by name."""
    import sciml
    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, Experiment, ModelSpec, run

    data = tmp_path / "darcy.h5"
    generate("darcy", n=10, resolution=8, out=data, seed=0)
    spec = DataSpec(path=str(data), view="static_pairs", inputs=("a",), targets=("u",))
    model = ModelSpec("fno", {"modes": [3, 3], "width": 4, "n_layers": 1, "projection_channels": 4})
    exp = Experiment(
        model=model, data=spec, train={"epochs": 1, "batch_size": 4}, out=str(tmp_path / "run")
    )
    run(exp, progress=False)
    recorded = sciml.data.Split.load(tmp_path / "run" / "splits.json")
    assert recorded == sciml.data.split(10, spec.split, seed=spec.seed)

    generate("darcy", n=20, resolution=8, out=data, seed=0, overwrite=True)
    regrown = sciml.data.split(20, spec.split, seed=spec.seed)
    assert set(regrown.train) & set(recorded.val) == {8}  # what a new split would train on
    longer = dataclasses.replace(exp, train={"epochs": 2, "batch_size": 4})
    with pytest.warns(UserWarning, match="holds 20 samples, the run's .* splits the first 10"):
        run(longer, resume=True, progress=False)
    assert sciml.data.Split.load(tmp_path / "run" / "splits.json") == recorded

    changed = dataclasses.replace(exp, data=dataclasses.replace(spec, seed=1))
    with pytest.raises(ValueError, match=r"split \[0.8, 0.1, 0.1\] / seed 1 is not the one"):
        run(changed, resume=True, progress=False)
    generate("darcy", n=6, resolution=8, out=data, seed=0, overwrite=True)
    with pytest.raises(ValueError, match="splits 10 samples and .* now holds 6"):
        run(exp, resume=True, progress=False)
    assert sciml.data.Split.load(tmp_path / "run" / "splits.json") == recorded


@pytest.mark.parametrize("unbuffered", [True, False])
@pytest.mark.parametrize("command", ["info", "--help"])
def test_info_into_a_closed_pipe_stops_quietly(tmp_path, command, unbuffered):
    """``sciml info FILE | head -1``: the reader closes the pipe, and the command printed
    'sciml: error: [Errno 32] Broken pipe'. It stops without a word, status 141 (128 + SIGPIPE).

    Also with stdout block-buffered (PYTHONUNBUFFERED unset, as for most users): the output was
    written only at interpreter exit, which printed 'Exception ignored ... BrokenPipeError' and
    gave status 120; and for ``sciml --help``, which leaves through argparse's SystemExit."""
    path = sciml.data.write(tmp_path / "small.h5", fields={"u": np.zeros((4, 3, 16, 8))})
    code = "import sys; from sciml.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    args = ["info", str(path)] if command == "info" else [command]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    # argparse's own printing of an unbuffered --help swallows the error and exits 0
    expected = 0 if (command == "--help" and unbuffered) else 141
    assert proc.wait(timeout=120) == expected
    assert err == ""


def test_a_broken_pipe_other_than_stdout_is_an_error():
    """Only a closed stdout is quiet: a BrokenPipeError from another pipe (a worker's, a
    subprocess's) while stdout is open was swallowed with status 141 and no word."""
    code = """if True:
        import sys, sciml.cli as cli
        def handler(args):
            raise BrokenPipeError(32, "Broken pipe (a worker's)")
        cli._info = handler
        sys.exit(cli.main(["info", "any.h5"]))
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (
        2,
        "sciml: error: [Errno 32] Broken pipe (a worker's)\n",
    )


def test_python_dash_m_sciml_runs_the_cli():
    """`python -m sciml` failed ("No module named sciml.__main__"); it is the `sciml` command,
    with its exit status."""
    via_module = subprocess.run(
        [sys.executable, "-m", "sciml", "pretrained", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    via_cli = subprocess.run(
        [sys.executable, "-m", "sciml.cli", "pretrained", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert via_module.returncode == 0, via_module.stderr
    assert via_module.stdout == via_cli.stdout and "fno-ns2d" in via_module.stdout
    # an error main() returns (not argparse's SystemExit, which exits 2 without sys.exit): the
    # status reaches the shell only through sys.exit(main())
    bad = subprocess.run(
        [sys.executable, "-m", "sciml", "info", "absent.h5"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("sciml: error: absent.h5: no such file")


@pytest.mark.parametrize("family", ["node", "prose", "dcdm"])
def test_train_refuses_a_family_it_cannot_train_before_reading_data(family, capsys, tmp_path):
    """A NODE experiment failed after the data were read and split, with NODE's "expected
    finite, strictly increasing ... times t, got [1, 3.5, 2.5, 2]" (all_pairs' lead times);
    PROSE and DCDM learn from no data view. Each is refused first, naming where to train it."""
    path = tmp_path / "e.json"
    experiment = {
        "model": {"family": family, "config": {}},
        "data": {"path": str(tmp_path / "absent.h5"), "view": "all_pairs"},
        "train": {"epochs": 1},
        "out": str(tmp_path / "run"),
    }
    path.write_text(json.dumps(experiment))
    code, _, err = _run(["train", str(path)], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"model.family: sciml train cannot train '{family}'" in err
    example = {"node": "regularized_node", "prose": "prose_ode", "dcdm": "dcdm_poisson"}[family]
    assert f"examples/{example}.py" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("family", ["node", "prose", "dcdm"])
def test_train_refuses_such_a_family_inside_an_explicit_normalized_wrapper(
    family, capsys, tmp_path
):
    """{"family": "normalized", "config": {"family": "node"}} got past the refusal above and
    failed on the data (here: 'absent.h5: no such file'); the wrapped family is refused first,
    named by where it sits. A trainable wrapped family still reaches the data."""
    path = tmp_path / "e.json"

    def train(inner):
        experiment = {
            "model": {"family": "normalized", "config": {"family": inner, "config": {}}},
            "data": {"path": str(tmp_path / "absent.h5"), "view": "all_pairs"},
            "train": {"epochs": 1},
            "out": str(tmp_path / "run"),
        }
        path.write_text(json.dumps(experiment))
        return _run(["train", str(path)], capsys)

    code, _, err = train(family)
    assert code == 2 and err.count("\n") == 1, err
    assert f"model.config.family: sciml train cannot train '{family}'" in err
    assert not (tmp_path / "run").exists()
    code, _, err = train("fno")
    assert code == 2 and "data.path: expected an HDF5 file, got " in err, err


def test_the_node_refusal_says_what_trains_a_node():
    """The refusal said "train it ... with sciml.train.Trainer as examples/regularized_node.py
    does"; that example has its own loop. It names both now, and the Trainer route works: a
    NODE fitted by sciml.train.Trainer on items holding "input", "target" and their output
    times "t" (collated to identical rows) learns dy/dt = A y (relative error 0.62 -> below
    0.3; the exact flow is matrix_exp(A t))."""
    from sciml.experiment import _TRAINED_ELSEWHERE
    from sciml.models import NODE, NODEConfig
    from sciml.train import TrainConfig, Trainer

    message = _TRAINED_ELSEWHERE["node"]
    assert "sciml.train.Trainer on items that hold their output times as 't'" in message
    assert "examples/regularized_node.py does (its own loop)" in message
    torch.manual_seed(0)
    a = torch.tensor([[-0.5, 1.0], [-1.0, -0.5]])
    t = torch.linspace(0, 1, 5)
    u0 = torch.randn(32, 2)
    traj = torch.stack([u0 @ torch.matrix_exp(a * s).T for s in t], 1)  # (32, 5, 2)
    items = [{"input": u0[i], "target": traj[i], "t": t} for i in range(32)]
    model = NODE(NODEConfig(hidden=(16,), solver="rk4", step_size=0.25))

    def error():
        with torch.no_grad():
            return float((model(u0, t=t) - traj).norm() / traj.norm())

    before = error()
    config = TrainConfig(epochs=40, batch_size=8, lr=1e-2)
    Trainer(model, items, config=config, out_dir=None, progress=False).fit()
    assert before > 0.5 and error() < 0.3, (before, error())


def test_experiment_static_fields_reach_the_input_the_normalizer_and_rollout(tmp_path, capsys):
    """``data.static_fields``: a windows view appends the static speed ``c`` after the window,
    the Normalized wrapper gets its statistics after the window's (numpy over the training
    split), and a residual MgNO with ``static_channels: 1`` trained on it rolls out with
    ``static=c`` exactly as it predicts the view's items. A count that disagrees, a static_pairs
    view with static_fields and a time-dependent name are refused."""
    import sciml
    from sciml.errors import ConfigError
    from sciml.experiment import DataSpec, Experiment, ModelSpec, build_views, load_experiment, run

    rng = np.random.default_rng(4)
    u = rng.standard_normal((6, 5, 9, 9)).astype(np.float32) * 2 + 1
    c = (3 + rng.random((6, 9, 9))).astype(np.float32)
    path = sciml.data.write(tmp_path / "wave.h5", fields={"u": u}, static_fields={"c": c})
    (tmp_path / "exp.yaml").write_text(
        "model: {family: mgno, config: {in_channels: 3, out_channels: 1, channels: 4, "
        "n_layers: 1, smoothing: [[1, 1], [1, 1]], residual: true, static_channels: 1}}\n"
        "data: {path: wave.h5, view: windows, inputs: [u], static_fields: [c], n_in: 2, "
        "split: [0.5, 0.25, 0.25]}\n"
        f"train: {{epochs: 1, batch_size: 4}}\nout: {tmp_path / 'run'}\n"
    )
    exp = load_experiment(tmp_path / "exp.yaml")
    assert exp.data.static_fields == ("c",)
    result = run(exp, progress=False)
    model = sciml.load(result["best_checkpoint"])
    splits = sciml.data.split(6, (0.5, 0.25, 0.25), seed=0)
    train = list(splits.train)
    mu, su = u[train].astype(np.float64).mean(), u[train].astype(np.float64).std()
    mc, sc = c[train].astype(np.float64).mean(), c[train].astype(np.float64).std()
    np.testing.assert_allclose(model.in_mean.numpy(), [mu, mu, mc], rtol=1e-6)
    np.testing.assert_allclose(model.in_std.numpy(), [su, su, sc], rtol=1e-6)
    np.testing.assert_allclose(model.out_mean.numpy(), [mu], rtol=1e-6)

    view = build_views(exp.data, samples=list(splits.test))
    s = int(splits.test[0])
    item = view[2]  # the first test sample, steps 2, 3 -> 4
    np.testing.assert_array_equal(item["input"].numpy(), np.stack([u[s, 2], u[s, 3], c[s]]))
    np.testing.assert_array_equal(item["target"].numpy(), u[s, 4:5])
    x = item["input"][None]
    with torch.no_grad():
        traj = model.rollout(x[:, :2], 2, static=x[:, 2:])
        np.testing.assert_allclose(traj[:, 0].numpy(), model(x).numpy(), rtol=0, atol=0)
        second = model(torch.cat([x[:, 1:2], traj[:, 0], x[:, 2:]], dim=1))
        np.testing.assert_allclose(traj[:, 1].numpy(), second.numpy(), rtol=0, atol=0)

    mgno = {"in_channels": 3, "channels": 4, "n_layers": 1, "smoothing": [[1, 1], [1, 1]],
            "residual": True}  # fmt: skip
    bad = Experiment(model=ModelSpec("mgno", mgno), data=exp.data, out=str(tmp_path / "bad"))
    with pytest.raises(ConfigError, match=r"model.config.static_channels: the windows view "
                       r"appends 1 static channel\(s\) \['c'\] .* set static_channels: 1"):  # fmt: skip
        run(bad, progress=False)
    assert not (tmp_path / "bad").exists()
    # snapshots / all_pairs: the static statistics follow the inputs' once
    from sciml.experiment import _channel_stats

    for view_name in ("snapshots", "all_pairs"):
        spec = DataSpec(path=str(path), view=view_name, inputs=("u",), static_fields=("c",))
        stats = _channel_stats(build_views(spec, samples=train), train, spec)
        np.testing.assert_allclose(stats[0], [mu, mc], rtol=1e-6)
        np.testing.assert_allclose(stats[1], [su, sc], rtol=1e-6)
        np.testing.assert_allclose(stats[2:], [[mu], [su]], rtol=1e-6)
    # evaluate on a file without c names what the checkpoint was trained on
    sciml.data.write(tmp_path / "no_c.h5", fields={"u": u})
    code, _, err = _run(["evaluate", result["best_checkpoint"], str(tmp_path / "no_c.h5")], capsys)
    assert code == 2 and "view of inputs ['u'] + static ['c'] -> targets all fields" in err
    spec = DataSpec(path=str(path), view="static_pairs", inputs=("c",), static_fields=("c",))
    with pytest.raises(ValueError, match="data.static_fields is for the time-dependent views"):
        build_views(spec)
    spec = DataSpec(path=str(path), view="all_pairs", inputs=("u",), static_fields=("u",))
    with pytest.raises(ValueError, match=r"got \['u'\]; \['u'\] are time-dependent"):
        build_views(spec)


@pytest.mark.parametrize(
    "extra, given",
    [
        (["--n", "3"], "--n"),
        (["darcy", "--out", "x.h5"], "NAME, --out"),
        (["--set", "nu=0.1", "--overwrite"], "--set, --overwrite"),
    ],
)
def test_generate_list_refuses_other_arguments(extra, given, capsys):
    """``data generate --list --n 3`` printed the list and dropped ``--n`` without a word."""
    code, out, err = _run(["data", "generate", "--list", *extra], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"sciml: error: --list prints the generators and takes nothing else, got {given}; "
        "drop --list to generate\n"
    )
    code, out, _ = _run(["data", "generate", "--list"], capsys)
    assert code == 0 and len(out.splitlines()) == len(GENERATORS)


def test_info_refuses_an_empty_name(capsys, tmp_path, monkeypatch):
    """``sciml info ''`` read the current folder as a checkpoint ("config.json: missing")."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["info", ""], capsys)
    assert (code, out) == (2, "")
    assert err == (
        "sciml: error: expected an HDF5 file, a checkpoint folder or a shipped model name, got ''\n"
    )


@pytest.mark.parametrize("name", ["e.txt", "e", "e.pt2.bak"])
def test_export_refuses_an_out_that_is_not_pt2(name, capsys, tmp_path, monkeypatch):
    """``export --out e.txt`` wrote a .pt2 program under any name; refused before the export,
    as ``data generate`` refuses an --out that is not .h5 (nothing is written)."""
    monkeypatch.chdir(tmp_path)
    argv = ["export", "fno-ns2d", "--shape", "2,1,32,32", "--out", name]
    code, out, err = _run(argv, capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"sciml: error: --out expects a torch.export file name ending in .pt2, got {name!r} (the "
        "file is a .pt2 program whatever its name: name it so that tools recognise it)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_a_recipe_for_another_generator(capsys, tmp_path, monkeypatch):
    """``data generate darcy --recipe burgers.yaml`` ran darcy with the Burgers options ("unknown
    option(s) ['T', ...]") without naming the recipe. The recipe's own generator named as NAME
    still runs the recipe: its nu reaches the file, and --n / --resolution override it."""
    recipe = os.path.join(os.path.dirname(__file__), "..", "datasets", "burgers_nu1e-1.yaml")
    monkeypatch.chdir(tmp_path)
    tail = ["--recipe", recipe, "--n", "2", "--resolution", "16", "--out", "q.h5"]
    code, out, err = _run(["data", "generate", "darcy", *tail], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"sciml: error: --recipe {recipe} is for generator 'burgers', got generator 'darcy'; "
        "drop NAME to run the recipe, or --recipe to run 'darcy'\n"
    )
    assert not (tmp_path / "q.h5").exists()
    code, out, err = _run(["data", "generate", "burgers", *tail], capsys)
    assert (code, out, err) == (0, "wrote q.h5\n", "")
    with h5py.File(tmp_path / "q.h5") as f:
        settings = json.loads(f.attrs["generator_settings"])
        assert f["fields/u"].shape == (2, 2, 16)  # u0 and u(T) on 16 points
    assert (settings["n"], settings["resolution"], settings["nu"], settings["T"]) == (2, 16, 0.1, 1)


@pytest.mark.parametrize(
    "model, kind", [("fno-ns2d", "FNO in Normalized, family 'fno'"), ("mgno-darcy", None)]
)
def test_solve_refuses_a_model_that_is_not_a_dcdm_network(model, kind, capsys):
    """``solve --method dcdm --model fno-ns2d`` failed with FNO's shape error, naming no --model;
    a DCDM network given by --model still solves, as its default does."""
    if kind is None:
        inner = sciml.load(model).inner
        kind = f"{type(inner).__name__} in Normalized, family {inner.family!r}"
    argv = ["solve", "--poisson", "8x8x8", "--method", "dcdm"]
    code, out, err = _run([*argv, "--model", model], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"sciml: error: --model: --method dcdm expects a DCDM network (family 'dcdm', as "
        f"dcdm-poisson3d), got {model} ({kind})\n"
    )
    runs = [_run(a, capsys) for a in (argv, [*argv, "--model", "dcdm-poisson3d"])]
    assert runs[0][0] == runs[1][0] == 0
    default, named = (json.loads(r[1]) for r in runs)
    assert default["status"] == "converged" and default["iterations"] == named["iterations"]
    assert default["true_residual"] == named["true_residual"] <= 1e-6


def test_export_refuses_a_negative_lead_time(capsys, tmp_path, monkeypatch):
    """``export scot-ns2d --t -1`` was accepted: sciml's time-conditioned models are trained and
    evaluated on lead times t >= 0 (SnapshotPairs refuses a backward pair with a lead time,
    AllPairs gives t_j - t_i for j >= i). t = 0 (AllPairs' include_self) is still exported."""
    monkeypatch.chdir(tmp_path)
    argv = ["export", "scot-ns2d", "--shape", "2,1,16,16", "--out", "s.pt2", "--t"]
    code, out, err = _run([*argv, "-1"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        "sciml: error: --t expects a lead time >= 0 (scot-ns2d was trained on t >= 0, the time "
        "from input to output), got -1.0\n"
    )
    assert not (tmp_path / "s.pt2").exists()
    code, out, _ = _run([*argv, "0"], capsys)
    assert code == 0 and out.startswith("wrote s.pt2")
    u = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.zeros(3)
    with torch.no_grad():
        got = torch.export.load("s.pt2").module()(u, t=t)
        want = sciml.load("scot-ns2d").eval()(u, t=t)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_train_resume_of_a_finished_run_says_nothing_was_left(tmp_path, capsys):
    """``sciml train X --resume`` on a finished run re-printed its result as if it had trained;
    it now says so in one line, with the step the run ended at (6 training samples, batch 2,
    2 epochs: step 6). Raising train.epochs resumes to step 9 without that line."""
    from sciml.data.generators import generate

    data = tmp_path / "d.h5"
    generate("darcy", n=10, resolution=8, out=data, seed=0)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 4, "n_layers": 1}},
        "data": {"path": str(data), "view": "static_pairs", "inputs": ["a"], "targets": ["u"],
                 "split": [0.6, 0.2, 0.2]},
        "train": {"epochs": 2, "batch_size": 2, "lr": 0.01},
        "out": str(tmp_path / "run"),
    }  # fmt: skip
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(experiment))
    argv = ["train", str(path), "--no-progress"]
    code, first, err = _run(argv, capsys)
    assert code == 0, err
    assert "nothing left" not in first
    code, again, err = _run([*argv, "--resume"], capsys)
    assert code == 0, err
    assert again == (
        f"nothing left to train: {tmp_path / 'run'}/last is at step 6, where train.epochs = 2 "
        "ends (raise it to train on); the finished run's result:\n" + first
    )
    experiment["train"]["epochs"] = 3
    path.write_text(json.dumps(experiment))
    code, more, err = _run([*argv, "--resume"], capsys)
    assert code == 0, err
    assert "nothing left" not in more
    state = json.loads((tmp_path / "run" / "last" / "trainer_state.json").read_text())["state"]
    assert state["step"] == 9


@pytest.mark.parametrize(
    "config, says",
    [
        (
            {"in_channels": 2},
            "FNO expected u of shape (batch, 2, 2 spatial dims), got (1, 1, 8, 8); the spatial "
            "dims are set by the config: in_channels=2, modes=(3, 3)",
        ),
        (
            {"out_channels": 2},
            "expected pred and target of the same shape, got (1, 2, 8, 8) and (1, 1, 8, 8); "
            "check the model's out_channels and the data's target layout",
        ),
    ],
)
def test_a_model_that_does_not_fit_the_view_is_refused_before_the_run_folder(
    config, says, tmp_path, capsys
):
    """``in_channels: 2`` on a one-channel Darcy file failed at the first step with FNO's own
    error, naming no key; the run's one-item pre-flight check names model.config, the view
    and the item's shapes, and no run folder is made."""
    from sciml.data.generators import generate

    data = generate("darcy", n=10, resolution=8, out=tmp_path / "d.h5", seed=1)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 4, "n_layers": 1,
                                              **config}},
        "data": {"path": str(data), "inputs": ["a"], "targets": ["u"], "split": [0.6, 0.2, 0.2]},
        "train": {"epochs": 1, "batch_size": 4},
        "out": str(tmp_path / "new" / "run"),
    }  # fmt: skip
    (tmp_path / "e.json").write_text(json.dumps(experiment))
    code, out, err = _run(["train", str(tmp_path / "e.json"), "--no-progress"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"sciml: error: {tmp_path / 'e.json'}: model.config does not fit data.view static_pairs: "
        "one training item as a "
        f"batch of 1 has input (1, 1, 8, 8), target (1, 1, 8, 8), and the model says: {says}\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "e.json"]


def test_a_points_view_whose_sensors_leave_out_the_static_fields_is_refused(tmp_path):
    """DeepONet's sensors counting the inputs but not the static fields (6 of 12 branch
    values) failed at the first step with "expected u of shape (batch, 6)"; refused before the
    run folder, naming the view, its shapes and static_fields."""
    import sciml.data as sd
    from sciml.errors import ConfigError
    from sciml.experiment import DataSpec, Experiment, ModelSpec, run

    rng = np.random.default_rng(0)
    u = rng.standard_normal((8, 4, 6)).astype(np.float32)
    c = (1 + rng.random((8, 6))).astype(np.float32)
    data = tmp_path / "wave.h5"
    sd.write(data, fields={"u": u}, static_fields={"c": c}, coords={"x": np.linspace(0, 1, 6)})
    branch = {"sensors": 6, "coord_dim": 1, "basis": 4}
    exp = Experiment(
        model=ModelSpec("deeponet", branch),
        data=DataSpec(path=str(data), view="points", inputs=("u",), targets=("u",),
                      static_fields=("c",), input_step=1, target_step=-1, n_points=3,
                      split=(0.5, 0.25, 0.25)),
        train={"epochs": 1, "batch_size": 2},
        out=str(tmp_path / "run"),
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        run(exp, progress=False)
    assert str(info.value) == (
        "model.config does not fit data.view points: one training item as a batch of 1 has "
        "input (1, 2, 6), target (1, 3, 1), x (1, 3, 1), static_fields ['c'], and the model "
        "says: DeepONet expected u of shape (batch, 6) (the input function at 6 sensors; "
        "(batch, channels, *spatial) is flattened), got (1, 2, 6)"
    )
    assert not (tmp_path / "run").exists()
    run(dataclasses.replace(exp, model=ModelSpec("deeponet", {**branch, "sensors": 12})),
        progress=False)  # fmt: skip
    assert (tmp_path / "run" / "best").exists()


def test_the_pre_flight_check_leaves_the_model_and_the_rng_as_they_were():
    """The one-item check runs in eval mode under no_grad with the global RNG put back: a
    BatchNorm's running statistics and step count, the train flag and the next random draw
    are those without the check, so the run trains as before."""
    from sciml.experiment import DataSpec, _check_model_fits
    from sciml.train import LpLoss

    model = torch.nn.Sequential(torch.nn.BatchNorm2d(1), torch.nn.Dropout(0.5))
    item = {"input": torch.randn(1, 4, 4) * 3 + 2, "target": torch.zeros(1, 4, 4)}
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    _check_model_fits(model, [item], DataSpec(path="unused.h5"), LpLoss())
    assert torch.equal(torch.rand(3), want)
    bn = model[0]
    assert model.training and int(bn.num_batches_tracked) == 0
    assert torch.equal(bn.running_mean, torch.zeros(1)) and torch.equal(
        bn.running_var, torch.ones(1)
    )


def test_data_validate_fails_on_an_invalid_file_and_names_every_problem(tmp_path, capsys):
    # it called data.validate, which returns the problems, and printed 'valid' with status 0
    # for a NaN-filled file; a file of another layout is checked as sciml.data.open reads it
    u = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    good = sd.write(tmp_path / "good.h5", fields={"u": u}, static_fields={"c": u[:, 0]})
    assert _run(["data", "validate", str(good)], capsys) == (
        0,
        f"{good}: valid sciml HDF5 file\n",
        "",
    )
    bad = sd.write(tmp_path / "bad.h5", fields={"u": u}, static_fields={"c": u[:, 0]})
    with h5py.File(bad, "a") as f:
        f["fields/u"][1, 2, 3] = np.nan
        f["static_fields/c"][0, 1] = np.inf
    code, out, err = _run(["data", "validate", str(bad)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"sciml: error: {bad}: dataset 'fields/u' has non-finite value nan at sample 1, index "
        "(2, 3); expected finite values; dataset 'static_fields/c' has non-finite value inf at "
        "sample 0, index (1,); expected finite values\n"
    )
    other = tmp_path / "pdebench.h5"
    with h5py.File(other, "w") as f:
        f["tensor"], f["x-coordinate"] = u, np.arange(4.0)
    assert _run(["data", "validate", str(other)], capsys) == (
        0, f"{other}: valid pdebench (read by sciml.data.open) file\n", ""
    )  # fmt: skip
    with h5py.File(other, "a") as f:
        f["tensor"][0, 1, 2] = np.nan
    assert _run(["data", "validate", str(other)], capsys) == (
        2, "", f"sciml: error: {other}: pdebench file: dataset 'tensor' has non-finite value nan "
        "at index (0, 1, 2); expected finite values\n",
    )  # fmt: skip


def test_a_warning_during_a_command_is_one_sciml_warning_line(tmp_path, capsys):
    """A warning raised under ``sciml`` (here: a resume with another TrainConfig) printed as
    Python formats it: ``/path/to/sciml/experiment.py:640: UserWarning: ...`` and then the
    source line ``result = trainer.fit(...)`` on a second line. It is now one line,
    ``sciml: warning: ...``, as ``sciml pretrained list`` writes its own, and Python's warning
    printer is put back when the command returns."""
    import warnings

    from sciml.data.generators import generate

    data = tmp_path / "d.h5"
    generate("darcy", n=5, resolution=8, out=data, seed=0)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 4, "n_layers": 1}},
        "data": {"path": str(data), "inputs": ["a"], "targets": ["u"], "split": [0.6, 0.2, 0.2]},
        "train": {"epochs": 1, "batch_size": 3, "lr": 0.01},
        "out": str(tmp_path / "run"),
    }
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(experiment))
    argv = ["train", str(path), "--no-progress"]
    assert _run(argv, capsys)[0] == 0
    experiment["train"]["lr"] = 0.02
    path.write_text(json.dumps(experiment))
    before = warnings.showwarning
    code, out, err = _run([*argv, "--resume"], capsys)
    assert code == 0 and "nothing left to train" in out
    assert err.count("\n") == 1, err
    assert err.startswith(
        f"sciml: warning: resuming from {tmp_path / 'run'}/ckpt-1 with a different TrainConfig "
        "(changed: ['lr'])"
    ), err
    assert warnings.showwarning is before


def test_a_resume_with_another_loss_or_data_view_warns_naming_the_keys(tmp_path):
    """``--resume`` with ``loss: l1`` on a run started with ``l2`` (or with the input and
    target fields swapped, which fit the same model) continued without a word, though it
    does not continue that run, and rewrote experiment.json as if the whole run had used the
    new settings. It warns now, naming each changed key and its recorded value, as a changed
    TrainConfig does; an unchanged experiment resumes without a warning."""
    import warnings

    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, Experiment, ModelSpec, run

    data = tmp_path / "d.h5"
    generate("darcy", n=5, resolution=8, out=data, seed=0)
    spec = DataSpec(path=str(data), inputs=("a",), targets=("u",), split=(0.6, 0.2, 0.2))
    model = ModelSpec("fno", {"modes": [3, 3], "width": 4, "n_layers": 1})
    exp = Experiment(model, spec, train={"epochs": 1, "batch_size": 3}, out=str(tmp_path / "r"))
    run(exp, progress=False)
    more = dataclasses.replace(exp, train={"epochs": 2, "batch_size": 3})
    run(more, progress=False, resume=True)  # the TrainConfig change warns on its own
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="resume: ")
        run(more, progress=False, resume=True)  # nothing changed: no such warning
        # a default written out is the same model
        config = {**model.config, "width": 4, "padding": 0}
        run(dataclasses.replace(more, model=ModelSpec("fno", config)), progress=False, resume=True)
    recorded = json.loads((tmp_path / "r" / "experiment.json").read_text())
    assert recorded["loss"] == "l2"
    swapped = dataclasses.replace(spec, inputs=("u",), targets=("a",))
    for changed, says in [
        (dataclasses.replace(more, loss="l1"), r"loss \(recorded 'l2', now 'l1'\)"),
        (
            dataclasses.replace(more, data=swapped),
            r"data\.inputs \(recorded \['a'\], now \['u'\]\), data\.targets \(recorded \['u'\], "
            r"now \['a'\]\)",
        ),
    ]:
        with pytest.warns(UserWarning, match=r"resume: .*experiment\.json.* " + says) as seen:
            run(changed, progress=False, resume=True)
        assert len([w for w in seen if str(w.message).startswith("resume: ")]) == 1


def test_an_augmentation_that_cannot_move_the_items_is_refused_before_the_run_folder(
    tmp_path, capsys
):
    """``augment: fno_forcing`` (2D Navier-Stokes maps) on 1D Burgers snapshots failed at the
    first training batch, inside the DataLoader, with the symmetry's own words ("shift
    direction (1, -1) moves along axes of sizes [1, 32] ..."), naming no key of the file; the
    pre-flight check ran the unmoved item only. One augmented item is now read before the run
    folder is made, and the refusal names data.augment and the item's shapes."""
    from sciml.data.generators import generate

    data = generate("burgers", n=4, resolution=32, n_steps=2, out=tmp_path / "b.h5", seed=0)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [4], "width": 4, "n_layers": 1}},
        "data": {"path": str(data), "view": "snapshots", "augment": "fno_forcing",
                 "split": [0.5, 0.25, 0.25]},
        "train": {"epochs": 1, "batch_size": 2},
        "out": str(tmp_path / "run"),
    }  # fmt: skip
    path = tmp_path / "e.json"
    path.write_text(json.dumps(experiment))
    code, out, err = _run(["train", str(path), "--no-progress"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(
        f"sciml: error: {path}: data.augment: 'fno_forcing' cannot move the items of data.view "
        "snapshots (input (1, 32), target (1, 32)): shift direction (1, -1)"
    ), err
    assert not (tmp_path / "run").exists()


def test_evaluate_split_on_a_larger_file_warns_that_it_is_not_the_run_s_file(tmp_path, capsys):
    """``--split test`` on a file of 16 samples, after a run that split 10, scored the 10-sample
    split's test indices of the larger file without a word: the recorded split is of the file
    the run trained on. A grown copy keeps those samples, another file does not; a one-line
    warning says so, and the metrics (stdout) are those of the recorded indices. The run's own
    file gives no warning; the test metric equals a hand computation on the selected samples."""
    import h5py

    from sciml.data.generators import generate

    data = generate("darcy", n=10, resolution=8, out=tmp_path / "d.h5", seed=1)
    larger = generate("darcy", n=16, resolution=8, out=tmp_path / "l.h5", seed=2)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 6, "n_layers": 1}},
        "data": {"path": str(data), "inputs": ["a"], "targets": ["u"], "split": [0.5, 0.2, 0.3]},
        "train": {"epochs": 1, "batch_size": 4},
        "out": str(tmp_path / "run"),
    }
    (tmp_path / "exp.json").write_text(json.dumps(experiment))
    assert _run(["train", str(tmp_path / "exp.json"), "--no-progress"], capsys)[0] == 0
    best = str(tmp_path / "run" / "best")
    code, out, err = _run(["evaluate", best, str(data), "--split", "test", "--json"], capsys)
    assert code == 0 and err == "", err
    code, out, err = _run(["evaluate", best, str(larger), "--split", "test", "--json"], capsys)
    assert code == 0, err
    assert err.count("\n") == 1 and err.startswith("sciml: warning: --split test: "), err
    assert f"of the 10 samples the run split, and {larger} holds 16" in err
    test = json.loads((tmp_path / "run" / "splits.json").read_text())["test"]
    model = sciml.load(best)
    with h5py.File(larger, "r") as f:
        a = np.asarray(f["static_fields/a"])[test]
        u = np.asarray(f["static_fields/u"])[test].astype(np.float64)
    with torch.no_grad():
        pred = model(torch.from_numpy(a).float()[:, None])[:, 0].double().numpy()
    rel = np.linalg.norm((pred - u).reshape(len(u), -1), axis=1) / np.linalg.norm(
        u.reshape(len(u), -1), axis=1
    )
    assert json.loads(out)["rel_l2"] == pytest.approx(rel.mean(), rel=1e-5)


def test_a_resume_without_a_checkpoint_does_not_warn_of_changed_settings(tmp_path):
    """A run folder that holds an experiment.json but no checkpoint (a resume finds nothing
    to continue, and the run starts afresh) must not warn that the run "continues with the
    new settings": nothing is continued."""
    import warnings

    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, Experiment, ModelSpec, run

    data = generate("darcy", n=5, resolution=8, out=tmp_path / "d.h5", seed=0)
    spec = DataSpec(path=str(data), inputs=("a",), targets=("u",), split=(0.6, 0.2, 0.2))
    model = ModelSpec("fno", {"modes": [3, 3], "width": 4, "n_layers": 1})
    exp = Experiment(model, spec, train={"epochs": 1, "batch_size": 3}, out=str(tmp_path / "r"))
    (tmp_path / "r").mkdir()
    recorded = {**json.loads(json.dumps(dataclasses.asdict(exp))), "loss": "h1"}
    (tmp_path / "r" / "experiment.json").write_text(json.dumps(recorded))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="resume: ")
        result = run(exp, progress=False, resume=True)
    assert (tmp_path / "r" / "last").exists() and not result["interrupted"]
    assert json.loads((tmp_path / "r" / "experiment.json").read_text())["loss"] == "l2"


def test_train_into_a_folder_holding_another_runs_checkpoints_is_refused(tmp_path, capsys):
    """``sciml train`` without --resume into a finished run's folder warned, then started
    afresh there: until its first checkpoint the folder held the earlier run's ``last`` /
    ``best`` beside this run's experiment.json and splits.json (for good if it was killed
    first), which a later --resume or ``evaluate --split`` took for that checkpoint's. It is
    refused before anything is written; --resume still continues the run, and a folder
    without checkpoints is still trained into."""
    from sciml.data.generators import generate

    data = generate("darcy", n=5, resolution=8, out=tmp_path / "d.h5", seed=0)
    experiment = {
        "model": {"family": "fno", "config": {"modes": [3, 3], "width": 4, "n_layers": 1}},
        "data": {"path": str(data), "inputs": ["a"], "targets": ["u"], "split": [3, 1, 1]},
        "train": {"epochs": 1, "batch_size": 3},
        "out": str(tmp_path / "r"),
    }
    path = tmp_path / "e.json"
    path.write_text(json.dumps(experiment))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("mine")
    assert _run(["train", str(path), "--no-progress"], capsys)[0] == 0
    run_dir = tmp_path / "r"
    files = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert os.readlink(run_dir / "last") == "ckpt-1"  # 3 samples in batches of 3: 1 step
    experiment["data"]["seed"] = 5  # another split: what the refused run would have written
    path.write_text(json.dumps(experiment))
    code, _, err = _run(["train", str(path), "--no-progress"], capsys)
    assert (code, err) == (
        2,
        f"sciml: error: {run_dir} holds another run's checkpoints (last, best, ckpt-1); pass "
        f"--resume to continue that run, or train this one into another folder (--out, or "
        f"remove {run_dir} first)\n",
    )
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == files
    assert sorted(p.name for p in run_dir.iterdir() if not p.is_file()) == [
        "best",
        "ckpt-1",
        "last",
    ]
    code, _, err = _run(
        ["train", str(path), "--no-progress", "--out", str(tmp_path / "r2")], capsys
    )
    assert code == 0 and os.readlink(tmp_path / "r2" / "last") == "ckpt-1"
    experiment["data"]["seed"] = 0
    path.write_text(json.dumps(experiment))
    code, out, _ = _run(["train", str(path), "--no-progress", "--resume"], capsys)
    assert code == 0 and out.startswith(f"nothing left to train: {run_dir}/last is at step 1")
