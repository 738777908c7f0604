"""Exact resume and the `last` / `best` links over a covering set of Trainer configurations.

Each case trains uninterrupted, then crashes (an exception: `last` stays at the newest periodic
checkpoint, as after a SIGKILL) and is stopped by SIGINT (`last` saved at that step) at a few
steps; every resumed run must equal the uninterrupted one bitwise, and every run directory must
hold `last` at the final state, `best` at the lowest validation metric in ``metrics.json`` and no
other checkpoint. Resuming the finished run must change nothing.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from test_train_common import make_trainer

from sciml.train import Callback, Constant, Cosine, EarlyStopping, OneCycle
from sciml.train._state import load_state

VOLATILE = ("time_s", "samples_per_s")

# pairwise over checkpoint_every, eval_every, micro_batch, schedule, warmup, grad_clip, epochs,
# samples (40: batches of 8; 37: a last batch of 5), log_every and EarlyStopping
CASES = [
    dict(checkpoint_every=0, eval_every=0, micro_batch=None, schedule=Cosine(), epochs=3),
    dict(checkpoint_every=3, eval_every=2, micro_batch=4, schedule=OneCycle(), warmup_steps=3,
         grad_clip=1.0, epochs=2, n_train=37, log_every=3),
    dict(checkpoint_every=4, eval_every=5, schedule=Constant(), warmup_steps=3, epochs=3,
         n_train=37, log_every=4),
    dict(checkpoint_every=3, eval_every=0, micro_batch=4, schedule=Constant(), epochs=1,
         grad_clip=1.0, log_every=3),
    dict(checkpoint_every=4, eval_every=2, schedule=Cosine(), warmup_steps=3, epochs=3,
         early_stopping=True, lr=0.02),
    dict(checkpoint_every=0, eval_every=5, micro_batch=4, schedule=OneCycle(), epochs=3,
         n_train=37, grad_clip=1.0),
    dict(checkpoint_every=3, eval_every=5, schedule=Cosine(), epochs=3, n_train=37,
         early_stopping=True, lr=0.05),
    dict(checkpoint_every=4, eval_every=0, micro_batch=4, schedule=OneCycle(), warmup_steps=3,
         epochs=2, log_every=3),
]  # fmt: skip


class _At(Callback):
    """At step ``step``: raise RuntimeError ("crash") or send this process SIGINT ("sigint")."""

    def __init__(self, step, how):
        self.step, self.how = step, how

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            if self.how == "crash":
                raise RuntimeError("crash (simulated)")
            os.kill(os.getpid(), signal.SIGINT)


def _stable(history):
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in history]


def _fit(run, case, extra=(), resume=False):
    case = dict(case)
    stopper = [EarlyStopping(1)] if case.pop("early_stopping", False) else []
    return make_trainer(run, dropout=0.1, callbacks=[*extra, *stopper], **case).fit(resume=resume)


def _check_run_dir(run, result):
    last = os.readlink(run / "last")
    best = os.readlink(run / "best") if (run / "best").is_symlink() else None
    assert sorted(p for p in os.listdir(run) if "ckpt" in p or p.startswith(".")) == sorted(
        {last, best} - {None}
    )
    assert result.checkpoint == (run / last).resolve()
    state = load_state(run / last, "trainer_state")
    assert (state["step"], state["epoch"]) == (result.step, result.epoch)
    rows = json.loads((run / "metrics.json").read_text())
    assert _stable(rows) == _stable(result.history)
    val = [(r["val_rel_l2"], r["step"]) for r in rows if r["val_rel_l2"] is not None]
    if val:
        best_metric = min(v for v, _ in val)
        best_step = next(s for v, s in val if v == best_metric)
        assert (result.best_metric, result.best_step) == (best_metric, best_step)
        assert load_state(run / best, "trainer_state")["step"] == best_step
    else:
        assert best is None


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_interrupted_runs_resume_to_the_uninterrupted_run_bitwise(tmp_path, case):
    ref = _fit(tmp_path / "ref", case)
    _check_run_dir(tmp_path / "ref", ref)
    w_ref = load_file(str(tmp_path / "ref" / "last" / "model.safetensors"))

    listing = sorted(os.listdir(tmp_path / "ref"))
    links = [os.readlink(tmp_path / "ref" / n) for n in ("last", "best")]
    again = _fit(tmp_path / "ref", case, resume="auto")
    assert again.step == ref.step and _stable(again.history) == _stable(ref.history)
    assert sorted(os.listdir(tmp_path / "ref")) == listing
    assert [os.readlink(tmp_path / "ref" / n) for n in ("last", "best")] == links

    steps = sorted({2, ref.step // 2 + 1, ref.step - 1})
    for step in steps:
        for how in ("crash", "sigint"):
            run = tmp_path / f"{how}-{step}"
            if how == "crash":
                with pytest.raises(RuntimeError, match="simulated"):
                    _fit(run, case, extra=[_At(step, how)])
            else:
                stopped = _fit(run, case, extra=[_At(step, how)])
                assert stopped.interrupted and stopped.step == step
                _check_run_dir(run, stopped)
            resumed = _fit(run, case, resume="auto" if (run / "last").exists() else False)
            assert (resumed.step, resumed.train_loss) == (ref.step, ref.train_loss)
            assert (resumed.best_metric, resumed.best_step) == (ref.best_metric, ref.best_step)
            assert _stable(resumed.history) == _stable(ref.history)
            w = load_file(str(run / "last" / "model.safetensors"))
            assert all(torch.equal(w_ref[k], w[k]) for k in w_ref)
            _check_run_dir(run, resumed)
