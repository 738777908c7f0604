"""Poseidon loss / metric, fine-tuning parameter groups, evaluation, and a tiny all-pairs fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import sciml
from sciml.data import AllPairs
from sciml.layers import ConditionalLayerNorm
from sciml.models import FNO, FNOConfig, Normalized, ScOT, ScOTConfig
from sciml.models.scot_training import (
    FineTuneRecipe,
    PoseidonLoss,
    evaluate_autoregressive,
    evaluate_direct,
    param_groups,
    relative_l1,
)
from sciml.train import Cosine, TrainConfig, Trainer


def _tiny(**kw) -> ScOT:
    cfg = dict(
        in_channels=1,
        out_channels=1,
        image_size=16,
        patch_size=2,
        embed_dim=8,
        depths=(1, 1),
        num_heads=(2, 2),
        window_size=4,
        skip_blocks=(1, 0),
    )
    cfg.update(kw)
    return ScOT(ScOTConfig(**cfg))


def test_poseidon_loss_matches_hand_computation():
    pred = torch.tensor([[[[1.0, 2.0]], [[0.0, 4.0]], [[3.0, 3.0]]]])  # (1, 3, 1, 2)
    target = torch.tensor([[[[2.0, 2.0]], [[1.0, 1.0]], [[3.0, -1.0]]]])
    # group (0): mean|e| = 0.5, mean|y| = 2 -> 0.25;  group (1, 2): mean|e| = (1 + 3 + 0 + 4)/4 = 2,
    # mean|y| = (1 + 1 + 3 + 1)/4 = 1.5 -> 4/3
    loss = PoseidonLoss([0, 1, 3])(pred, target)
    assert math.isclose(float(loss), (0.25 + 4 / 3) / 2, rel_tol=1e-6)
    assert math.isclose(float(PoseidonLoss()(pred, target)), 9 / 10, rel_tol=1e-6)  # one group
    with pytest.raises(ValueError, match="rise strictly"):
        PoseidonLoss([0, 2, 2, 3])(pred, target)


def test_relative_l1_is_poseidons_metric():
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=(5, 2, 4, 4)), rng.normal(size=(5, 2, 4, 4))
    want = np.abs(p - y).reshape(5, -1).sum(1) / np.abs(y).reshape(5, -1).sum(1)
    np.testing.assert_allclose(
        relative_l1(torch.tensor(p), torch.tensor(y)).numpy(), want, rtol=1e-12
    )


@pytest.mark.parametrize("target_shape", [(5, 1, 4, 4), (1, 2, 4, 4), (5, 2, 4)])
def test_relative_l1_refuses_shapes_that_would_broadcast(target_shape):
    """relative_l1 broadcast pred against target: a 2-channel prediction of a 1-channel target
    summed the error twice, a target batch of 1 was compared with every sample, silently."""
    pred = torch.ones(5, 2, 4, 4)
    message = (
        "relative_l1 expected pred and target of one shape (batch, channels, *spatial), got "
        f"(5, 2, 4, 4) and {target_shape}"
    )
    with pytest.raises(ValueError) as info:
        relative_l1(pred, torch.full(target_shape, 2.0))
    assert str(info.value) == message


def test_param_groups_split_embedding_time_and_body():
    model = _tiny()
    groups = {
        g["name"]: g
        for g in param_groups(model, lr=1e-4, lr_embedding=1e-3, lr_time=2e-4, weight_decay=0.1)
    }
    ids = {k: {id(p) for p in g["params"]} for k, g in groups.items()}
    named = dict(model.named_parameters())
    assert ids["embedding"] == {
        id(p) for n, p in named.items() if n.startswith(("embed.", "recovery."))
    }
    cond = {
        id(p)
        for m in model.modules()
        if isinstance(m, ConditionalLayerNorm)
        for p in m.parameters()
    }
    assert ids["time"] == cond - ids["embedding"]
    assert id(named["encoder.0.blocks.0.attn.qkv.weight"]) in ids["body"]
    assert id(named["encoder.0.blocks.0.attn.logit_scale"]) in ids["body_no_decay"]
    assert sum(len(v) for v in ids.values()) == len(named)  # a partition
    assert (groups["embedding"]["lr"], groups["time"]["lr"], groups["body"]["lr"]) == (
        1e-3,
        2e-4,
        1e-4,
    )
    assert groups["body_no_decay"]["weight_decay"] == 0.0 and groups["body"]["weight_decay"] == 0.1


class _Shift(torch.nn.Module):
    """Exact solution operator of u_t + u_x = 0 on a periodic grid of 8 points, dt = 1 cell."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, u, *, t=None):
        return (
            torch.roll(u, shifts=round(float(torch.as_tensor(t).flatten()[0]) * 8), dims=-1)
            + self.w
        )


def test_evaluate_autoregressive_and_direct_against_exact_transport():
    u0 = torch.randn(3, 1, 4, 8)
    traj = torch.stack([torch.roll(u0, k, dims=-1) for k in range(5)], dim=1)  # (3, 5, 1, 4, 8)
    res = evaluate_autoregressive(_Shift(), traj, lead_time=1 / 8)
    assert res["errors"].shape == (3, 4) and float(res["errors"].max()) < 1e-6
    # twice the lead time per step, stride 2: still exact; a wrong stride is measured as an error
    assert float(evaluate_autoregressive(_Shift(), traj, 2 / 8, stride=2)["errors"].max()) < 1e-6
    wrong = evaluate_autoregressive(_Shift(), traj, 2 / 8, stride=1)["errors"]
    assert float(wrong.min()) > 0.1
    items = [
        {"input": traj[i, 0], "target": traj[i, 3], "t": torch.tensor(3 / 8)} for i in range(3)
    ]
    assert evaluate_direct(_Shift(), items)["median"] < 1e-6


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"stride": 0}, ValueError, "expected stride >= 1, got 0"),  # was ZeroDivisionError
        ({"stride": -1}, ValueError, "expected stride >= 1, got -1"),  # 'steps in [1, -4]'
        ({"batch_size": 0}, ValueError, "expected batch_size >= 1, got 0"),  # range()'s error
        ({"steps": True}, TypeError, "expected steps to be an int >= 1, got True"),  # ran 1 step
        ({"steps": 2.5}, TypeError, "expected steps to be an int >= 1, got 2.5"),
    ],
)
def test_evaluate_autoregressive_names_a_bad_count(kwargs, error, match):
    traj = torch.randn(3, 5, 1, 4, 8)
    with pytest.raises(error, match=match):
        evaluate_autoregressive(_Shift(), traj, lead_time=1 / 8, **kwargs)


def test_evaluate_autoregressive_passes_t_only_to_time_conditioned_operators():
    """A Normalized-wrapped ScOT without time conditioning (what sciml train builds) and an FNO
    baseline were handed the lead time and refused it (ValueError); the errors now equal a
    rollout written out by hand, with Poseidon's relative L1 computed in NumPy."""
    torch.manual_seed(0)
    traj = torch.randn(3, 4, 1, 16, 16)
    plain = _tiny(time_conditioning=False)
    wrapped = Normalized.wrap(plain, in_mean=[0.5], in_std=[2.0], out_mean=[0.5], out_std=[2.0])
    fno = FNO(FNOConfig(in_channels=1, out_channels=1, modes=(4, 4), width=8))
    for model in (wrapped, fno):
        got = evaluate_autoregressive(model, traj, lead_time=0.5, steps=3)["errors"]
        u, want = traj[:, 0], []
        with torch.no_grad():
            for k in range(1, 4):
                u = model(u)
                err = (u - traj[:, k]).abs().flatten(1).sum(1).numpy()
                want.append(err / traj[:, k].abs().flatten(1).sum(1).numpy())
        np.testing.assert_allclose(got.numpy(), np.stack(want, axis=1), rtol=1e-6)
    # a time-conditioned ScOT inside Normalized still gets t: its errors depend on it
    cond = Normalized.wrap(_tiny(), in_mean=[0.0], in_std=[1.0], out_mean=[0.0], out_std=[1.0])
    a = evaluate_autoregressive(cond, traj, lead_time=0.1, steps=1)["errors"]
    b = evaluate_autoregressive(cond, traj, lead_time=0.9, steps=1)["errors"]
    assert not torch.equal(a, b)


def test_param_groups_see_through_a_normalized_wrapper():
    """sciml train wraps the ScOT in Normalized ("inner." parameter names): the embedding group
    came out empty and lr_embedding was dropped. The groups now hold the same parameters, at the
    same rates, as for the bare model."""
    model = _tiny()
    wrapped = Normalized.wrap(model, in_mean=[0.0], in_std=[1.0], out_mean=[0.0], out_std=[1.0])
    kw = dict(lr=1e-3, lr_embedding=1e-2, lr_time=2e-3, weight_decay=0.1)
    bare, seen = param_groups(model, **kw), param_groups(wrapped, **kw)
    assert [g["name"] for g in seen] == [g["name"] for g in bare]
    for a, b in zip(bare, seen):
        assert [id(p) for p in a["params"]] == [id(p) for p in b["params"]]
        assert (a["lr"], a["weight_decay"]) == (b["lr"], b["weight_decay"])
    embedding = {
        id(p) for n, p in model.named_parameters() if n.startswith(("embed.", "recovery."))
    }
    assert {id(p) for p in seen[0]["params"]} == embedding and seen[0]["lr"] == 1e-2


def test_all_pairs_fit_with_finetune_recipe(tmp_path):
    """A tiny time-conditioned scOT (learn_residual) learns the heat-equation decay
    u(t) = exp(-8 pi^2 nu k^2 t) u(0) of single Fourier modes from all pairs of 4 snapshots, with
    the fine-tuning optimiser and cosine schedule: the median relative L1 drops >= 2x."""
    g = torch.Generator().manual_seed(0)
    n, res, steps = 12, 16, 4
    s = torch.arange(res) / res
    k = torch.randint(1, 3, (n, 1, 1), generator=g).float()
    phase = torch.rand(n, 1, 1, generator=g) * 2 * math.pi
    u0 = torch.sin(2 * math.pi * k * (s[:, None] + s[None, :]) + phase)  # (n, res, res)
    times = torch.arange(steps) * 0.25
    w = (
        torch.exp(-0.5 * k[:, None] ** 2 * times[None, :, None, None]) * u0[:, None]
    )  # (n, T, res, res)
    path = sciml.data.write(
        tmp_path / "heat.h5",
        fields={"u": w.numpy()},
        time=times.numpy(),
        coords={"x": s.numpy(), "y": s.numpy()},
    )
    ds = sciml.data.open(path)
    train, test = (
        AllPairs(ds, samples=range(10)),
        AllPairs(ds, samples=range(10, 12), include_self=False),
    )
    torch.manual_seed(0)
    model = _tiny(learn_residual=True)
    before = evaluate_direct(model, test)["median"]
    trainer = Trainer(
        model,
        train,
        loss=PoseidonLoss(),
        progress=False,
        config=TrainConfig(epochs=8, batch_size=25, lr=5e-3, schedule=Cosine()),
    )
    FineTuneRecipe(lr=5e-3, lr_embedding=5e-3, lr_time=1e-2, weight_decay=0.0).apply(trainer)
    assert len(trainer.optimizer.param_groups) == 4
    trainer.fit()
    after = evaluate_direct(model, test)["median"]
    assert after < before / 2, (before, after)


@pytest.mark.parametrize(
    "kwargs, got",
    [
        ({"p": True}, "True"),  # was taken as p = 1
        ({"p": 0}, "0"),
        ({"p": -1}, "-1"),
        ({"p": 1.5}, "1.5"),
        ({"p": float("nan")}, "nan"),
        ({"p": math.inf}, "inf"),
        ({"p": "1"}, "'1'"),
        ({"eps": float("nan")}, "nan"),  # made every loss NaN
        ({"eps": -1.0}, "-1.0"),
    ],
)
def test_poseidon_loss_refuses_a_bool_or_out_of_range_p_and_eps(kwargs, got):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=rf"PoseidonLoss: expected {name} as .*, got {got}$"):
        PoseidonLoss(**kwargs)


def test_poseidon_loss_takes_p_as_a_float_of_an_allowed_value():
    pred, target = torch.tensor([[[1.0, 3.0]]]), torch.tensor([[[2.0, 2.0]]])
    # p = 1: mean |e| / mean |y| = 1 / 2;  p = 2: mean e^2 / mean y^2 = 1 / 4
    assert math.isclose(float(PoseidonLoss(p=1.0)(pred, target)), 0.5, rel_tol=1e-6)
    assert math.isclose(float(PoseidonLoss(p=2.0)(pred, target)), 0.25, rel_tol=1e-6)
