"""Exact resume after a SIGKILL mid-training, and the crash safety of checkpoint writes."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import warnings
from pathlib import Path

import pytest
import torch
from _crash import CrashAt
from safetensors.torch import load_file
from test_train_common import make_trainer, run_script

import sciml
from sciml.train import (
    Callback,
    CheckpointManager,
    Constant,
    Cosine,
    EarlyStopping,
    LpLoss,
    TimeBudget,
    TrainConfig,
    Trainer,
    lr_factor,
    read_checkpoint,
)
from sciml.train import checkpoint as checkpoint_module

VOLATILE = ("time_s", "samples_per_s")
WEIGHTS = "model.safetensors"


def _stable(history):
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in history]


def _weights(run_dir):
    return load_file(str(run_dir / "last" / "model.safetensors"))


def test_resume_after_sigkill_matches_uninterrupted_run_exactly(tmp_path):
    # dropout makes the run depend on the restored torch RNG; 40 samples / batch 8 = 5 steps
    # per epoch, checkpoints every 3 steps: killed at step 8, `last` is step 6 (mid-epoch 1)
    ref = make_trainer(tmp_path / "ref", dropout=0.2).fit()

    run = tmp_path / "run"
    proc = run_script(str(run), "--kill-at", "8", "--dropout", "0.2")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert os.readlink(run / "last") == "ckpt-6"
    state = read_checkpoint(run / "last", make_trainer(None, dropout=0.2).model)
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (1, 1, 6)
    # every row logged before the kill (steps 1-7: the kill comes before step 8's row) is in
    # metrics.csv; metrics.json, rewritten now and then, holds at least the checkpoint's rows
    logged = [r for r in ref.history if r["step"] < 8]
    assert _stable(_read_csv(run / "metrics.csv")) == _stable(logged)
    partial = json.loads((run / "metrics.json").read_text())
    assert _stable(partial) == _stable(logged[: len(partial)]) and len(partial) >= 7

    resumed = make_trainer(run, dropout=0.2).fit(resume="auto")
    assert resumed.step == ref.step == 15
    assert resumed.train_loss == ref.train_loss  # bitwise, not approximately
    assert resumed.best_metric == ref.best_metric
    w_ref, w_res = _weights(tmp_path / "ref"), _weights(run)
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)
    assert _stable(resumed.history) == _stable(ref.history)
    rows = json.loads((run / "metrics.json").read_text())
    assert _stable(rows) == _stable(ref.history)  # rows logged after step 6 were not duplicated
    assert _stable(_read_csv(run / "metrics.csv")) == _stable(ref.history)


def _read_csv(path):
    """metrics.csv's rows as metrics.json has them: ints, floats (written as repr, so exact),
    None for an empty field."""
    import csv

    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [
        {k: None if v == "" else (int(v) if k == "step" else float(v)) for k, v in r.items()}
        for r in rows
    ]


def test_resume_from_explicit_path_and_from_finished_run(tmp_path):
    trainer = make_trainer(tmp_path / "a", epochs=2)
    done = trainer.fit()
    again = make_trainer(tmp_path / "b", epochs=2).fit(resume=tmp_path / "a" / "last")
    assert again.step == done.step and again.train_loss == done.train_loss
    with pytest.raises(sciml.CheckpointError, match="no training checkpoint"):
        make_trainer(tmp_path / "c").fit(resume=tmp_path / "nowhere")


def test_last_holds_the_final_state_when_best_saved_it_first(tmp_path):
    """Checkpoints every 3 steps, 5 steps: the epoch-end validation saves step 5 as `best`; the
    end of the run then left `last` at step 3 (the final state was written, but only linked as
    `best`), so ``fit(resume="auto")`` of the finished run trained steps 4-5 again. A run
    resumed from another folder's checkpoint ends with a `last` of its own."""
    run = tmp_path / "run"
    done = make_trainer(run, epochs=1).fit()
    assert done.step == 5 and os.readlink(run / "best") == "ckpt-5"
    assert done.checkpoint == (run / "ckpt-5").resolve() and os.readlink(run / "last") == "ckpt-5"
    state = read_checkpoint(run / "last", make_trainer(None).model)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (5, 1, 0)
    again = make_trainer(run, epochs=1).fit(resume="auto")
    assert again.step == 5 and _stable(again.history) == _stable(done.history)
    elsewhere = make_trainer(tmp_path / "b", epochs=1).fit(resume=run / "last")
    assert elsewhere.step == 5 and (tmp_path / "b" / "last").exists()
    w_done, w_b = _weights(run), _weights(tmp_path / "b")
    assert all(torch.equal(w_done[k], w_b[k]) for k in w_done)


class _AbortAtCheckpoint(Callback):
    """A KeyboardInterrupt from ``on_checkpoint`` of step ``step``: as a kill right after that
    checkpoint was written and linked, before the end of ``fit`` could point `last` at it."""

    def __init__(self, step):
        self.step = step

    def on_checkpoint(self, trainer, path):
        if trainer.step == self.step:
            raise KeyboardInterrupt


def test_a_finished_runs_best_left_past_last_becomes_last_without_a_new_checkpoint(tmp_path):
    """The final state (step 5, epoch 1) saved as `best` only, then the run aborted with `last`
    at step 3: a resume has nothing left to train, and the end of ``fit`` points `last` at the
    run's own `best` (the checkpoint it restored) instead of writing the same state again; from
    another folder it writes a `last` of its own."""
    ref = make_trainer(tmp_path / "ref", epochs=1).fit()
    run = tmp_path / "run"
    aborted = make_trainer(run, epochs=1, callbacks=[_AbortAtCheckpoint(5)]).fit()
    assert aborted.interrupted and aborted.step == 5
    assert (os.readlink(run / "last"), os.readlink(run / "best")) == ("ckpt-3", "ckpt-5")
    again = make_trainer(run, epochs=1).fit(resume="auto")
    assert (again.step, again.train_loss) == (ref.step, ref.train_loss)
    assert again.checkpoint == (run / "ckpt-5").resolve() and os.readlink(run / "last") == "ckpt-5"
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-5"]
    other = tmp_path / "other"
    elsewhere = make_trainer(other, epochs=1).fit(resume=run / "best")
    assert elsewhere.checkpoint == (other / "ckpt-5").resolve()
    assert os.readlink(other / "last") == "ckpt-5"


def test_without_out_dir_a_run_ends_with_no_checkpoint_to_point_last_at(tmp_path):
    """Without ``out_dir`` nothing is written, though the run keeps its bookkeeping: its final
    state (step 5) is 'saved' as `best` only (a validation, no checkpoint due), and the end of
    ``fit`` has no `last` to point at it; the same for a finished run's checkpoint resumed with
    nothing left to train. Both return the numbers of the run with an ``out_dir``."""
    done = make_trainer(tmp_path / "run", epochs=1).fit()
    assert os.readlink(tmp_path / "run" / "best") == "ckpt-5"  # `best` first (see above)
    fresh = make_trainer(None, epochs=1).fit()
    assert (fresh.step, fresh.train_loss, fresh.checkpoint) == (5, done.train_loss, None)
    assert fresh.best_metric == done.best_metric
    again = make_trainer(None, epochs=1).fit(resume=tmp_path / "run" / "last")
    assert (again.step, again.train_loss, again.checkpoint) == (5, done.train_loss, None)
    assert _stable(again.history) == _stable(done.history)


def test_fresh_run_over_a_checkpoint_warns_how_to_resume_it(tmp_path):
    """Starting afresh where ``last`` exists says so, in the API's and the CLI's words (the CLI
    user was told only of ``fit(resume='auto')``), and the fresh run equals one in a new folder."""
    first = make_trainer(tmp_path / "a", epochs=1).fit()
    with pytest.warns(
        UserWarning, match=r"resume='auto'\) \(on the command line: sciml train --resume\)"
    ):
        again = make_trainer(tmp_path / "a", epochs=1).fit()
    assert again.train_loss == first.train_loss


@pytest.mark.parametrize("validation", ["none", "nan"])
def test_a_fresh_runs_first_checkpoint_drops_the_earlier_runs_best(tmp_path, validation):
    """A fresh run in a folder replaces the earlier run's `last` at its first checkpoint, but
    its `best` only at a validation of its own that is best: without validation data, or with
    validations that are all inf or nan (an all-zero target under rel_l2), the run ended with `best`
    at the earlier run's model (another run id, other weights), which sciml.load(out / "best")
    and sciml train's test evaluation took for this run's. Now the fresh run's first
    checkpoint drops that link; a fresh run stopped before any checkpoint of its own leaves
    the earlier run's `last` and `best` as they were."""
    from sciml.train.checkpoint import find_checkpoint

    def fresh(callbacks=()):
        trainer = make_trainer(tmp_path, epochs=1, checkpoint_every=2, callbacks=callbacks)
        if validation == "none":
            trainer.val_data = None
        else:
            trainer.val_data.y.zero_()  # rel_l2 = |e| / 0: no validation is finite
        return trainer

    earlier = make_trainer(tmp_path, epochs=3).fit()
    assert os.readlink(tmp_path / "best") == f"ckpt-{earlier.best_step}"
    earlier_best = os.readlink(tmp_path / "best")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="simulated"):
            fresh([CrashAt(1)]).fit()  # stopped before its first checkpoint (step 2)
    assert (os.readlink(tmp_path / "last"), os.readlink(tmp_path / "best")) == (
        "ckpt-15",
        earlier_best,
    )
    trainer = fresh()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = trainer.fit()
    assert (result.step, result.best_metric, result.best_step) == (5, None, None)
    assert not (tmp_path / "best").is_symlink()
    assert sorted(p for p in os.listdir(tmp_path) if "ckpt" in p) == ["ckpt-5"]
    assert os.readlink(tmp_path / "last") == "ckpt-5"
    assert find_checkpoint(tmp_path) == (tmp_path / "ckpt-5").resolve()
    loaded = sciml.load(tmp_path / "last")
    assert all(
        torch.equal(v, loaded.state_dict()[k]) for k, v in trainer.model.state_dict().items()
    )


def test_failed_checkpoint_write_leaves_last_loadable(tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_save_state = checkpoint_module.save_state
    calls = []

    def save_state_then_crash(tree, directory, name="trainer_state"):
        calls.append(tree["step"])
        if tree["step"] == 6:  # the second periodic checkpoint: die half-way through the write
            (directory / f"{name}.safetensors").write_bytes(b"\x00" * 10)
            raise OSError("disk full (simulated)")
        real_save_state(tree, directory, name)

    monkeypatch.setattr(checkpoint_module, "save_state", save_state_then_crash)
    trainer = make_trainer(run, checkpoint_every=3, eval_every=100)
    with pytest.raises(OSError, match="simulated"):
        trainer.fit()
    assert calls == [3, 6]
    assert os.readlink(run / "last") == "ckpt-3"
    model = sciml.load(run / "last")
    state = read_checkpoint(run / "last", model)
    assert state["step"] == 3
    assert not [p for p in os.listdir(run) if ".partial-" in p]

    # a kill (rather than an exception) leaves a partial directory behind: the next write
    # removes it, and a resumed run finishes exactly like an uninterrupted one
    (run / ".ckpt-9.partial-12345").mkdir()
    monkeypatch.setattr(checkpoint_module, "save_state", real_save_state)
    resumed = make_trainer(run, checkpoint_every=3, eval_every=100).fit(resume="auto")
    ref = make_trainer(tmp_path / "ref", checkpoint_every=3, eval_every=100).fit()
    assert resumed.train_loss == ref.train_loss
    assert sorted(p for p in os.listdir(run) if "ckpt" in p) == ["ckpt-15"]


_KILLED_SAVE_CHILD = """
import sys
import torch
from sciml.train import CheckpointManager
from sciml.train import checkpoint

save_state = checkpoint.save_state
def blocking_save_state(tree, directory, name="trainer_state"):  # weights written, state half
    (directory / f"{name}.safetensors").write_bytes(bytes(1000))
    print("ready", directory.name, flush=True)
    sys.stdin.readline()
checkpoint.save_state = blocking_save_state
mgr = CheckpointManager(sys.argv[1])
torch.manual_seed(0)
mgr.save(torch.nn.Linear(3, 2), {"step": 4}, 4, links=("last",))
print("committed", flush=True)
"""


def test_sigterm_in_the_middle_of_a_checkpoint_write_leaves_no_partial_directory(
    tmp_path, blocked_child
):
    """A SIGTERM (a scheduler's time limit) while CheckpointManager.save wrote its hidden
    '.ckpt-<step>.partial-<pid>' (weights and optimiser moments, three times the model) left
    it in the run directory until a later write in the same folder; now it goes with the
    process, which still dies of SIGTERM, and the published checkpoint is untouched."""
    run = tmp_path / "run"
    model = make_trainer(None).model
    CheckpointManager(run).save(model, {"step": 2}, 2, links=("last",))
    child, words = blocked_child(_KILLED_SAVE_CHILD, run)
    partial = run / words[0]
    assert partial.name == f".ckpt-4.partial-{child.pid}"
    assert (partial / WEIGHTS).is_file() and (partial / "trainer_state.safetensors").is_file()
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM, err
    assert "committed" not in out
    assert sorted(p.name for p in run.iterdir()) == ["ckpt-2", "last"]
    assert read_checkpoint(run / "last", model) == {"step": 2}


def test_checkpoint_manager_links_and_pruning(tmp_path):
    model = make_trainer(None).model
    mgr = CheckpointManager(tmp_path)
    mgr.save(model, {"step": 1}, 1, links=("last", "best"))
    mgr.save(model, {"step": 2}, 2, links=("last",))
    mgr.save(model, {"step": 3}, 3, links=("last",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "ckpt-1", "ckpt-3", "last"]
    assert os.readlink(tmp_path / "best") == "ckpt-1"
    # the same step again (e.g. after a resume) never overwrites a published directory
    mgr.save(model, {"step": 3, "again": True}, 3, links=("last",))
    assert os.readlink(tmp_path / "last") == "ckpt-3-1"
    assert read_checkpoint(tmp_path / "last", model) == {"step": 3, "again": True}


def test_last_holds_the_epoch_end_state_when_a_periodic_checkpoint_fell_on_the_final_batch(
    tmp_path,
):
    """15 steps, checkpoints every 3: step 15 was saved as `last` before the epoch-end bookkeeping
    (epoch 2, batch 5), the epoch-end validation saved the state after it as `best` only
    (``ckpt-15-1``), and the run ended with `last` at the earlier state. ``fit(resume="auto")``
    of the finished run then validated epoch 2 again and wrote another `best`."""
    run = tmp_path / "run"
    done = make_trainer(run).fit()
    state = read_checkpoint(run / "last", make_trainer(None).model)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (15, 3, 0)
    assert done.checkpoint == (run / "last").resolve()
    assert os.readlink(run / "best") == os.readlink(run / "last")  # epoch 2 improved rel_l2
    assert sorted(p for p in os.listdir(run) if "ckpt" in p) == [os.readlink(run / "last")]

    names = sorted(os.listdir(run))
    weights = _weights(run)
    again = make_trainer(run).fit(resume="auto")
    assert sorted(os.listdir(run)) == names
    assert os.readlink(run / "best") == os.readlink(run / "last") == "ckpt-15"
    assert (again.step, again.best_metric, again.best_step) == (15, done.best_metric, 15)
    assert _stable(again.history) == _stable(done.history)
    assert all(torch.equal(weights[k], w) for k, w in _weights(run).items())


def test_resume_between_training_rows_logs_the_rows_of_an_uninterrupted_run(tmp_path):
    """A training row every 4 steps averages the steps since the previous row. Crashed at step 8, resumed from `last` at step 6: the row of step 8 averaged steps 7-8 only
    (the sum since step 5 was not in the checkpoint), not steps 6-8."""
    config = dict(log_every=4, checkpoint_every=3, eval_every=100)
    ref = make_trainer(tmp_path / "ref", **config).fit()
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[CrashAt(8)], **config).fit()
    assert os.readlink(run / "last") == "ckpt-6"
    resumed = make_trainer(run, **config).fit(resume="auto")
    assert [r["step"] for r in ref.history] == [4, 8, 12]
    assert _stable(resumed.history) == _stable(ref.history)
    assert resumed.train_loss == ref.train_loss
    w_ref, w_res = _weights(tmp_path / "ref"), _weights(run)
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)


class _Losses(Callback):
    def __init__(self):
        self.losses = []

    def on_step_end(self, trainer, loss):
        self.losses.append(loss)


def test_training_rows_average_the_steps_since_the_previous_row_across_epoch_ends(tmp_path):
    """37 samples in batches of 8 (5 steps per epoch, the last of 5 samples), a row every 4 steps:
    the row of step 8 is the sample-weighted mean of the losses of steps 5-8 as ``on_step_end``
    saw them. The window restarted at each epoch end, so that row averaged steps 6-8 and steps 5,
    9 and 10 were in no row. A run crashed at step 7 and resumed from the epoch-end checkpoint
    of step 5 logs the same rows."""
    config = dict(n_train=37, log_every=4, checkpoint_every=5, eval_every=100)
    seen = _Losses()
    ref = make_trainer(tmp_path / "ref", callbacks=[seen], **config).fit()
    sizes = [8, 8, 8, 8, 5] * 3
    expected = []
    for k in (4, 8, 12):
        window = range(k - 4, k)
        total = sum(seen.losses[s] * sizes[s] for s in window)
        expected.append((k, total / sum(sizes[s] for s in window)))
    rows = [(r["step"], r["train_loss"]) for r in ref.history if r["train_loss"] is not None]
    assert [s for s, _ in rows] == [4, 8, 12]
    assert [v for _, v in rows] == pytest.approx([v for _, v in expected], rel=1e-12, abs=0)

    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[CrashAt(7)], **config).fit()
    assert os.readlink(run / "last") == "ckpt-5"
    resumed = make_trainer(run, **config).fit(resume="auto")
    assert _stable(resumed.history) == _stable(ref.history)


class _Tick(Callback):
    """After TimeBudget: records the lr it set for the next step, then advances the clock 10 s."""

    def __init__(self, now):
        self.now, self.lrs = now, []

    def on_step_end(self, trainer, loss):
        self.lrs.append(trainer.optimizer.param_groups[0]["lr"])
        self.now[0] += 10.0


def test_time_budget_counts_the_time_trained_before_a_resume(tmp_path):
    """A 1-minute budget on a fake clock advancing 10 s per step: the uninterrupted run stops at
    step 7. Crashed at step 5, resumed from `last` (step 3, 30 s in) on a clock that reads
    1000 s (a new process), the resumed run got a fresh minute and stopped at step 10; it must
    stop at step 7 with the annealed lrs of the uninterrupted run. Resuming the stopped run
    trains no further step."""
    config = dict(epochs=100, schedule=Constant(), warmup_steps=2, checkpoint_every=3)

    def fit(run, start, extra=(), resume=False):
        now = [start]
        budget = TimeBudget(1.0, anneal=True, min_factor=0.1, clock=lambda: now[0])
        tick = _Tick(now)
        result = make_trainer(run, callbacks=[budget, tick, *extra], **config).fit(resume=resume)
        return result, tick.lrs

    ref, ref_lrs = fit(tmp_path / "ref", 0.0)
    assert ref.step == 7 and len(ref_lrs) == 7
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        fit(run, 0.0, extra=[CrashAt(5)])
    assert os.readlink(run / "last") == "ckpt-3"
    resumed, lrs = fit(run, 1000.0, resume="auto")
    assert resumed.step == 7
    assert lrs == pytest.approx(ref_lrs[3:], rel=1e-12)
    assert _stable(resumed.history) == _stable(ref.history)
    w_ref, w_res = _weights(tmp_path / "ref"), _weights(run)
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)

    again, lrs = fit(run, 5000.0, resume="auto")
    assert again.step == 7 and lrs == []


class _Steps(Callback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, trainer, loss):
        self.steps.append(trainer.step)


def test_resume_auto_continues_from_a_best_that_a_kill_left_past_last(tmp_path):
    """Validation every 2 steps, `last` every 3: the step-4 validation saved `best` (ckpt-4) and
    the process died at step 5 (an exception leaves the files a SIGKILL would), `last` at step 3.
    resume="auto" restored step 3 and trained step 4 again: ckpt-4 is a whole training state,
    the newest one, so the run must go on from it (steps 5-15), end as the uninterrupted run,
    and keep ckpt-4's model as `best` where a rerun does not repeat step 4 (on a GPU; here
    stood in for by resuming with lr 0: the rerun step-4 model is the step-3 one, which replaced
    ckpt-4 as `best` and deleted it)."""
    config = dict(eval_every=2, checkpoint_every=3, dropout=0.1)
    ref = make_trainer(tmp_path / "ref", **config).fit()
    assert ref.best_step == 14

    def crashed(run):
        with pytest.raises(RuntimeError, match="simulated"):
            make_trainer(run, callbacks=[CrashAt(5)], **config).fit()
        assert (os.readlink(run / "last"), os.readlink(run / "best")) == ("ckpt-3", "ckpt-4")
        return load_file(str(run / "best" / "model.safetensors"))

    run = tmp_path / "run"
    crashed(run)
    seen = _Steps()
    resumed = make_trainer(run, callbacks=[seen], **config).fit(resume="auto")
    assert seen.steps == list(range(5, 16))
    assert (resumed.step, resumed.train_loss) == (ref.step, ref.train_loss)
    assert (resumed.best_metric, resumed.best_step) == (ref.best_metric, ref.best_step)
    assert _stable(resumed.history) == _stable(ref.history)
    w_ref, w_res = _weights(tmp_path / "ref"), _weights(run)
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)

    frozen = tmp_path / "frozen"
    best = crashed(frozen)
    best_metric = next(r["val_rel_l2"] for r in ref.history if r["step"] == 4 and r["val_rel_l2"])
    with pytest.warns(UserWarning, match=r"changed: \['lr'\]"):
        result = make_trainer(frozen, **{**config, "lr": 0.0}).fit(resume="auto")
    assert (result.best_step, result.best_metric) == (4, best_metric)
    w = load_file(str(frozen / "best" / "model.safetensors"))
    assert all(torch.equal(best[k], w[k]) for k in best)


@pytest.mark.parametrize(
    "change, again, missed",
    [(dict(batch_size=4), 4, 0), (dict(batch_size=16), 0, 8), (dict(seed=8), None, None)],
)
def test_resume_mid_epoch_with_another_batch_size_or_seed_warns_what_it_does(
    tmp_path, change, again, missed
):
    """`last` at step 6 is batch 1 of epoch 1 (8 of 40 samples read). Resumed with batch_size 4
    the rest of the epoch started at sample 4 of its order (4 read twice), with 16 at sample 16
    (8 never read), with seed 8 in another order: all silently. The warning names the values
    and counts the samples, checked against the indices the data set handed out."""
    run = tmp_path / "run"
    crashed = make_trainer(run, callbacks=[CrashAt(7)], checkpoint_every=3)
    with pytest.raises(RuntimeError, match="simulated"):
        crashed.fit()
    before = crashed.train_data.seen[40:48]  # epoch 1 up to step 6, the checkpoint
    trainer = make_trainer(run, checkpoint_every=3, **change)
    with pytest.warns(UserWarning) as caught:
        trainer.fit(resume="auto")
    (key, value), old = next(iter(change.items())), {"batch_size": 8, "seed": 7}
    seen = trainer.train_data.seen
    after = seen[: len(seen) - 40]  # the rest of epoch 1; epoch 2 reads all 40
    assert len(set(before)) == 8 and len(set(after)) == len(after)
    n_again, n_missed = len(set(before) & set(after)), 40 - len(set(before) | set(after))
    if again is not None:
        assert (n_again, n_missed) == (again, missed)
    else:
        assert n_again == n_missed > 0  # as many repeated as skipped
    text = [str(w.message) for w in caught if "middle of epoch" in str(w.message)]
    assert len(text) == 1
    assert (
        f"middle of epoch 1 (after 1 batch) with {key}={value}, where the checkpoint has "
        f"{key}={old[key]}: " in text[0]
    )
    assert f"so {n_again} of the 8 samples read before the resume are read again and " in text[0]
    assert f"{n_missed} of the 40 samples are not read in this epoch" in text[0]


def test_resume_at_an_epoch_end_with_another_seed_does_not_warn_of_samples(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[CrashAt(7)], checkpoint_every=5).fit()
    with pytest.warns(UserWarning) as caught:
        make_trainer(run, checkpoint_every=5, seed=8).fit(resume="auto")
    assert [str(w.message) for w in caught if "different TrainConfig" in str(w.message)]
    assert not [w for w in caught if "middle of epoch" in str(w.message)]


def test_early_stopping_survives_a_resume(tmp_path):
    """EarlyStopping(patience=1) stops the run at step 8 (validation every 2 steps). Crashed at
    step 7 and resumed from step 6, a fresh EarlyStopping took step 8's validation for an
    improvement and trained on to step 12; resuming the stopped run trained on as well."""
    config = dict(lr=0.02, schedule=Constant(), eval_every=2, checkpoint_every=3)
    ref = make_trainer(tmp_path / "ref", callbacks=[EarlyStopping(1)], **config).fit()
    assert ref.step == 8 and ref.best_step == 6
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[EarlyStopping(1), CrashAt(7)], **config).fit()
    assert os.readlink(run / "last") == "ckpt-6"
    resumed = make_trainer(run, callbacks=[EarlyStopping(1)], **config).fit(resume="auto")
    assert (resumed.step, resumed.best_metric, resumed.best_step) == (8, ref.best_metric, 6)
    assert _stable(resumed.history) == _stable(ref.history)
    w_ref, w_res = _weights(tmp_path / "ref"), _weights(run)
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)

    names = sorted(os.listdir(run))
    again = make_trainer(run, callbacks=[EarlyStopping(1)], **config).fit(resume="auto")
    assert again.step == 8 and _stable(again.history) == _stable(ref.history)
    assert sorted(os.listdir(run)) == names
    assert all(torch.equal(w_ref[k], w) for k, w in _weights(run).items())


def test_resume_with_a_changed_config_trains_with_the_new_lr_and_weight_decay(tmp_path):
    """The warning says the run continues with the new config; the lr and weight_decay stayed
    those of the checkpoint (the optimiser's and scheduler's states hold them)."""
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[CrashAt(5)]).fit()
    assert os.readlink(run / "last") == "ckpt-3"
    trainer = make_trainer(run, lr=1e-2, weight_decay=0.05)
    with pytest.warns(UserWarning, match=r"changed: \['lr', 'weight_decay'\]\); the run continues"):
        result = trainer.fit(resume="auto")
    rows = [r for r in result.history if r["train_loss"] is not None]
    expected = [(3e-3 if s <= 3 else 1e-2) * lr_factor(Cosine(), s, 15) for s in range(1, 16)]
    assert [r["lr"] for r in rows] == pytest.approx(expected, rel=1e-12)
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.05


def test_rows_after_a_resume_with_another_batch_size_are_labelled_with_their_epoch(tmp_path):
    """40 samples: 5 steps per epoch at batch 8, then 3 at batch 16 (resumed at the end of
    epoch 2, step 10). A row's epoch is the epochs done plus the part of the current one; it
    was step / steps_per_epoch, which after the change read 11 / 3 = 3.67 for the first step of
    epoch 2 (2.33)."""
    make_trainer(tmp_path, epochs=2, checkpoint_every=0).fit()
    with pytest.warns(UserWarning):
        resumed = make_trainer(tmp_path, epochs=4, batch_size=16, checkpoint_every=0).fit(
            resume="auto"
        )
    rows = [r for r in resumed.history if r["train_loss"] is not None]  # training rows
    assert [r["step"] for r in rows] == list(range(1, 17))
    epochs = [r["epoch"] for r in rows]
    assert epochs[:10] == pytest.approx([k / 5 for k in range(1, 11)])
    assert epochs[10:] == pytest.approx([2 + k / 3 for k in range(1, 7)])
    # the schedule spans the 10 steps taken and the 6 left (it was 4 epochs x 3 = 12 steps, so
    # the resumed steps ran at the floor: lr 6e-5 at step 11 instead of 6.7e-4)
    lrs = [r["lr"] for r in rows[10:]]
    want = [3e-3 * 0.5 * (1 + math.cos(math.pi * k / 16)) for k in range(11, 17)]
    assert lrs == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_resume_auto_does_not_take_an_earlier_runs_best(tmp_path):
    """A fresh run in a folder without validation data: `resume='auto'` continued the earlier
    run's step 15 instead of the fresh run's step 5, because the earlier run's `best` was the
    newer state. (That `best` is now dropped at the fresh run's first checkpoint, see
    test_a_fresh_runs_first_checkpoint_drops_the_earlier_runs_best; a kill before it leaves
    both links, and find_checkpoint reads `last` where their run ids differ.)"""
    make_trainer(tmp_path, epochs=3).fit()
    fresh = make_trainer(tmp_path, epochs=1, checkpoint_every=2)
    fresh.val_data = None
    with pytest.warns(UserWarning, match="starts afresh"):
        assert fresh.fit().step == 5
    assert not (tmp_path / "best").is_symlink()
    again = make_trainer(tmp_path, epochs=2, checkpoint_every=2)
    again.val_data = None
    assert again.fit(resume="auto").step == 10  # the fresh run's 5 steps, then 5 more


def test_resume_with_a_longer_schedule_sets_the_lr_of_its_step(tmp_path):
    """The same config on 48 samples instead of 40 (6 steps an epoch, not 5): the schedule is
    rebuilt for the new length, and the lr is the rebuilt schedule's at the step reached; it
    was left at lr * f(0) = 3e-3, the value a new scheduler sets."""

    class StopAt10(Callback):
        def on_epoch_end(self, trainer, epoch):
            if trainer.step == 10:
                trainer.request_stop()

    make_trainer(tmp_path, epochs=4, checkpoint_every=0, callbacks=[StopAt10()]).fit()
    t = make_trainer(tmp_path, epochs=4, checkpoint_every=0, n_train=48)
    t._restore(t._resume_target("auto"))
    assert (t.step, t.total_steps) == (10, 22)
    lr = t.optimizer.param_groups[0]["lr"]
    assert lr == pytest.approx(3e-3 * 0.5 * (1 + math.cos(math.pi * 10 / 22)), rel=1e-12)


def test_resume_past_the_new_epoch_length_counts_the_steps_that_run(tmp_path):
    """Killed after batch 4 of epoch 1 at batch 8, resumed at batch 16 (3 batches an epoch): the
    rest of epoch 1 is skipped, 3 steps run (epoch 2). The schedule counted 2 (it subtracted 4
    batches from 3), so the last update ran at lr 0."""

    class Crash(Callback):
        def on_step_end(self, trainer, loss):
            if trainer.step == 10:
                raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        make_trainer(tmp_path, epochs=3, checkpoint_every=9, callbacks=[Crash()]).fit()
    used = []

    class Record(Callback):
        def on_step_end(self, trainer, loss):
            used.append(trainer.scheduler.get_last_lr()[0])

    t = make_trainer(tmp_path, epochs=3, batch_size=16, checkpoint_every=0, callbacks=[Record()])
    with pytest.warns(UserWarning):
        result = t.fit(resume="auto")
    assert (result.step, t.total_steps) == (12, 12)
    # the lr after each update: f(10), f(11), f(12) of a 12-step cosine; the last is the floor
    want = [3e-3 * 0.5 * (1 + math.cos(math.pi * k / 12)) for k in (10, 11, 12)]
    assert used == pytest.approx(want, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("n_train", [48, 32, 12])
def test_resume_mid_epoch_with_another_training_set_size_warns_what_it_does(tmp_path, n_train):
    """`last` at step 6 is batch 1 of epoch 1 (8 of 40 samples read). On 48 or 32 samples the
    rest of epoch 1 is drawn from the order of another permutation, so samples are read twice
    and others skipped, and on 12 (2 batches) a batch of the epoch is left: all without a word,
    since the size was not in the checkpoint. The warning names both sizes and counts the
    samples, checked against the indices the data set handed out."""
    run = tmp_path / "run"
    crashed = make_trainer(run, callbacks=[CrashAt(7)], checkpoint_every=3)
    with pytest.raises(RuntimeError, match="simulated"):
        crashed.fit()
    before = crashed.train_data.seen[40:48]  # epoch 1 up to step 6, the checkpoint
    trainer = make_trainer(run, checkpoint_every=3, n_train=n_train)
    with pytest.warns(UserWarning) as caught:
        result = trainer.fit(resume="auto")
    seen = trainer.train_data.seen
    after = seen[: len(seen) - n_train]  # the rest of epoch 1; epoch 2 reads all n_train
    assert sorted(seen[len(after) :]) == list(range(n_train))
    assert len(after) == n_train - min(n_train, 8)  # batches 1.. of an epoch at the new size
    n_again = len(set(before) & set(after))
    n_missed = n_train - len({i for i in before if i < n_train} | set(after))
    assert n_again + n_missed > 0  # the epoch is not whole: this is what the warning is for
    text = [str(w.message) for w in caught if "middle of epoch" in str(w.message)]
    assert len(text) == 1
    assert (
        f"middle of epoch 1 (after 1 batch) with a training set of {n_train} samples, where the "
        "checkpoint has a training set of 40 samples: " in text[0]
    )
    assert f"so {n_again} of the 8 samples read before the resume are read again and " in text[0]
    assert f"{n_missed} of the {n_train} samples are not read in this epoch" in text[0]
    steps = 6 + math.ceil(len(after) / 8) + math.ceil(n_train / 8)
    assert result.step == steps  # the schedule's length counts the steps that ran
    assert trainer.total_steps == steps


def test_resume_at_an_epoch_end_with_another_training_set_size_warns_with_both(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[CrashAt(7)], checkpoint_every=5).fit()
    with pytest.warns(UserWarning) as caught:
        result = make_trainer(run, checkpoint_every=5, n_train=48).fit(resume="auto")
    text = [str(w.message) for w in caught if "training set" in str(w.message)]
    assert len(text) == 1 and "middle of epoch" not in text[0]
    assert "at the start of epoch 1 with a training set of 48 samples, where the " in text[0]
    assert "checkpoint's run had 40: the epochs left read the 48 samples (6 steps each)" in text[0]
    assert result.step == 5 + 2 * 6


def test_a_checkpoint_without_the_training_set_size_still_resumes(tmp_path):
    """Checkpoints written before the size was stored resume as before: the mid-epoch check
    takes the current size, so the same config continues exactly and silently."""
    ref = make_trainer(tmp_path / "ref").fit()
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[CrashAt(7)]).fit()
    state_file = run / "last" / "trainer_state.json"
    tree = json.loads(state_file.read_text())
    assert tree["state"].pop("train_size") == 40  # what the checkpoint holds now
    state_file.write_text(json.dumps(tree))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = make_trainer(run).fit(resume="auto")
    assert (resumed.step, resumed.train_loss) == (ref.step, ref.train_loss)
    assert all(torch.equal(v, _weights(run)[k]) for k, v in _weights(tmp_path / "ref").items())


def test_checkpoints_store_the_history_as_columns_and_read_the_older_list(tmp_path):
    """trainer_state.json held every metrics row (2.9 MB and 0.65 s per checkpoint at 10,000
    rows); the rows now go to trainer_state.safetensors as columns, and the JSON names each
    column once. A checkpoint written before (the history a list of rows in the JSON) still
    resumes to the uninterrupted run: weights bitwise, history equal."""
    from sciml.train._runlog import unpack_rows
    from sciml.train._state import load_state, save_state

    ref = make_trainer(tmp_path / "ref").fit()
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[CrashAt(7)]).fit()
    ckpt = run / "last"
    assert (ckpt / "trainer_state.json").read_text().count('"train_loss"') == 1  # was 6 rows
    tree = load_state(ckpt)
    rows = unpack_rows(tree["history"])
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 5, 6]  # 5: the epoch end's val row
    assert _stable(rows) == _stable(ref.history[:7])
    tree["history"] = rows  # as checkpoints before this change stored it
    save_state(tree, ckpt)
    assert (ckpt / "trainer_state.json").read_text().count('"train_loss"') == len(rows)
    resumed = make_trainer(run).fit(resume="auto")
    assert (resumed.step, resumed.train_loss) == (ref.step, ref.train_loss)
    assert _stable(resumed.history) == _stable(ref.history)
    assert all(torch.equal(v, _weights(run)[k]) for k, v in _weights(tmp_path / "ref").items())


def _two_groups(trainer):
    """An optimiser as ScOT's fine-tuning recipe builds one: a group at the config's lr and
    weight decay, and one at a third of the lr without decay; the schedule rebuilt over it."""
    from sciml.train.schedules import build_scheduler

    cfg, m = trainer.config, trainer.model
    trainer.optimizer = torch.optim.AdamW(
        [
            {"params": m.inp.parameters(), "lr": cfg.lr, "weight_decay": cfg.weight_decay},
            {"params": m.out.parameters(), "lr": cfg.lr / 3, "weight_decay": 0.0},
        ]
    )
    trainer.scheduler = build_scheduler(
        trainer.optimizer, cfg.schedule, trainer.total_steps, cfg.warmup_steps
    )
    return trainer


@pytest.mark.parametrize(
    "change, bases", [(dict(batch_size=16), (3e-3, 1e-3)), (dict(lr=6e-3), (6e-3, 2e-3))]
)
def test_resume_with_a_rebuilt_schedule_keeps_each_param_groups_lr_and_decay(
    tmp_path, change, bases
):
    """Resumed with another batch_size (the schedule is rebuilt) or lr, every param group got
    the config's lr and weight decay: the group at lr / 3 jumped to lr and the group without
    weight decay got 1e-4. Now each keeps its own (scaled as the config's lr), at the cosine's
    value for the step reached (step 6 of 11 steps at batch 16, of 15 at batch 8)."""
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        _two_groups(make_trainer(run, callbacks=[CrashAt(7)], checkpoint_every=3)).fit()
    t = _two_groups(make_trainer(run, checkpoint_every=3, **change))
    with pytest.warns(UserWarning):
        t._restore(t._resume_target("auto"))
    total = 6 + 2 + 3 if "batch_size" in change else 15  # epoch 1's last 2 batches, epoch 2
    assert t.total_steps == total
    f = 0.5 * (1 + math.cos(math.pi * 6 / total))
    groups = t.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([b * f for b in bases], rel=1e-12)
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]
    assert t.scheduler.base_lrs == pytest.approx(list(bases), rel=1e-12)


class _DecayFrom(Callback):
    """Sets group 0's weight decay to ``decay`` after step ``step``: the uninterrupted run of a
    config whose weight_decay changed there."""

    def __init__(self, step, decay):
        self.step, self.decay = step, decay

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            trainer.optimizer.param_groups[0]["weight_decay"] = self.decay


def test_resume_with_a_new_weight_decay_keeps_the_no_decay_group_at_zero(tmp_path):
    """Saved with weight_decay=0, resumed with 0.05: the group without decay (weight decay 0,
    equal to the saved config's) was taken for a group at the config's value and decayed at
    0.05 too. Now each group takes the weight decay the optimiser resumed into was built with,
    and the weights equal, bitwise, those of an uninterrupted run whose group 0 went to 0.05
    after step 6 (the checkpoint)."""
    config = dict(schedule=Constant(), weight_decay=0.0, checkpoint_every=3)
    ref_dir, run = tmp_path / "ref", tmp_path / "run"
    ref = _two_groups(make_trainer(ref_dir, callbacks=[_DecayFrom(6, 0.05)], **config)).fit()
    with pytest.raises(RuntimeError, match="simulated"):
        _two_groups(make_trainer(run, callbacks=[CrashAt(7)], **config)).fit()
    assert os.readlink(run / "last") == "ckpt-6"
    resumed = _two_groups(make_trainer(run, **{**config, "weight_decay": 0.05}))
    with pytest.warns(UserWarning, match=r"changed: \['weight_decay'\]"):
        result = resumed.fit(resume="auto")
    assert [g["weight_decay"] for g in resumed.optimizer.param_groups] == [0.05, 0.0]
    assert result.step == ref.step == 15 and result.train_loss == ref.train_loss
    w_ref, w_run = _weights(ref_dir), _weights(run)
    assert all(torch.equal(w_ref[k], w_run[k]) for k in w_ref)


def test_resume_with_a_recipes_new_weight_decay_takes_it_as_a_changed_config_does(tmp_path):
    """A FineTuneRecipe saved at weight_decay=0 and applied at 0.05 on resume, the TrainConfig
    unchanged: the optimiser's state dict put the checkpoint's 0 back on every group, silently
    (the decay of a changed TrainConfig was put back, the recipe's was not). Now the recipe's
    wins, with a warning, and the weights equal, bitwise, those of an uninterrupted run whose
    decayed group went to 0.05 after step 6 (the checkpoint)."""
    from sciml.models.scot_training import FineTuneRecipe

    def recipe(decay):  # on Tiny: conv weights decayed ('body'), biases not ('body_no_decay')
        return FineTuneRecipe(lr=3e-3, lr_embedding=None, lr_time=None, weight_decay=decay)

    config = dict(schedule=Constant(), checkpoint_every=3)
    ref_dir, run = tmp_path / "ref", tmp_path / "run"
    ref = recipe(0.0).apply(make_trainer(ref_dir, callbacks=[_DecayFrom(6, 0.05)], **config))
    assert [g["name"] for g in ref.optimizer.param_groups] == ["body", "body_no_decay"]
    ref = ref.fit()
    with pytest.raises(RuntimeError, match="simulated"):
        recipe(0.0).apply(make_trainer(run, callbacks=[CrashAt(7)], **config)).fit()
    assert os.readlink(run / "last") == "ckpt-6"
    resumed = recipe(0.05).apply(make_trainer(run, **config))
    with pytest.warns(
        UserWarning,
        match=r"weight decays \[0.05, 0.0\], where the checkpoint's was built with \[0.0, 0.0\]",
    ):
        result = resumed.fit(resume="auto")
    assert [g["weight_decay"] for g in resumed.optimizer.param_groups] == [0.05, 0.0]
    assert result.step == ref.step == 15 and result.train_loss == ref.train_loss
    w_ref, w_run = _weights(ref_dir), _weights(run)
    assert all(torch.equal(w_ref[k], w_run[k]) for k in w_ref)
    # the same recipe resumes without a word (an exact resume)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recipe(0.05).apply(make_trainer(run, **config)).fit(resume="auto")


class _LrFrom(Callback):
    """Sets every group's base lr to ``lr`` after step ``step`` (a Constant schedule): the
    uninterrupted run of a recipe whose lr changed there."""

    def __init__(self, step, lr):
        self.step, self.lr = step, lr

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            trainer.scheduler.base_lrs = [self.lr] * len(trainer.optimizer.param_groups)
            for group in trainer.optimizer.param_groups:
                group["lr"] = self.lr


def test_resume_with_a_recipes_new_lr_takes_it(tmp_path):
    """A FineTuneRecipe saved at lr 3e-3 and applied at 1e-3 on resume, the TrainConfig
    unchanged: the checkpoint's 3e-3 stayed on every group, silently. Now the recipe's lr wins
    with a warning, and the weights equal, bitwise, an uninterrupted run whose lr went to 1e-3
    after step 6. A changed TrainConfig lr leaves the recipe's groups alone, as a fresh run
    with that config and recipe would (the recipe does not read it; they were scaled by the
    new / old config lr)."""
    from sciml.models.scot_training import FineTuneRecipe

    def recipe(lr):
        return FineTuneRecipe(lr=lr, lr_embedding=None, lr_time=None, weight_decay=0.0)

    config = dict(schedule=Constant(), checkpoint_every=3)
    ref_dir, run = tmp_path / "ref", tmp_path / "run"
    ref = recipe(3e-3).apply(make_trainer(ref_dir, callbacks=[_LrFrom(6, 1e-3)], **config))
    ref = ref.fit()
    with pytest.raises(RuntimeError, match="simulated"):
        recipe(3e-3).apply(make_trainer(run, callbacks=[CrashAt(7)], **config)).fit()
    resumed = recipe(1e-3).apply(make_trainer(run, **config))
    with pytest.warns(UserWarning, match=r"lrs \[0.001, 0.001\], where the checkpoint's was"):
        result = resumed.fit(resume="auto")
    assert [g["lr"] for g in resumed.optimizer.param_groups] == [1e-3, 1e-3]
    assert result.step == ref.step == 15 and result.train_loss == ref.train_loss
    w_ref, w_run = _weights(ref_dir), _weights(run)
    assert all(torch.equal(w_ref[k], w_run[k]) for k in w_ref)
    # the run's checkpoints now hold the recipe's 1e-3: a config lr of 6e-3 changes nothing
    again = recipe(1e-3).apply(make_trainer(run, **{**config, "lr": 6e-3}))
    with pytest.warns(UserWarning, match=r"changed: \['lr'\]"):
        again._restore(again._resume_target("auto"))
    assert [g["lr"] for g in again.optimizer.param_groups] == [1e-3, 1e-3]


def test_resume_keeps_a_weight_decay_a_callback_set_during_the_run(tmp_path):
    """Nothing new at resume (same config, same optimiser): the weight decay a callback set
    once, at step 6, stays after a resume from step 9, where the optimiser is rebuilt at 1e-4;
    the weights equal, bitwise, those of the uninterrupted run. (Putting back the built weight
    decay on every resume, as a first fix for the recipe case did, lost it.)"""
    config = dict(schedule=Constant(), checkpoint_every=3)
    ref_dir, run = tmp_path / "ref", tmp_path / "run"
    ref = make_trainer(ref_dir, callbacks=[_DecayFrom(6, 0.05)], **config).fit()
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[_DecayFrom(6, 0.05), CrashAt(10)], **config).fit()
    assert os.readlink(run / "last") == "ckpt-9"
    resumed = make_trainer(run, callbacks=[_DecayFrom(6, 0.05)], **config)
    assert resumed.optimizer.param_groups[0]["weight_decay"] == 1e-4  # as built
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = resumed.fit(resume="auto")
    assert resumed.optimizer.param_groups[0]["weight_decay"] == 0.05
    assert result.step == ref.step == 15 and result.train_loss == ref.train_loss
    w_ref, w_run = _weights(ref_dir), _weights(run)
    assert all(torch.equal(w_ref[k], w_run[k]) for k in w_ref)


class _StopOnceAt(Callback):
    """Asks the trainer to stop after step ``step``, once: ``fit()`` called again on the same
    trainer then continues in process (as after a Ctrl-C)."""

    def __init__(self, step):
        self.step, self.done = step, False

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step and not self.done:
            self.done = True
            trainer.request_stop()


def test_a_second_fit_in_process_keeps_what_a_callback_set_as_run_state(tmp_path):
    """fit() noted the optimiser's weight decays and the schedule's base lrs as 'built' on every
    call, so a run continued in process (fit() again after a stop) stored what a callback had
    set during the run (weight decay 0.05, lr 1e-3 from step 6) as built: a resume of its
    checkpoint took the Trainer's 1e-4 / 3e-3 for a new recipe and put them back, with a
    warning. Now they are noted only for a new optimiser or schedule: the resume is exact."""
    config = dict(schedule=Constant(), checkpoint_every=3, lr=3e-3)

    def callbacks(*more):
        return [_DecayFrom(6, 0.05), _LrFrom(6, 1e-3), *more]

    ref_dir, run = tmp_path / "ref", tmp_path / "run"
    ref = make_trainer(ref_dir, callbacks=callbacks(_StopOnceAt(7)), **config)
    assert ref.fit().step == 7
    ref = ref.fit()
    first = make_trainer(run, callbacks=callbacks(_StopOnceAt(7), CrashAt(10)), **config)
    assert first.fit().step == 7
    with pytest.raises(RuntimeError, match="simulated"):
        first.fit()
    assert os.readlink(run / "last") == "ckpt-9"
    state = read_checkpoint(run / "last", make_trainer(None).model)
    assert (state["built_weight_decay"], state["built_lr"]) == ([1e-4], [3e-3])
    resumed = make_trainer(run, callbacks=callbacks(), **config)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = resumed.fit(resume="auto")
    group = resumed.optimizer.param_groups[0]
    assert (group["weight_decay"], group["lr"]) == (0.05, 1e-3)
    assert result.step == ref.step == 15 and result.train_loss == ref.train_loss
    w_ref, w_run = _weights(ref_dir), _weights(run)
    assert all(torch.equal(w_ref[k], w_run[k]) for k in w_ref)


class _SetAt(Callback):
    """After step ``step``, sets param group ``index``'s ``lr`` (its base lr, a Constant
    schedule) and / or ``weight_decay``."""

    def __init__(self, step, index, **values):
        self.step, self.index, self.values = step, index, values

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            trainer.optimizer.param_groups[self.index].update(self.values)
            if "lr" in self.values:
                trainer.scheduler.base_lrs[self.index] = self.values["lr"]


def test_resume_with_a_new_lr_and_decay_on_one_group_keeps_the_others(tmp_path):
    """The built lr / weight decay replaced the checkpoint's on every group as soon as one
    group's differed, so a recipe giving group 0 a new lr and decay also undid what a callback
    had set on group 1 during the run (lr 5e-4, decay 0.02 from step 4), though docs/trainer.md
    says each group takes the built values where they differ. Now per group: the weights equal,
    bitwise, an uninterrupted run whose group 0 went to lr 1e-3, decay 0.05 at step 6."""
    from sciml.train.schedules import build_scheduler

    def groups(trainer, lr0, decay0):  # as a recipe: group 1 at lr 1e-3 without decay
        m = trainer.model
        trainer.optimizer = torch.optim.AdamW(
            [
                {"params": m.inp.parameters(), "lr": lr0, "weight_decay": decay0},
                {"params": m.out.parameters(), "lr": 1e-3, "weight_decay": 0.0},
            ]
        )
        trainer.scheduler = build_scheduler(trainer.optimizer, Constant(), trainer.total_steps)
        return trainer

    config = dict(schedule=Constant(), checkpoint_every=3)
    group1 = _SetAt(4, 1, lr=5e-4, weight_decay=0.02)
    ref_dir, run = tmp_path / "ref", tmp_path / "run"
    callbacks = [group1, _SetAt(6, 0, lr=1e-3, weight_decay=0.05)]
    ref = groups(make_trainer(ref_dir, callbacks=callbacks, **config), 3e-3, 1e-4).fit()
    with pytest.raises(RuntimeError, match="simulated"):
        groups(make_trainer(run, callbacks=[group1, CrashAt(7)], **config), 3e-3, 1e-4).fit()
    assert os.readlink(run / "last") == "ckpt-6"
    resumed = groups(make_trainer(run, **config), 1e-3, 0.05)
    with pytest.warns(UserWarning, match="another FineTuneRecipe"):
        result = resumed.fit(resume="auto")
    got = [(g["lr"], g["weight_decay"]) for g in resumed.optimizer.param_groups]
    assert got == [(1e-3, 0.05), (5e-4, 0.02)]
    assert result.step == ref.step == 15 and result.train_loss == ref.train_loss
    w_ref, w_run = _weights(ref_dir), _weights(run)
    assert all(torch.equal(w_ref[k], w_run[k]) for k in w_ref)


def _mgno_trainer(out_dir, **config):
    """The MgNO of tests/data/mgno_dead_weights (levels without pre-smoothing, whose dead Pi / A
    weights older sciml built and trained) on 8 samples, one batch per epoch."""
    from sciml.models import MgNO, MgNOConfig

    torch.manual_seed(0)
    model = MgNO(
        MgNOConfig(
            channels=3, n_layers=1, smoothing=((0, 1), (0, 1), (2, 0)), residual_restriction=True
        )
    )
    u = torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    data = [{"input": a, "target": 0.5 * a.roll(2, -1)} for a in u]
    config = TrainConfig(
        **{"epochs": 2, "batch_size": 8, "lr": 1e-2, "schedule": Constant(), **config}
    )
    return Trainer(model, data, config=config, out_dir=out_dir, progress=False)


def test_resume_of_an_older_vcycles_optimizer_state_says_what_to_do(tmp_path):
    """A checkpoint written before VCycle stopped building its dead weights holds them in the
    weights (which load) and in AdamW's state, 5 entries more than the model has: the resume
    failed with torch's "loaded state dict contains a parameter group that doesn't match the
    size of optimizer's group". Now it says why and what to do, and
    fit(resume=..., optimizer_state=False) continues with fresh moments: the one step left
    equals one fresh AdamW step from the checkpoint's weights at the scheduled lr."""
    from safetensors.torch import save_file

    from sciml.operator import obsolete_state_keys
    from sciml.train._state import save_state

    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        t = _mgno_trainer(run)
        t.callbacks.append(CrashAt(2))
        t.fit()
    ckpt = (run / "last").resolve()
    assert ckpt.name == "ckpt-1"
    # written the old way: the dead weights in the weights file and in the optimiser state
    dead = load_file(str(Path(__file__).parent / "data" / "mgno_dead_weights" / "mgno" / WEIGHTS))
    dead = {k: v for k, v in dead.items() if k in obsolete_state_keys(t.model)}
    assert len(dead) == 5
    save_file({**_weights(run), **dead}, str(ckpt / WEIGHTS))
    state = read_checkpoint(ckpt, _mgno_trainer(None).model)
    optimizer = state["optimizer"]
    n = len(optimizer["param_groups"][0]["params"])
    for i, v in enumerate(dead.values()):
        moments = {"exp_avg": torch.full_like(v, 0.1), "exp_avg_sq": torch.full_like(v, 0.01)}
        optimizer["state"][n + i] = {"step": torch.tensor(1.0), **moments}
    optimizer["param_groups"][0]["params"] = list(range(n + len(dead)))
    save_state(state, ckpt, "trainer_state")

    with pytest.raises(sciml.CheckpointError) as info:
        _mgno_trainer(run).fit(resume="auto")
    message = str(info.value)
    assert f"holds [{n + 5}] parameters per param group, this model has [{n}]" in message
    assert "5 tensor(s) that this version of MgNO no longer builds" in message
    assert "fit(resume=..., optimizer_state=False)" in message

    # the reference: one fresh AdamW step from the checkpoint's weights on the whole data set
    before = {k: v for k, v in _weights(run).items() if k not in dead}
    model = _mgno_trainer(None).model
    model.load_state_dict(before)
    u = torch.stack([d["input"] for d in _mgno_trainer(None).train_data])
    adam = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    LpLoss()(model(u), 0.5 * u.roll(2, -1)).backward()
    adam.step()
    resumed = _mgno_trainer(run).fit(resume="auto", optimizer_state=False)
    assert resumed.step == 2
    got = _weights(run)
    for name, p in model.state_dict().items():
        torch.testing.assert_close(got[name], p, rtol=1e-5, atol=1e-6)
    # the moments were fresh: AdamW's first step moves every weight by about lr (|g| >> eps)
    assert max((got[k] - v).abs().max().item() for k, v in before.items()) > 9e-3


def test_resume_with_another_number_of_param_groups_says_to_build_the_same_optimizer(tmp_path):
    """A run with two param groups resumed by a trainer with the default one: torch said
    "loaded state dict has a different number of parameter groups"; the error now gives both
    layouts (Tiny: 2 + 2 parameters, or all 4 in one group) and what to do."""
    run = tmp_path / "run"
    _two_groups(make_trainer(run, epochs=1)).fit()
    with pytest.raises(
        sciml.CheckpointError,
        match=r"2 param group\(s\) of \[2, 2\] parameters, "
        r"this trainer's has 1 of \[4\]; build the optimiser as the run",
    ):
        make_trainer(run, epochs=2).fit(resume="auto")
    assert _two_groups(make_trainer(run, epochs=1)).fit(resume="auto").step == 5


def test_resume_with_a_rebuilt_schedule_keeps_the_time_budgets_anneal(tmp_path):
    """TimeBudget(anneal=True) multiplies the lr by a cosine of the time used; a resume that
    sets the lr anew (another batch_size rebuilds the schedule) dropped that factor for the
    first step: lr 3e-3 instead of 3e-3 * (1 + cos(pi * 6 / 30)) / 2 after 6 s of a 30 s
    budget (a clock that ticks 1 s per step)."""
    now = [0.0]

    class Tick(Callback):
        def on_step_end(self, trainer, loss):
            now[0] += 1.0

    def budget():
        return TimeBudget(0.5, anneal=True, clock=lambda: now[0])

    config = dict(schedule=Constant(), checkpoint_every=3)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        make_trainer(run, callbacks=[Tick(), budget(), CrashAt(7)], **config).fit()
    now[0] = 100.0  # a later process: the budget counts the time saved, not the clock
    t = make_trainer(run, callbacks=[Tick(), budget()], batch_size=16, **config)
    with pytest.warns(UserWarning):
        t._restore(t._resume_target("auto"))
    want = 3e-3 * 0.5 * (1 + math.cos(math.pi * 6 / 30))
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(want, rel=1e-12)


def test_a_checkpoint_of_another_model_config_is_refused_naming_the_shapes_model_untouched(
    tmp_path,
):
    """Resuming into a model of another config raised torch's RuntimeError ('Error(s) in
    loading state_dict'), not a CheckpointError, after copying the tensors whose shapes did
    fit (out.bias) into the model; a model with other parameter names got the CheckpointError
    after its matching tensors (inp.*) were overwritten. Both now fail before any copy."""
    from test_train_common import ShiftData, Tiny, TinyConfig

    make_trainer(tmp_path / "run", epochs=1).fit()
    other = Tiny(TinyConfig(hidden=8))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    trainer = Trainer(other, ShiftData(16), config=TrainConfig(epochs=1, batch_size=8),
                      progress=False)  # fmt: skip
    with pytest.raises(
        sciml.CheckpointError, match=r"inp\.weight saved \(16, 1, 5\), built \(8, 1, 5\)"
    ):
        trainer.fit(resume=tmp_path / "run")
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())

    class Renamed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Conv1d(1, 16, 5, padding=2, padding_mode="circular")
            self.head = torch.nn.Conv1d(16, 1, 5, padding=2, padding_mode="circular")

    renamed = Renamed()
    before = {k: v.clone() for k, v in renamed.state_dict().items()}
    with pytest.raises(
        sciml.CheckpointError,
        match=r"missing \['head\.bias', 'head\.weight'\], unexpected \['out\.bias'",
    ):
        read_checkpoint(tmp_path / "run" / "last", renamed)
    assert all(torch.equal(before[k], v) for k, v in renamed.state_dict().items())


@pytest.mark.parametrize(
    "name, damage",
    [
        ("trainer_state.json", "truncate"),
        ("trainer_state.json", "garbage"),
        ("trainer_state.safetensors", "truncate"),
        ("model.safetensors", "truncate"),
        ("model.safetensors", "empty"),
    ],
)
def test_a_damaged_checkpoint_file_is_a_checkpoint_error_naming_the_file(tmp_path, name, damage):
    """A truncated or overwritten file of a checkpoint raised json's JSONDecodeError or
    safetensors' SafetensorError ('Error while deserializing header: ...'), naming no file;
    fit(resume='auto') failed so already while choosing between `last` and `best`."""
    make_trainer(tmp_path / "run", epochs=1).fit()
    path = tmp_path / "run" / "last" / name
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\0xyz", "empty": b""}[damage]
    )
    trainer = make_trainer(tmp_path / "run", epochs=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(sciml.CheckpointError, match=f"{path.resolve()}: .*damaged"):
        trainer.fit(resume="auto")
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.step == 0


@pytest.mark.parametrize("resume", ["auto", False])
def test_a_link_that_a_copy_made_a_directory_is_refused_before_training(tmp_path, resume):
    """A run directory copied with `cp -rL` (or a sync that follows links) has `last` and
    `best` as directories. A resume read `last` and trained to its first checkpoint, then
    failed with IsADirectoryError ('.last.tmp-<pid>' -> 'last'), leaving a temporary link and
    an unlinked ckpt-6; a fresh run in it the same. Now a CheckpointError names the directory
    before any step, and the run directory is unchanged."""
    run = tmp_path / "run"
    make_trainer(run, epochs=1).fit()
    for name in ("last", "best"):
        target = (run / name).resolve()
        (run / name).unlink()
        shutil.copytree(target, run / name)
    listing = sorted(os.listdir(run))
    trainer = make_trainer(run, epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fresh run's "holds a checkpoint" warning
        with pytest.raises(
            sciml.CheckpointError, match=f"{run / 'last'}: expected a symlink to a checkpoint"
        ):
            trainer.fit(resume=resume)
    assert trainer.step == 0 and sorted(os.listdir(run)) == listing


def test_resume_auto_with_a_link_to_a_deleted_checkpoint_says_so(tmp_path):
    """`last` pointing at a deleted checkpoint read as "no checkpoint": fit(resume='auto')
    started afresh without a word and trained the whole run again from step 0."""
    run = tmp_path / "run"
    make_trainer(run, epochs=1).fit()
    shutil.rmtree((run / "last").resolve())  # `best` pointed at the same checkpoint
    trainer = make_trainer(run, epochs=2)
    with pytest.raises(
        sciml.CheckpointError, match=f"{run / 'last'} points at ckpt-5, which does not exist"
    ):
        trainer.fit(resume="auto")
    assert trainer.step == 0
    assert make_trainer(run, epochs=1).fit(resume=False).step == 5  # a fresh run is still allowed


def test_a_resume_into_a_model_of_another_dtype_warns_that_it_casts(tmp_path):
    """A float64 run resumed into a model built in float32 (a script without .double())
    loaded the weights and AdamW's moments cast to float32 without a word, and went on in
    float32; it still does, with a warning naming both dtypes."""
    run = tmp_path / "run"
    make_trainer(run, epochs=1, dtype=torch.float64).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same dtype (and config): no warning
        make_trainer(run, epochs=1, dtype=torch.float64).fit(resume="auto")
    trainer = make_trainer(run, epochs=1)
    with pytest.warns(
        UserWarning, match=r"weights are torch\.float64, this model's torch\.float32"
    ):
        trainer.fit(resume="auto")
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_a_second_fit_in_process_goes_on_counting_the_training_time(tmp_path, monkeypatch):
    """time_s (rows and checkpoints) is the training time so far. fit() counted it from the
    time the last resume restored (0 for a fresh run), so fit() again after a stop started
    its rows at 0 again: steps 8-15 were logged before step 7. With a clock that ticks one
    second a call and jumps 1000 s between the two fits (time not spent training), the rows
    of both fits count up without the gap, and the final checkpoint's time_s is past them."""
    import time

    now = [0.0]

    def clock():
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(time, "perf_counter", clock)
    trainer = make_trainer(tmp_path, callbacks=[_StopOnceAt(7)], schedule=Constant())
    assert trainer.fit().step == 7
    first = [row["time_s"] for row in trainer.history]
    now[0] += 1000.0
    result = trainer.fit()
    assert result.step == 15
    times = [row["time_s"] for row in result.history]
    assert times[: len(first)] == first and len(times) > len(first)
    assert times == sorted(times) and times[len(first)] > first[-1]
    assert times[-1] < 1000.0 < now[0]
    state = json.loads((tmp_path / "last" / "trainer_state.json").read_text())["state"]
    assert times[-1] < state["time_s"] < 1000.0


@pytest.mark.parametrize(
    "key, damage, expected, got",
    [
        ("optimizer", None, "an optimiser state (an object with state and param_groups)", "nothing"),
        ("step", "5", "an int >= 0", "'5'"),
        ("rng", {"torch": None}, "an object with the torch, numpy and python RNG states",
         "{'torch': None}"),
        ("epoch_loss", [1.5], "a pair of numbers", "[1.5]"),
        ("best_step", True, "an int >= 0 or null", "True"),
    ],
)  # fmt: skip
def test_a_state_file_that_parses_but_lacks_what_a_resume_reads_is_a_checkpoint_error(
    tmp_path, key, damage, expected, got
):
    """A trainer_state.json that is valid JSON but lacks a key (or holds another type) failed
    with a bare KeyError: 'optimizer' or TypeError: can only concatenate str (not "int") to
    str, naming no file, the former after the weights were loaded. Now a CheckpointError names
    the file, the key, what it expects and what it got, before the weights are read."""
    make_trainer(tmp_path / "run", epochs=1).fit()
    state_file = (tmp_path / "run" / "last" / "trainer_state.json").resolve()
    tree = json.loads(state_file.read_text())
    if damage is None:
        del tree["state"][key]
    else:
        tree["state"][key] = damage
    state_file.write_text(json.dumps(tree))
    trainer = make_trainer(tmp_path / "run", epochs=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(sciml.CheckpointError) as info:
        trainer.fit(resume="auto")
    assert str(info.value) == (
        f"{state_file}: damaged trainer state file: expected {key} as {expected}, got {got}; "
        "resume from another checkpoint (a run directory's `last` or `best`, or a "
        "ckpt-<step> beside them)"
    )
    assert trainer.step == 0
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


def test_a_bad_field_of_the_stored_train_config_is_named_with_its_file(tmp_path):
    """A checkpoint whose stored TrainConfig holds "lr": "x" raised ConfigError
    'TrainConfig.lr: expected a number, got 'x'' naming no file, after the weights had been
    loaded. Now the message starts with the state file, and the model is untouched."""
    make_trainer(tmp_path / "run", epochs=1).fit()
    state_file = (tmp_path / "run" / "last" / "trainer_state.json").resolve()
    tree = json.loads(state_file.read_text())
    tree["state"]["config"]["lr"] = "x"
    state_file.write_text(json.dumps(tree))
    trainer = make_trainer(tmp_path / "run", epochs=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(sciml.ConfigError) as info:
        trainer.fit(resume="auto")
    assert str(info.value) == (
        f"{state_file}: the checkpoint's stored config: TrainConfig.lr: expected a number, got "
        "'x'; resume from another checkpoint, or put the value the run was written with back"
    )
    assert trainer.step == 0
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    "value, where, got",
    [
        ({"__tensor__": "t0"}, "lr", "tensor {'__tensor__': 't0'}"),
        ([0.1, {"__ndarray__": "t3"}], "lr[1]", "numpy array {'__ndarray__': 't3'}"),
    ],
)
def test_a_tensor_reference_in_the_stored_train_config_says_what_was_expected(
    tmp_path, value, where, got
):
    """A stored config field holding a reference to the arrays file was refused as "KeyError:
    't0'" (the file named, the problem not): now the field, what it expects and the reference
    are named, before the weights are read."""
    make_trainer(tmp_path / "run", epochs=1).fit()
    state_file = (tmp_path / "run" / "last" / "trainer_state.json").resolve()
    tree = json.loads(state_file.read_text())
    tree["state"]["config"]["lr"] = value
    state_file.write_text(json.dumps(tree))
    trainer = make_trainer(tmp_path / "run", epochs=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(sciml.ConfigError) as info:
        trainer.fit(resume="auto")
    assert str(info.value) == (
        f"{state_file}: the checkpoint's stored config: TrainConfig.{where}: expected a JSON "
        "value (a number, string, bool, null, list or object; a TrainConfig holds no arrays), "
        f"got a reference to a stored {got}; resume from another checkpoint, or put the value "
        "the run was written with back"
    )
    assert trainer.step == 0
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    "entry, damage, file, got",
    [
        ("torch", lambda t: t.float(), "safetensors",
         "the torch CPU generator's RNG state (a float32 tensor of shape (5056,): RNG state "
         "must be a torch.ByteTensor)"),
        ("torch", lambda t: t[:100], "safetensors",
         "the torch CPU generator's RNG state (a uint8 tensor of shape (100,): Expected a "
         "CPUGeneratorImplState of size 5056 but found the input RNG state size to be 100)"),
        ("numpy", lambda t: t[:3], "safetensors",
         "numpy's legacy RNG state (a tuple of 'MT19937', a uint32 array of shape (3,), 624, "
         "...: index 3 is out of bounds for axis 0 with size 3)"),
        ("numpy", lambda t: -1 - t.long(), "safetensors",
         "numpy's legacy RNG state (a tuple of 'MT19937', a int64 array of shape (624,), 624, "
         "...: can't convert negative value to uint32_t)"),
        ("numpy", lambda t: torch.zeros_like(t), "safetensors",
         "numpy's legacy RNG state (a tuple of 'MT19937', a uint32 array of shape (624,), 624, "
         "...: its MT19937 state is all zero, which draws 0 forever)"),
        ("python", lambda key: [0] * 624 + key[624:], "json",
         "Python random's RNG state (a tuple of 3, a tuple of 0, 0, 0, ..., None: its MT19937 "
         "state is all zero, which draws 0 forever)"),
    ],
    ids=["torch-float", "torch-cut", "numpy-cut", "numpy-negative", "numpy-zero", "python-zero"],
)  # fmt: skip
def test_damaged_rng_states_are_a_checkpoint_error_naming_file_and_entry(
    tmp_path, entry, damage, file, got
):
    """rng.torch replaced by a float tensor raised torch's bare TypeError 'RNG state must be a
    torch.ByteTensor' at the end of the restore, with the weights, optimiser and step already
    the checkpoint's; a negative numpy key value numpy's bare OverflowError before the weights
    loaded. A zeroed numpy or Python key (which numpy and random take, unlike torch) resumed
    with a generator that draws 0 forever. Now a CheckpointError names the file and the entry
    before the weights are loaded: the model and the step are untouched."""
    from safetensors.torch import load_file, save_file

    make_trainer(tmp_path / "run", epochs=1).fit()
    ckpt = (tmp_path / "run" / "last").resolve()
    tree = json.loads((ckpt / "trainer_state.json").read_text())
    ref = tree["state"]["rng"][entry]
    if entry == "python":  # (3, key + (index,), gauss) in the JSON
        ref["__tuple__"][1]["__tuple__"] = damage(ref["__tuple__"][1]["__tuple__"])
        (ckpt / "trainer_state.json").write_text(json.dumps(tree))
    else:
        ref = ref["__tensor__"] if entry == "torch" else ref["__tuple__"][1]["__ndarray__"]
        arrays = load_file(str(ckpt / "trainer_state.safetensors"))
        arrays[ref] = damage(arrays[ref]).contiguous()
        save_file(arrays, str(ckpt / "trainer_state.safetensors"))
    trainer = make_trainer(tmp_path / "run", epochs=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(sciml.CheckpointError) as info:
        trainer.fit(resume="auto")
    assert str(info.value) == (
        f"{ckpt / ('trainer_state.' + file)}: damaged trainer state: rng.{entry} is not {got}; "
        "resume from another checkpoint (a run directory's `last` or `best`, or a ckpt-<step> "
        "beside them)"
    )
    assert trainer.step == 0
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("optimizer_state", [True, False])
def test_a_checkpoint_with_nan_or_inf_weights_is_refused_at_resume_and_loads(
    tmp_path, optimizer_state
):
    """Weights that diverged before a checkpoint (sciml before the step's non-finite gradient
    check wrote such checkpoints, moments nan too) resumed without a word and failed at the
    next step's nan loss, which blamed the lr. Now the resume names the file, the tensor and
    its first non-finite index before anything changes, with or without the moments (the
    weights are named before the nan moments); sciml.load reads the weights as they are."""
    from safetensors.torch import load_file, save_file

    first = make_trainer(tmp_path / "run", epochs=1)
    first.fit()
    ckpt = (tmp_path / "run" / "last").resolve()
    with torch.no_grad():  # row-major, (0, 3, 2) comes before (0, 7, 1)
        first.model.out.weight[0, 7, 1] = float("nan")
        first.model.out.weight[0, 3, 2] = float("inf")
    first.model.save_pretrained(ckpt)
    tree = json.loads((ckpt / "trainer_state.json").read_text())
    index, entry = tree["state"]["optimizer"]["state"]["__dict__"][0]
    arrays = load_file(str(ckpt / "trainer_state.safetensors"))
    arrays[entry["exp_avg"]["__tensor__"]].view(-1)[0] = float("nan")
    save_file(arrays, str(ckpt / "trainer_state.safetensors"))
    trainer = make_trainer(tmp_path / "run", epochs=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(sciml.CheckpointError) as info:
        trainer.fit(resume=ckpt, optimizer_state=optimizer_state)
    assert str(info.value) == (
        f"{ckpt / WEIGHTS}: the checkpoint's weights are not finite: out.weight[0, 3, 2] is "
        "inf (nan or inf in 2 of its 80 values); the run had diverged when it was written, "
        "and resuming would train on nan. Resume from an earlier checkpoint (a ckpt-<step> "
        "beside it); sciml.load (or read_checkpoint) still reads it, to inspect the weights"
    )
    assert trainer.step == 0
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    loaded = sciml.load(ckpt).state_dict()
    saved = first.model.state_dict()
    assert loaded.keys() == saved.keys()
    for k, v in saved.items():
        torch.testing.assert_close(loaded[k], v, rtol=0, atol=0, equal_nan=True)
    assert math.isinf(loaded["out.weight"][0, 3, 2]) and math.isnan(loaded["out.weight"][0, 7, 1])


def test_a_damaged_optimizer_moment_is_a_checkpoint_error_naming_file_and_entry(tmp_path):
    """An exp_avg cut to 3 values resumed without a word and raised torch's bare 'The size of
    tensor a (3) must match the size of tensor b (5) ...' at the first step after the resume,
    with the whole state restored. Now a CheckpointError names the file and the entry before
    the weights are loaded; optimizer_state=False (fresh moments) resumes from it."""
    from safetensors.torch import load_file, save_file

    make_trainer(tmp_path / "run", epochs=1).fit()
    ckpt = (tmp_path / "run" / "last").resolve()
    tree = json.loads((ckpt / "trainer_state.json").read_text())
    index, entry = tree["state"]["optimizer"]["state"]["__dict__"][0]
    ref = entry["exp_avg"]["__tensor__"]
    arrays = load_file(str(ckpt / "trainer_state.safetensors"))
    arrays[ref] = arrays[ref].flatten()[:3].contiguous()
    save_file(arrays, str(ckpt / "trainer_state.safetensors"))
    trainer = make_trainer(tmp_path / "run", epochs=2)
    shape = tuple(next(trainer.model.parameters()).shape)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(sciml.CheckpointError) as info:
        trainer.fit(resume="auto")
    assert str(info.value) == (
        f"{ckpt / 'trainer_state.safetensors'}: damaged trainer state: optimizer.state[{index}]"
        f".exp_avg is a float32 tensor of shape (3,), expected the shape {shape} of its "
        "parameter; resume from another checkpoint, or with fit(resume=..., "
        "optimizer_state=False) for fresh moments"
    )
    assert trainer.step == 0
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    with pytest.warns(UserWarning, match=r"different TrainConfig \(changed: \['epochs'\]\)"):
        assert trainer.fit(resume="auto", optimizer_state=False).step == 10


@pytest.mark.parametrize(
    "key, damage, file, got, expected",
    [
        ("step", torch.tensor(float("nan")), "safetensors",
         "a float32 tensor of shape () holding nan",
         "the optimiser's step count, a finite number >= 0 (or a 1-element tensor)"),
        ("step", torch.tensor(-3.0), "safetensors", "a float32 tensor of shape () holding -3.0",
         "the optimiser's step count, a finite number >= 0 (or a 1-element tensor)"),
        ("step", torch.tensor([5.0, 5.0]), "safetensors", "a float32 tensor of shape (2,)",
         "the optimiser's step count, a finite number >= 0 (or a 1-element tensor)"),
        ("step", "x", "json", "'x'",
         "the optimiser's step count, a finite number >= 0 (or a 1-element tensor)"),
        ("exp_avg", lambda t: torch.where(t.abs() > t.abs().median(), t, float("nan")),
         "safetensors", "a float32 tensor of shape (16, 1, 5) holding 40 nan of 80 values",
         "finite values (a running mean of gradients)"),
        ("exp_avg_sq", lambda t: -t, "safetensors",
         "a float32 tensor of shape (16, 1, 5) holding 80 < 0 of 80 values",
         "values >= 0 and not nan (a running mean of squared gradients)"),
    ],
    ids=["step-nan", "step-negative", "step-two-values", "step-str", "exp_avg-nan",
         "exp_avg_sq-negative"],
)  # fmt: skip
def test_a_damaged_optimizer_step_or_moment_value_is_a_checkpoint_error(
    tmp_path, key, damage, file, got, expected
):
    """AdamW's step was not checked, nor the values of the moments: a step of -3 raised torch's
    bare 'result type ComplexFloat can't be cast to the desired output type Float' at the
    first step after the resume, [5, 5] 'a Tensor with 2 elements cannot be converted to
    Scalar', 'x' a ValueError naming a generator object; a nan step or exp_avg trained on and
    wrote nan into the weights, reported as a nan training loss at the second step after the
    resume; a negative exp_avg_sq (the sqrt of it nan) the same. Now a CheckpointError names the file and the entry before
    the weights are loaded."""
    from safetensors.torch import load_file, save_file

    make_trainer(tmp_path / "run", epochs=1).fit()
    ckpt = (tmp_path / "run" / "last").resolve()
    tree = json.loads((ckpt / "trainer_state.json").read_text())
    index, entry = tree["state"]["optimizer"]["state"]["__dict__"][0]
    arrays = load_file(str(ckpt / "trainer_state.safetensors"))
    ref = entry[key]["__tensor__"]
    if isinstance(damage, str):
        entry[key] = damage
        (ckpt / "trainer_state.json").write_text(json.dumps(tree))
    else:
        arrays[ref] = (damage(arrays[ref]) if callable(damage) else damage).contiguous()
        save_file(arrays, str(ckpt / "trainer_state.safetensors"))
    trainer = make_trainer(tmp_path / "run", epochs=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(sciml.CheckpointError) as info:
        trainer.fit(resume="auto")
    assert str(info.value) == (
        f"{ckpt / ('trainer_state.' + file)}: damaged trainer state: optimizer.state[{index}]."
        f"{key} is {got}, expected {expected}; resume from another checkpoint, or with "
        "fit(resume=..., optimizer_state=False) for fresh moments"
    )
    assert trainer.step == 0
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.AdamW(ps, lr=1e-2),
        lambda ps: torch.optim.Adam(ps, lr=1e-2, amsgrad=True),
        lambda ps: torch.optim.SGD(ps, lr=1e-2),
        lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True),
        lambda ps: torch.optim.RMSprop(ps, lr=1e-3, momentum=0.5, centered=True),
        lambda ps: torch.optim.Adagrad(ps, lr=1e-2),
        lambda ps: torch.optim.Adadelta(ps),
        lambda ps: torch.optim.Adamax(ps),
        lambda ps: torch.optim.NAdam(ps),
        lambda ps: torch.optim.RAdam(ps),
        lambda ps: torch.optim.Rprop(ps),
        lambda ps: torch.optim.ASGD(ps),
    ],
    ids=["adamw", "adam-amsgrad", "sgd", "sgd-nesterov", "rmsprop", "adagrad", "adadelta",
         "adamax", "nadam", "radam", "rprop", "asgd"],
)  # fmt: skip
def test_the_optimizer_state_checks_take_what_torchs_optimizers_write(tmp_path, make):
    """The checks on the optimiser state refuse only what no run writes: each of torch's
    optimisers (a recipe may replace AdamW), three steps into training, resumes exactly; so
    does a float16 AdamW state whose exp_avg_sq overflowed to inf (gradients of 1e4: their
    squares pass float16's 65504), which trains on with finite weights."""
    from types import SimpleNamespace

    from sciml.train import _resume

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    optimizer = make(list(model.parameters()))
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(8, 3)).square().mean().backward()
        optimizer.step()
    state = {"optimizer": optimizer.state_dict()}
    _resume.check_optimizer_moments(SimpleNamespace(optimizer=optimizer), state, tmp_path)

    half = torch.nn.Parameter(torch.zeros(4, dtype=torch.float16))
    adamw = torch.optim.AdamW([half], lr=1e-2)
    half.grad = torch.full((4,), 1e4, dtype=torch.float16)
    for _ in range(3):
        adamw.step()
    saved = adamw.state_dict()
    assert torch.isinf(saved["state"][0]["exp_avg_sq"]).all()
    _resume.check_optimizer_moments(
        SimpleNamespace(optimizer=adamw), {"optimizer": saved}, tmp_path
    )
    adamw.load_state_dict(saved)
    adamw.step()
    assert torch.isfinite(half).all()
