"""The pickle-free trainer-state encoder, and TrainConfig's JSON round trip."""

from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pytest
import torch

from sciml import ConfigError
from sciml.train import Constant, Cosine, OneCycle, TrainConfig
from sciml.train._state import decode, encode, load_state, save_state
from sciml.train.schedules import build_scheduler


def _equal(a, b):
    """Deep equality that also checks container types, dtypes and tensor values."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _real_state():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.99))
    sched = build_scheduler(opt, OneCycle(), total_steps=10)
    for _ in range(3):
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
        sched.step()
    return {
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        },
        "odd": {(1, "a"): [1.5, float("nan"), float("-inf")], 3: None, "__x": np.float32(2.5)},
        "history": [{"step": 1, "loss": 0.5, "val": None}],
    }


def test_round_trip_in_memory_and_json_is_plain():
    tree = _real_state()
    structure, arrays = encode(tree)
    text = json.dumps(structure, allow_nan=False)  # strict JSON: no pickle, no NaN literals
    assert _equal(decode(json.loads(text), arrays), tree)
    opt_state = decode(json.loads(text), arrays)["optimizer"]
    assert list(opt_state["state"]) == [0, 1, 2, 3]  # int keys survive
    assert opt_state["param_groups"][0]["betas"] == (0.8, 0.99)  # tuples survive


def test_round_trip_through_files_restores_optimiser_and_rng(tmp_path):
    tree = _real_state()
    save_state(tree, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "trainer_state.json",
        "trainer_state.safetensors",
    ]
    back = load_state(tmp_path)
    assert _equal(back, tree)

    # the restored states drive the real objects: the RNG streams continue identically
    torch.set_rng_state(back["rng"]["torch"])
    np.random.set_state(back["rng"]["numpy"])
    random.setstate(back["rng"]["python"])
    a = (torch.rand(3), np.random.rand(3), random.random())
    torch.set_rng_state(tree["rng"]["torch"])
    np.random.set_state(tree["rng"]["numpy"])
    random.setstate(tree["rng"]["python"])
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    opt.load_state_dict(back["optimizer"])
    assert _equal(opt.state_dict(), tree["optimizer"])


def test_unsupported_leaf_raises():
    with pytest.raises(TypeError, match="cannot store a set"):
        encode({"a": {1, 2}})


@pytest.mark.parametrize("schedule", [Cosine(min_factor=0.05), OneCycle(pct_start=0.1), Constant()])
def test_train_config_json_round_trip(schedule):
    cfg = TrainConfig(epochs=3, batch_size=6, schedule=schedule, grad_clip=1.0, amp="bf16")
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_schedule_string_alias_becomes_the_object():
    from sciml._config import config_from_dict

    cfg = config_from_dict(TrainConfig, {"epochs": 2, "schedule": "onecycle"})
    assert cfg.schedule == OneCycle() and TrainConfig(schedule="Cosine").schedule == Cosine()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        TrainConfig(schedule="linear")


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="batch_size as an int >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(ConfigError, match="unknown field"):
        TrainConfig.from_dict({"epochs": 2, "lr_max": 1.0})


def test_trainer_checkpoint_files_get_the_permissions_a_plain_open_gives(tmp_path):
    """Every file of a training checkpoint is 0o666 less the umask, like one made by open():
    ``trainer_state.safetensors`` was owner-only (safetensors recreates files 0o600)."""
    import os
    import stat

    from test_train_common import make_trainer

    old = os.umask(0o022)
    try:
        make_trainer(tmp_path / "run", epochs=1).fit()
        (tmp_path / "plain").write_text("")
    finally:
        os.umask(old)
    files = sorted((tmp_path / "run" / "last").iterdir())
    assert "trainer_state.safetensors" in [f.name for f in files]
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    assert set(modes.values()) == {stat.S_IMODE((tmp_path / "plain").stat().st_mode)} == {0o644}


def test_plain_module_checkpoint_weights_get_the_permissions_a_plain_open_gives(tmp_path):
    """A plain nn.Module's ``model.safetensors`` was written by safetensors' ``save_file``,
    which recreates the file owner-only (0o600) whatever the umask; an Operator's went through
    ``sciml._io.save_safetensors`` and got 0o666 less the umask. Now both do; the file still
    loads with safetensors alone, to the module's exact weights."""
    import os
    import stat

    from safetensors.torch import load_file

    from sciml.train.checkpoint import WEIGHTS_FILE, write_checkpoint

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    for umask, want in ((0o022, 0o644), (0o027, 0o640)):
        old = os.umask(umask)
        try:
            out = write_checkpoint(tmp_path / f"ck{umask:o}", model, {"step": 1})
        finally:
            os.umask(old)
        weights = out / WEIGHTS_FILE
        assert stat.S_IMODE(weights.stat().st_mode) == want
        loaded = load_file(str(weights))
        state = model.state_dict()
        assert sorted(loaded) == sorted(state)
        assert all(torch.equal(loaded[k], state[k]) for k in state)


def _rows(n):
    rng = random.Random(0)
    return [
        {
            "step": i + 1,
            "epoch": (i + 1) / 7,
            "lr": rng.random() * 1e-3,
            "train_loss": [0.1 + 0.2, float("nan"), float("inf"), -1e-300][i % 4],
            "val_loss": rng.random() if i % 10 == 0 else None,
        }
        for i in range(n)
    ]


def test_history_is_stored_as_columns_and_comes_back_exactly(tmp_path):
    """Each checkpoint stores the whole history. As a list of dicts in trainer_state.json it
    took 2.9 MB and 0.65 s per checkpoint at 10,000 rows; as float64 / int64 columns (None
    masked) it goes to the safetensors file and the JSON holds no row. The rows come back equal,
    value for value and type for type (ints stay ints, nan / inf stay, None stays None)."""
    from sciml.train._runlog import pack_rows, unpack_rows

    rows = _rows(1000)
    save_state({"history": pack_rows(rows)}, tmp_path)
    assert _equal(unpack_rows(load_state(tmp_path)["history"]), rows)
    # no row in the JSON: 587 bytes (the list of dicts took 156,307)
    assert (tmp_path / "trainer_state.json").stat().st_size < 1024
    # a column of ints and floats, or of strings, is kept as a list; rows with other keys come
    # back with their own keys; a list (an older checkpoint) reads as rows
    mixed = [r | {"mixed": i if i % 2 else float(i), "note": None if i % 3 else "x"}
             for i, r in enumerate(rows[:20])]  # fmt: skip
    odd = [{"step": 1, "loss": 0.5}, {"step": 2}]
    for tree in (mixed, odd):
        assert _equal(unpack_rows(decode(*encode(pack_rows(tree)))), tree)
    assert _equal(unpack_rows(rows[:3]), rows[:3]) and unpack_rows(pack_rows([])) == []


def test_history_with_an_int_past_int64_is_stored_as_a_list(tmp_path):
    """A column of ints became an int64 tensor, and one past int64 (a callback's counter or a
    hash in a row) made torch.tensor raise, so the checkpoint failed; JSON held it before. Such
    a column is kept as a list: the rows come back exactly, the other columns still as
    tensors."""
    from sciml.train._runlog import pack_rows, unpack_rows

    rows = [
        {"step": i, "id": 2**63 + i if i else -(2**64), "loss": 0.5 / (i + 1)} for i in range(4)
    ]
    packed = pack_rows(rows)
    kinds = {name: type(values).__name__ for name, values, _ in packed["columns"]}
    assert kinds == {"step": "Tensor", "id": "list", "loss": "Tensor"}
    save_state({"history": packed}, tmp_path)
    back = unpack_rows(load_state(tmp_path)["history"])
    assert _equal(back, rows) and back[1]["id"] == 9223372036854775809


def test_history_with_a_value_added_to_some_rows_is_stored_as_columns(tmp_path):
    """``trainer.history[-1]["val_psnr"] = ...`` in ``on_evaluate`` (as docs/trainer.md shows)
    gives the validation rows a key the training rows lack, and rows whose keys differ were
    stored as a list of dicts in trainer_state.json: every later checkpoint went back to the
    size and time the columns avoid. They are now columns over all the keys, with a mask of the
    rows each key is absent from: the rows come back exactly (absent keys absent, key order
    kept) and the JSON holds no row. Rows whose keys come in another order stay a list."""
    from sciml.train._runlog import pack_rows, unpack_rows

    rows = _rows(1000)
    for i, r in enumerate(rows):
        if r["val_loss"] is not None:
            r["val_psnr"] = 30.0 + i / 7
        if i == 5:
            r["note"] = "restart"  # a string column, present in one row
    packed = pack_rows(rows)
    assert isinstance(packed, dict)
    kinds = {name: type(values).__name__ for name, values, _ in packed["columns"]}
    assert kinds == {"step": "Tensor", "epoch": "Tensor", "lr": "Tensor", "train_loss": "Tensor",
                     "val_loss": "Tensor", "val_psnr": "Tensor", "note": "list"}  # fmt: skip
    save_state({"history": packed}, tmp_path)
    back = unpack_rows(load_state(tmp_path)["history"])
    assert _equal(back, rows)
    assert sum("val_psnr" in r for r in back) == 100 and [r.get("note") for r in back[4:7]] == [
        None, "restart", None
    ]  # fmt: skip
    # the string column is a list of 1000 entries in the JSON; without it no row is there
    plain = [{k: v for k, v in r.items() if k != "note"} for r in rows]
    (tmp_path / "plain").mkdir()
    (tmp_path / "rows").mkdir()
    save_state({"history": pack_rows(plain)}, tmp_path / "plain")
    assert _equal(unpack_rows(load_state(tmp_path / "plain")["history"]), plain)
    assert (tmp_path / "plain" / "trainer_state.json").stat().st_size < 1024
    save_state({"history": plain}, tmp_path / "rows")  # as they were stored before
    assert (tmp_path / "rows" / "trainer_state.json").stat().st_size > 100_000

    swapped = [{"step": 1, "loss": 0.5}, {"loss": 0.25, "step": 2}]
    assert isinstance(pack_rows(swapped), list)
    assert _equal(unpack_rows(decode(*encode(pack_rows(swapped)))), swapped)


def test_history_with_numpy_floats_is_stored_as_columns(tmp_path):
    """An lr from NumPy (``TrainConfig(lr=np.logspace(...)[i])``) is an np.float64 in every
    row; the column's kinds were {np.float64}, not {float}, so it went into trainer_state.json
    as a list (JSON stores an np.float64 as a float all the same). It is now a float64 tensor
    and comes back as the same floats."""
    from sciml.train._runlog import pack_rows, unpack_rows

    lrs = np.logspace(-4, -2, 1000)
    rows = [{"step": i + 1, "lr": lrs[i], "loss": 0.5 if i % 2 else None} for i in range(1000)]
    rows[3]["lr"] = 0.25  # a plain float among them
    packed = pack_rows(rows)
    kinds = {name: type(values).__name__ for name, values, _ in packed["columns"]}
    assert kinds == {"step": "Tensor", "lr": "Tensor", "loss": "Tensor"}
    save_state({"history": packed}, tmp_path)
    back = unpack_rows(load_state(tmp_path)["history"])
    assert [r["lr"] for r in back] == [float(v) for v in lrs[:3]] + [0.25] + lrs[4:].tolist()
    assert all(type(r["lr"]) is float for r in back) and back[1]["loss"] == 0.5
    assert (tmp_path / "trainer_state.json").stat().st_size < 1024


def _pack_rows_reference(rows):
    """pack_rows as it was before it went through NumPy and read the columns in one pass:
    Python loops per column, torch.tensor on lists."""
    if not rows:
        return []
    names = list(rows[0])
    absent = []
    if any(list(r) != names for r in rows):
        names = list(dict.fromkeys(k for r in rows for k in r))
        if any([k for k in names if k in r] != list(r) for r in rows):
            return [dict(r) for r in rows]
        for name in names:
            missing = [name not in r for r in rows]
            if any(missing):
                absent.append([name, torch.tensor(missing)])
    columns = []
    for name in names:
        values = [r.get(name) for r in rows]
        kinds = {type(v) for v in values} - {type(None)}
        kinds = {float if issubclass(k, float) else k for k in kinds}
        none = [v is None for v in values]
        wide = kinds == {int} and any(v is not None and not -(2**63) <= v < 2**63 for v in values)
        if (kinds == {int} and not wide) or kinds == {float}:
            dtype = torch.int64 if kinds == {int} else torch.float64
            zero = 0 if kinds == {int} else 0.0
            data = torch.tensor([zero if v is None else v for v in values], dtype=dtype)
            mask = torch.tensor(none) if any(none) else None
            columns.append([name, data, mask])
        else:
            columns.append([name, values, None])
    packed = {"rows": len(rows), "columns": columns}
    if absent:
        packed["absent"] = absent
    return packed


def _identical(a, b):
    """Equal trees, type for type; tensors of the same dtype, shape and bytes (nan included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        same = (a.dtype, a.shape, a.stride()) == (b.dtype, b.shape, b.stride())
        return same and a.numpy().tobytes() == b.numpy().tobytes()
    if isinstance(a, dict):
        return list(a) == list(b) and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def test_packed_history_is_that_of_the_per_column_loops(tmp_path):
    """pack_rows took 120 ms at 10,000 rows of a Trainer's 9 columns (Python loops per column,
    torch.tensor on lists); it now reads the columns in one pass and converts through NumPy. Its
    output is the same as the loops' (the reference above), tensor bytes and list items alike,
    on histories with absent keys, np.float64, ints, bools, nan / inf, None, ints past int64,
    strings, columns of ints and floats, keys in another order; and it saves to the same
    trainer_state files."""
    from sciml.train._runlog import pack_rows

    lrs = np.logspace(-4, -2, 60)
    mixed = []
    for i in range(60):
        row = {"step": i + 1, "epoch": (i + 1) / 7, "lr": lrs[i], "n": i if i % 4 else None}
        row["loss"] = [float("nan"), math.inf, None, 0.5 / (i + 1), -0.0][i % 5]
        row["mixed"] = i if i % 2 else float(i)
        row["note"] = None if i % 3 else "x"
        row["big"] = 2**63 + i if i == 7 else i
        if i % 10 == 0:  # keys absent from the other rows
            row["flag"] = bool(i % 20)
        if i % 6 == 5:
            row["val_psnr"] = np.float64(30.0 + i / 7)
        mixed.append(row)
    histories = {
        "mixed": mixed,
        "same keys": [{k: r.get(k) for k in ("step", "lr", "n", "loss", "big")} for r in mixed],
        "trainer": _rows(1000),
        "swapped": [{"step": 1, "loss": 0.5}, {"loss": 0.25, "step": 2}],
        "negative past int64": [{"a": -(2**63) - 1}, {"a": 0}],
        "int64 ends": [{"a": 2**63 - 1}, {"a": -(2**63)}],
        "just past int64": [{"a": 2**63}, {"a": None}],
        "none only": [{"a": None}, {"a": None}],
        "empty rows": [{}, {}],
        "no rows": [],
    }
    for name, rows in histories.items():
        new, ref = pack_rows(rows), _pack_rows_reference(rows)
        assert _identical(new, ref), name
        if rows:
            for tree, where in ((new, "new"), (ref, "ref")):
                (tmp_path / name / where).mkdir(parents=True)
                save_state({"history": tree}, tmp_path / name / where)
            for f in ("trainer_state.json", "trainer_state.safetensors"):
                assert (tmp_path / name / "new" / f).read_bytes() == (
                    tmp_path / name / "ref" / f
                ).read_bytes(), (name, f)
    packed = pack_rows(mixed)
    kinds = {name: type(values).__name__ for name, values, _ in packed["columns"]}
    assert kinds["lr"] == kinds["loss"] == kinds["n"] == kinds["val_psnr"] == "Tensor"
    assert kinds["big"] == kinds["mixed"] == kinds["flag"] == kinds["note"] == "list"
    assert [name for name, _ in packed["absent"]] == ["flag", "val_psnr"]


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("epochs", True, "epochs as an int >= 1"),
        ("epochs", 2.5, "epochs as an int >= 1"),
        ("epochs", "3", "epochs as an int >= 1"),
        ("epochs", 0, "epochs as an int >= 1"),
        ("batch_size", 4.0, "batch_size as an int >= 1"),
        ("log_every", True, "log_every as an int >= 1"),
        ("warmup_steps", 1.5, "warmup_steps as an int >= 0"),
        ("eval_every", True, "eval_every as an int >= 0"),
        ("checkpoint_every", -1, "checkpoint_every as an int >= 0"),
        ("num_workers", True, "num_workers as an int >= 0"),
        ("seed", -1, "seed as an int >= 0"),
        ("seed", True, "seed as an int >= 0"),
        ("lr", math.nan, "lr as a finite number >= 0"),
        ("lr", math.inf, "lr as a finite number >= 0"),
        ("lr", -1e-3, "lr as a finite number >= 0"),
        ("lr", True, "lr as a finite number >= 0"),
        ("lr", "1e-3", "lr as a finite number >= 0"),
        ("weight_decay", math.nan, "weight_decay as a finite number >= 0"),
        ("grad_clip", math.nan, "grad_clip as a number > 0 or None"),
        ("grad_clip", True, "grad_clip as a number > 0 or None"),
        ("compile", 1, "compile as a bool"),
        ("micro_batch", 0, "micro_batch as an int >= 1 or None"),
        ("micro_batch", True, "micro_batch as an int >= 1 or None"),
        ("micro_batch", 2.0, "micro_batch as an int >= 1 or None"),
        ("micro_batch", "2", "micro_batch as an int >= 1 or None"),
    ],
)
def test_train_config_refuses_values_of_the_wrong_type_or_range(field, value, expected):
    """epochs=True trained one epoch and wrote checkpoints that a resume refused
    (TrainConfig.from_dict: 'expected an integer, got True'); seed=-1 failed in the first
    epoch's shuffle ('expected non-negative integer'); grad_clip=nan and lr=inf put nan in
    the weights at the first step; lr=nan was refused only by AdamW ('Invalid learning rate')."""
    with pytest.raises(
        (TypeError, ValueError), match=re.escape(f"expected {expected}, got {value!r}")
    ):
        TrainConfig(**{field: value})


def test_train_config_takes_numpy_scalars_and_ints_for_floats_and_round_trips_them():
    cfg = TrainConfig(epochs=np.int64(3), batch_size=np.int32(4), lr=1, seed=np.uint8(5),
                      weight_decay=np.float32(0.5), grad_clip=math.inf,
                      micro_batch=np.int64(2))  # fmt: skip
    back = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    assert (back.epochs, back.batch_size, back.lr, back.seed, back.weight_decay) == (
        3,
        4,
        1,
        5,
        0.5,
    )
    # (micro_batch np.int64(2) was refused: 'expected micro_batch as an int >= 1 or None')
    assert back.micro_batch == 2 and type(back.micro_batch) is int
