"""The Trainer: learning, metrics files, checkpoints, Ctrl-C, model hooks, sampler, AMP."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from test_train_common import ShiftData, Tiny, TinyConfig, make_trainer

import sciml
from sciml.train import (
    MSE,
    Callback,
    Constant,
    EarlyStopping,
    LpLoss,
    ShardedBatchSampler,
    TimeBudget,
    TrainConfig,
    Trainer,
    read_checkpoint,
    write_checkpoint,
)


def test_tiny_operator_learns_shift_and_best_checkpoint_loads(tmp_path):
    trainer = make_trainer(
        tmp_path,
        n_train=64,
        epochs=60,
        batch_size=16,
        lr=1e-2,
        log_every=50,
        checkpoint_every=0,
        metadata={"data": "shift-3"},
    )
    before = trainer.evaluate(trainer.val_data)["rel_l2"]
    result = trainer.fit()
    assert before > 0.5
    assert result.best_metric < 0.02  # measured 0.009
    assert result.train_loss < 0.02
    assert not result.interrupted and result.step == 240

    # `best` is a plain operator checkpoint: sciml.load gives a model whose relative L2 error,
    # recomputed here with numpy, is the best metric the trainer reported
    best = sciml.load(tmp_path / "best")
    assert isinstance(best, Tiny)
    val = trainer.val_data
    with torch.no_grad():
        pred = best(val.u).numpy().reshape(len(val), -1)
    y = val.y.numpy().reshape(len(val), -1)
    rel = np.linalg.norm(pred - y, axis=1) / np.linalg.norm(y, axis=1)
    assert rel.mean() == pytest.approx(result.best_metric, rel=1e-5)
    assert os.readlink(tmp_path / "best") == f"ckpt-{result.best_step}"
    record = json.loads((tmp_path / "best" / "config.json").read_text())
    assert record["metadata"] == {"data": "shift-3"}


def test_plain_module_checkpoints_keep_the_metadata(tmp_path):
    """A plain nn.Module's checkpoint has no config.json, and Trainer(metadata=...) was dropped
    without a word; it is now in the checkpoint's metadata.json, and metadata that JSON cannot
    hold is refused before any file of the checkpoint is written (as save_pretrained refuses
    it)."""
    meta = {"data": "shift-3", "splits": [32, 8], "nu": 0.01}
    model = torch.nn.Conv1d(1, 1, 5, padding=2, padding_mode="circular")
    cfg = TrainConfig(epochs=1, batch_size=8, log_every=10, checkpoint_every=0)
    trainer = Trainer(model, ShiftData(16), val_data=ShiftData(8, seed=2), config=cfg,
                      out_dir=tmp_path, progress=False, metadata=meta)  # fmt: skip
    trainer.fit()
    for link in ("last", "best"):
        assert not (tmp_path / link / "config.json").exists()
        assert json.loads((tmp_path / link / "metadata.json").read_text()) == meta
    # and the checkpoint still reads back as a training checkpoint (2 steps of 8 samples)
    state = read_checkpoint(tmp_path / "last", torch.nn.Conv1d(1, 1, 5, padding=2))
    assert state["step"] == 2
    # without metadata nothing is added beside the weights and the trainer state
    Trainer(model, ShiftData(16), config=cfg, out_dir=tmp_path / "none", progress=False).fit()
    assert sorted(p.name for p in (tmp_path / "none" / "last").iterdir()) == [
        "model.safetensors", "trainer_state.json", "trainer_state.safetensors"]  # fmt: skip
    # the checkpoint write's own check (the Trainer refuses such metadata before it gets here):
    # nothing is written, not even the weights
    with pytest.raises(TypeError, match="expected metadata that JSON can hold"):
        write_checkpoint(tmp_path / "bad", model, {"step": 1}, metadata={"nu": torch.tensor(0.01)})
    assert list((tmp_path / "bad").iterdir()) == []


def test_metadata_json_cannot_hold_is_refused_before_training(tmp_path):
    """Such metadata was refused only by the first checkpoint's write, after an epoch of
    training (and on rank 0 alone, whose peers then waited); the Trainer now refuses it when
    built, for an Operator (config.json) and a plain nn.Module (metadata.json) alike."""
    bad = {"nu": torch.tensor(0.01)}
    with pytest.raises(TypeError, match="expected metadata that JSON can hold"):
        make_trainer(tmp_path / "op", metadata=bad)
    plain = torch.nn.Conv1d(1, 1, 5, padding=2, padding_mode="circular")
    cfg = TrainConfig(epochs=1, batch_size=8, log_every=10, checkpoint_every=0)
    with pytest.raises(TypeError, match="expected metadata that JSON can hold"):
        Trainer(plain, ShiftData(16), config=cfg, out_dir=tmp_path / "plain", progress=False,
                metadata={"splits": {(0, 1): 3}})  # fmt: skip
    # without an out_dir nothing is written, so nothing is refused; JSON-able metadata builds
    Trainer(plain, ShiftData(16), config=cfg, progress=False, metadata=bad)
    make_trainer(tmp_path / "ok", metadata={"nu": 0.01, "splits": [32, 8]})


def test_empty_validation_set_is_refused_before_training(tmp_path):
    """split(5) leaves no validation sample; the Trainer accepted the empty set, trained a whole
    epoch and then failed in the sampler, without saving it, on a message naming no data set."""
    model = Tiny(TinyConfig())
    with pytest.raises(ValueError, match="val_data: expected a non-empty data set, got 0"):
        Trainer(model, ShiftData(8), val_data=ShiftData(0), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="train_data: expected a non-empty data set, got 0"):
        Trainer(model, ShiftData(0), progress=False)
    assert not (tmp_path / "last").exists()
    # one sample and a batch larger than the data set: one step per epoch on that sample
    trainer = Trainer(model, ShiftData(1), val_data=ShiftData(1, seed=2),
                      config=TrainConfig(epochs=2, batch_size=8, lr=0.0, weight_decay=0.0),
                      progress=False)  # fmt: skip
    result = trainer.fit()
    assert result.step == 2
    val = ShiftData(1, seed=2)
    with torch.no_grad():
        pred = model(val.u)
    rel = torch.linalg.vector_norm(pred - val.y) / torch.linalg.vector_norm(val.y)
    assert result.best_metric == pytest.approx(float(rel), rel=1e-5)


def test_a_data_loader_for_data_is_refused_before_training(tmp_path):
    """A DataLoader passed as val_data (a common slip: the Trainer batches the data set
    itself) trained the first epoch and then failed with "'DataLoader' object is not
    subscriptable", naming no argument; as train_data it failed at the first step."""
    model, data = Tiny(TinyConfig()), ShiftData(16)
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    for name, kwargs in (("train_data", dict(train_data=loader)),
                         ("val_data", dict(train_data=data, val_data=loader))):  # fmt: skip
        with pytest.raises(
            TypeError,
            match=f"{name}: expected a map-style data set .* got a DataLoader; pass its data set",
        ):
            Trainer(model, out_dir=tmp_path, progress=False, **kwargs)
    with pytest.raises(
        TypeError, match="train_data: expected a map-style data set .* got a list_iterator"
    ):
        Trainer(model, iter([data[0]]), progress=False)
    assert not (tmp_path / "last").exists()
    # evaluate(data) the same ("'DataLoader' object is not subscriptable" before)
    with pytest.raises(TypeError, match="data: expected a map-style data set .* got a DataLoader"):
        Trainer(model, data, progress=False).evaluate(loader)


def test_a_loss_metric_or_config_of_the_wrong_kind_is_refused_when_built(tmp_path):
    """metrics={'mse': MSE} (the class, not MSE(reduction='none')) trained the first epoch and
    failed at its validation ('MSE.__init__() takes 1 positional argument but 3 were given'),
    before the epoch's checkpoint; loss=LpLoss failed so at the first step, and a dict for
    config with "'dict' object has no attribute 'batch_size'"."""
    model, data = Tiny(TinyConfig()), ShiftData(16)
    cases = [
        (dict(metrics={"mse": MSE}, monitor="mse"), r"metrics\['mse'\]: expected .* got the class MSE"),
        (dict(metrics={"m": 3.0}), r"metrics\['m'\]: expected a callable .* got 3\.0"),
        (dict(loss=LpLoss), r"loss: expected .* got the class LpLoss; pass an instance: LpLoss\(\)"),
        (dict(config={"epochs": 1}), r"config: expected a TrainConfig, got a dict; TrainConfig.from_dict"),
    ]  # fmt: skip
    for kwargs, expected in cases:
        with pytest.raises(TypeError, match=expected):
            Trainer(model, data, val_data=ShiftData(8), out_dir=tmp_path, progress=False, **kwargs)
    assert not (tmp_path / "metrics.csv").exists()


def test_metrics_csv_and_json(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2, log_every=2, checkpoint_every=0)
    result = trainer.fit()
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    columns = ["step", "epoch", "time_s", "lr", "train_loss", "samples_per_s", "val_loss"]
    assert list(rows[0]) == columns + ["val_rel_l2", "val_mse"]
    js = json.loads((tmp_path / "metrics.json").read_text())
    assert js == result.history and len(js) == len(rows)
    train = [r for r in js if r["train_loss"] is not None]
    val = [r for r in js if r["val_loss"] is not None]
    # 5 steps per epoch, a training row every 2 steps, a validation row per epoch
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10]
    assert [r["step"] for r in val] == [5, 10] and [r["epoch"] for r in val] == [1.0, 2.0]
    assert all(r["samples_per_s"] > 0 for r in train)
    for r, c in zip(js, rows):
        for k, v in r.items():
            assert (c[k] == "") if v is None else float(c[k]) == pytest.approx(v)
    # the last validation row is the final model's evaluation
    assert val[-1]["val_rel_l2"] == pytest.approx(trainer.evaluate(trainer.val_data)["rel_l2"])
    assert val[-1]["val_mse"] == pytest.approx(trainer.evaluate(trainer.val_data)["mse"])


def test_metrics_json_is_rewritten_now_and_then_and_csv_gets_every_row(tmp_path):
    """metrics.json was rewritten in full on every row (O(rows^2): 20,000 rows at log_every=1
    spent minutes writing it); now the CSV gets each row, the JSON a rewrite once
    json_interval_s has passed since the last one (a fake clock, 1 s per row, interval 5 s:
    after rows 5, 10, ...) and at flush()."""
    from sciml.train._runlog import MetricsLog

    now = [0.0]
    log = MetricsLog(tmp_path, ["step", "loss"], json_interval_s=5.0, clock=lambda: now[0])
    log.reset([])
    json_lengths = []
    for k in range(1, 23):
        now[0] = float(k)
        log.append({"step": k, "loss": 1.0 / k})
        json_lengths.append(len(json.loads((tmp_path / "metrics.json").read_text())))
    assert json_lengths == [0] * 4 + [5] * 5 + [10] * 5 + [15] * 5 + [20] * 3
    with open(tmp_path / "metrics.csv") as f:
        rows = [{"step": int(r["step"]), "loss": float(r["loss"])} for r in csv.DictReader(f)]
    assert rows == [{"step": k, "loss": 1.0 / k} for k in range(1, 23)]  # exact: repr floats
    log.flush()
    assert json.loads((tmp_path / "metrics.json").read_text()) == rows


def test_a_metrics_json_rewrite_encodes_only_new_or_changed_rows(tmp_path, monkeypatch):
    """Every rewrite of metrics.json encoded the whole history (0.12-0.5 s per checkpoint at
    10,000 rows); each row's text is now kept with a copy of the row, and a rewrite encodes the
    rows that are new or no longer equal their copy: a row changed in place (the history is the
    live list) kept its old text, cached by identity alone, so the file differed from the
    history. The file stays byte for byte ``json.dumps(rows, indent=1)`` (non-finite floats as
    null) through appends, in-place changes, a row holding a list (changed inside), a row
    dropped and resets; a flush with nothing new or changed writes nothing."""
    from sciml.train import _runlog

    encoded, written = [], []
    dumps, write = json.dumps, _runlog.atomic_write_text

    def counting(obj, **kwargs):
        encoded.append(len(obj))
        return dumps(obj, **kwargs)

    def counting_write(path, text):
        written.append(path.name)
        write(path, text)

    monkeypatch.setattr(_runlog.json, "dumps", counting)
    monkeypatch.setattr(_runlog, "atomic_write_text", counting_write)
    columns = ["step", "loss", "note", "extra"]
    log = _runlog.MetricsLog(tmp_path, columns, json_interval_s=1e9)

    def expected():
        finite = [
            {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in r.items()}
            for r in log.rows
        ]
        return dumps(finite, indent=1) + "\n"

    def file_is_history():
        text = (tmp_path / "metrics.json").read_text()
        return text == expected() and json.loads(text) == json.loads(expected())

    values = [0.5, float("nan"), -0.0, 1e-300, None, 2, math.inf]
    for k in range(1, 8):
        note = 'é, "quoted"\n' if k == 3 else None
        log.append({"step": k, "loss": values[k - 1], "note": note})
        if k % 2 == 0:
            log.flush()
            assert file_is_history()
    log.flush()
    assert file_is_history()
    assert sum(encoded) == 7 and len(written) == 4  # each row once (2 + 4 + 6 + 7 before)
    log.flush()  # nothing new, nothing changed: no rewrite
    assert sum(encoded) == 7 and len(written) == 4

    # in place, as a callback would: a value changed, a value added, a new nan; then a new row
    log.rows[1]["loss"] = 0.25
    log.rows[4]["val_psnr"] = 31.5
    log.rows[5]["loss"] = float("nan")
    log.flush()
    assert file_is_history() and json.loads((tmp_path / "metrics.json").read_text())[1] == {
        "step": 2, "loss": 0.25, "note": None, "extra": None
    }  # fmt: skip
    assert sum(encoded) == 7 + 3 and len(written) == 5
    log.rows[2] = dict(log.rows[2])  # a new object, equal: its text stays
    log.append({"step": 8, "loss": 0.125, "extra": [8, {"a": 8}]})
    log.flush()
    assert file_is_history() and sum(encoded) == 10 + 1
    log.rows[-1]["extra"][1]["a"] = -8  # inside a list: a row with one is encoded every time
    log.flush()
    assert file_is_history() and sum(encoded) == 11 + 1
    del log.rows[-1]
    log.flush()
    assert file_is_history() and sum(encoded) == 12 and len(written) == 8
    log.reset(log.rows[:3])  # new objects equal to the rows: no row encoded again
    assert file_is_history() and sum(encoded) == 12
    log.reset([])
    assert (tmp_path / "metrics.json").read_text() == "[]\n"


def test_rows_of_numpy_floats_are_encoded_once(tmp_path, monkeypatch):
    """A TrainConfig lr from NumPy (``np.logspace``) puts an np.float64 in every row's ``lr``;
    a row's text was kept only for rows of exact int / float / str / None, so every rewrite
    encoded every row again (0.48 s per flush against 0.02 s at 10,000 rows). A float subclass
    cannot change in place and encodes as its value: each row is now encoded once, and the file
    is byte for byte ``json.dumps(rows, indent=1)``."""
    from sciml.train import _runlog

    encoded = []
    dumps = json.dumps

    def counting(obj, **kwargs):
        encoded.append(len(obj))
        return dumps(obj, **kwargs)

    monkeypatch.setattr(_runlog.json, "dumps", counting)
    log = _runlog.MetricsLog(tmp_path, ["step", "lr", "loss"], json_interval_s=1e9)
    lrs = np.logspace(-4, -2, 6)
    for k in range(6):
        log.append({"step": k + 1, "lr": lrs[k], "loss": float(k) / 8})
        log.flush()
    assert type(log.rows[0]["lr"]) is np.float64
    assert sum(encoded) == 6  # 1 + 2 + ... + 6 = 21 before
    log.rows[2]["lr"] = np.float64(0.5)  # changed in place: encoded again
    log.flush()
    assert sum(encoded) == 7
    want = [
        {"step": k + 1, "lr": 0.5 if k == 2 else float(lrs[k]), "loss": k / 8} for k in range(6)
    ]
    assert (tmp_path / "metrics.json").read_text() == dumps(want, indent=1) + "\n"


def test_a_value_replaced_by_an_equal_one_of_another_type_is_written_anew(tmp_path):
    """A row's cached text was reused while the row compared equal to its copy, and 1.0 == 1 ==
    True: a callback replacing an int by the float or bool of the same value left metrics.json
    saying ``1`` where the history holds ``1.0`` / ``true``. The file is now byte for byte
    ``json.dumps(history, indent=1)`` after such replacements."""
    from sciml.train._runlog import MetricsLog

    log = MetricsLog(tmp_path, ["step", "lr", "flag"], json_interval_s=1e9)
    for k in range(3):
        log.append({"step": k + 1, "lr": 1, "flag": 0})
    log.flush()
    assert (tmp_path / "metrics.json").read_text() == json.dumps(log.rows, indent=1) + "\n"
    log.rows[0]["lr"] = 1.0
    log.rows[2]["flag"] = False
    log.flush()
    text = (tmp_path / "metrics.json").read_text()
    assert text == json.dumps(log.rows, indent=1) + "\n"
    assert '"lr": 1.0,' in text and '"flag": false' in text
    assert [type(r["lr"]) for r in json.loads(text)] == [float, int, int]


def test_type_hints_of_every_public_callable_of_callbacks_resolve():
    """``typing.get_type_hints`` raised NameError on every hook of sciml.train.callbacks: the
    annotations name Trainer and FitResult, imported there only under TYPE_CHECKING. Every
    public class, method, property and ``__init__`` of the module now resolves, to the classes
    sciml.train exports."""
    import inspect
    import typing
    from pathlib import Path

    from sciml.train import FitResult, Trainer, callbacks

    resolved = {}
    for name in callbacks.__all__:
        cls = getattr(callbacks, name)
        resolved[name] = typing.get_type_hints(cls)
        for attr, value in vars(cls).items():
            if attr.startswith("_") and attr != "__init__":
                continue
            func = value.fget if isinstance(value, property) else value
            if inspect.isfunction(func):
                resolved[f"{name}.{attr}"] = typing.get_type_hints(func)
    assert len(resolved) == 23  # 3 classes, 20 public methods, properties and __init__s
    assert resolved["Callback.on_fit_end"] == {
        "trainer": Trainer, "result": FitResult, "return": type(None)
    }  # fmt: skip
    assert resolved["Callback.on_checkpoint"]["path"] is Path
    assert resolved["TimeBudget.on_step_end"] == {
        "trainer": Trainer, "loss": float, "return": type(None)
    }  # fmt: skip


def test_a_callback_changing_history_rows_changes_metrics_json(tmp_path):
    """``trainer.history`` is the live list, and a callback may add a metric to the newest row.
    The rows a validation at an epoch's last step had written (``best``'s checkpoint) kept their
    old text at every later rewrite, and a row changed after the final rewrite (in the final
    checkpoint's ``on_checkpoint`` or in ``on_fit_end``) was never written: the file lacked the
    changes (measured: 3 of 18 rows). Now metrics.json equals the history when fit returns."""

    class AddToRows(Callback):
        def on_epoch_end(self, trainer, epoch):
            trainer.history[-1]["val_note"] = 100 + epoch

        def on_checkpoint(self, trainer, path):
            trainer.history[-1]["train_loss"] = -1.0

        def on_fit_end(self, trainer, result):
            trainer.history[0]["lr"] = 0.5

    # 40 samples in batches of 8: validation at each epoch's last step (5), `best` saved there
    trainer = make_trainer(
        tmp_path, epochs=3, eval_every=5, checkpoint_every=0, callbacks=[AddToRows()]
    )
    trainer.fit()
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert rows == trainer.history and len(rows) == 18  # 15 steps, 3 validations
    assert [r["val_note"] for r in rows if "val_note" in r] == [100, 101, 102]
    assert rows[0]["lr"] == 0.5
    assert sum(r["train_loss"] == -1.0 for r in rows) == 3  # the val rows of 3 epoch ends


_KILLED_JSON_CHILD = """
import os, sys
from pathlib import Path
from sciml.train._runlog import MetricsLog

replace = os.replace
def blocking_replace(src, dst):  # metrics.json's new text is on disk, not yet in place
    print("ready", flush=True)
    sys.stdin.readline()
    replace(src, dst)
run = Path(sys.argv[1])
log = MetricsLog(run, ["step", "loss"])
log.append({"step": 1, "loss": 0.5})
log.flush()  # metrics.json holds step 1
os.replace = blocking_replace
log.append({"step": 2, "loss": 0.25})
log.flush()
print("committed", flush=True)
"""


def test_sigterm_while_metrics_json_is_rewritten_leaves_no_temporary_file(tmp_path, blocked_child):
    """metrics.json was written through its own '.metrics.json.tmp-<pid>', which a SIGTERM
    (a scheduler's time limit) in the middle of a rewrite left in the run directory; it now
    goes through sciml._io's atomic write, which removes its file, and the process still dies
    of SIGTERM with metrics.json at the rows of the rewrite before and metrics.csv at all."""
    child, _ = blocked_child(_KILLED_JSON_CHILD, tmp_path)
    assert len(list(tmp_path.iterdir())) == 3  # the CSV, the JSON and its temporary file
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM, err
    assert "committed" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "metrics.json"]
    assert json.loads((tmp_path / "metrics.json").read_text()) == [{"step": 1, "loss": 0.5}]
    with open(tmp_path / "metrics.csv") as f:
        assert [(r["step"], r["loss"]) for r in csv.DictReader(f)] == [("1", "0.5"), ("2", "0.25")]


def test_trainer_rewrites_metrics_json_at_checkpoints_and_the_end_only(tmp_path, monkeypatch):
    """One epoch of 5 steps, a row per step, a checkpoint at step 3 and at the epoch end: the
    JSON is written at the start (empty), at the two checkpoints and at no row in between (it
    was written 7 times: the start and each of the 5 + 1 rows). The log's clock is stopped, so
    the 5 s rewrite between checkpoints never comes, however slow the machine."""
    from sciml.train import _runlog

    writes = []
    write = _runlog.atomic_write_text
    original_init = _runlog.MetricsLog.__init__

    def counting(path, text):
        writes.append(len(json.loads(text)))
        write(path, text)

    def stopped_clock(self, run_dir, columns, **kwargs):
        original_init(self, run_dir, columns, **{**kwargs, "clock": lambda: 0.0})

    monkeypatch.setattr(_runlog, "atomic_write_text", counting)
    monkeypatch.setattr(_runlog.MetricsLog, "__init__", stopped_clock)
    result = make_trainer(tmp_path, epochs=1, log_every=1, checkpoint_every=3).fit()
    assert writes == [0, 3, 6]  # rows held: none, steps 1-3, steps 1-5 and the validation
    assert json.loads((tmp_path / "metrics.json").read_text()) == result.history


class _RaiseAt(Callback):
    def __init__(self, step, exc=KeyboardInterrupt):
        self.step, self.exc = step, exc

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            raise self.exc


class _SigintAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("interrupt", [_RaiseAt, _SigintAt], ids=["KeyboardInterrupt", "SIGINT"])
def test_ctrl_c_saves_last_and_resume_finishes_like_an_uninterrupted_run(tmp_path, interrupt):
    """SIGINT finishes step 7 and saves it. A KeyboardInterrupt (a second Ctrl-C, here from a
    callback after step 7's update, before its row and the step's checkpoint bookkeeping) aborts:
    `last` stays at the consistent step-6 checkpoint (it saved step 7 without its history row,
    and inside the update it could save a half-updated step). Either resume equals the
    uninterrupted run, history included."""
    run = tmp_path / "run"
    result = make_trainer(run, dropout=0.1, callbacks=[interrupt(7)]).fit()
    assert result.interrupted and result.step == 7
    saved = 6 if interrupt is _RaiseAt else 7
    assert (
        os.readlink(run / "last") == f"ckpt-{saved}" and result.checkpoint.name == f"ckpt-{saved}"
    )
    state = read_checkpoint(run / "last", sciml.load(run / "last"))
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (saved, 1, saved - 5)

    resumed = make_trainer(run, dropout=0.1).fit(resume="auto")
    ref = make_trainer(tmp_path / "ref", dropout=0.1).fit()
    assert not resumed.interrupted
    assert resumed.train_loss == ref.train_loss
    volatile = ("time_s", "samples_per_s")
    rows = [
        [{k: v for k, v in r.items() if k not in volatile} for r in x.history]
        for x in (resumed, ref)
    ]
    assert rows[0] == rows[1]
    a, b = make_trainer(None).model, make_trainer(None).model
    read_checkpoint(run / "last", a)
    read_checkpoint(tmp_path / "ref" / "last", b)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


class _SigintInValidation(Callback):
    def __init__(self, step):
        self.step = step

    def on_evaluate(self, trainer, metrics):
        if trainer.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("eval_every, step", [(0, 10), (2, 4)], ids=["epoch-end", "eval_every"])
def test_ctrl_c_during_a_validation_stops_without_another_step(tmp_path, eval_every, step):
    """Ctrl-C during the validation after step 10 (an epoch end; or step 4 with eval_every=2)
    set the flag only: the run went on to train step 11 (5) before it stopped. It now stops
    after the validation and its checkpoint, `last` at that step, and the resume equals the
    uninterrupted run."""
    run = tmp_path / "run"
    kw = dict(dropout=0.1, eval_every=eval_every, checkpoint_every=3)
    result = make_trainer(run, callbacks=[_SigintInValidation(step)], **kw).fit()
    assert result.interrupted and result.step == step
    assert read_checkpoint(run / "last", sciml.load(run / "last"))["step"] == step
    resumed = make_trainer(run, **kw).fit(resume="auto")
    ref = make_trainer(tmp_path / "ref", **kw).fit()
    assert (resumed.step, resumed.train_loss) == (ref.step, ref.train_loss)
    volatile = ("time_s", "samples_per_s")
    assert [{k: v for k, v in r.items() if k not in volatile} for r in resumed.history] == [
        {k: v for k, v in r.items() if k not in volatile} for r in ref.history
    ]


def test_seeded_runs_are_reproducible_and_seed_matters():
    r1 = make_trainer(None, epochs=1).fit()
    r2 = make_trainer(None, epochs=1).fit()
    r3 = make_trainer(None, epochs=1, seed=8).fit()
    assert r1.train_loss == r2.train_loss != r3.train_loss
    assert r1.checkpoint is None  # out_dir=None writes nothing


class _EvalAtStepEnd(Callback):
    """Leaves the model in eval mode after every step: the next step must train it again."""

    def on_step_end(self, trainer, loss):
        trainer.model.eval()


@pytest.mark.parametrize("callbacks", [(), (_EvalAtStepEnd(),)], ids=["none", "eval-at-step-end"])
def test_a_fit_is_bit_for_bit_the_hand_written_loop(callbacks):
    """The Trainer's run is the plain loop a user would write, to the last bit: the same seed,
    the documented shuffle (``epoch_permutation``), AdamW with the cosine schedule as a
    ``LambdaLR`` written out here, dropout drawing from the global RNG (and only in training
    mode: validation every 4 steps, mid-epoch, and a callback may leave the model in eval mode),
    a batch of 5 at each epoch end. Parameters, every train row (sample-weighted means over
    ``log_every = 3`` steps, across epoch ends), the lr column and the validation rows (sample
    means) are equal, not close. (Pins the loop's bookkeeping: cutting its per-step cost must
    change no number.)"""
    from sciml.train import MSE, LpLoss
    from sciml.train.sampler import epoch_permutation

    epochs, bs, n, seed, lr, wd = 3, 8, 37, 7, 3e-3, 1e-4
    trainer = make_trainer(
        None, dropout=0.1, n_train=n, epochs=epochs, log_every=3, eval_every=4, callbacks=callbacks
    )
    result = trainer.fit()

    torch.manual_seed(0)
    model = Tiny(TinyConfig(dropout=0.1))
    data, val = ShiftData(n), ShiftData(12, seed=2)
    steps = epochs * math.ceil(n / bs)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(1.0, s / steps)))
    )
    loss_fn = LpLoss()

    def validate():
        model.eval()
        sums = torch.zeros(4, dtype=torch.float64)
        with torch.no_grad():
            for b in range(0, len(val), bs):
                u, y = val.u[b : b + bs], val.y[b : b + bs]
                pred = model(u)
                sums[0] += loss_fn(pred, y).double() * len(u)
                sums[1] += LpLoss(reduction="none")(pred, y).double().sum()
                sums[2] += MSE(reduction="none")(pred, y).double().sum()
                sums[3] += len(u)
        model.train()
        return [(sums[i] / sums[3]).item() for i in range(3)]

    torch.manual_seed(seed)  # a fresh fit seeds the global RNGs (dropout draws from torch's)
    train_rows, val_rows, window, step = [], [], [0.0, 0], 0
    model.train()
    for epoch in range(epochs):
        order = epoch_permutation(n, seed, epoch)
        for b in range(0, n, bs):
            idx = order[b : b + bs]
            loss = loss_fn(model(data.u[idx]), data.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            window = [window[0] + loss.item() * len(idx), window[1] + len(idx)]
            if step % 3 == 0:
                train_rows.append((step, window[0] / window[1], opt.param_groups[0]["lr"]))
                window = [0.0, 0]
            if step % 4 == 0:
                val_rows.append((step, *validate()))

    got = trainer.history
    assert [(r["step"], r["train_loss"], r["lr"]) for r in got if r["train_loss"] is not None] == (
        train_rows
    )
    columns = ("val_loss", "val_rel_l2", "val_mse")
    assert [(r["step"], *map(r.get, columns)) for r in got if r["val_loss"] is not None] == (
        val_rows
    )
    for (name, a), b in zip(model.state_dict().items(), trainer.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert result.step == steps == 15 and len(train_rows) == 5 and len(val_rows) == 3


class _LeavesDropoutInEval(Tiny, family="test-train-leaves-dropout-in-eval"):
    """A training loss that notes whether its dropout is in training mode, then puts that
    submodule in eval mode and leaves it there (the top-level model stays in training mode)."""

    def training_loss(self, batch, loss_fn):
        self.modes.append(self.drop.training)
        loss = loss_fn(self(batch["input"]), batch["target"])
        self.drop.eval()
        return loss


def test_every_step_starts_with_every_submodule_in_training_mode():
    """The Trainer skips ``model.train()`` when nothing changed the mode since its last call; a
    submodule the model's own code put in eval mode during a step (no callback, the top-level
    model still training) is trained again at the next step, as when ``train()`` ran at every
    step: the same parameters, to the bit, as the model whose dropout stays in training mode.
    (With the top-level ``model.training`` as the only check, dropout stayed off for the rest
    of the epoch.)"""
    torch.manual_seed(0)
    model = _LeavesDropoutInEval(TinyConfig(dropout=0.3))
    model.modes = []
    config = TrainConfig(epochs=2, batch_size=8, lr=3e-3, log_every=1, seed=7)
    Trainer(model, ShiftData(40), config=config, progress=False).fit()
    reference = make_trainer(None, dropout=0.3, epochs=2, n_train=40, checkpoint_every=0)
    reference.val_data = None
    reference.fit()
    assert model.modes == [True] * 10
    for (name, a), b in zip(model.state_dict().items(), reference.model.state_dict().values()):
        assert torch.equal(a, b), name


class _WithNorm(Tiny, family="test-train-with-norm"):
    """Tiny behind a BatchNorm1d; notes the norm's mode at each forward and counts train()
    calls; with ``frozen`` its ``train(mode)`` keeps the norm in eval mode."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.norm = torch.nn.BatchNorm1d(1)
        self.frozen, self.modes, self.train_calls = False, [], 0

    def forward(self, u, *, x=None, t=None):
        self.modes.append(self.norm.training)
        return super().forward(self.norm(u))

    def train(self, mode=True):
        self.train_calls += 1
        super().train(mode)
        if self.frozen:
            self.norm.eval()
        return self


@pytest.mark.parametrize("frozen", [False, True], ids=["eval-before-fit", "train-keeps-eval"])
def test_a_submodule_stays_in_eval_mode_only_through_the_models_train(frozen):
    """As the Trainer's docstring says: ``norm.eval()`` before ``fit`` is undone at the first
    step (the norm trains: its running statistics move from 0 / 1); a model whose ``train()``
    keeps the norm in eval mode trains with the statistics untouched, and the Trainer, which
    notes that mode, calls ``train()`` once per epoch, not at every one of the 10 steps."""
    torch.manual_seed(0)
    model = _WithNorm(TinyConfig())
    model.norm.eval()
    model.frozen = frozen
    config = TrainConfig(epochs=2, batch_size=8, lr=3e-3, log_every=1, seed=7)
    Trainer(model, ShiftData(40), config=config, progress=False).fit()
    assert model.modes == [not frozen] * 10
    moved = float(model.norm.running_mean.abs().max() + (model.norm.running_var - 1).abs().max())
    assert (moved == 0.0) == frozen and int(model.norm.num_batches_tracked) == 10 * (not frozen)
    assert model.train_calls == 2


@dataclass(frozen=True)
class _HookConfig:
    channels: int = 1


class _Hooked(sciml.Operator, family="test-train-hooked"):
    """A model with coordinates, lead time and its own training loss."""

    config_class = _HookConfig

    def __init__(self, config):
        super().__init__(config)
        self.scale = torch.nn.Parameter(torch.tensor(0.0))
        self.calls = []

    def forward(self, u, *, x=None, t=None):
        self.calls.append((x is not None, t is not None))
        return u * self.scale * t.reshape(-1, 1, 1) + 0 * x.sum()

    def training_loss(self, batch, loss_fn):
        pred = self(batch["input"], x=batch["x"], t=batch["t"])
        return loss_fn(pred, batch["target"]) + 0.0 * self.scale**2


class _WithCoords(torch.utils.data.Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        u = torch.ones(1, 8) * (i + 1)
        t = torch.tensor(0.5 + i / 12)
        return {"input": u, "target": 2.0 * t * u, "x": torch.linspace(0, 1, 8), "t": t}


def test_x_t_are_passed_and_training_loss_override_is_used():
    model = _Hooked(_HookConfig())
    cfg = TrainConfig(epochs=40, batch_size=4, lr=0.1, schedule=sciml.train.Constant())
    trainer = Trainer(model, _WithCoords(), val_data=_WithCoords(), config=cfg, progress=False)
    result = trainer.fit()
    assert set(model.calls) == {(True, True)}
    assert model.scale.item() == pytest.approx(2.0, abs=0.05)  # pred = scale * t * u, target 2 t u
    assert result.best_metric < 0.03


def test_tuple_items_grad_clip_and_early_stopping():
    data = torch.utils.data.TensorDataset(torch.randn(16, 1, 32), torch.randn(16, 1, 32))
    cfg = TrainConfig(
        epochs=50, batch_size=8, grad_clip=1e-3, lr=1.0, schedule=sciml.train.Constant()
    )
    model = Tiny(TinyConfig())
    start = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(
        model, data, val_data=data, config=cfg, callbacks=[EarlyStopping(2)], progress=False
    )
    result = trainer.fit()
    assert result.step < 100  # stopped early: the noise cannot be fitted
    # the gradients left by the last step were clipped to global norm 1e-3
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())).item()
    assert total <= 1e-3 * (1 + 1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(start, model.parameters()))


def test_sampler_order_shards_and_resume_position():
    full = [b for b in _iter(ShardedBatchSampler(23, 6, shuffle=True, seed=3), epoch=2)]
    assert full == [b for b in _iter(ShardedBatchSampler(23, 6, shuffle=True, seed=3), epoch=2)]
    assert full != [b for b in _iter(ShardedBatchSampler(23, 6, shuffle=True, seed=3), epoch=3)]
    assert sorted(i for b in full for i in b) == list(range(23))
    # resuming at batch 2 yields exactly the remaining batches
    assert [b for b in _iter(ShardedBatchSampler(23, 6, shuffle=True, seed=3), 2, 2)] == full[2:]
    # two ranks: disjoint halves of each global batch, same global batches as one process
    r0 = list(_iter(ShardedBatchSampler(23, 6, shuffle=True, seed=3, rank=0, world_size=2), 2))
    r1 = list(_iter(ShardedBatchSampler(23, 6, shuffle=True, seed=3, rank=1, world_size=2), 2))
    assert [a + b for a, b in zip(r0, r1)] == full
    assert [len(b) for b in r0] == [3, 3, 3, 3] and [len(b) for b in r1] == [3, 3, 3, 2]
    with pytest.raises(ValueError, match="batch_size=5 is the global batch.*world size 2"):
        ShardedBatchSampler(10, 5, shuffle=True, world_size=2)


def _reference_batches(n, batch_size, shuffle, seed, rank, world, keep_small_last, epoch, start):
    """The sampler as first written (kept as the reference for a faster rewrite): slice the
    epoch's order per global batch and take this rank's ``torch.tensor_split`` shard."""
    from sciml.train.sampler import epoch_permutation

    order = epoch_permutation(n, seed, epoch) if shuffle else torch.arange(n)
    full, rest = divmod(n, batch_size)
    count = full + (rest >= world or (rest > 0 and keep_small_last))
    out = []
    for b in range(start, count):
        batch = order[b * batch_size : (b + 1) * batch_size]
        shard = torch.tensor_split(batch, world)[rank].tolist()
        if shard:
            out.append(shard)
    return out


def test_sampler_batches_are_those_of_the_tensor_split_reference():
    """The shards are sliced out of a NumPy view with tensor_split's bounds computed by hand
    (per-batch tensor slicing cost 4-7 us a batch): every batch list and batch count is the
    reference's, for n 1..13, global batch sizes 1..6, 1..3 ranks, every rank, small
    last batch kept or dropped, shuffled (two seeds, two epochs) or not, from every start."""
    cases = 0
    for n in range(1, 14):
        for world in (1, 2, 3):
            for batch_size in range(world, 7, world):  # the global batch is a multiple of it
                for keep in (False, True):
                    for shuffle, seed, epoch in ((False, 0, 0), (True, 0, 0), (True, 5, 1)):
                        for rank in range(world):
                            s = ShardedBatchSampler(n, batch_size, shuffle=shuffle, seed=seed,
                                                    rank=rank, world_size=world,
                                                    keep_small_last=keep)  # fmt: skip
                            assert s.num_batches() == len(s.global_batch_sizes())
                            for start in range(s.num_batches() + 1):
                                got = list(_iter(s, epoch, start))
                                want = _reference_batches(n, batch_size, shuffle, seed, rank,
                                                          world, keep, epoch, start)  # fmt: skip
                                assert got == want, (n, batch_size, world, rank, keep, start)
                                assert all(type(i) is int for b in got for i in b)
                                cases += 1
    assert cases == 4866  # (n, batch size, ranks, rank, keep, order, start) combinations
    with pytest.raises(ValueError, match="expected a non-empty dataset, got 0 samples"):
        ShardedBatchSampler(0, 2, shuffle=True)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(n=10, batch_size=0), "expected batch_size as an int >= 1, got 0"),
        (dict(n=10, batch_size=True), "expected batch_size as an int >= 1, got True"),
        (dict(n=10, batch_size=4, world_size=0), "expected world_size as an int >= 1, got 0"),
        (dict(n=10, batch_size=4, rank=3, world_size=2), "expected rank in [0, 2), got 3"),
        (dict(n=10, batch_size=4, rank=-1, world_size=2), "expected rank in [0, 2), got -1"),
        (dict(n=10.5, batch_size=4), "expected n as an int >= 1 (the data set size), got 10.5"),
    ],
)
def test_sampler_arguments_of_the_wrong_type_or_range_are_refused(kwargs, expected):
    """batch_size=0 and world_size=0 raised ZeroDivisionError, rank=3 of 2 yielded the batches
    [[0, 1], [], []] (indices past its shard), n=10.5 failed in torch.randperm, and
    batch_size=True read batches of one."""
    with pytest.raises((TypeError, ValueError), match=re.escape(expected)):
        list(ShardedBatchSampler(shuffle=True, **kwargs))


def _iter(sampler, epoch, start=0):
    sampler.set_epoch(epoch, start)
    return iter(sampler)


def test_amp_on_cpu_warns_and_trains_in_full_precision():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = make_trainer(None, epochs=1, amp="bf16")
    assert any("needs a CUDA device" in str(w.message) for w in caught)
    result = trainer.fit()
    assert np.isfinite(result.train_loss)
    assert next(trainer.model.parameters()).dtype == torch.float32


def test_clear_errors():
    with pytest.raises(ValueError, match="monitor='acc' is not a validation metric"):
        Trainer(Tiny(TinyConfig()), ShiftData(4), monitor="acc")
    with pytest.raises(TypeError, match="expected data set items to be dicts"):
        Trainer(Tiny(TinyConfig()), [torch.zeros(1, 32)] * 4, progress=False).fit()
    with pytest.raises(ValueError, match="needs out_dir"):
        make_trainer(None).fit(resume="auto")


def test_fno_learns_a_shift_operator_and_reloads(tmp_path):
    from sciml.models import FNO, FNOConfig

    torch.manual_seed(0)
    cfg = FNOConfig(modes=(8,), width=16, n_layers=2, projection_channels=32)
    trainer = Trainer(
        FNO(cfg),
        ShiftData(64),
        val_data=ShiftData(16, seed=2),
        config=TrainConfig(epochs=30, batch_size=16, lr=5e-3),
        out_dir=tmp_path,
        progress=False,
    )
    result = trainer.fit()
    assert result.best_metric < 0.03  # measured 0.013; an untrained FNO is at ~1
    best = sciml.load(tmp_path / "best")
    assert isinstance(best, FNO) and best.config == cfg
    again = FNO(cfg)
    read_checkpoint(tmp_path / "best", again)
    val = trainer.val_data
    with torch.no_grad():
        pred = best(val.u)
        assert torch.equal(pred, again.eval()(val.u))
        rel = (pred - val.y).flatten(1).norm(dim=1) / val.y.flatten(1).norm(dim=1)
    assert rel.mean().item() == pytest.approx(result.best_metric, rel=1e-5)


def test_time_budget_stops_on_the_clock_and_anneals_the_lr_over_it():
    """A fake clock advancing 10 s per step and a 1-minute budget: the run stops at the first
    step end that finds 60 s elapsed, and the lr set for each next step is the schedule's
    (warm-up, then constant) times the cosine of the elapsed fraction."""
    now = [0.0]
    lrs: list[float] = []

    class Tick(Callback):  # after TimeBudget: records the lr it set, then advances the clock
        def on_step_end(self, trainer, loss):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])
            now[0] += 10.0

    budget = TimeBudget(1.0, anneal=True, min_factor=0.1, clock=lambda: now[0])
    data = torch.utils.data.TensorDataset(torch.randn(16, 1, 32), torch.randn(16, 1, 32))
    cfg = TrainConfig(
        epochs=100, batch_size=8, lr=0.5, warmup_steps=2, schedule=sciml.train.Constant()
    )
    trainer = Trainer(
        Tiny(TinyConfig()), data, config=cfg, callbacks=[budget, Tick()], progress=False
    )
    result = trainer.fit()
    # at the end of step k the clock reads 10 (k - 1) s: the budget is used up at k = 7
    assert result.step == 7
    expect = []
    for k in range(1, 8):  # lr of the next update (index k): warm-up (k + 1) / 3 below 2
        warm = (k + 1) / 3 if k < 2 else 1.0
        frac = min(1.0, 10.0 * (k - 1) / 60.0)
        expect.append(0.5 * warm * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * frac))))
    assert lrs == pytest.approx(expect, rel=1e-12)
    assert lrs[-1] == pytest.approx(0.05)  # min_factor x lr at the end of the budget
    with pytest.raises(ValueError, match="minutes > 0"):
        TimeBudget(0)


def test_a_data_set_that_redraws_per_epoch_is_told_each_epoch(tmp_path):
    """``set_epoch`` on the training set (PointSamples' query points) at every epoch start,
    also after a resume; the points an item serves then change from one epoch to the next."""

    class Recording(ShiftData):
        def __init__(self, n):
            super().__init__(n)
            self.epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

    data = Recording(16)
    Trainer(Tiny(TinyConfig()), data, config=TrainConfig(epochs=3, batch_size=8),
            out_dir=tmp_path / "a", progress=False).fit()  # fmt: skip
    assert data.epochs == [0, 1, 2]
    again = Recording(16)  # the same run, resumed after its last epoch with 2 more
    with pytest.warns(UserWarning, match="different TrainConfig"):
        Trainer(Tiny(TinyConfig()), again, config=TrainConfig(epochs=5, batch_size=8),
                out_dir=tmp_path / "a", progress=False).fit(resume="auto")  # fmt: skip
    assert again.epochs == [3, 4]

    from sciml.data import PointSamples
    from sciml.data.generators import generate

    ds = sciml.data.open(generate("antiderivative", n=4, resolution=20, out=tmp_path / "a.h5"))
    points = PointSamples(ds, inputs=["v"], targets=["u"], n_points=5)
    first = points[0]["x"].clone()
    points.set_epoch(1)
    assert not torch.equal(points[0]["x"], first)


def test_compiled_training_follows_the_eager_run(tmp_path):
    """``TrainConfig(compile=True)``: the same seeded FNO run as eager to float32 rounding (loss
    history and final weights), checkpoints without torch.compile's ``_orig_mod.`` prefix."""
    from sciml.models import FNO, FNOConfig

    def run(compile_, out):
        torch.manual_seed(0)
        model = FNO(FNOConfig(modes=(6,), width=8, n_layers=2, projection_channels=16))
        trainer = Trainer(
            model,
            ShiftData(32),
            val_data=ShiftData(8, seed=2),
            config=TrainConfig(epochs=8, batch_size=8, lr=1e-2, log_every=1, compile=compile_),
            out_dir=out,
            progress=False,
        )
        result = trainer.fit()
        losses = [row["train_loss"] for row in trainer.history if row.get("train_loss") is not None]
        return model, result, losses

    eager, r_eager, l_eager = run(False, tmp_path / "eager")
    compiled, r_comp, l_comp = run(True, tmp_path / "compiled")
    assert len(l_comp) == len(l_eager) == 32
    np.testing.assert_allclose(l_comp, l_eager, rtol=1e-4)
    assert l_eager[-1] < 0.5 * l_eager[0]  # it trained
    for (name, a), b in zip(eager.state_dict().items(), compiled.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5, msg=name)
    assert r_comp.best_metric == pytest.approx(r_eager.best_metric, rel=1e-3)
    reloaded = sciml.load(tmp_path / "compiled" / "last")
    with torch.no_grad():
        u = ShiftData(4, seed=3).u
        torch.testing.assert_close(reloaded(u), compiled.eval()(u))


def test_micro_batches_accumulate_to_the_whole_batch_step(tmp_path):
    """``micro_batch=3`` splits each batch of 8 into 3 + 3 + 2 and steps once on the summed
    gradients: the run is the whole-batch run (loss history, weights) to float64 rounding, with
    the same number of steps; a non-per-sample entry (a shared scalar) is passed to every chunk."""
    plain = make_trainer(tmp_path / "plain", dtype=torch.float64, n_train=37, epochs=2)
    micro = make_trainer(
        tmp_path / "micro", dtype=torch.float64, n_train=37, epochs=2, micro_batch=3
    )
    r_plain, r_micro = plain.fit(), micro.fit()
    assert r_micro.step == r_plain.step == 10
    l_plain = [r["train_loss"] for r in plain.history if r["train_loss"] is not None]
    l_micro = [r["train_loss"] for r in micro.history if r["train_loss"] is not None]
    np.testing.assert_allclose(l_micro, l_plain, rtol=1e-12)
    for (name, a), b in zip(plain.model.state_dict().items(), micro.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14, msg=name)
    assert micro.config.micro_batch == 3 and r_micro.best_metric == pytest.approx(
        r_plain.best_metric, rel=1e-12
    )

    from sciml.train.trainer import _split_batch

    batch = {"input": torch.arange(5.0)[:, None], "target": torch.arange(5.0), "scale": 2.0}
    chunks = _split_batch(batch, 5, 2)
    assert [n for _, n in chunks] == [2, 2, 1]
    assert torch.equal(torch.cat([c["input"] for c, _ in chunks]), batch["input"])
    assert all(c["scale"] == 2.0 for c, _ in chunks)
    # a collated list of per-sample strings is sliced with the tensors (it went whole into
    # every chunk); a list of another length is shared like the scalar
    batch |= {"names": list("abcde"), "shared": [1, 2]}
    chunks = _split_batch(batch, 5, 2)
    assert [c["names"] for c, _ in chunks] == [["a", "b"], ["c", "d"], ["e"]]
    assert all(c["shared"] == [1, 2] for c, _ in chunks)
    with pytest.raises(ValueError, match=r"micro_batch as an int >= 1 or None, got 0"):
        TrainConfig(micro_batch=0)


def test_validation_runs_in_micro_batch_chunks_with_the_whole_batch_means():
    """With ``micro_batch=3`` the validation forward ran at the whole batch_size (8), so a run
    that fits in memory while training could run out of it at validation. Now each batch of
    8 and 5 runs as 3 + 3 + 2 and 3 + 2, and the loss and metrics (per-sample and batch-mean
    ones) are those of the whole-batch evaluation and of a hand loop, to float64 rounding."""
    val = ShiftData(13, seed=5, dtype=torch.float64)  # batches of 8 and 5
    got = {}
    for micro_batch in (None, 3):
        trainer = make_trainer(None, dtype=torch.float64, micro_batch=micro_batch)
        trainer.metrics = {**trainer.metrics, "batch_mse": torch.nn.MSELoss()}
        calls = []
        trainer.model.register_forward_hook(lambda m, i, o, calls=calls: calls.append(len(i[0])))
        got[micro_batch] = trainer.evaluate(val)
        assert calls == ([8, 5] if micro_batch is None else [3, 3, 2, 3, 2])
    assert got[3].keys() == got[None].keys() == {"loss", "rel_l2", "mse", "batch_mse"}
    for name in got[None]:
        np.testing.assert_allclose(got[3][name], got[None][name], rtol=1e-12, err_msg=name)
    with torch.no_grad():
        e = (trainer.model.eval()(val.u) - val.y).flatten(1)
    rel = (e.norm(dim=1) / val.y.flatten(1).norm(dim=1)).mean().item()
    np.testing.assert_allclose(got[3]["rel_l2"], rel, rtol=1e-12)
    np.testing.assert_allclose(got[3]["batch_mse"], e.pow(2).mean().item(), rtol=1e-12)


def test_a_nan_validation_is_never_best(tmp_path):
    """The first validation's metric is nan, the next ones finite and falling. nan compares
    False with everything, so it was taken as the first best and stayed best: best_metric nan,
    best_step 2 and `best` at that model. Now `best` is the lowest finite value (checked
    against the evaluations seen by a callback), with a warning naming the metric."""
    seen = []

    def metric(pred, target):
        v = (pred - target).pow(2).flatten(1).mean(1)
        return v * float("nan") if not seen else v

    class Record(Callback):
        def on_evaluate(self, trainer, metrics):
            seen.append((metrics["m"], trainer.step))

    def make(epochs):
        torch.manual_seed(0)
        return Trainer(
            Tiny(TinyConfig()),
            ShiftData(16),
            val_data=ShiftData(8, seed=2),
            config=TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, schedule=Constant()),
            metrics={"m": metric},
            monitor="m",
            out_dir=tmp_path,
            callbacks=[Record()],
            progress=False,
        )

    with pytest.warns(UserWarning, match=r"validation 'm' is nan at step 2, so it is not a"):
        result = make(4).fit()
    assert np.isnan(seen[0][0]) and len(seen) == 4
    best_value, best_step = min(seen[1:])
    assert (result.best_metric, result.best_step) == (best_value, best_step)
    assert os.readlink(tmp_path / "best") == f"ckpt-{best_step}"

    # a nan best in a checkpoint (as the bug left it) does not block the resumed run's best
    state_file = tmp_path / "last" / "trainer_state.json"
    tree = json.loads(state_file.read_text())
    tree["state"]["best_metric"] = {"__float__": "nan"}
    state_file.write_text(json.dumps(tree))
    with pytest.warns(UserWarning, match=r"changed: \['epochs'\]"):
        resumed = make(5).fit(resume="auto")
    assert seen[-1][1] == 10 and (resumed.best_metric, resumed.best_step) == seen[-1]


def test_early_stopping_on_an_unknown_metric_fails_before_the_first_step():
    """It raised a KeyError at the first validation, after an epoch of training (no `last`)."""
    trainer = make_trainer(None, callbacks=[EarlyStopping(2, monitor="acc")])
    with pytest.raises(ValueError, match=r"monitor='acc'\) is not a validation metric; expected "):
        trainer.fit()
    assert trainer.step == 0


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: EarlyStopping(True), "expected patience as an int >= 0, got True"),
        (lambda: EarlyStopping(2.5), "expected patience as an int >= 0, got 2.5"),
        (lambda: EarlyStopping("3"), "expected patience as an int >= 0, got '3'"),
        (lambda: EarlyStopping(-1), "expected patience as an int >= 0, got -1"),
        (
            lambda: EarlyStopping(2, min_delta=math.nan),
            "min_delta as a finite number >= 0, got nan",
        ),
        (lambda: EarlyStopping(2, min_delta=-0.1), "min_delta as a finite number >= 0, got -0.1"),
        (lambda: TimeBudget(True), "expected minutes > 0 (a number), got True"),
        (lambda: TimeBudget(1, min_factor=True), "0 <= min_factor <= 1 (a number), got True"),
    ],
)
def test_callback_arguments_of_the_wrong_type_or_range_are_refused(make, expected):
    """EarlyStopping(2, min_delta=nan) stopped an improving run at its second validation (no
    value is below nan); patience='3' raised a str/int TypeError at the first validation that
    did not improve, after training up to it; patience=True ran as 1, TimeBudget(True) as one
    minute."""
    with pytest.raises((TypeError, ValueError), match=re.escape(expected)):
        make()


def test_validation_runs_the_model_once_per_batch_and_matches_a_hand_loop():
    """evaluate() ran the forward pass twice per batch (once for the loss, once for the
    metrics); its numbers are the sample means of a plain loop over the data."""
    trainer = make_trainer(None, dtype=torch.float64)
    calls = []
    trainer.model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    val = ShiftData(13, seed=5, dtype=torch.float64)  # batches of 8 and 5
    got = trainer.evaluate(val)
    assert calls == [8, 5]
    with torch.no_grad():
        pred = trainer.model.eval()(val.u)
    e, y = (pred - val.y).flatten(1), val.y.flatten(1)
    rel = (e.norm(dim=1) / y.norm(dim=1)).numpy()
    np.testing.assert_allclose(got["rel_l2"], rel.mean(), rtol=1e-12)
    np.testing.assert_allclose(got["loss"], rel.mean(), rtol=1e-12)  # the default loss
    np.testing.assert_allclose(got["mse"], e.pow(2).mean(1).mean().item(), rtol=1e-12)


def test_a_metric_that_is_neither_per_sample_nor_a_batch_mean_is_refused():
    """A metric of elementwise values (torch.nn.MSELoss(reduction='none'): (batch, 1, 32)) was
    summed over its points and reported as 32 times the MSE (15.26 for 0.477); a batch mean
    and per-sample values still give the same number, the hand MSE."""
    trainer = make_trainer(None, dtype=torch.float64)
    val = ShiftData(13, seed=5, dtype=torch.float64)  # batches of 8 and 5
    trainer.metrics = {"elementwise": torch.nn.MSELoss(reduction="none")}
    with pytest.raises(ValueError, match=re.escape("metric 'elementwise' gave shape (8, 1, 32)")):
        trainer.evaluate(val)
    trainer.metrics = {"mean": torch.nn.MSELoss(), "per_sample": MSE(reduction="none")}
    got = trainer.evaluate(val)
    with torch.no_grad():
        e = (trainer.model.eval()(val.u) - val.y).flatten(1)
    np.testing.assert_allclose(got["mean"], e.pow(2).mean().item(), rtol=1e-12)
    np.testing.assert_allclose(got["per_sample"], e.pow(2).mean().item(), rtol=1e-12)


def test_sharded_sampler_reads_each_sample_once_per_epoch_across_ranks():
    """Over world sizes 1-4, sizes 1-13 and batch sizes N, 2N, 3N: the ranks' shards of an epoch
    together read every index at most once; training drops exactly a last global batch smaller
    than N (no padding, no repeats), evaluation (keep_small_last) reads every index once."""
    for world in (1, 2, 3, 4):
        for n in range(1, 14):
            for bs in (world, 2 * world, 3 * world):
                for keep in (False, True):
                    shards = [
                        list(
                            _iter(
                                ShardedBatchSampler(
                                    n,
                                    bs,
                                    shuffle=not keep,
                                    seed=5,
                                    rank=r,
                                    world_size=world,
                                    keep_small_last=keep,
                                ),
                                epoch=1,
                            )
                        )
                        for r in range(world)
                    ]
                    read = [i for s in shards for b in s for i in b]
                    assert len(read) == len(set(read))
                    rest = n % bs
                    dropped = rest if (rest < world and not keep) else 0
                    assert len(read) == n - dropped, (world, n, bs, keep)
                    if keep:
                        assert sorted(read) == list(range(n))


def test_a_training_set_smaller_than_the_world_size_is_refused(monkeypatch):
    """3 samples on 4 ranks: the only (last) batch is smaller than the world size and dropped,
    so the run had 0 steps an epoch, trained nothing and divided by zero at validation."""
    from sciml.train import trainer as trainer_module
    from sciml.train.distributed import DistInfo

    info = DistInfo(rank=0, world_size=4, local_rank=0, device=torch.device("cpu"))
    monkeypatch.setattr(trainer_module, "setup", lambda device: info)
    with pytest.raises(ValueError, match=r"expected at least 4 samples .* got 3; use fewer"):
        Trainer(Tiny(TinyConfig()), ShiftData(3), config=TrainConfig(batch_size=4))


def _poisoned_trainer(out_dir, poison_after):
    """Tiny on ShiftData (5 steps an epoch, a checkpoint every 3 steps and at epoch ends) whose
    training loss is nan from the step after ``poison_after`` on (None: never)."""
    from sciml.train import LpLoss

    poison = {"on": False}
    lp = LpLoss()

    def loss(pred, target):
        value = lp(pred, target)
        return value * math.nan if poison["on"] else value

    class PoisonAfter(Callback):
        def on_step_end(self, trainer, loss):
            poison["on"] = poison_after is not None and trainer.step >= poison_after

    torch.manual_seed(0)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=3e-3, log_every=1, checkpoint_every=3, seed=7)
    trainer = Trainer(Tiny(TinyConfig()), ShiftData(40), val_data=ShiftData(12, seed=2),
                      loss=loss, config=cfg, out_dir=out_dir, callbacks=[PoisonAfter()],
                      progress=False)  # fmt: skip
    return trainer, poison


def test_a_nan_loss_puts_the_state_in_memory_back_to_the_newest_checkpoint(tmp_path):
    """A nan loss at step 8 raised FloatingPointError after the optimiser step had written nan
    into the weights and AdamW's moments: ``trainer.model`` was nan, the message said only to
    resume from `last`. The state in memory is now that of the run's newest checkpoint (step 6):
    weights and moments equal the checkpoint's bit for bit, `best` (step 5) is untouched, and
    fit() from there ends bit for bit where a run without the nan ends. A run resumed from that
    checkpoint, before it writes one of its own, is put back to the one it resumed from."""
    from safetensors.torch import load_file

    from sciml.train._runlog import unpack_rows

    trainer, poison = _poisoned_trainer(tmp_path / "run", poison_after=7)
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 8 \(epoch 1\); .* put back"):
        trainer.fit()
    ckpt = tmp_path / "run" / "ckpt-6"
    assert os.readlink(tmp_path / "run" / "last") == "ckpt-6"
    assert os.readlink(tmp_path / "run" / "best") == "ckpt-5" and trainer.best_step == 5
    saved = load_file(str(ckpt / "model.safetensors"))
    weights = trainer.model.state_dict()
    assert sorted(saved) == sorted(weights)
    assert all(torch.equal(weights[k], saved[k]) for k in saved)
    state = read_checkpoint(ckpt, Tiny(TinyConfig()))
    moments = [s for s in trainer.optimizer.state_dict()["state"].values()]
    saved_moments = list(state["optimizer"]["state"].values())
    assert len(moments) == len(saved_moments) == 4
    for m, s in zip(moments, saved_moments, strict=True):
        assert all(torch.equal(m[k], s[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    assert (trainer.step, trainer.epoch, trainer.batch_in_epoch) == (6, 1, 1)
    assert trainer.history == unpack_rows(state["history"]) and len(trainer.history) == 7
    assert trainer.optimizer.param_groups[0]["lr"] == state["optimizer"]["param_groups"][0]["lr"]

    # resumed from that checkpoint without an out_dir: put back to the checkpoint it resumed from
    other, _ = _poisoned_trainer(None, poison_after=7)
    with pytest.raises(FloatingPointError, match=r"step 8 .* put back to .*ckpt-6 \(step 6\)"):
        other.fit(resume=ckpt)
    assert other.step == 6 and all(
        torch.equal(other.model.state_dict()[k], saved[k]) for k in saved
    )

    poison["on"] = False  # the data "fixed": the run goes on from step 6 in the same trainer
    trainer.callbacks.clear()
    result = trainer.fit()
    reference, _ = _poisoned_trainer(tmp_path / "ref", poison_after=None)
    expected = reference.fit()
    assert result.step == expected.step == 15 and result.train_loss == expected.train_loss
    got, want = trainer.model.state_dict(), reference.model.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_a_nan_loss_without_a_checkpoint_says_the_model_is_not_usable():
    """Without a checkpoint to go back to (out_dir=None), the message says that the model in
    memory is not usable, and it is not: the failed step's update left nan in it."""
    trainer, _ = _poisoned_trainer(None, poison_after=2)
    with pytest.raises(FloatingPointError, match=r"step 3 .* not usable .*out_dir=None"):
        trainer.fit()
    assert trainer.step == 2
    assert all(torch.isnan(p).all() for p in trainer.model.parameters())


def test_a_resume_with_fresh_moments_drops_the_moments_a_used_trainer_holds(tmp_path):
    """fit(resume=..., optimizer_state=False) starts AdamW's moments afresh. A trainer that had
    stepped (here: put back to ckpt-6 after a nan loss, the moments ckpt-6's) kept the moments
    it held, so the resume continued as one with the checkpoint's moments. Now it ends bit for
    bit where a new trainer resumed so ends, and apart from a resume with the moments."""
    import shutil

    trainer, poison = _poisoned_trainer(tmp_path / "run", poison_after=7)
    with pytest.raises(FloatingPointError, match=r"step 8 .* put back"):
        trainer.fit()
    ckpt = tmp_path / "ckpt-6"
    shutil.copytree(tmp_path / "run" / "ckpt-6", ckpt)  # the run's next save prunes it
    assert len(trainer.optimizer.state) == 4  # the moments of ckpt-6

    fresh, _ = _poisoned_trainer(None, poison_after=None)
    want = fresh.fit(resume=ckpt, optimizer_state=False)
    moments, _ = _poisoned_trainer(None, poison_after=None)
    with_moments = moments.fit(resume=ckpt)
    poison["on"] = False
    trainer.callbacks.clear()
    got = trainer.fit(resume=ckpt, optimizer_state=False)
    assert got.step == want.step == 15
    assert got.train_loss == want.train_loss != with_moments.train_loss
    weights = fresh.model.state_dict()
    assert all(torch.equal(trainer.model.state_dict()[k], weights[k]) for k in weights)


def test_a_nan_loss_after_a_resume_with_fresh_moments_puts_back_fresh_moments(tmp_path):
    """A run resumed with optimizer_state=False started AdamW's moments afresh at ckpt-6; a nan
    loss before its own first checkpoint put the state back to ckpt-6 with ckpt-6's moments (or,
    where they do not fit the model, failed half-way with a CheckpointError), so fit() then
    went on as another run. Now the state is put back as that resume had it: fit() ends bit for
    bit where the resumed run without the nan ends."""
    import shutil

    first, _ = _poisoned_trainer(tmp_path / "run", poison_after=7)
    with pytest.raises(FloatingPointError, match=r"step 8 .* put back"):
        first.fit()
    ckpt = tmp_path / "ckpt-6"
    shutil.copytree(tmp_path / "run" / "ckpt-6", ckpt)

    reference, _ = _poisoned_trainer(None, poison_after=None)
    want = reference.fit(resume=ckpt, optimizer_state=False)
    trainer, poison = _poisoned_trainer(None, poison_after=7)
    with pytest.raises(
        FloatingPointError, match=r"step 8 .*/ckpt-6 \(step 6\), as fit\(resume=\.\.\., optimizer_"
    ):
        trainer.fit(resume=ckpt, optimizer_state=False)
    assert trainer.step == 6 and len(trainer.optimizer.state) == 0  # fresh, as at the resume
    poison["on"] = False
    trainer.callbacks.clear()
    got = trainer.fit()
    assert got.step == want.step == 15 and got.train_loss == want.train_loss
    weights = reference.model.state_dict()
    assert all(torch.equal(trainer.model.state_dict()[k], weights[k]) for k in weights)


@pytest.mark.parametrize("grad_clip", [10.0, None], ids=["clip", "no-clip"])
@pytest.mark.parametrize("bad", [5, 6])
def test_non_finite_gradients_under_a_finite_loss_are_named_at_their_step(tmp_path, grad_clip, bad):
    """Step `bad`'s loss is finite but its gradients are nan (sqrt at 0 in backward): the step
    writes nan into the weights. With grad_clip the run stops at that step, naming the
    gradient norm that clipping computed. Without it the run stopped at the next step's nan
    loss, naming that step, and where a checkpoint came between (step 6, checkpoint_every=3)
    it held the nan weights: `last` moved onto it (ckpt-3 deleted), and the state was 'put
    back' to it, nan. Now it stops at step `bad` too, naming the largest gradient norm of a
    parameter: the state in memory is put back to the step-3 checkpoint, and `last` stays
    there."""
    from safetensors.torch import load_file

    from sciml.train import LpLoss

    lp = LpLoss()
    calls = [0]

    def loss(pred, target):
        calls[0] += 1
        value = lp(pred, target)
        if calls[0] == bad:  # + sqrt(0), a finite 0 whose gradient is nan
            value = value + torch.sqrt((pred - pred.detach()).abs().sum())
        return value

    torch.manual_seed(0)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=3e-3, checkpoint_every=3, seed=7,
                      grad_clip=grad_clip)  # fmt: skip
    trainer = Trainer(Tiny(TinyConfig()), ShiftData(40), loss=loss, config=cfg,
                      out_dir=tmp_path, progress=False)  # fmt: skip
    with pytest.raises(FloatingPointError) as info:
        trainer.fit()
    message = str(info.value)
    what = "gradient norm" if grad_clip is not None else "largest gradient norm"
    epoch = (bad - 1) // 5  # 5 steps an epoch
    assert message.startswith(
        f"{what} is nan at step {bad} (epoch {epoch}), with a finite training loss "
    ), message
    assert "put back to the run's newest checkpoint" in message and "(step 3)" in message
    assert os.readlink(tmp_path / "last") == "ckpt-3"
    saved = load_file(str(tmp_path / "ckpt-3" / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in saved.values())
    state = trainer.model.state_dict()
    assert trainer.step == 3 and all(torch.equal(state[k], saved[k]) for k in saved)


def test_finite_gradients_whose_norm_overflows_train_on_without_grad_clip(tmp_path):
    """Without grad_clip a step's gradients are checked through the largest 2-norm of a
    parameter's; a norm of finite values can overflow (4e36 squared passes float32's 3.4e38)
    where AdamW's step stays finite (its exp_avg_sq is inf and the update 0), and that step is
    not refused: the gradients themselves are read then. The run trains all 10 steps with
    finite weights and loss, the extra parameter stays at 0 (its update is 4e35 / inf = 0),
    and a resume from its checkpoint (exp_avg_sq inf) goes on."""
    from sciml.train import LpLoss

    lp = LpLoss()

    def build(epochs):
        torch.manual_seed(0)
        model = Tiny(TinyConfig())
        model.big = torch.nn.Parameter(torch.zeros(4))

        def loss(pred, target):  # d/d big = 4e36, a finite gradient; the loss adds 0
            return lp(pred, target) + (model.big * 4e36).sum()

        cfg = TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, checkpoint_every=3, seed=7)
        return Trainer(model, ShiftData(40), loss=loss, config=cfg, out_dir=tmp_path,
                       progress=False)  # fmt: skip

    trainer = build(2)
    result = trainer.fit()
    assert result.step == 10 and math.isfinite(result.train_loss)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert torch.equal(trainer.model.big.detach(), torch.zeros(4))
    assert torch.isinf(trainer.optimizer.state[trainer.model.big]["exp_avg_sq"]).all()
    with pytest.warns(UserWarning, match=r"different TrainConfig \(changed: \['epochs'\]\)"):
        assert build(3).fit(resume="auto").step == 15


def test_a_restore_that_fails_keeps_the_nan_error_and_mixes_no_states(tmp_path):
    """The newest checkpoint's trainer_state.json is truncated before the nan loss at step 8.
    The restore failed after read_checkpoint had loaded ckpt-6's weights into the model, so the
    model held ckpt-6's weights beside step 7's counters and nan moments while the message said
    the weights were nan. The state is read first now: the FloatingPointError names the step
    and the failure, and the model is untouched (nan, as the message says), step 7."""

    class Truncate(Callback):
        def on_step_end(self, trainer, loss):
            if trainer.step == 7:
                (tmp_path / "run" / "ckpt-6" / "trainer_state.json").write_text("{")

    trainer, _ = _poisoned_trainer(tmp_path / "run", poison_after=7)
    trainer.callbacks.append(Truncate())
    with pytest.raises(
        FloatingPointError,
        match=r"loss is nan at step 8 .* not usable .*/ckpt-6 failed \(CheckpointError: .*"
        r"ckpt-6/trainer_state\.json: damaged trainer state file",
    ):
        trainer.fit()
    assert trainer.step == 7
    assert all(torch.isnan(p).all() for p in trainer.model.parameters())


def test_metrics_json_is_the_history_through_random_changes_in_place(tmp_path):
    """metrics.json reuses each row's text while the row equals, value for value and type for
    type, the copy it was encoded from. Over 300 random steps (rows appended, values set anew,
    set to an equal value of another type (1 / 1.0 / True, -0.0 / 0.0 aside), keys added and
    removed, rows deleted or replaced, a list inside a row, empty rows, resets), the file after
    each flush loads type for type as ``json.loads(json.dumps(history))``, the reference."""
    import random

    from sciml.train._runlog import MetricsLog

    rng = random.Random(3)
    log = MetricsLog(tmp_path, ["step", "loss", "flag"], json_interval_s=1e9)
    pool = [0, 1, 1.0, True, False, 0.5, 2, 2.0, None, "x", math.nan, 2**70]

    def typed(obj):
        if isinstance(obj, dict):
            return {k: typed(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [typed(v) for v in obj]
        return (type(obj).__name__, obj if obj == obj else "nan")

    def finite(r):
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in r.items()
        }

    for k in range(300):
        action = rng.random()
        rows = log.rows
        if action < 0.35 or not rows:
            log.append({"step": k, "loss": rng.choice(pool), "flag": rng.choice(pool)})
        elif action < 0.75:
            row = rng.choice(rows)
            row[rng.choice(["step", "loss", "flag", "extra"])] = rng.choice(pool)
        elif action < 0.8:
            row = rng.choice(rows)
            row.pop(rng.choice(list(row) or ["step"]), None)
        elif action < 0.85:
            del rows[rng.randrange(len(rows))]
        elif action < 0.9:
            i = rng.randrange(len(rows))
            rows[i] = rng.choice([{}, {"step": k, "extra": [k]}, dict(rows[i])])
        elif action < 0.93:
            log.reset(rng.sample(rows, min(len(rows), 5)))
        if rng.random() < 0.5:
            log.flush()
            got = json.loads((tmp_path / "metrics.json").read_text())
            assert typed(got) == typed([finite(r) for r in log.rows]), k
