"""Inputs a model was not tested with: odd memory layouts, other precisions, batch 1, inference
mode, copies and checkpoints, and switching resolutions. Each model must give the numbers it
gives on a plain contiguous float32 batch (the reference), or refuse with a clear error."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import sciml
from sciml.layers import ConvNeXtBlock, SpectralConv, SwinV2Block, VCycle, WindowAttention
from sciml.layers.spectral_backends import FFT, DFTMatmul, FusedDFT
from sciml.layers.transforms import DCT, RFFT
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
from sciml.models.deeponet import FourierFeatures, MLPSpec
from sciml.train._state import decode, encode


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _prose_input():
    u = _randn(2, 6, 3)
    u[..., 0] = torch.linspace(0, 1, 6)
    return u


def _pod():
    model = PODDeepONet(PODDeepONetConfig(sensors=10, points=6, modes=3, branch=_SPEC))
    model.fit_basis(_randn(8, 6, seed=2), torch.linspace(0, 1, 6).reshape(6, 1))
    return model


_SPEC = MLPSpec(hidden=(8,))
_FNO = FNOConfig(
    in_channels=2, out_channels=1, modes=(4, 4), width=6, n_layers=2, projection_channels=8,
    padding=2, channel_mlp_expansion=0.5,
)  # fmt: skip

# name -> (build, input u, keyword arguments). Grid models take u of shape (batch, c, *spatial).
MODELS = {
    "fno-2d": (lambda: FNO(_FNO), lambda: _randn(3, 2, 16, 16), {}),
    "fno-3d": (
        lambda: FNO(FNOConfig(modes=(3, 3, 3), width=4, n_layers=1, projection_channels=8)),
        lambda: _randn(2, 1, 8, 8, 8),
        {},
    ),
    "t1-dct": (
        lambda: T1(T1Config(modes=(4, 4), width=6, n_layers=2, projection_channels=8)),
        lambda: _randn(3, 1, 16, 16),
        {},
    ),
    "t1-rfft-shift": (
        lambda: T1(
            T1Config(
                modes=(4, 4),
                width=6,
                n_layers=2,
                projection_channels=8,
                transform="rfft",
                shift_equivariant=((1, 0), (0, 1)),
            )
        ),  # fmt: skip
        lambda: _randn(3, 1, 16, 16),
        {},
    ),
    "mgno": (
        lambda: MgNO(
            MgNOConfig(channels=4, n_layers=2, smoothing=((1, 1), (1, 0), (1, 0)), level_norm=True)
        ),
        lambda: _randn(3, 1, 17, 17),
        {},
    ),
    "scot": (
        lambda: ScOT(
            ScOTConfig(
                in_channels=2,
                out_channels=2,
                image_size=16,
                patch_size=2,
                embed_dim=8,
                depths=(1, 2),
                num_heads=(2, 2),
                window_size=4,
                skip_blocks=(1, 0),
            )
        ),  # fmt: skip
        lambda: _randn(3, 2, 16, 16),
        {"t": torch.tensor([0.1, 0.5, 0.9])},
    ),
    "deeponet-fourier": (
        lambda: DeepONet(
            DeepONetConfig(
                sensors=10,
                coord_dim=2,
                basis=4,
                out_channels=2,
                branch=_SPEC,
                trunk=_SPEC,
                fourier=FourierFeatures(n=4),
            )
        ),  # fmt: skip
        lambda: _randn(3, 10),
        {"x": _randn(7, 2, seed=1)},
    ),
    "pod-deeponet": (lambda: _pod(), lambda: _randn(3, 10), {}),
    "prose": (
        lambda: PROSE(
            PROSEConfig.small(
                dim=2, width=16, fusion_layers=1, data_decoder_layers=1, symbol_decoder_layers=1
            )
        ),
        _prose_input,
        {"x": torch.linspace(0, 2, 5).reshape(1, 5, 1)},
    ),
    "node": (
        lambda: NODE(NODEConfig(state_dim=2, hidden=(8,))),
        lambda: _randn(3, 2),
        {"t": torch.linspace(0, 1, 4)},
    ),
    "normalized-fno": (
        lambda: Normalized.wrap(
            FNO(FNOConfig(in_channels=2, modes=(4, 4), width=6, n_layers=1, projection_channels=8)),
            in_mean=[0.5, -1.0],
            in_std=[2.0, 0.5],
            out_mean=[3.0],
            out_std=[4.0],
        ),  # fmt: skip
        lambda: _randn(3, 2, 16, 16),
        {},
    ),
}

# Layers: (build, input, call)
LAYERS = {
    "spectral-fft-2d": (
        lambda: SpectralConv(3, 2, (4, 4), bias=True, backend=FFT()),
        lambda: _randn(3, 3, 16, 14),
        None,
    ),
    "spectral-matmul-3d": (
        lambda: SpectralConv(3, 2, (3, 3, 3), backend=DFTMatmul()),
        lambda: _randn(2, 3, 8, 9, 10),
        None,
    ),
    "spectral-fused-1d": (
        lambda: SpectralConv(3, 2, (5,), backend=FusedDFT()),
        lambda: _randn(3, 3, 21),
        None,
    ),
    "vcycle-3d": (
        lambda: VCycle(2, 3, ((1, 1), (1, 0)), ndim=3, residual_restriction=True),
        lambda: _randn(2, 2, 9, 9, 9),
        None,
    ),
    "window-attention": (
        lambda: WindowAttention(8, 2, 4, cpb_hidden=16),
        lambda: _randn(6, 16, 8),
        None,
    ),
    "swin-block": (
        lambda: SwinV2Block(8, 2, (10, 10), window=4, shift=2, conditional=True),
        lambda: _randn(3, 10, 10, 8),
        lambda m, x: m(x, 0.3),
    ),
    "convnext": (
        lambda: ConvNeXtBlock(8, layer_scale=0.5),
        lambda: _randn(3, 9, 11, 8),
        None,
    ),
    "dct-matmul": (
        lambda: nn.Identity(),
        lambda: _randn(3, 2, 16, 12),
        lambda m, u: DCT().inverse(
            DCT().forward(u, ((0, 1, 2, 5), (0, 3)), method="matmul"),
            ((0, 1, 2, 5), (0, 3)),
            (16, 12),
        ),
    ),
    "rfft-fft": (
        lambda: nn.Identity(),
        lambda: _randn(3, 2, 16, 12),
        lambda m, u: RFFT().inverse(
            2 * RFFT().forward(u, ((0, 1, -1), (0, 2)), method="fft"),
            ((0, 1, -1), (0, 2)),
            (16, 12),
            method="fft",
        ),
    ),
}


def _seeded(build):
    def make(seed=0):
        torch.manual_seed(seed)
        return build().eval()

    return make


def _model_case(name):
    build, make_u, kwargs = MODELS[name]

    def call(model, u):  # keyword tensors (x, t) follow u's precision, per-sample t its batch
        kw = {k: v.to(u.dtype) if v.is_floating_point() else v for k, v in kwargs.items()}
        if name == "scot":
            kw["t"] = kw["t"][: u.shape[0]]
        return model(u, **kw)

    return _seeded(build), make_u, call


def _layer_case(name):
    build, make_u, call = LAYERS[name]
    return _seeded(build), make_u, call or (lambda m, u: m(u))


def _cases():
    return [pytest.param(_model_case, n, id=n) for n in MODELS] + [
        pytest.param(_layer_case, n, id=n) for n in LAYERS
    ]


def _rel(a, b):
    a, b = (
        torch.view_as_real(v.detach().to(torch.complex128))
        if v.is_complex()
        else v.detach().double()
        for v in (a, b)
    )
    return float((a - b).norm() / b.norm())


def _layouts(u):
    """Tensors equal to ``u`` in value but not laid out contiguously."""
    rev = list(range(u.ndim))[::-1]
    wide = torch.zeros(*u.shape[:-1], 2 * u.shape[-1])
    wide[..., ::2] = u
    padded = torch.zeros(*[s + 2 for s in u.shape])
    interior = tuple(slice(1, -1) for _ in u.shape)
    padded[interior] = u
    out = {
        "transposed": u.permute(rev).contiguous().permute(rev),
        "strided": wide[..., ::2],
        "interior": padded[interior],
        "expanded": u[:1].expand_as(u),
    }
    if u.ndim in (4, 5):
        fmt = torch.channels_last if u.ndim == 4 else torch.channels_last_3d
        out["channels_last"] = u.contiguous(memory_format=fmt)
    return out


@pytest.mark.parametrize(("kind", "name"), _cases())
def test_non_contiguous_inputs_give_the_contiguous_output(kind, name):
    build, make_u, call = kind(name)
    model = build()
    with torch.no_grad():
        for layout, v in _layouts(make_u()).items():
            assert not v.is_contiguous() or layout == "channels_last"
            err = _rel(call(model, v), call(model, v.contiguous()))
            assert err < 1e-6, f"{layout}: relative error {err:.1e}"


@pytest.mark.parametrize(("kind", "name"), _cases())
def test_batch_one_inference_mode_and_grad_mode_agree(kind, name):
    build, make_u, call = kind(name)
    model, u = build(), make_u()
    ref = call(model, u)
    with torch.inference_mode():
        inf = call(model, u)
    with torch.no_grad():
        one = call(model, u[:1])
    assert _rel(inf, ref) < 1e-6  # (attention: SDPA without grad, a plain product with)
    assert _rel(one, ref[:1]) < 1e-5
    # constants cached under inference mode must not leak into a later autograd graph
    fresh = build()
    with torch.inference_mode():
        call(fresh, make_u())
    if any(True for _ in fresh.parameters()):
        call(fresh, make_u()).square().sum().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in fresh.parameters())


@pytest.mark.parametrize(("kind", "name"), _cases())
def test_copies_and_checkpoints_are_bit_identical(kind, name):
    build, make_u, call = kind(name)
    model, u = build(), make_u()
    with torch.inference_mode():  # fill every cache, with inference tensors
        call(model, u)
    with torch.no_grad():
        ref = call(model, u)
        assert torch.equal(call(copy.deepcopy(model), u), ref)
        assert torch.equal(call(pickle.loads(pickle.dumps(model)), u), ref)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        fresh = build(seed=1)  # other random weights
        fresh.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
        assert torch.equal(call(fresh, u), ref)
        there_and_back = copy.deepcopy(model).to(torch.float64).to(torch.float32)
        assert torch.equal(call(there_and_back, u), ref)


_COMPLEX_MODELS = ["fno-2d", "fno-3d", "t1-rfft-shift", "normalized-fno"]


@pytest.mark.parametrize("cast", ["double", "to"])
@pytest.mark.parametrize("name", _COMPLEX_MODELS + ["t1-dct", "mgno", "scot", "deeponet-fourier"])
def test_float64_model_is_float64_throughout(name, cast):
    """``.double()`` and ``.to(torch.float64)`` give complex128 spectral weights (``nn.Module``
    would skip them, or drop their imaginary parts) and float64 outputs within float32 rounding
    of the float32 model's."""
    build, make_u, call = _model_case(name)
    model, u = build(), make_u()
    m64 = copy.deepcopy(model)
    m64 = m64.double() if cast == "double" else m64.to(torch.float64)
    assert {p.dtype for p in m64.parameters()} <= {torch.float64, torch.complex128}
    with torch.no_grad():
        y32, y64 = call(model, u), call(m64, u.double())
    assert y64.dtype == torch.float64
    assert _rel(y32, y64) < 1e-5


@pytest.mark.parametrize("name", _COMPLEX_MODELS + ["t1-dct", "mgno", "scot"])
def test_mixed_precision_is_refused(name):
    build, make_u, call = _model_case(name)
    model, u = build(), make_u()
    if name.startswith("normalized"):
        # (why) a Normalized model centres a float64 u in float64 and hands the network its
        # dtype (0fe44b0: rounded first, a field 1e4 +- 1e-2 lost 0.05 std to float32 spacing)
        with torch.no_grad():
            y32, y64 = call(model, u), call(model, u.double())
        assert y64.dtype == torch.float32 and _rel(y32, y64) < 1e-6
    else:
        with pytest.raises(TypeError, match="expected u of dtype torch.float32"):
            call(model, u.double())
    with pytest.raises(TypeError, match="expected u of dtype torch.float64"):
        call(copy.deepcopy(model).double(), u)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "half"])
@pytest.mark.parametrize("name", [n for n in MODELS if n != "node"])
def test_half_precision_mismatch_is_refused_outside_autocast_and_runs_under_it(name, dtype):
    """A float32 ``u`` for a bfloat16 / float16 FNO, MgNO or scOT failed inside torch ("Input
    type (float) and bias type (c10::BFloat16) should be the same"), a T1 quietly ran in
    float32; a half ``u`` for a float32 model likewise. Outside autocast both name the two
    dtypes; under bfloat16 autocast the float32 input to a bfloat16 model is autocast's to
    cast and gives the float32 model's numbers to bfloat16 accuracy."""
    build, make_u, call = _model_case(name)
    model, u = build(), make_u()
    low = copy.deepcopy(model).to(dtype)
    with torch.no_grad():
        with pytest.raises(
            TypeError,
            match=rf"expected u of dtype {dtype} \(the dtype of its parameters\), got "
            rf"torch.float32; convert the input with u.to\({dtype}\)",
        ):
            call(low, u)
        with pytest.raises(
            TypeError, match=rf"expected u of dtype torch.float32 .*got {dtype}; convert"
        ):
            call(model, u.to(dtype))
        if dtype == torch.bfloat16:
            ref = call(model, u)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                mixed = call(low, u)
            assert _rel(mixed.float(), ref) < _HALF_TOL[dtype]


def test_spectral_conv_refuses_mixed_precision_and_casts_its_weight():
    layer = SpectralConv(2, 2, (3, 3))
    u = _randn(1, 2, 8, 8)
    with pytest.raises(TypeError, match="expected u of dtype torch.float32.*got torch.float64"):
        layer(u.double())
    wide = copy.deepcopy(layer).to(torch.float64)
    assert wide.weight.dtype == torch.complex128
    torch.testing.assert_close(wide.weight.imag, layer.weight.imag.double(), rtol=0, atol=0)
    assert torch.equal(copy.deepcopy(wide).float().weight, layer.weight)
    half = copy.deepcopy(layer).half()
    assert half.weight.dtype == torch.complex32  # half precision runs in float32
    assert _rel(half(u.half()), wide(u.double())) < 2e-3


@pytest.mark.parametrize(
    ("name", "tol"), [("fno-2d", 2e-2), ("t1-rfft-shift", 3e-2), ("deeponet-fourier", 2e-2)]
)
def test_bfloat16_autocast_runs_at_bfloat16_accuracy(name, tol):
    """T1 with the real FFT failed under autocast (no complex bfloat16); DeepONet's Fourier
    features lost percents in bfloat16 phases."""
    build, make_u, call = _model_case(name)
    model, u = build(), make_u()
    with torch.no_grad():
        ref = call(model, u)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = call(model, u)
    assert _rel(low.float(), ref) < tol


_HALF_TOL = {torch.float16: 1e-2, torch.bfloat16: 5e-2}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["half", "bfloat16"])
@pytest.mark.parametrize("name", [n for n in MODELS if n != "node"])
def test_half_precision_model_gives_float32_numbers_in_its_dtype(name, dtype):
    """``model.half()`` / ``.bfloat16()`` runs and answers in that dtype (the FNO's and T1-rfft's
    spectral parts compute in float32: they failed with a dtype mismatch)."""
    build, make_u, call = _model_case(name)
    model, u = build(), make_u()
    with torch.no_grad():
        ref = call(model, u)
        low = call(copy.deepcopy(model).to(dtype), u.to(dtype))
    assert low.dtype == dtype
    assert _rel(low, ref) < _HALF_TOL[dtype]


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["half", "bfloat16"])
@pytest.mark.parametrize("name", ["fno-2d", "t1-rfft-shift"])
def test_half_precision_spectral_gradients_match_float32(name, dtype):
    """Gradients reach the complex32 (half) / complex64 (bfloat16) spectral weights, in the
    parameters' dtype, and equal the float32 model's to half-precision accuracy."""
    build, make_u, call = _model_case(name)
    model, u = build(), make_u()
    low = copy.deepcopy(model).to(dtype)
    call(model, u).square().mean().backward()
    call(low, u.to(dtype)).float().square().mean().backward()
    for (n, p), q in zip(model.named_parameters(), low.parameters()):
        assert q.grad is not None and q.grad.dtype == q.dtype, n
        assert _rel(q.grad, p.grad) < 10 * _HALF_TOL[dtype], n


def test_float16_node_underflow_names_the_precision():
    """torchdiffeq's adaptive step control underflows in float16 at the default tolerances (a
    bare ``AssertionError: underflow in dt``); looser tolerances and fixed steps run."""
    build, make_u, call = _model_case("node")
    model, u = build(), make_u()
    ref = call(model, u)
    with pytest.raises(sciml.SciMLError, match=r"float16.*machine epsilon.*RK4"):
        call(copy.deepcopy(model).half(), u.half())
    loose = NODE(NODEConfig(state_dim=2, hidden=(8,), rtol=1e-2, atol=1e-2))
    loose.load_state_dict(model.state_dict())
    assert _rel(call(loose.half(), u.half()), ref) < 2e-2


@pytest.mark.parametrize("name", ["fno-2d", "t1-dct", "t1-rfft-shift", "mgno", "spectral"])
def test_resolution_switch_keeps_outputs(name):
    """32², then 48² (with a backward pass), then 32² again: bit-identical at 32² (caches keyed
    by size and dtype)."""
    if name == "spectral":
        torch.manual_seed(0)
        model, c = SpectralConv(2, 2, (4, 4)), 2
    else:
        model, c = _model_case(name)[0](), MODELS[name][1]().shape[1]
    extra = 1 if name == "mgno" else 0  # MgNO: odd grids keep every level's walls aligned
    u32, u48 = _randn(2, c, 32 + extra, 32 + extra), _randn(2, c, 48 + extra, 48 + extra, seed=1)
    with torch.no_grad():
        first = model(u32)
    model(u48).square().sum().backward()
    with torch.no_grad():
        again = model(u32)
    assert torch.equal(first, again)
    assert _rel(copy.deepcopy(model)(u32), first) == 0.0


def test_float64_t1_checkpoint_and_trainer_state_keep_complex128(tmp_path):
    """safetensors cannot hold complex128: checkpoints and trainer state store the real pairs
    and read back complex128 weights, bit-identical."""
    model = _model_case("t1-rfft-shift")[0]().double()
    u = _randn(2, 1, 16, 16).double()
    model.save_pretrained(tmp_path)
    loaded = sciml.load(tmp_path)
    assert loaded.blocks[0].channel.dtype == torch.complex128
    assert torch.equal(loaded(u), model(u))
    state = {"exp_avg": model.blocks[0].channel.detach().clone(), "step": 3}
    back = decode(*encode(state))
    assert back["exp_avg"].dtype == torch.complex128
    assert torch.equal(back["exp_avg"], state["exp_avg"])


def test_dropout_and_drop_path_act_in_train_mode_only():
    """Eval mode is deterministic and the same after a round of training-mode calls."""
    torch.manual_seed(0)
    scot = ScOT(
        ScOTConfig(
            in_channels=1, out_channels=1, image_size=16, patch_size=2, embed_dim=8,
            depths=(2, 1), num_heads=(2, 2), window_size=4, skip_blocks=(1, 0),
            drop_path_rate=0.3, time_conditioning=False,
        )
    ).eval()  # fmt: skip
    prose = PROSE(
        PROSEConfig.small(
            dim=2, width=16, fusion_layers=1, data_decoder_layers=1, symbol_decoder_layers=1,
            dropout=0.3,
        )
    ).eval()  # fmt: skip
    x = {"x": torch.linspace(0, 2, 5).reshape(1, 5, 1)}
    for model, u, kw in ((scot, _randn(4, 1, 20, 20), {}), (prose, _prose_input(), x)):
        with torch.no_grad():
            first = model(u, **kw)
            model.train()
            noisy = model(u, **kw)
            model.eval()
            assert torch.equal(model(u, **kw), first)
        assert _rel(noisy, first) > 1e-3  # the stochastic layers were active in train mode


# Non-parameter tensors a checkpoint may hold: statistics, fitted bases and the training
# iteration of a regulariser's weight schedules, never caches.
_STATE_BUFFERS = {
    "node": {"ode.iteration"},
    "normalized-fno": {"in_mean", "in_std", "out_mean", "out_std"},
    "pod-deeponet": {"pod_basis", "pod_mean", "pod_singular_values", "coords"},
    "deeponet-fourier": {"fourier_freqs"},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_state_dict_holds_parameters_and_intended_buffers_only(name):
    build, make_u, call = _model_case(name)
    model = build()
    with torch.no_grad():
        call(model, make_u())  # after a call: caches exist
    state = model.state_dict()
    extra = set(state) - {n for n, _ in model.named_parameters()}
    assert extra == _STATE_BUFFERS.get(name, set())


@pytest.mark.parametrize("dtype", [None, torch.float64])
def test_channels_last_model_keeps_its_spectral_weights(dtype):
    """``model.to(memory_format=torch.channels_last)`` (with or without a dtype) keeps the complex
    weights' values; the 2D weight has 4 dims, its real pairs 5, which channels_last refuses."""
    model, make_u, call = _model_case("fno-2d")
    model, u = model(), make_u()
    moved = copy.deepcopy(model).to(dtype, memory_format=torch.channels_last)
    weight = moved.spectral[0].weight
    assert weight.dtype == (torch.complex128 if dtype else torch.complex64)
    torch.testing.assert_close(weight, model.spectral[0].weight.to(weight.dtype), rtol=0, atol=0)
    with torch.no_grad():
        assert _rel(call(moved, u.to(dtype or torch.float32)), call(model, u)) < 1e-6


@pytest.mark.parametrize("name", list(MODELS))
def test_empty_batch_gives_an_empty_answer_or_a_clear_error(name):
    """A batch of no samples (a filtered batch) gives what slicing the full answer gives; it
    failed in reshapes (DeepONet, PROSE), an index (PODDeepONet) and the NODE's step control
    (reported as an underflow). PROSE refuses it: torch's attention cannot reshape it."""
    build, make_u, call = _model_case(name)
    model, u = build(), make_u()
    if name == "prose":
        with pytest.raises(
            ValueError, match=r"PROSE expected at least one sample, got u of shape \(0,"
        ):
            call(model, u[:0])
        return
    full, empty = call(model, u), call(model, u[:0])
    assert empty.shape == full[:0].shape and empty.dtype == full.dtype
    if name != "node":  # the NODE's answer is its (constant) initial states: no graph
        empty.sum().backward()  # a loss over no sample backpropagates (zero gradients)
