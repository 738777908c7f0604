"""Autoregressive rollouts (sciml.models._rollout.Autoregressive) for FNO, T1, MgNO, Normalized."""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np
import pytest
import torch

import sciml.data as sd
from sciml.models import (
    FNO,
    T1,
    FNOConfig,
    MgNO,
    MgNOConfig,
    Normalized,
    ScOT,
    ScOTConfig,
    T1Config,
)
from sciml.models._rollout import Autoregressive
from sciml.operator import Operator

N, DT = 32, 0.1
K = 2 * np.pi * np.fft.fftfreq(N, d=1.0 / N) / (2 * np.pi)  # integer wavenumbers on [0, 2 pi)


@dataclass(frozen=True)
class _HeatConfig:
    in_channels: int = 5  # a window of two states of (a, b), then the diffusivity field
    out_channels: int = 2


class _ExactHeatStep(Autoregressive, Operator):
    """One exact step of a_t = nu a_xx, b_t = 2 nu b_xx on a periodic grid, from the newest
    state of the window; nu is read from the last (static) channel."""

    config_class = _HeatConfig

    def forward(self, u, *, x=None, t=None):
        newest, nu = u[:, 2:4], u[:, 4:5].mean(dim=-1, keepdim=True)
        k2 = torch.as_tensor(K**2, dtype=u.dtype)
        decay = torch.exp(-torch.cat([nu, 2 * nu], dim=1) * k2 * DT)
        return torch.fft.ifft(torch.fft.fft(newest) * decay).real


def _heat_file(path, nus, steps=8):
    x = np.arange(N) * 2 * np.pi / N
    t = np.arange(steps) * DT
    rng = np.random.default_rng(0)
    fields = {"a": [], "b": []}
    for nu in nus:
        for name, d in (("a", nu), ("b", 2 * nu)):
            c = rng.standard_normal((4, 2))
            fields[name].append(
                sum(
                    np.exp(-d * m**2 * t)[:, None]
                    * (c[m - 1, 0] * np.cos(m * x) + c[m - 1, 1] * np.sin(m * x))[None]
                    for m in range(1, 5)
                )
            )
    return sd.write(
        path,
        fields={k: np.stack(v) for k, v in fields.items()},
        coords={"x": x},
        time=t,
        params={"nu": np.asarray(nus)},
    )


def test_rollout_of_an_exact_step_reproduces_the_stored_trajectory(tmp_path):
    """The window layout of ``Windows`` (time-major, oldest first) is the layout rollout keeps:
    an exact one-step solver rolled out from the first window gives the file's later states
    (a reversed or channel-major window would step the older state and miss by O(1))."""
    nus = [0.05, 0.2]
    ds = sd.open(_heat_file(tmp_path / "heat.h5", nus))
    first = sd.Windows(ds, n_in=2, n_out=1, fields=["a", "b"])[0]["input"]
    assert first.shape == (4, N)
    u0 = torch.stack([sd.Windows(ds, n_in=2, n_out=1, samples=[s])[0]["input"] for s in (0, 1)])
    static = torch.tensor(nus, dtype=torch.float64)[:, None, None].expand(2, 1, N)
    model = _ExactHeatStep(_HeatConfig()).double()
    traj = model.rollout(u0.double(), 6, static=static)
    assert traj.shape == (2, 6, 2, N)
    ds.close()
    with h5py.File(ds.path, "r") as f:
        stored = np.stack([f["fields/a"][()], f["fields/b"][()]], axis=2)
    np.testing.assert_allclose(traj.numpy(), stored[:, 2:8], atol=1e-6)  # float32 storage


def _fno(in_channels, out_channels):
    torch.manual_seed(0)
    return FNO(FNOConfig(in_channels, out_channels, modes=(4, 4), width=8, n_layers=2))


def test_rollout_feeds_the_newest_channels_back_and_is_differentiable():
    """A model predicting two steps at once (out 4 = 2 states of 2) from a window of three
    states: each call sees the newest 6 channels, as the index arithmetic written out here."""
    model = _fno(6 + 1, 4)
    u0 = torch.randn(2, 6, 12, 12, requires_grad=True)
    static = torch.randn(2, 1, 12, 12)
    traj = model.rollout(u0, 3, static=static)
    seq = list(u0.unbind(1))  # every state channel seen so far, oldest first
    for k in range(3):
        nxt = model(torch.stack(seq[-6:] + [static[:, 0]], dim=1))
        torch.testing.assert_close(traj[:, k], nxt)
        seq += list(nxt.unbind(1))
    traj[:, -1].square().sum().backward()  # an unrolled loss reaches the first window
    assert u0.grad is not None and float(u0.grad.abs().sum()) > 0


def test_rollout_through_normalized_t1_and_mgno():
    torch.manual_seed(1)
    inner = T1(T1Config(in_channels=2, out_channels=1, modes=(4, 4), width=8, n_layers=1))
    model = Normalized.wrap(inner, in_mean=[0.5], in_std=[2.0], out_mean=[0.5], out_std=[2.0])
    u0 = torch.randn(3, 2, 10, 10)
    with torch.no_grad():
        traj = model.rollout(u0, 2)
        one = model(u0)
        torch.testing.assert_close(traj[:, 0], one)
        torch.testing.assert_close(traj[:, 1], model(torch.cat([u0[:, 1:], one], dim=1)))
    mg = MgNO(MgNOConfig(in_channels=1, out_channels=1, channels=4, n_layers=1)).eval()
    with torch.no_grad():
        v = torch.randn(1, 1, 33, 33)
        torch.testing.assert_close(mg.rollout(v, 2)[:, 1], mg(mg(v)))


def _scot(**kw):
    torch.manual_seed(2)
    return ScOT(
        ScOTConfig(
            in_channels=2, out_channels=2, image_size=16, patch_size=2, embed_dim=8,
            depths=(1, 1), num_heads=(2, 2), window_size=4, skip_blocks=(1, 0), **kw,
        )
    ).eval()  # fmt: skip


def test_scot_rollout_passes_the_lead_time_to_every_call():
    model = _scot()
    u = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        traj = model.rollout(u, 3, 0.25)
        manual = [u]
        for _ in range(3):
            manual.append(model(manual[-1], t=0.25))
        torch.testing.assert_close(traj, torch.stack(manual[1:], dim=1))
        assert not torch.allclose(traj, model.rollout(u, 3, 0.5))  # the lead time is used
        plain = _scot(time_conditioning=False)
        with pytest.raises(ValueError, match="time_conditioning=False but got a lead time"):
            plain.rollout(u, 1, 0.25)
        torch.testing.assert_close(plain.rollout(u, 1)[:, 0], plain(u))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: _fno(2, 1).rollout(torch.randn(1, 2, 8, 8), 0), r"expected steps as an int >= 1, got 0"),
        (lambda: _fno(2, 1).rollout(torch.randn(1, 3, 8, 8), 1), r"takes 2 input channels.*needs 2 channels with 0 static ones, got 3"),
        (lambda: _fno(3, 1).rollout(torch.randn(1, 2, 8, 8), 1, static=torch.randn(1, 1, 9, 8)), r"expected static of shape \(1, S, 8, 8\)"),
        (lambda: T1(T1Config(in_channels=1, out_channels=1, modes=(3, 3), width=4, inverse=False)).rollout(torch.randn(1, 1, 8, 8), 1), r"inverse=False"),
    ],
)  # fmt: skip
def test_rollout_refuses_what_it_cannot_feed_back(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_rollout_refuses_static_that_is_not_a_tensor_in_u0s_dtype():
    """An integer static was promoted by torch.cat and ran on; a float64 one for a float32
    model was refused by the model as "expected u of dtype", naming an input the user did not
    pass; a NumPy static failed inside torch.cat and a list with "no attribute 'ndim'"."""
    model = _fno(3, 1).eval()
    u0, forcing = torch.randn(2, 2, 8, 8), torch.randn(2, 1, 8, 8)
    for bad, got in (
        (forcing.round().long(), "torch.int64"),
        (forcing.double(), "torch.float64"),
        (forcing.numpy(), "ndarray"),
        (forcing.tolist(), "list"),
    ):
        with pytest.raises(
            TypeError,
            match=rf"expected static as a tensor in u0's dtype \(torch.float32\), got {got}",
        ):
            model.rollout(u0, 2, static=bad)
    with torch.no_grad():  # the float32 static is still appended to every call's input
        traj = model.rollout(u0, 2, static=forcing)
        first = model(torch.cat([u0, forcing], dim=1))
        second = model(torch.cat([u0[:, 1:], first, forcing], dim=1))
    torch.testing.assert_close(traj, torch.stack([first, second], dim=1), rtol=0, atol=0)
