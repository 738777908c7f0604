"""Trainer(mode=...) and EarlyStopping(mode=...): which way of the monitored metric is better.

A scripted metric returns a chosen value at each validation, read from the trainer's step, so
the best step and the stopping step are known by hand (the values are dyadic: the sample mean
that evaluate computes gives them back exactly).
"""

from __future__ import annotations

import json
import os
import re

import pytest
import torch
from _crash import CrashAt
from test_train_common import ShiftData, Tiny, TinyConfig

from sciml.train import Constant, EarlyStopping, TrainConfig, Trainer

# validation at every epoch end, two steps an epoch: steps 2, 4, ..., 12
SCRIPT = {2: 0.25, 4: 0.875, 6: 0.5, 8: 0.625, 10: 0.125, 12: 0.75}


class _Scripted:
    """A metric whose per-sample values are all ``script[trainer.step]``."""

    def __init__(self, script):
        self.script = script
        self.trainer = None

    def __call__(self, pred, target):
        value = self.script[self.trainer.step]
        return torch.full((pred.shape[0],), value, dtype=torch.float64)


def _trainer(out_dir=None, *, script=SCRIPT, other=None, callbacks=(), **kwargs):
    torch.manual_seed(0)
    metrics = {"m": _Scripted(script)}
    if other is not None:
        metrics["n"] = _Scripted(other)
    trainer = Trainer(
        Tiny(TinyConfig()),
        ShiftData(16),
        val_data=ShiftData(8, seed=2),  # one batch: one metric call per validation
        config=TrainConfig(epochs=6, batch_size=8, lr=3e-3, schedule=Constant(), seed=3),
        metrics=metrics,
        monitor=kwargs.pop("monitor", "m"),
        out_dir=out_dir,
        callbacks=callbacks,
        progress=False,
        **kwargs,
    )
    for metric in metrics.values():
        metric.trainer = trainer
    return trainer


@pytest.mark.parametrize("mode, step", [("min", 10), ("max", 4)])
def test_best_is_the_argmin_or_argmax_of_the_monitored_metric(tmp_path, mode, step):
    """The Trainer took the lowest value as best whatever the metric: an accuracy's best was
    its worst epoch. min: 0.125 at step 10; max: 0.875 at step 4 (SCRIPT, by hand)."""
    result = _trainer(tmp_path, mode=mode).fit()
    seen = {r["step"]: r["val_m"] for r in result.history if r["val_m"] is not None}
    assert seen == SCRIPT
    assert (result.best_step, result.best_metric) == (step, SCRIPT[step])
    assert os.readlink(tmp_path / "best") == f"ckpt-{step}"


# the steps an EarlyStopping stops at, counted by hand from SCRIPT (patience 2):
# min: 0.25 best, 0.875 bad, 0.5 bad -> step 6; max: 0.25, 0.875 best, 0.5 bad, 0.625 bad -> 8
STOP = {"min": 6, "max": 8}


@pytest.mark.parametrize("mode", ["min", "max"])
def test_early_stopping_follows_the_trainers_mode_or_its_own(mode):
    """EarlyStopping counted a rise of an accuracy as an improvement. Its mode follows the
    trainer's when it watches the trainer's monitor, is its own when given, and is "min" by
    default for another metric."""
    follows = _trainer(mode=mode, callbacks=[EarlyStopping(2)]).fit()
    assert follows.step == STOP[mode]
    own = _trainer(monitor="loss", callbacks=[EarlyStopping(2, monitor="m", mode=mode)]).fit()
    assert own.step == STOP[mode]
    # another metric, n = SCRIPT, than the trainer's, whose mode is the other one: "min"
    other = "max" if mode == "min" else "min"
    stopper = EarlyStopping(2, monitor="n", **({"mode": mode} if mode == "max" else {}))
    flat = dict.fromkeys(SCRIPT, 0.5)
    assert (
        _trainer(mode=other, script=flat, other=SCRIPT, callbacks=[stopper]).fit().step
        == (STOP[mode])
    )


@pytest.mark.parametrize(
    "mode, values, stop",
    [
        # an improvement by 0.0625 is not one by more than min_delta = 0.1
        ("max", [0.25, 0.375, 0.4375, 0.5, 0.5, 0.5], 6),
        ("min", [0.75, 0.625, 0.5625, 0.5, 0.5, 0.5], 6),
        # by 0.125 each time: never stops
        ("max", [0.125, 0.25, 0.375, 0.5, 0.625, 0.75], 12),
        ("min", [0.75, 0.625, 0.5, 0.375, 0.25, 0.125], 12),
    ],
)
def test_min_delta_is_an_improvement_by_more_than_it_either_way(mode, values, stop):
    script = dict(zip(SCRIPT, values))
    trainer = _trainer(mode=mode, script=script, callbacks=[EarlyStopping(1, min_delta=0.1)])
    assert trainer.fit().step == stop


def test_early_stopping_against_the_trainers_mode_on_its_metric_is_refused():
    trainer = _trainer(mode="max", callbacks=[EarlyStopping(2, mode="min")])
    with pytest.raises(ValueError, match=r"EarlyStopping\(mode='min'\) on 'm', which the Trainer"):
        trainer.fit()
    assert trainer.step == 0


def test_a_resumed_run_keeps_its_mode_and_refuses_the_other(tmp_path):
    """Crashed at step 7 and resumed from step 6, a max run ends as the uninterrupted one:
    best 0.875 at step 4 and EarlyStopping(2) at step 8 (replaying 6's bad validation under
    "min" it would stop before a step). A resume with the other mode is refused before the
    weights are read; a checkpoint without the mode (older sciml) was written under "min"."""
    ref = _trainer(tmp_path / "ref", mode="max", callbacks=[EarlyStopping(2)]).fit()
    assert (ref.step, ref.best_step, ref.best_metric) == (8, 4, 0.875)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        _trainer(run, mode="max", callbacks=[EarlyStopping(2), CrashAt(7)]).fit()
    assert os.readlink(run / "last") == "ckpt-6"

    wrong = _trainer(run, mode="min")
    before = {k: v.clone() for k, v in wrong.model.state_dict().items()}
    with pytest.raises(ValueError, match=r"written by a run with mode='max'.*has mode='min'"):
        wrong.fit(resume="auto")
    assert wrong.step == 0
    assert all(torch.equal(v, wrong.model.state_dict()[k]) for k, v in before.items())

    resumed = _trainer(run, mode="max", callbacks=[EarlyStopping(2)]).fit(resume="auto")
    assert (resumed.step, resumed.best_step, resumed.best_metric) == (8, 4, 0.875)
    assert os.readlink(run / "best") == "ckpt-4"

    state_file = run / "last" / "trainer_state.json"
    tree = json.loads(state_file.read_text())
    assert tree["state"].pop("mode") == "max"
    state_file.write_text(json.dumps(tree))
    with pytest.raises(ValueError, match=r"with mode='min'.*has mode='max'"):
        _trainer(run, mode="max").fit(resume="auto")


@pytest.mark.parametrize("mode", ["maximum", "MAX", None, 1])
def test_a_mode_other_than_min_or_max_is_refused(mode):
    expected = f"expected 'min' or 'max', got {mode!r}"
    with pytest.raises(ValueError, match=re.escape(f"mode: {expected}")):
        _trainer(mode=mode)
    if mode is not None:  # None is EarlyStopping's default: the trainer's mode
        with pytest.raises(ValueError, match=re.escape(f"EarlyStopping mode: {expected}")):
            EarlyStopping(2, mode=mode)


# a second metric, n, whose best (0.125 at step 4) is not m's; the ValueError's first words
OTHER = {2: 0.375, 4: 0.125, 6: 0.75, 8: 0.5, 10: 0.625, 12: 0.875}
MONITOR_REFUSED = r"written by a run with monitor='m' \(its best_metric 0.25 at step 2 is"


def _crashed_run(run):
    """A run monitoring m, crashed at step 7: `last` is ckpt-6, its best m's 0.25 at step 2."""
    with pytest.raises(RuntimeError, match="simulated"):
        _trainer(run, other=OTHER, callbacks=[CrashAt(7)]).fit()
    assert os.readlink(run / "last") == "ckpt-6"


def test_a_resume_under_another_monitor_is_refused_before_the_weights_load(tmp_path):
    """The monitor was not stored: resumed with monitor="n", n's values 0.5, 0.625, 0.875 at
    steps 8-12 were compared with m's best 0.25, none beat it, and the run monitoring n ended
    with `best` at step 2 (n = 0.375 there), where n's own best is 0.125 at step 4. Refused,
    naming both, with the weights as they were; under m the run ends as the uninterrupted one
    (SCRIPT: 0.125 at step 10)."""
    run = tmp_path / "run"
    _crashed_run(run)
    assert json.loads((run / "last" / "trainer_state.json").read_text())["state"]["monitor"] == "m"
    wrong = _trainer(run, other=OTHER, monitor="n")
    before = {k: v.clone() for k, v in wrong.model.state_dict().items()}
    with pytest.raises(ValueError, match=MONITOR_REFUSED + r".*has monitor='n'"):
        wrong.fit(resume="auto")
    assert wrong.step == 0
    assert all(torch.equal(v, wrong.model.state_dict()[k]) for k, v in before.items())

    resumed = _trainer(run, other=OTHER).fit(resume="auto")
    assert (resumed.step, resumed.best_step, resumed.best_metric) == (12, 10, 0.125)
    assert os.readlink(run / "best") == "ckpt-10"


def test_an_older_checkpoint_without_its_monitor_is_judged_by_its_history(tmp_path):
    """Written before the monitor was stored: the row at best_step 2 holds 0.25 as val_m
    (val_n is 0.375 there), so a resume under m goes on as the uninterrupted run, and one under
    n or the validation loss is refused, naming m as the metric that holds the best."""
    run = tmp_path / "run"
    _crashed_run(run)
    state_file = run / "last" / "trainer_state.json"
    tree = json.loads(state_file.read_text())
    assert tree["state"].pop("monitor") == "m"
    state_file.write_text(json.dumps(tree))
    for monitor in ("n", "loss"):
        with pytest.raises(ValueError, match=MONITOR_REFUSED + f".*has monitor='{monitor}'"):
            _trainer(run, other=OTHER, monitor=monitor).fit(resume="auto")
    resumed = _trainer(run, other=OTHER).fit(resume="auto")
    assert (resumed.step, resumed.best_step, resumed.best_metric) == (12, 10, 0.125)


@pytest.mark.parametrize("monitor, best", [("m", (10, 0.125)), ("n", (2, 0.3125))])
def test_an_older_checkpoint_whose_history_cannot_tell_its_monitor_resumes_with_a_warning(
    tmp_path, monitor, best
):
    """Written before the monitor was stored, with a best_metric (0.3125 here) that no
    validation row at its best_step 2 holds (val_m is 0.25 there, val_n 0.375): the history
    cannot tell which metric it was, so the resume goes on under the Trainer's monitor with a
    warning, pointed at the caller of fit, that says the best is compared with this metric's
    values. Those comparisons are the run's: under m, 0.625 (step 8), 0.125 (10), 0.75 (12)
    against 0.3125 make step 10 best; under n, 0.5, 0.625, 0.875 beat none, so `best` stays at
    step 2 with the saved 0.3125 (by hand from SCRIPT and OTHER). Both run to step 12."""
    run = tmp_path / "run"
    _crashed_run(run)
    state_file = run / "last" / "trainer_state.json"
    tree = json.loads(state_file.read_text())
    assert tree["state"].pop("monitor") == "m"
    assert (tree["state"]["best_step"], tree["state"]["best_metric"]) == (2, 0.25)
    tree["state"]["best_metric"] = 0.3125
    state_file.write_text(json.dumps(tree))
    message = (
        f"{(run / 'last').resolve()} was written before checkpoints stored their monitored "
        "metric, and its history has no validation row at its best step 2 holding its "
        f"best_metric 0.3125: resuming with monitor={monitor!r} compares this metric's values "
        "with that best, which may be another metric's"
    )
    with pytest.warns(UserWarning) as caught:
        resumed = _trainer(run, other=OTHER, monitor=monitor).fit(resume="auto")
    assert [str(w.message) for w in caught] == [message]
    assert caught[0].filename == __file__
    assert (resumed.step, (resumed.best_step, resumed.best_metric)) == (12, best)
    assert os.readlink(run / "best") == f"ckpt-{best[0]}"
    state = json.loads((run / "last" / "trainer_state.json").read_text())["state"]
    assert (state["monitor"], state["best_step"], state["best_metric"]) == (monitor, *best)
