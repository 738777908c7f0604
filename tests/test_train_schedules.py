"""Learning-rate schedules against their closed forms and against torch's own schedulers."""

from __future__ import annotations

import math
import re

import pytest
import torch

from sciml.train import Constant, Cosine, OneCycle, TrainConfig, lr_factor
from sciml.train.schedules import build_scheduler


def _torch_lrs(make, total):
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = make(opt)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_matches_closed_form_and_torch():
    """``CosineAnnealingLR(T_max=T)``: the lr of update i is m + (1 - m)(1 + cos(pi i / T)) / 2
    for i = 0..T-1, so the last update still learns (the lr reached m = 0 there before: a wasted
    step; the schedule was CosineAnnealingLR(T_max=T - 1))."""
    T, m = 21, 0.1
    closed = [m + (1 - m) * 0.5 * (1 + math.cos(math.pi * s / T)) for s in range(T)]
    mine = [lr_factor(Cosine(min_factor=m), s, T) for s in range(T)]
    assert mine == pytest.approx(closed, abs=1e-15)
    ref = _torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T, eta_min=m), T)
    assert mine == pytest.approx(ref, abs=1e-12)
    assert mine[0] == 1.0 and mine[-1] > m + 1e-3
    assert lr_factor(Cosine(), T - 1, T) > 0.005  # min_factor 0: the last update's lr is not 0
    assert lr_factor(Cosine(min_factor=m), T, T) == pytest.approx(m)  # past the run: the floor


@pytest.mark.parametrize("T", [10, 37, 100])
def test_one_cycle_matches_torch_one_cycle(T):
    s = OneCycle(pct_start=0.25, div_factor=10.0, final_div_factor=100.0)
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=1.0, total_steps=T, pct_start=0.25, div_factor=10.0, final_div_factor=100.0
        ),
        T,
    )
    assert [lr_factor(s, i, T) for i in range(T)] == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("W, T", [(4, 14), (1, 9), (3, 4)])
def test_linear_warmup_then_schedule_matches_torch_sequential_lr(W, T):
    """Warm-up then cosine: torch's ``SequentialLR`` of ``LinearLR(1 / (W + 1), total_iters=W)``
    and ``CosineAnnealingLR(T_max=T - W)``; warm-up then constant: ``LinearLR`` alone."""
    sched = torch.optim.lr_scheduler
    m = 0.1
    f = [lr_factor(Cosine(min_factor=m), s, T, warmup_steps=W) for s in range(T)]
    assert f[:W] == pytest.approx([(s + 1) / (W + 1) for s in range(W)], abs=1e-15)
    ref = _torch_lrs(
        lambda o: sched.SequentialLR(
            o,
            [sched.LinearLR(o, 1 / (W + 1), total_iters=W), sched.CosineAnnealingLR(o, T - W, m)],
            milestones=[W],
        ),
        T,
    )
    assert f == pytest.approx(ref, abs=1e-12)
    ref = _torch_lrs(lambda o: sched.LinearLR(o, 1 / (W + 1), total_iters=W), T)
    assert [lr_factor(Constant(), s, T, W) for s in range(T)] == pytest.approx(ref, abs=1e-12)


def test_build_scheduler_drives_the_optimiser_and_its_state_is_plain_numbers():
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=0.5)
    sched = build_scheduler(opt, Cosine(), total_steps=9, warmup_steps=2)
    lrs = []
    for _ in range(9):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5 * lr_factor(Cosine(), s, 9, 2) for s in range(9)])
    assert sched.state_dict()["lr_lambdas"] == [None]


@pytest.mark.parametrize("W, T", [(5, 20), (1, 9), (3, 5), (29, 100)])
def test_one_cycle_with_warmup_rises_once_as_torch_one_cycle(W, T):
    """The one-cycle's rise is its warm-up: with ``warmup_steps=W`` the whole curve is torch's
    ``OneCycleLR(total_steps=T, pct_start=(W + 1) / T)`` (a cosine rise from lr / div_factor at
    step 0 to lr at step W, then the decay), and the closed form. It was a linear warm-up to
    W / (W + 1), a drop to 1 / div_factor at step W and a second rise (T=20, W=5: 0.833, then
    0.04 at step 5)."""
    s = OneCycle(div_factor=10.0, final_div_factor=100.0)
    mine = [lr_factor(s, i, T, warmup_steps=W) for i in range(T)]
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o,
            max_lr=1.0,
            total_steps=T,
            pct_start=(W + 1) / T,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        T,
    )
    assert mine == pytest.approx(ref, abs=1e-12)

    def cos(a, b, q):
        return b + (a - b) * 0.5 * (1 + math.cos(math.pi * q))

    closed = [
        cos(0.1, 1.0, i / W) if i <= W else cos(1.0, 1e-3, (i - W) / (T - 1 - W)) for i in range(T)
    ]
    assert mine == pytest.approx(closed, abs=1e-15)
    peak = mine.index(max(mine))
    assert peak == W and all(a < b for a, b in zip(mine[:W], mine[1 : W + 1]))  # one rise
    assert all(a > b for a, b in zip(mine[W:], mine[W + 1 :]))  # then only down


def test_one_cycle_warmup_in_a_trainer_sets_the_lrs_of_torch_one_cycle(tmp_path):
    """The Trainer's optimiser runs the same curve (40 samples, batch 8: 15 steps, W = 4)."""
    from test_train_common import make_trainer

    config = dict(epochs=3, schedule=OneCycle(), warmup_steps=4, checkpoint_every=0)
    result = make_trainer(None, **config).fit()
    lrs = [r["lr"] for r in result.history if r["train_loss"] is not None]  # after each step
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=3e-3, total_steps=15, pct_start=5 / 15
        ),
        15,
    )
    # a row's lr is that of the next update; after the last one the final value is held
    assert lrs == pytest.approx(ref[1:] + ref[-1:], rel=1e-12)


def test_one_cycle_with_its_own_pct_start_and_a_warmup_warns_that_warmup_wins():
    with pytest.warns(UserWarning, match=r"OneCycle\(pct_start=0.1\) with warmup_steps=5: "):
        TrainConfig(schedule=OneCycle(pct_start=0.1), warmup_steps=5)


def test_one_cycle_with_a_warmup_longer_than_the_run_holds_its_last_value_and_warns():
    # T = 5, W = 10: the run ends part-way up the rise, at the cosine ramp's 4/10 (closed form);
    # updates past it held nothing before: 0.52 at step 5, 0.67 at 6, then a drop to the floor
    sched, T, W = OneCycle(), 5, 10
    lo = 1.0 / sched.div_factor
    ramp = [lo + (1.0 - lo) * 0.5 * (1.0 - math.cos(math.pi * i / W)) for i in range(T)]
    got = [lr_factor(sched, s, T, W) for s in range(T + 8)]
    assert got[:T] == pytest.approx(ramp, rel=1e-12)
    assert got[T:] == pytest.approx([ramp[-1]] * 8, rel=1e-12)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.warns(UserWarning, match="warmup_steps=10 >= the run's 5 updates"):
        build_scheduler(opt, sched, T, W)
    with pytest.warns(UserWarning, match="warmup_steps=6 >= the run's 6 updates.*Cosine"):
        build_scheduler(opt, Cosine(), 6, 6)


def test_one_cycle_short_run_starts_in_the_decay_as_torch():
    # pct_start * n <= 1: no update is spent rising, so the first LR is not lr / div_factor (as
    # OneCycle's docstring says; torch's OneCycleLR gives the same numbers)
    for n in (2, 3, 4):
        ref = _torch_lrs(
            lambda o, n=n: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=n), n
        )
        got = [lr_factor(OneCycle(), i, n) for i in range(n)]
        assert got == pytest.approx(ref, abs=1e-12)
        assert (got[0] == pytest.approx(1 / 25)) == (n == 4)
        # the docstring's bound: pct_start * n <= 1 (n <= 3 at 0.3) starts in the decay (every
        # update below the one before), a longer run rises first
        decays = all(b < a for a, b in zip(got, got[1:]))
        assert decays == (0.3 * n <= 1) == (n <= 3)
        assert (got[0] < got[1]) == (n == 4)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: Cosine(min_factor=math.nan), "expected min_factor in [0, 1], got nan"),
        (lambda: Cosine(min_factor=-1.0), "expected min_factor in [0, 1], got -1.0"),
        (lambda: Cosine(min_factor=True), "expected min_factor in [0, 1], got True"),
        (lambda: OneCycle(pct_start=1.5), "expected pct_start in [0, 1], got 1.5"),
        (lambda: OneCycle(pct_start=math.nan), "expected pct_start in [0, 1], got nan"),
        (lambda: OneCycle(div_factor=0.0), "expected div_factor as a finite number > 0, got 0.0"),
        (lambda: OneCycle(div_factor=-1.0), "expected div_factor as a finite number > 0, got -1.0"),
        (
            lambda: OneCycle(final_div_factor=0.0),
            "final_div_factor as a finite number > 0, got 0.0",
        ),
    ],
)
def test_schedule_parameters_out_of_range_are_refused(make, expected):
    """Cosine(min_factor=-1) ran the second half of the run at a negative lr (factor -0.95 at
    the last of 10 steps: gradient ascent), min_factor=nan and pct_start=nan gave a nan or 0
    lr at every step, div_factor=0 a ZeroDivisionError inside the Trainer."""
    with pytest.raises(ValueError, match=re.escape(expected)):
        make()
