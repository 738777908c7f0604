"""sciml.models.Normalized: the statistics ``wrap`` stores, and where it stores them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from sciml import Operator
from sciml.models import FNO, FNOConfig, Normalized

CONFIG = FNOConfig(in_channels=2, out_channels=1, modes=(3,), width=4, n_layers=1)
STATS = {"in_mean": [0.5, -1.0], "in_std": [2.0, 0.25], "out_mean": [3.0], "out_std": [4.0]}


@pytest.mark.parametrize(
    "name, values",
    [
        ("in_std", [float("nan"), 1.0]),
        ("in_std", [float("inf"), 1.0]),
        ("in_mean", [0.0, float("nan")]),
        ("out_mean", [float("-inf")]),
        ("out_std", [float("nan")]),
    ],
)
def test_wrap_refuses_statistics_that_are_not_finite(name, values):
    # (why) NaN passed the "std <= 0" check: every output of the wrapped model was NaN (an
    # infinite std read the channel as 0, an infinite mean made the output inf), no error
    with pytest.raises(ValueError, match=rf"{name}: expected finite numbers"):
        Normalized.wrap(FNO(CONFIG), **{**STATS, name: values})


def test_wrap_neither_draws_random_numbers_nor_builds_a_second_network():
    torch.manual_seed(0)
    inner = FNO(CONFIG)
    expected = torch.rand(5)  # the global stream right after building the network
    torch.manual_seed(0)
    inner = FNO(CONFIG)
    model = Normalized.wrap(inner, **STATS)
    # (why) wrap built a throwaway FNO on the CPU before putting `inner` in: its initial
    # weights drew from the global generator, so every random number after the wrap changed
    assert torch.equal(torch.rand(5), expected)
    assert model.inner is inner
    u = torch.randn(3, 2, 16)
    mu, sd = torch.tensor([0.5, -1.0]).view(1, 2, 1), torch.tensor([2.0, 0.25]).view(1, 2, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(u), inner((u - mu) / sd) * 4.0 + 3.0, rtol=0, atol=1e-6)


def test_wrap_puts_the_statistics_on_the_wrapped_networks_device():
    # (why) they went to the CPU whatever the network's device, so a CUDA network wrapped
    # failed in every forward ("Expected all tensors to be on the same device"); the meta
    # device shows the placement on any machine
    with torch.device("meta"):
        inner = FNO(CONFIG)
    model = Normalized.wrap(inner, **STATS)
    assert {t.device.type for t in model.state_dict().values()} == {"meta"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_wrapped_cuda_network_runs_on_cuda_as_on_the_cpu():
    torch.manual_seed(0)
    inner = FNO(CONFIG).double()
    u = torch.randn(3, 2, 16, dtype=torch.float64)
    with torch.no_grad():
        on_cpu = Normalized.wrap(inner, **STATS)(u)
        on_cuda = Normalized.wrap(inner.cuda(), **STATS)(u.cuda())
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, rtol=0, atol=1e-12)


def test_outputs_are_decoded_in_the_statistics_precision_under_bfloat16_autocast():
    torch.manual_seed(0)
    inner = FNO(FNOConfig(modes=(4,), width=8, n_layers=2))
    # a field with a large offset (a pressure in Pa): the signal lives in the last digits
    model = Normalized.wrap(inner, in_mean=[0.0], in_std=[1.0], out_mean=[101325.0],
                            out_std=[100.0])  # fmt: skip
    u = torch.randn(2, 1, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        v, out = inner(u), model(u)
    assert v.dtype == torch.bfloat16 and out.dtype == torch.float32
    expected = v.float() * 100.0 + 101325.0  # the network's bfloat16 answer, decoded in float32
    assert expected.std() > 1.0  # the test is not vacuous: the outputs vary by more than 1 Pa
    # (why) decoded in bfloat16 (8 bits), every output was 101376, 64 Pa off
    torch.testing.assert_close(out, expected, rtol=0, atol=0.02)
    # without autocast, and for a network held in bfloat16 itself, nothing changes
    with torch.no_grad():
        torch.testing.assert_close(model(u), inner(u) * 100.0 + 101325.0, rtol=0, atol=0.02)
        low = Normalized.wrap(FNO(FNOConfig(modes=(4,), width=8)).bfloat16(), in_mean=[0.0],
                              in_std=[1.0], out_mean=[2.0], out_std=[3.0]).bfloat16()  # fmt: skip
        assert low(u.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("channel_dim", [1, -1])
def test_one_statistic_keeps_the_shape_of_a_1d_or_0d_tensor(channel_dim):
    model = Normalized.wrap(FNO(FNOConfig(modes=(3,), width=4)), in_mean=[1.0], in_std=[2.0],
                            out_mean=[3.0], out_std=[4.0], channel_dim=channel_dim)  # fmt: skip
    for v in (torch.arange(5.0), torch.tensor(2.0), torch.arange(6.0).reshape(2, 3)):
        # (why) with channel_dim 1 the statistic was viewed as (1, 1): (5,) came back (1, 5)
        # and () as (1, 1); with -1 a 0-d tensor came back (1,)
        assert torch.equal(model.encode(v), (v - 1.0) / 2.0)
        assert torch.equal(model.decode(v), v * 4.0 + 3.0)


@dataclass(frozen=True)
class _ReadsValuesConfig:
    scale: float = 4.0


class _ReadsValues(Operator, family="test-normalized-reads-values"):
    """A family whose constructor reads a tensor's value: impossible on the meta device."""

    config_class = _ReadsValuesConfig

    def __init__(self, config: _ReadsValuesConfig) -> None:
        super().__init__(config)
        self.lin = torch.nn.Linear(2, 2)
        self.gain = float(torch.tensor(config.scale).sqrt())  # .item(): fails on meta

    def forward(self, u, *, x=None, t=None):
        return self.gain * self.lin(u)


def test_wrap_builds_a_family_that_cannot_be_built_on_meta_without_drawing_random_numbers():
    # (why) wrap built the wrapper on the meta device only: this family's float(tensor) raised
    # "Tensor.item() cannot be called on meta tensors" and the family could not be wrapped
    torch.manual_seed(0)
    inner = _ReadsValues(_ReadsValuesConfig())
    expected = torch.rand(5)
    torch.manual_seed(0)
    inner = _ReadsValues(_ReadsValuesConfig())
    stats = {"in_mean": [0.5, -1.0], "in_std": [2.0, 0.25], "out_mean": [3.0, 1.0],
             "out_std": [4.0, 0.5]}  # fmt: skip
    model = Normalized.wrap(inner, channel_dim=-1, **stats)
    assert torch.equal(torch.rand(5), expected)  # the fallback build drew nothing
    assert model.inner is inner
    u = torch.randn(3, 2, dtype=torch.float64)
    w, b = inner.lin.weight.detach().double(), inner.lin.bias.detach().double()
    enc = (u - torch.tensor([0.5, -1.0], dtype=torch.float64)) / torch.tensor(
        [2.0, 0.25], dtype=torch.float64
    )
    want = 2.0 * (enc @ w.T + b) * torch.tensor([4.0, 0.5], dtype=torch.float64) + torch.tensor(
        [3.0, 1.0], dtype=torch.float64
    )
    with torch.no_grad():
        torch.testing.assert_close(model(u.float()).double(), want, rtol=1e-5, atol=1e-5)


def test_float64_inputs_are_centred_in_float64_and_float32_ones_as_before():
    # (why) a float64 field 1e4 +- 1e-2: with the mean in float32 (spacing 1e-3 at 1e4) every
    # encoded input was up to 0.05 std off, before any rounding of the input itself
    torch.manual_seed(0)
    inner = FNO(FNOConfig(in_channels=1, out_channels=1, modes=(3,), width=4, n_layers=1))
    mu, sd = 9999.999672302874, 0.010042373772317691
    stats = {"in_mean": [mu], "in_std": [sd], "out_mean": [mu], "out_std": [sd]}
    wide = Normalized.wrap(inner, float64_inputs=True, **stats)
    plain = Normalized.wrap(inner, **stats)
    assert wide.in_mean.dtype == torch.float64 and wide.out_mean.dtype == torch.float32
    u = mu + sd * torch.randn(4, 1, 16, dtype=torch.float64)
    want = (u - mu) / sd  # float64 by hand
    enc = wide.encode(u)
    assert enc.dtype == torch.float32  # rounded once, to the network's dtype
    assert float((enc.double() - want).abs().max()) < 1e-6  # float32 rounding of O(1) values
    assert float((plain.encode(u).double() - want).abs().max()) > 1e-2  # the float32 mean's
    with torch.no_grad():
        out = wide(u)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, plain.decode(inner(enc)), rtol=0, atol=0)
        # a float32 input takes the float32 path, bit for bit as without float64_inputs
        u32 = u.float()
        assert torch.equal(wide(u32), plain(u32))


def test_sciml_train_centres_a_float64_field_in_float64(tmp_path):
    """``sciml train`` on a float64 field 1e4 +- 1e-2: the views read it as float32 and the
    wrapper's mean was float32, so every input the network saw was up to ~0.1 std off (0.054
    for the item checked here). The inputs now come in float64 and the model centres them in
    float64."""
    import numpy as np

    import sciml
    from sciml.experiment import build_views, load_experiment, run

    rng = np.random.default_rng(0)
    u = 1e4 + 1e-2 * rng.standard_normal((6, 3, 16))
    sciml.data.write(tmp_path / "f64.h5", fields={"u": u}, dtype=np.float64)
    (tmp_path / "exp.yaml").write_text(
        "model: {family: fno, config: {in_channels: 1, out_channels: 1, modes: [3], width: 4, "
        "n_layers: 1}}\n"
        "data: {path: f64.h5, view: windows, split: [0.5, 0.25, 0.25]}\n"
        f"train: {{epochs: 1, batch_size: 4}}\nout: {tmp_path / 'run'}\n"
    )
    exp = load_experiment(tmp_path / "exp.yaml")
    result = run(exp, progress=False)
    model = sciml.load(result["best_checkpoint"])
    train = list(sciml.data.split(6, (0.5, 0.25, 0.25), seed=0).train)
    mu, sd = u[train].mean(), u[train].std()  # float64 by hand
    assert model.in_mean.dtype == torch.float64 and model.out_mean.dtype == torch.float32
    np.testing.assert_allclose(model.in_mean.numpy(), [mu], rtol=1e-15)
    np.testing.assert_allclose(model.in_std.numpy(), [sd], rtol=1e-9)
    # the view sciml evaluate builds for a Normalized model gives the stored float64 values
    item = build_views(exp.data, samples=[5], float64_inputs=True)[1]
    assert item["input"].dtype == torch.float64 and item["target"].dtype == torch.float32
    np.testing.assert_array_equal(item["input"].numpy(), u[5, 1:2])
    np.testing.assert_array_equal(item["target"].numpy(), u[5, 2:3].astype(np.float32))
    want = (u[5, 1:2] - mu) / sd
    with torch.no_grad():
        enc = model.encode(item["input"][None])[0]
        assert enc.dtype == torch.float32
        assert float(np.abs(enc.double().numpy() - want).max()) < 1e-6  # was 0.054
        assert model(item["input"][None]).dtype == torch.float32
    # a float32 file takes the float32 path, as before
    sciml.data.write(tmp_path / "f32.h5", fields={"u": u.astype(np.float32)})
    spec = sciml.experiment.DataSpec(path=str(tmp_path / "f32.h5"), view="windows")
    item = build_views(spec, samples=[5], float64_inputs=True)[1]
    assert item["input"].dtype == item["target"].dtype == torch.float32
