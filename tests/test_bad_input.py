"""Bad input to the public models and layers gets a clear error naming what was expected and what
was given, not a message from deep inside torch and not a silently wrong answer."""

from __future__ import annotations

import re

import pytest
import torch

import sciml.pretrained
from sciml.de import Autonomous, NeuralSDE
from sciml.layers import (
    DCT,
    ConditionalLayerNorm,
    ConvNeXtBlock,
    DropPath,
    LayerNorm,
    PatchEmbed,
    PatchMerging,
    PatchRecovery,
    PatchUnmerging,
    SpectralConv,
    SwinV2Block,
    VCycle,
    WindowAttention,
    dct,
    fourier_resample,
    pointwise,
)
from sciml.models import (
    FNO,
    NODE,
    PROSE,
    T1,
    DeepONet,
    DeepONetConfig,
    FNOConfig,
    MgNO,
    MgNOConfig,
    NODEConfig,
    Normalized,
    PODDeepONet,
    PODDeepONetConfig,
    PROSEConfig,
    ScOT,
    ScOTConfig,
    T1Config,
)
from sciml.models.deeponet import MLPSpec

R = torch.randn
LONG = dict(dtype=torch.long)


def _fno(**kw):
    return FNO(FNOConfig(modes=(4, 4), width=4, n_layers=1, projection_channels=4, **kw))


def _t1(**kw):
    return T1(T1Config(modes=(4, 4), width=4, n_layers=1, projection_channels=4, **kw))


def _mgno():
    return MgNO(MgNOConfig(channels=4, n_layers=1, smoothing=((1, 0), (1, 0))))


def _scot():
    return ScOT(
        ScOTConfig(
            in_channels=1, out_channels=1, image_size=16, patch_size=2, embed_dim=8,
            depths=(1, 1), num_heads=(2, 2), window_size=4, skip_blocks=(1, 0),
        )
    )  # fmt: skip


def _deeponet(**kw):
    spec = MLPSpec(hidden=(8,))
    return DeepONet(DeepONetConfig(sensors=10, coord_dim=2, basis=4, branch=spec, trunk=spec, **kw))


def _pod(out_channels=1):
    cfg = PODDeepONetConfig(
        sensors=10, points=6, modes=3, out_channels=out_channels, branch=MLPSpec(hidden=(8,))
    )
    model = PODDeepONet(cfg)
    outputs = torch.randn(8, 6, out_channels, generator=torch.Generator().manual_seed(1))
    model.fit_basis(outputs, torch.linspace(0, 1, 6)[:, None])
    return model


def _node():
    return NODE(NODEConfig(state_dim=2, hidden=(8,)))


def _sde():
    # (why) fields of y alone are wrapped: NeuralSDE refuses them when built since 9daebb1
    return NeuralSDE(Autonomous(torch.nn.Linear(2, 2)), Autonomous(torch.nn.Linear(2, 2)))


def _prose():
    cfg = PROSEConfig.small(
        dim=2, width=16, fusion_layers=1, data_decoder_layers=1, symbol_decoder_layers=1
    )
    return PROSE(cfg)


# Constructors and configs: each case is (build, error type, message pattern).
CONSTRUCTION = {
    "fno-modes-int": (lambda: FNOConfig(modes=12), TypeError, r"expected modes as a tuple"),
    "fno-modes-float": (lambda: FNOConfig(modes=(4.5, 4)), TypeError, r"modes to hold ints"),
    "fno-width-float": (lambda: FNOConfig(width=2.5), TypeError, r"FNOConfig.width: expected an int, got 2.5"),
    "fno-in-str": (lambda: FNOConfig(in_channels="3"), TypeError, r"in_channels: expected an int, got '3'"),
    "fno-activation": (lambda: FNOConfig(activation="elu"), ValueError, r"activation: expected one of .*got 'elu'"),
    "spectral-modes-float": (lambda: SpectralConv(2, 2, (4.7,)), TypeError, r"modes to hold ints, got \(4.7,\)"),
    "spectral-modes-int": (lambda: SpectralConv(2, 2, 4), TypeError, r"expected modes as a tuple"),
    "spectral-channels-float": (lambda: SpectralConv(2.5, 2, (4,)), TypeError, r"in_channels to be an int >= 1, got 2.5"),
    "t1-activation": (lambda: T1Config(activation="elu"), ValueError, r"activation: expected one of .*got 'elu'"),
    "t1-modes-float": (lambda: T1Config(modes=(4.5,)), TypeError, r"modes to hold ints"),
    "t1-kept-duplicate": (
        lambda: T1(T1Config(modes=(3,), kept=((0, 0, 1),))), ValueError,
        r"T1Config.kept\[0\] is not a valid index set: .*got \(0, 0, 1\)",
    ),
    "mgno-padding": (lambda: MgNOConfig(padding="periodic"), ValueError, r"padding: expected one of .*got 'periodic'"),
    "mgno-activation": (lambda: MgNOConfig(activation="elu"), ValueError, r"activation: expected one of"),
    "vcycle-smoothing-float": (lambda: VCycle(1, 1, ((1.5, 0), (1, 1))), TypeError, r"VCycle expected each smoothing pair to hold ints, got \(1.5, 0\)"),
    "vcycle-channels-float": (lambda: VCycle(2.5, 1, ((1, 0),)), TypeError, r"in_channels to be an int >= 1, got 2.5"),
    "scot-zero-heads": (
        lambda: ScOTConfig(num_heads=(0, 6, 12, 24)), ValueError,
        r"num_heads must be >= 1 .*got \(4, 4, 4, 4\), \(0, 6, 12, 24\)",
    ),
    "patch-embed-zero": (lambda: PatchEmbed(1, 8, 0), ValueError, r"expected patch >= 1, got 0"),
    "window-attention-zero-heads": (lambda: WindowAttention(8, 0, 4), ValueError, r"expected num_heads >= 1, got 0"),
    "window-attention-zero-window": (lambda: WindowAttention(8, 2, 0), ValueError, r"window to hold ints >= 1, got \(0, 0\)"),
    "swin-zero-window": (lambda: SwinV2Block(8, 2, (8, 8), window=0), ValueError, r"expected window >= 1, got 0"),
    "layer-norm-zero-dim": (lambda: ConditionalLayerNorm(0), ValueError, r"expected dim >= 1, got 0"),
    "pointwise-zero": (lambda: pointwise(0, 1, 2), ValueError, r"expected in_channels >= 1, got 0"),
    "deeponet-strategy": (
        lambda: DeepONetConfig(out_channels=2, multi_output="split"), ValueError,
        r"multi_output: expected one of .*got 'split'",
    ),
    "mlp-init": (lambda: MLPSpec(init="xavier"), ValueError, r"init: expected 'glorot_normal' or 'torch_default', got 'xavier'"),
    "mlp-activation": (lambda: MLPSpec(activation="elu"), ValueError, r"activation: expected one of"),
    "node-activation": (lambda: NODEConfig(activation="elu"), ValueError, r"activation: expected one of"),
    "prose-zero-heads": (lambda: PROSEConfig(heads=0), ValueError, r"expected heads >= 1, got 0"),
    "prose-zero-symbol-len": (lambda: PROSEConfig(max_symbol_len=0), ValueError, r"expected max_symbol_len >= 1, got 0"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CONSTRUCTION))
def test_bad_construction_is_refused(case):
    build, error, match = CONSTRUCTION[case]
    with pytest.raises(error, match=match):
        build()


# Forward passes: (model factory, call, error type, message pattern).
FORWARD = {
    # dtypes: float64 data into a float32 model, integer and non-tensor input
    "fno-float64": (_fno, lambda m: m(R(2, 1, 16, 16).double()), TypeError, r"FNO expected u of dtype torch.float32 .*got torch.float64"),
    "fno-int": (_fno, lambda m: m(torch.ones(2, 1, 16, 16, **LONG)), TypeError, r"FNO expected a real floating-point u, got dtype torch.int64"),
    "fno-numpy": (_fno, lambda m: m(R(2, 1, 16, 16).numpy()), TypeError, r"FNO expected u as a torch.Tensor, got ndarray"),
    "fno-complex": (_fno, lambda m: m(R(2, 1, 16, 16, dtype=torch.cfloat)), TypeError, r"real floating-point u, got dtype torch.complex64"),
    "spectral-int": (lambda: SpectralConv(1, 1, (4,)), lambda m: m(torch.ones(1, 1, 16, **LONG)), TypeError, r"real floating-point u"),
    "t1-int": (_t1, lambda m: m(torch.ones(2, 1, 16, 16, **LONG)), TypeError, r"T1 expected a real floating-point u, got dtype torch.int64"),
    "mgno-float64": (_mgno, lambda m: m(R(2, 1, 16, 16).double()), TypeError, r"MgNO expected u of dtype torch.float32"),
    "vcycle-float64": (lambda: VCycle(1, 2, ((1, 0),)), lambda m: m(R(1, 1, 8, 8).double()), TypeError, r"VCycle expected f of dtype torch.float32"),
    "scot-float64": (_scot, lambda m: m(R(2, 1, 16, 16).double(), t=0.5), TypeError, r"ScOT expected u of dtype torch.float32"),
    "deeponet-float64": (_deeponet, lambda m: m(R(4, 10).double(), x=R(5, 2).double()), TypeError, r"DeepONet expected u of dtype torch.float32"),
    "deeponet-x-float64": (_deeponet, lambda m: m(R(4, 10), x=R(5, 2).double()), TypeError, r"DeepONet expected x of dtype torch.float32"),
    "pod-float64": (_pod, lambda m: m(R(4, 10).double()), TypeError, r"PODDeepONet expected u of dtype torch.float32"),
    "node-float64": (_node, lambda m: m(R(3, 2).double(), t=torch.linspace(0, 1, 3)), TypeError, r"NODE expected u of dtype torch.float32"),
    "node-int": (_node, lambda m: m(torch.ones(3, 2, **LONG), t=torch.linspace(0, 1, 3)), TypeError, r"NODE expected a real floating-point u"),
    "prose-float64": (_prose, lambda m: m(R(2, 5, 3).double(), x=R(1, 4, 1)), TypeError, r"PROSE expected u of dtype torch.float32"),
    "prose-float-symbols": (_prose, lambda m: m(R(2, 5, 3), x=R(1, 4, 1), symbols=torch.ones(2, 4)), TypeError, r"integer token ids .*got dtype torch.float32"),
    # grids and sizes
    "t1-float-out-shape": (_t1, lambda m: m(R(2, 1, 16, 16), out_shape=(16.5, 16)), TypeError, r"T1 expected out_shape to hold ints, got \(16.5, 16\)"),
    "spectral-float-out-shape": (lambda: SpectralConv(1, 1, (4,)), lambda m: m(R(1, 1, 16), out_shape=(torch.tensor(20.0),)), TypeError, r"SpectralConv expected out_shape to hold ints"),
    "fno-padded-small-grid": (
        lambda: FNO(FNOConfig(in_channels=1, modes=(8, 8), width=4, n_layers=1, padding=4)), lambda m: m(R(1, 1, 4, 4)), ValueError,
        r"FNO pads u's grid \(4, 4\) by padding=4 to \(8, 8\): modes=\(8, 8\) keep 16 frequencies",
    ),
    "t1-small-out-shape": (_t1, lambda m: m(R(2, 1, 16, 16), out_shape=(0, 16)), ValueError, r"T1 expected out_shape of at least \(4, 4\) points, got \(0, 16\)"),
    "t1-rfft-small-grid": (
        lambda: _t1(transform="rfft"), lambda m: m(R(2, 1, 6, 6)), ValueError,
        r"T1 expected u on a grid of at least \(7, 7\) points, got \(6, 6\)",
    ),
    "scot-rollout-zero-steps": (_scot, lambda m: m.rollout(R(2, 1, 16, 16), 0, 0.1), ValueError, r"expected steps as an int >= 1, got 0"),
    "prose-x-batch": (_prose, lambda m: m(R(2, 5, 3), x=R(3, 4, 1)), ValueError, r"x of shape \(B=2 or 1, T_out, 1\), got \(3, 4, 1\)"),
    "node-t-not-monotone": (
        _node, lambda m: m(R(3, 2), t=torch.tensor([0.0, 1.0, 0.5])), ValueError,
        r"finite, strictly increasing or strictly decreasing times t, got \[0, 1, 0.5\]",
    ),
    "node-t-nan": (
        _node, lambda m: m(R(3, 2), t=torch.tensor([0.0, float("nan")])), ValueError,
        r"finite, strictly increasing or strictly decreasing times t, got \[0, nan\]",
    ),
    "sde-t-decreasing": (
        _sde, lambda m: m(R(3, 2), torch.tensor([1.0, 0.5, 0.0])), ValueError,
        r"finite, strictly increasing times t, got \[1, 0.5, 0\]",
    ),
    "prose-symbols-out-of-vocabulary": (
        _prose, lambda m: m(R(2, 5, 3), x=R(1, 4, 1), symbols=torch.full((2, 3), 10**6)), ValueError,
        r"token ids in \[0, \d+\) \(the vocabulary of this PROSE\), got ids from 1000000 to 1000000",
    ),
    "prose-symbols-negative": (
        _prose, lambda m: m(R(2, 5, 3), x=R(1, 4, 1), symbols=torch.tensor([[3, -1], [3, 4]])), ValueError,
        r"got ids from -1 to 4",
    ),
    "node-t-batch": (
        _node, lambda m: m(R(3, 2), t=torch.linspace(0, 1, 4).expand(2, 4)), ValueError,
        r"NODE expected t of shape \(time,\) or \(batch=3, time\), got \(2, 4\)",
    ),
    "deeponet-trunk-coords": (_deeponet, lambda m: m.trunk_features(R(4, 3)), ValueError, r"y with last dim coord_dim=2, got shape \(4, 3\)"),
    "pod-project": (_pod, lambda m: m.project(R(8, 7)), ValueError, r"outputs of shape \(N, points=6, out_channels=1\), got \(8, 7\)"),
    # (N, P) outputs would broadcast against a 2-channel mean
    "pod-project-channels": (lambda: _pod(2), lambda m: m.project(R(8, 6)), ValueError, r"out_channels=2\), got \(8, 6\)"),
    "pod-reconstruct": (_pod, lambda m: m.reconstruct(R(8, 4)), ValueError, r"coefficients of shape \(N, modes=3\), got \(8, 4\)"),
    # lead time
    "scot-t-matrix": (_scot, lambda m: m(R(4, 1, 16, 16), t=torch.ones(2, 2)), ValueError, r"shape \(\), \(batch,\) or \(batch, 1\), got shape \(2, 2\)"),
    # a bool t ran as 1.0 / 0.0 and a complex one lost its imaginary part (torch only warned)
    "scot-t-bool": (_scot, lambda m: m(R(2, 1, 16, 16), t=True), TypeError, r"expected a real lead time t \(a float or a real tensor\), got torch.bool"),
    "scot-t-complex": (_scot, lambda m: m(R(2, 1, 16, 16), t=torch.tensor([0.5, 1j])), TypeError, r"real lead time t .*got torch.complex64"),
    "scot-t-str": (_scot, lambda m: m(R(2, 1, 16, 16), t="0.5"), TypeError, r"lead time t as a float or a tensor, got str"),
    "layer-norm-t-row": (lambda: ConditionalLayerNorm(8), lambda m: m(R(2, 4, 8), torch.ones(1, 2)), ValueError, r"got shape \(1, 2\)"),
    # channels-last blocks given the wrong layout or width
    "patch-embed-3d": (lambda: PatchEmbed(2, 8, 2), lambda m: m(R(2, 8, 8)), ValueError, r"PatchEmbed expected u of shape \(batch, 2, h, w\), got \(2, 8, 8\)"),
    "patch-merging-width": (lambda: PatchMerging(8), lambda m: m(R(1, 4, 4, 6)), ValueError, r"PatchMerging expected channels-last tokens of shape \(batch, h, w, 8\), got \(1, 4, 4, 6\)"),
    "patch-unmerging-width": (lambda: PatchUnmerging(8), lambda m: m(R(1, 4, 4, 6), (8, 8)), ValueError, r"PatchUnmerging expected channels-last tokens"),
    "patch-unmerging-size": (lambda: PatchUnmerging(8), lambda m: m(R(1, 4, 4, 8), (16, 16)), ValueError, r"output size \(h, w\) between \(1, 1\) and \(8, 8\) .*got \(16, 16\)"),
    "patch-recovery-size": (lambda: PatchRecovery(8, 2, 2), lambda m: m(R(1, 4, 4, 8), (16, 16)), ValueError, r"output size \(h, w\) between \(1, 1\) and \(8, 8\) .*got \(16, 16\)"),
    # a bool mask was cast to 0 / 1 and added to the logits: nothing masked, no error
    "window-attention-bool-mask": (
        lambda: WindowAttention(8, 2, 4), lambda m: m(R(2, 16, 8), torch.ones(2, 16, 16, dtype=torch.bool)), TypeError,
        r"WindowAttention expected an additive float mask .*got torch.bool; for a boolean keep-mask m pass torch.where\(m, 0.0, -200.0\)",
    ),
    "window-attention-tokens": (lambda: WindowAttention(8, 2, 4), lambda m: m(R(3, 9, 8)), ValueError, r"x of shape \(batch \* n_windows, 16, 8\) .*got \(3, 9, 8\)"),
    "swin-width": (lambda: SwinV2Block(8, 2, (8, 8), window=4), lambda m: m(R(1, 8, 8, 6)), ValueError, r"SwinV2Block expected channels-last x of shape \(batch, h, w, 8\), got \(1, 8, 8, 6\)"),
    "convnext-channels-first": (lambda: ConvNeXtBlock(8), lambda m: m(R(1, 8, 4, 4)), ValueError, r"ConvNeXtBlock expected channels-last x of shape \(batch, h, w, 8\), got \(1, 8, 4, 4\)"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(FORWARD))
def test_bad_forward_input_is_refused(case):
    factory, call, error, match = FORWARD[case]
    model = factory()
    with pytest.raises(error, match=match):
        call(model)


FUNCTIONS = {
    # integer input used to come back as integers (truncated) or meet integer-cast bases (zeros)
    "dct-int": (lambda: dct(torch.ones(4, 8, **LONG)), TypeError, r"dct expected a real floating-point tensor, got dtype torch.int64"),
    "dct-empty": (lambda: dct(torch.ones(4, 0)), ValueError, r"at least one point along dim -1, got shape \(4, 0\)"),
    "truncated-dct-int": (lambda: DCT().forward(torch.ones(2, 8, **LONG), ((0, 1),)), TypeError, r"DCT expected a real floating-point x"),
    "resample-int": (lambda: fourier_resample(torch.ones(1, 8, 8, **LONG), (16, 16)), TypeError, r"fourier_resample expected a real floating-point tensor"),
    "resample-float-size": (lambda: fourier_resample(R(1, 8, 8), (4.5, 8)), TypeError, r"size to hold ints, got \(4.5, 8\)"),
    "pretrained-name-type": (lambda: sciml.pretrained.load(None), TypeError, r"expected a pretrained model name .*got NoneType"),
    "pretrained-device": (
        lambda: sciml.pretrained.load("fno-ns2d", map_location="tpu"), ValueError,
        r"expected map_location a torch device such as 'cpu' or 'cuda:0', got 'tpu'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(FUNCTIONS))
def test_bad_function_arguments_are_refused(case):
    call, error, match = FUNCTIONS[case]
    with pytest.raises(error, match=match):
        call()


def test_normalized_refuses_channels_its_statistics_would_broadcast_over():
    """Three input statistics against one input channel used to broadcast the input to three
    channels; two output statistics against a one-output DeepONet doubled its output."""
    fno = FNO(FNOConfig(in_channels=3, modes=(4, 4), width=4, n_layers=1, projection_channels=4))
    model = Normalized.wrap(fno, in_mean=[0, 1, 2], in_std=[1, 1, 1], out_mean=[0], out_std=[1])
    with pytest.raises(
        ValueError, match=r"expected u with 3 channels along dim 1 .*\(2, 1, 16, 16\)"
    ):
        model(R(2, 1, 16, 16))
    inner = _deeponet()
    model = Normalized.wrap(
        inner, in_mean=[0], in_std=[1], out_mean=[0, 0], out_std=[1, 1], out_channel_dim=-1
    )
    with pytest.raises(ValueError, match=r"output with 2 channels along dim -1 .*\(4, 5, 1\)"):
        model(R(4, 1, 10), x=R(5, 2))


def test_normalized_refuses_input_that_is_not_a_real_float_tensor():
    """An integer u was normalised with statistics cast to its dtype (in_mean 0.5 as 0, in_std
    2.5 as 2) and ran on: outputs 0.016 off the float input's, no error. A bool u and a NumPy
    array failed inside torch (bool subtraction, Tensor.to)."""
    fno = _fno().eval()
    model = Normalized.wrap(fno, in_mean=[0.5], in_std=[2.5], out_mean=[0.0], out_std=[1.0])
    u = torch.randint(-3, 4, (2, 1, 16, 16))
    for bad, given in ((u, "dtype torch.int64"), (u > 0, "dtype torch.bool")):
        with pytest.raises(
            TypeError, match=rf"Normalized expected a real floating-point u, got {given}"
        ):
            model(bad)
    with pytest.raises(TypeError, match=r"Normalized expected u as a torch.Tensor, got ndarray"):
        model(u.float().numpy())
    with torch.no_grad():  # the float input is normalised with the exact statistics
        torch.testing.assert_close(model(u.float()), fno((u.float() - 0.5) / 2.5))


def test_valid_input_still_runs_and_agrees():
    """The checks let through what was valid: a float64 model on float64 input matches the
    float32 model, one statistic broadcasts over every channel, and the lead time may be a
    float, a ``(batch,)`` vector or a ``(batch, 1)`` column."""
    torch.manual_seed(0)
    fno = _fno().eval()
    u = R(2, 1, 16, 16)
    with torch.no_grad():
        y32 = fno(u)
        y64 = fno.double()(u.double())
    torch.testing.assert_close(y64.float(), y32, rtol=1e-4, atol=1e-5)

    inner = _fno(in_channels=2).eval()
    model = Normalized.wrap(inner, in_mean=[1.0], in_std=[2.0], out_mean=[0.0], out_std=[1.0])
    u = R(2, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(u), inner((u - 1.0) / 2.0))

    scot = _scot().eval()
    u = R(2, 1, 16, 16)
    with torch.no_grad():
        ref = scot(u, t=0.5)
        for t in (torch.full((2,), 0.5), torch.full((2, 1), 0.5), torch.tensor(0.5)):
            torch.testing.assert_close(scot(u, t=t), ref)


def test_int_tuple_errors_say_what_each_entry_is_for():
    """``check_ints`` said "(one per spatial dim)" for every tuple, also for ScOT's depths (one
    per stage) and the hidden widths of DeepONet / NODE; only the spatial ones say it now."""
    from sciml.layers import SpectralConv
    from sciml.models import ScOTConfig

    with pytest.raises(TypeError, match=r"^expected depths as a tuple of ints, got 4$"):
        ScOTConfig(depths=4)
    with pytest.raises(TypeError, match=r"modes as a tuple of ints \(one per spatial dim\), got 4"):
        SpectralConv(2, 2, modes=4)


def test_every_family_refuses_a_u_of_another_dtype_or_type_naming_it():
    """Each registered family checks u's dtype and type at its entry: DCDMNet (family 'dcdm')
    failed inside conv for a float64, integer or complex u ("expected scalar type Double but
    found Float") and with "no attribute 'dim'" for a NumPy array."""
    from test_operator import EXAMPLES, _build

    families = sorted(f for f in sciml.registered_families() if not f.startswith("test-"))
    assert "dcdm" in families
    for family in families:
        config, make_input = EXAMPLES[family]
        model = _build(family, config).eval()
        made = make_input()
        u, kwargs = made if isinstance(made, tuple) else (made, {})
        name = type(model).__name__
        cases = (
            (u.double(), rf"{name} expected u of dtype torch.float32 .*got torch.float64"),
            (u.long(), rf"{name} expected a real floating-point u, got dtype torch.int64"),
            (u.to(torch.complex64), rf"{name} expected a real .*u, got dtype torch.complex64"),
            (u.numpy(), rf"{name} expected u as a torch.Tensor, got ndarray"),
        )
        if family == "normalized":
            # (why) Normalized centres a float64 u in float64 and hands its network float32
            # (0fe44b0), so the float64 case runs: to the float32 u's outputs
            with torch.no_grad():
                y32, y64 = model(u, **kwargs), model(cases[0][0], **kwargs)
            assert y64.dtype == torch.float32
            torch.testing.assert_close(y64, y32, rtol=1e-5, atol=1e-6)
            cases = cases[1:]
        for bad, match in cases:
            with pytest.raises(TypeError, match=match):
                model(bad, **kwargs)
        with torch.no_grad():  # the float32 u it was checked against still runs
            assert torch.isfinite(model(u, **kwargs)).all(), family


# Each public layer given its input as a Python list or a NumPy array: (layer, input, input's
# name in the message, extra positional arguments). (why) they read u.ndim before the type check
# and said "'list' object has no attribute 'ndim'" (or 'is_complex', 'new_empty', ...).
NOT_TENSOR = {
    "SpectralConv": (lambda: SpectralConv(2, 3, (4, 4)), (1, 2, 8, 8), "u", ()),
    "WindowAttention": (lambda: WindowAttention(8, 2, 4), (2, 16, 8), "x", ()),
    "SwinV2Block": (lambda: SwinV2Block(8, 2, (8, 8), window=4), (1, 8, 8, 8), "x", ()),
    "ConvNeXtBlock": (lambda: ConvNeXtBlock(8), (1, 8, 8, 8), "x", ()),
    "PatchEmbed": (lambda: PatchEmbed(2, 8, 2), (1, 2, 8, 8), "u", ()),
    "PatchMerging": (lambda: PatchMerging(8), (1, 4, 4, 8), "x", ()),
    "PatchUnmerging": (lambda: PatchUnmerging(8), (1, 4, 4, 8), "x", ((8, 8),)),
    "PatchRecovery": (lambda: PatchRecovery(8, 2, 2), (1, 4, 4, 8), "x", ((8, 8),)),
    "LayerNorm": (lambda: LayerNorm(8, elementwise_affine=False), (1, 4, 8), "x", ()),
    "DropPath": (lambda: DropPath(0.5).train(), (2, 3), "x", ()),
    "DCT": (lambda: DCT().forward, (2, 8), "x", (((0, 1),),)),
    "DCT.inverse": (lambda: DCT().inverse, (2, 2), "z", (((0, 1),), (8,))),
    "dct": (lambda: dct, (2, 8), "x", ()),
    "fourier_resample": (lambda: fourier_resample, (1, 8, 8), "u", ((4, 4),)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NOT_TENSOR))
def test_layers_refuse_a_list_or_an_array_naming_the_type(name):
    build, shape, arg, extra = NOT_TENSOR[name]
    layer = build()
    u = R(*shape)
    owner = name.split(".")[0]
    for bad, got in ((u.tolist(), "list"), (u.numpy(), "ndarray")):
        with pytest.raises(
            TypeError, match=rf"^{owner}.* expected {arg} as a torch\.Tensor, got {got}$"
        ):
            layer(bad, *extra)


def test_the_type_check_leaves_a_tensor_input_s_output_unchanged():
    """The same values as a tensor still give the layers' numbers: SpectralConv against
    ``irfft(W rfft(u))`` over its kept modes, ConvNeXtBlock against its formula with torch's
    functional ops."""
    torch.manual_seed(0)
    layer = SpectralConv(2, 3, (3,), bias=True).double()
    with torch.no_grad():
        layer.bias.normal_()
    u = R(4, 2, 10, dtype=torch.float64)
    k = torch.fft.rfft(u, norm="forward")[..., :3]
    y = torch.fft.irfft(torch.einsum("bik,iok->bok", k, layer.weight), n=10, norm="forward")
    torch.testing.assert_close(layer(u), y + layer.bias.view(1, -1, 1), rtol=1e-12, atol=1e-12)

    block = ConvNeXtBlock(4, layer_scale=0.5).double()
    x = R(2, 5, 6, 4, dtype=torch.float64)
    f = torch.nn.functional
    h = f.conv2d(x.permute(0, 3, 1, 2), block.dwconv.weight, block.dwconv.bias, padding=3, groups=4)
    h = f.layer_norm(h.permute(0, 2, 3, 1), (4,), block.norm.weight, block.norm.bias, eps=1e-5)
    h = f.linear(
        f.gelu(f.linear(h, block.pwconv1.weight, block.pwconv1.bias)),
        block.pwconv2.weight,
        block.pwconv2.bias,
    )
    torch.testing.assert_close(block(x), x + 0.5 * h, rtol=1e-12, atol=1e-12)


# (why) PROSE read x.ndim / x.to and symbols.is_floating_point, PODDeepONet x.reshape, before
# any type check: "'numpy.ndarray' object has no attribute 'to'", "'float' object has no
# attribute 'ndim'", or torch's own "to() received an invalid combination of arguments".
MODEL_NOT_TENSOR = {
    "prose-x-numpy": (_prose, lambda m, u, x: m(u, x=x.numpy()), r"PROSE expected query times x as a torch\.Tensor, got ndarray"),
    "prose-x-float": (_prose, lambda m, u, x: m(u, x=0.5), r"PROSE expected query times x as a torch\.Tensor, got float"),
    "prose-x-list": (_prose, lambda m, u, x: m(u, x=x.tolist()), r"PROSE expected query times x as a torch\.Tensor, got list"),
    "prose-symbols-numpy": (_prose, lambda m, u, x: m(u, x=x, symbols=torch.ones(2, 3, **LONG).numpy()), r"PROSE expected symbols as a torch\.Tensor, got ndarray"),
    "prose-symbols-list": (_prose, lambda m, u, x: m(u, x=x, symbols=[[3, 4], [3, 4]]), r"PROSE expected symbols as a torch\.Tensor, got list"),
    "prose-predict-batch-x": (_prose, lambda m, u, x: m.predict_batch({"input": u, "x": x.numpy()}), r"PROSE expected query times x as a torch\.Tensor, got ndarray"),
    "pod-x-numpy": (_pod, lambda m, u, x: m(R(2, 10), x=m.coords.numpy()), r"PODDeepONet expected x as a torch\.Tensor, got ndarray"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MODEL_NOT_TENSOR))
def test_models_refuse_x_or_symbols_that_are_not_tensors(case):
    factory, call, match = MODEL_NOT_TENSOR[case]
    model = factory().eval()
    with pytest.raises(TypeError, match=match):
        call(model, R(2, 5, 3), torch.linspace(0, 1, 4)[None, :, None])


def test_tensor_x_and_symbols_still_give_the_same_prediction():
    """The valid forms agree after the type checks: PROSE's ``(T_out,)`` query times give the
    ``(1, T_out, 1)`` ones' prediction, per sample the batched one, and a padded skeleton the
    unpadded one; PODDeepONet at ``x = coords`` gives ``x = None``'s."""
    torch.manual_seed(0)
    model = _prose().eval()
    u, t = R(2, 5, 3), torch.linspace(0, 1, 4)
    symbols = torch.tensor([[4, 5, 6, 0], [4, 7, 0, 0]])
    with torch.no_grad():
        y = model(u, x=t[None, :, None], symbols=symbols)
        torch.testing.assert_close(model(u, x=t, symbols=symbols[:, :3]), y, rtol=0, atol=0)
        for i in range(2):
            one = model(u[i : i + 1], x=t[None, :, None], symbols=symbols[i : i + 1])
            torch.testing.assert_close(one, y[i : i + 1], rtol=1e-5, atol=1e-6)
    pod = _pod().eval()
    v = R(3, 10)
    with torch.no_grad():
        torch.testing.assert_close(pod(v, x=pod.coords.clone()), pod(v), rtol=0, atol=0)


# A grid with no point along a spatial dim: (module, input shape, call, message's owner and
# input). (why) the scOT blocks and FNO failed inside torch: SwinV2Block "cannot reshape tensor
# of 0 elements" (shifted: "integer modulo by zero"), ConvNeXtBlock, PatchEmbed and FNO "Kernel
# size can't be greater than actual input size"; PatchMerging returned an empty grid.
EMPTY_GRID = {
    "SwinV2Block": (lambda: SwinV2Block(8, 2, (8, 8), window=4), (1, 0, 8, 8), (), "SwinV2Block expected x"),
    "SwinV2Block-shifted": (lambda: SwinV2Block(8, 2, (8, 8), window=4, shift=2), (1, 8, 0, 8), (), "SwinV2Block expected x"),
    "ConvNeXtBlock": (lambda: ConvNeXtBlock(8), (1, 0, 8, 8), (), "ConvNeXtBlock expected x"),
    "PatchEmbed": (lambda: PatchEmbed(2, 8, 2), (1, 2, 0, 8), (), "PatchEmbed expected u"),
    "PatchMerging": (lambda: PatchMerging(8), (1, 0, 4, 8), (), "PatchMerging expected x"),
    "PatchUnmerging": (lambda: PatchUnmerging(8), (1, 4, 0, 8), ((8, 8),), "PatchUnmerging expected x"),
    "PatchRecovery": (lambda: PatchRecovery(8, 2, 2), (1, 0, 4, 8), ((8, 8),), "PatchRecovery expected x"),
    "FNO": (_fno, (1, 1, 0, 16), (), "FNO expected u"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EMPTY_GRID))
def test_an_empty_grid_is_refused_naming_the_shape(name):
    build, shape, extra, owner = EMPTY_GRID[name]
    shown = re.escape(str(shape))
    with pytest.raises(ValueError, match=rf"^{owner} on a non-empty grid .*got shape {shown}$"):
        build()(R(*shape), *extra)


def test_a_one_point_grid_and_an_empty_batch_still_run():
    """The smallest grids are not refused and keep their numbers: on a 1 x 1 grid ConvNeXt's
    7 x 7 depthwise convolution is its centre tap and PatchEmbed's 2 x 2 patch its top-left
    weight (the rest is zero padding); an empty batch gives an empty answer as before."""
    torch.manual_seed(0)
    f = torch.nn.functional
    block = ConvNeXtBlock(4, layer_scale=0.5).double()
    x = R(3, 1, 1, 4, dtype=torch.float64)
    h = x * block.dwconv.weight[:, 0, 3, 3] + block.dwconv.bias
    h = f.layer_norm(h, (4,), block.norm.weight, block.norm.bias, eps=1e-5)
    h = block.pwconv2(f.gelu(block.pwconv1(h)))
    torch.testing.assert_close(block(x), x + 0.5 * h, rtol=1e-12, atol=1e-12)

    embed = PatchEmbed(2, 4, 2).double()
    u = R(3, 2, 1, 1, dtype=torch.float64)
    z = torch.einsum("bi,oi->bo", u[:, :, 0, 0], embed.proj.weight[:, :, 0, 0]) + embed.proj.bias
    z = f.layer_norm(z, (4,), embed.norm.weight, embed.norm.bias, eps=1e-5)
    torch.testing.assert_close(embed(u), z[:, None, None], rtol=1e-12, atol=1e-12)

    swin = SwinV2Block(8, 2, (8, 8), window=4, shift=2)
    assert swin(R(0, 8, 8, 8)).shape == (0, 8, 8, 8)
