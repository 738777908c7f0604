"""scOT / Poseidon: reference equivalence, layers against second implementations, checkpoints."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import sciml
from sciml.errors import CheckpointError
from sciml.layers import ConditionalLayerNorm, SwinV2Block, WindowAttention, fourier_resample
from sciml.layers.window_attention import MASK_VALUE, shifted_window_mask
from sciml.models import ScOT, ScOTConfig
from sciml.pretrained import poseidon

DATA = Path(__file__).parent / "data" / "scot"


@pytest.fixture(scope="module")
def cases():
    return {
        **load_file(str(DATA / "cases.safetensors")),
        **load_file(str(DATA / "pad_cases.safetensors")),
    }


RESOLUTIONS = {"cond": (32, 48, 24), "plain": (32, 48, 24), "pad": (24, 40, 18)}


# ----------------------------------------------------------------------- reference equivalence
@pytest.mark.parametrize("key", ["cond", "plain", "pad"])
def test_poseidon_checkpoint_reproduces_reference_outputs(key, cases):
    """Weights written by the reference scOT code (safetensors for "cond" and "pad",
    pytorch_model.bin for "plain") load into ScOT and reproduce the reference outputs at the
    native resolution and two Fourier-resampled ones (see tests/data/scot/README.md). In "pad"
    the first stage's 12 x 12 grid is no multiple of the window 8: it is padded to 16 and its
    second block shifted by 4."""
    model = ScOT.from_pretrained(DATA / key)
    assert model.config.time_conditioning == (key != "plain")
    if key == "pad":
        blocks = model.encoder[0].blocks
        assert [(b.grid, b.window, b.shift) for b in blocks] == [((12, 12), 8, 0), ((12, 12), 8, 4)]
    for res in RESOLUTIONS[key]:
        u = cases[f"{key}.{res}.input"]
        t = cases.get(f"{key}.{res}.time")
        ref = cases[f"{key}.{res}.output"]
        with torch.no_grad():
            out = model(u, t=t)
        assert out.shape == ref.shape
        rel = float((out - ref).norm() / ref.norm())
        assert rel < 1e-5, (key, res, rel)


def test_poseidon_export_round_trip_matches_reference_files(tmp_path):
    """save_poseidon writes the reference names and tensors back exactly; config fields too."""
    model = ScOT.from_pretrained(DATA / "cond")
    out = poseidon.save_poseidon(model, tmp_path / "export")
    ours, ref = (
        load_file(str(out / "model.safetensors")),
        load_file(str(DATA / "cond" / "model.safetensors")),
    )
    assert sorted(ours) == sorted(ref)
    for k in ref:
        assert torch.equal(ours[k], ref[k]), k
    cfg, ref_cfg = (json.loads((d / "config.json").read_text()) for d in (out, DATA / "cond"))
    for k in (
        "embed_dim",
        "depths",
        "num_heads",
        "skip_connections",
        "window_size",
        "use_conditioning",
        "learn_residual",
        "num_channels",
        "num_out_channels",
        "channel_slice_list_normalized_loss",
    ):
        assert cfg[k] == ref_cfg[k], k
    again = ScOT.from_pretrained(out)
    u, t = torch.randn(1, 3, 32, 32), torch.tensor([0.4])
    with torch.no_grad():
        assert torch.equal(again(u, t=t), model(u, t=t))


def test_poseidon_export_refuses_a_residual_without_time_conditioning(tmp_path):
    """scOT honours learn_residual only with use_conditioning, so this model would have come
    back from its Poseidon export without the residual: the output off by exactly the input
    (measured: max difference 3.34 = max |u|). It is refused before any file is written."""
    cfg = ScOTConfig(image_size=16, patch_size=2, embed_dim=8, depths=(1, 1), num_heads=(2, 2),
                     window_size=4, skip_blocks=(1, 0), in_channels=1, out_channels=1,
                     time_conditioning=False, learn_residual=True)  # fmt: skip
    with pytest.raises(ValueError, match="learn_residual=True without time_conditioning"):
        poseidon.save_poseidon(ScOT(cfg), tmp_path / "export")
    assert not (tmp_path / "export").exists()
    # with time conditioning the residual survives the round trip
    cond = ScOT(replace(cfg, time_conditioning=True)).eval()
    again = ScOT.from_pretrained(poseidon.save_poseidon(cond, tmp_path / "cond"))
    assert again.config.learn_residual
    u, t = torch.randn(2, 1, 16, 16), torch.tensor([0.2, 0.9])
    with torch.no_grad():
        assert torch.equal(again(u, t=t), cond(u, t=t))


def test_sciml_save_pretrained_round_trip(tmp_path):
    model = ScOT.from_pretrained(DATA / "plain")
    model.save_pretrained(tmp_path / "ours")
    u = torch.randn(2, 2, 32, 32)
    for same in (sciml.load(tmp_path / "ours"), ScOT.from_pretrained(tmp_path / "ours")):
        assert isinstance(same, ScOT)
        with torch.no_grad():
            assert torch.equal(same(u), model(u))


def test_bin_needing_code_is_refused(tmp_path):
    d = tmp_path / "evil"
    d.mkdir()
    (d / "config.json").write_text((DATA / "plain" / "config.json").read_text())
    state = torch.load(DATA / "plain" / "pytorch_model.bin", weights_only=True)
    state["embeddings.norm.weight"] = _Payload()  # any object that needs code to unpickle
    torch.save(state, d / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="weights_only"):
        ScOT.from_pretrained(d)


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_mismatched_weights_and_unsupported_config_are_clear(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    cfg = json.loads((DATA / "cond" / "config.json").read_text())
    cfg["depths"] = [2, 2, 3]
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "model.safetensors").write_bytes((DATA / "cond" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="missing"):
        ScOT.from_pretrained(d)
    cfg["residual_model"] = "resnet"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="residual_model"):
        ScOT.from_pretrained(d)
    (d / "model.safetensors").unlink()
    cfg["residual_model"] = "convnext"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="no weights"):
        ScOT.from_pretrained(d)


def test_a_tensor_in_two_shards_is_refused_naming_it_and_both_shards(tmp_path):
    """A sharded checkpoint loads as the unsharded one; a tensor present in two shards was
    silently taken from the later shard (here a zeroed copy), now refused."""
    state = load_file(str(DATA / "cond" / "model.safetensors"))
    keys = sorted(state)
    halves = {"a.safetensors": keys[: len(keys) // 2], "b.safetensors": keys[len(keys) // 2 :]}
    d = tmp_path / "sharded"
    d.mkdir()
    (d / "config.json").write_text((DATA / "cond" / "config.json").read_text())
    weight_map = {k: shard for shard, ks in halves.items() for k in ks}
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    for shard, ks in halves.items():
        save_file({k: state[k].contiguous() for k in ks}, str(d / shard))
    whole, sharded = ScOT.from_pretrained(DATA / "cond"), ScOT.from_pretrained(d)
    for (name, a), b in zip(whole.state_dict().items(), sharded.state_dict().values()):
        assert torch.equal(a, b), name
    dup = keys[0]  # in a.safetensors; a zeroed copy in b.safetensors
    save_file(
        {**{k: state[k].contiguous() for k in halves["b.safetensors"]}, dup: 0 * state[dup]},
        str(d / "b.safetensors"),
    )
    with pytest.raises(CheckpointError) as info:
        ScOT.from_pretrained(d)
    assert f"tensor {dup!r} is in two shards, a.safetensors and b.safetensors" in str(info.value)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("depths", [2, 1.5, 3], "depths: expected a non-empty list of integers, got [2, 1.5, 3]"),
        ("depths", 3, "depths: expected a non-empty list of integers, got 3"),
        ("num_heads", [2, True, 4], "num_heads: expected a non-empty list of integers"),
        ("image_size", True, "image_size: expected an integer size"),
        ("image_size", 32.5, "image_size: expected an integer size"),
        ("embed_dim", "16", "embed_dim: expected an integer, got '16'"),
        ("use_conditioning", "false", "use_conditioning: expected true or false, got 'false'"),
        ("layer_norm_eps", "x", "layer_norm_eps: expected a finite number, got 'x'"),
        ("mlp_ratio", float("nan"), "mlp_ratio: expected a finite number, got nan"),
        ("skip_connections", KeyError, "skip_connections: expected 3 entries, one per stage"),
    ],
)
def test_a_damaged_poseidon_config_is_refused_naming_the_key(tmp_path, key, value, message):
    """int() / float() / bool() had read depths [2, 1.5, 3] as [2, 1, 3], image_size true as 1
    and use_conditioning "false" as true (another model, or a mismatch blamed on the weights);
    depths 3 and layer_norm_eps "x" reached a bare TypeError / ValueError naming no key, and a
    missing skip_connections was reported as 'skip_connections=None' against a default of
    len(depths) - 1 entries that could never pass."""
    cfg = json.loads((DATA / "cond" / "config.json").read_text())
    if value is KeyError:
        del cfg[key]
    else:
        cfg[key] = value
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as info:
        poseidon.poseidon_config(tmp_path)
    assert f"config.json: {message}" in str(info.value)
    config, _ = poseidon.poseidon_config(DATA / "cond")  # the undamaged file: its numbers
    assert (config.depths, config.num_heads, config.skip_blocks) == (
        (2, 1, 3),
        (2, 2, 4),
        (2, 1, 0),
    )
    assert (config.image_size, config.embed_dim, config.time_conditioning) == (32, 16, True)


# ----------------------------------------------------------------------- layers
def _naive_window_attention(attn: WindowAttention, x, mask=None):
    """Straight from the Swin-v2 formula, without SDPA or fused qkv."""
    bw, n, c = x.shape
    h = attn.num_heads
    wq, wk, wv = attn.qkv.weight.chunk(3)
    q = (x @ wq.T + attn.q_bias).view(bw, n, h, -1).transpose(1, 2)
    k = (x @ wk.T).view(bw, n, h, -1).transpose(1, 2)
    v = (x @ wv.T + attn.v_bias).view(bw, n, h, -1).transpose(1, 2)
    cos = (q / q.norm(dim=-1, keepdim=True)) @ (k / k.norm(dim=-1, keepdim=True)).transpose(-1, -2)
    scale = attn.logit_scale.clamp(max=math.log(100)).exp()
    wh, ww = attn.window
    pos = torch.stack(
        torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij"), -1
    ).reshape(-1, 2)
    d = (pos[:, None] - pos[None]).double()  # (N, N, 2) offsets
    d = d / torch.tensor([wh - 1, ww - 1]).double() * 8
    phi = (torch.sign(d) * torch.log2(d.abs() + 1) / 3).float()
    bias = 16 * torch.sigmoid(attn.cpb(phi)).permute(2, 0, 1)  # (h, N, N)
    s = scale * cos + bias
    if mask is not None:
        s = s.view(-1, mask.shape[0], h, n, n) + mask[None, :, None]
        s = s.view(bw, h, n, n)
    y = (s.softmax(-1) @ v).transpose(1, 2).reshape(bw, n, c)
    return attn.proj(y)


def test_window_attention_matches_formula_with_and_without_mask():
    torch.manual_seed(0)
    attn = WindowAttention(12, 3, (4, 4))
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.5)
        attn.logit_scale.copy_(
            torch.log(torch.tensor([3.0, 30.0, 200.0])).view(3, 1, 1)
        )  # 200: clamped
    x = torch.randn(2 * 4, 16, 12)
    mask = shifted_window_mask(8, 8, 4, 2)
    for m in (None, mask):
        got = attn(x, m)
        want = _naive_window_attention(attn, x, m)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        with torch.no_grad():  # the cached inference path agrees too
            torch.testing.assert_close(attn(x, m), want, rtol=1e-4, atol=1e-5)


def test_shifted_block_does_not_attend_across_roll_seams():
    """On an 8x8 grid with window 4 / shift 2, tokens (0-1, 0-1) sit in a rolled window together with
    tokens from the far side of the grid (rows/cols 6-7). Changing those must not change it
    through attention; with the mask disabled it would."""
    torch.manual_seed(0)
    blk = SwinV2Block(8, 2, (8, 8), window=4, shift=2).eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(1, 8, 8, 8)
    x2 = x.clone()
    x2[:, 6:, 6:] += 5.0  # same rolled window as (0, 0), a different region
    with torch.no_grad():
        y, y2 = blk(x), blk(x2)
        assert float((y - y2)[0, :2, :2].abs().max()) < 1e-6
        blk._masks = {k: torch.zeros_like(v) for k, v in blk._masks.items()}  # drop the seam mask
        assert float((blk(x) - blk(x2))[0, :2, :2].abs().max()) > 1e-2
    assert float(shifted_window_mask(8, 8, 4, 2).min()) == MASK_VALUE


def test_window_is_clipped_to_small_grids():
    blk = SwinV2Block(8, 2, (4, 4), window=16, shift=8)
    assert (blk.window, blk.shift) == (4, 0)
    blk = SwinV2Block(8, 2, (32, 32), window=16, shift=8)
    assert (blk.window, blk.shift) == (16, 8)


def test_conditional_layer_norm_is_affine_in_t():
    torch.manual_seed(0)
    norm = ConditionalLayerNorm(6)
    with torch.no_grad():
        for p in norm.parameters():
            p.normal_()
    x = torch.randn(3, 5, 6)
    t = torch.tensor([0.0, 0.5, 2.0])
    xn = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    gamma = norm.scale.weight[:, 0] * t[:, None] + norm.scale.bias
    beta = norm.shift.weight[:, 0] * t[:, None] + norm.shift.bias
    torch.testing.assert_close(
        norm(x, t), gamma[:, None] * xn + beta[:, None], rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="lead time"):
        norm(x, None)
    with pytest.raises(ValueError, match="1 or batch=3"):
        norm(x, torch.ones(2))


def test_a_standalone_conditional_norm_refuses_a_lead_time_past_its_dtype():
    """A float16 norm cast t = 1e5 to inf and returned NaN without an error; the value as given
    is refused (number, float32 / int64 tensor, list), and its largest value 65504 runs and
    matches the float64 closed form gamma(t) LN(x) + beta(t)."""
    norm = ConditionalLayerNorm(4).half()
    norm.scale.weight.data.fill_(0.01)
    x = torch.tensor([[0.5, -1.0, 2.0, 0.25]])
    past = "past the largest torch.float16 value 65504.0 (the dtype the norm runs in)"
    head = "ConditionalLayerNorm expected a lead time t no larger than its dtype holds, got t"
    for t, given in [
        (1e5, "=100000.0"),
        (torch.tensor([1e5]), " with values [100000.0]"),
        (torch.tensor([100000]), " with values [100000]"),
        ([1e5], " with values [100000.0]"),
    ]:
        with pytest.raises(ValueError) as info:
            norm(x.half(), t)
        assert str(info.value) == f"{head}{given}, {past}"
    ln = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-5)
    want = (0.01 * 65504.0 + 1.0) * ln.double()  # scale 0.01 t + 1, shift 0
    torch.testing.assert_close(norm(x.half(), 65504.0).double(), want, rtol=2e-3, atol=0)
    torch.testing.assert_close(
        norm(x.half(), torch.tensor([65504.0], dtype=torch.float64)).double(),
        want,
        rtol=2e-3,
        atol=0,
    )
    # float16 autocast on a float32 norm: its maps run in float16, so 1e5 is refused there too
    norm = ConditionalLayerNorm(4)
    norm.scale.weight.data.fill_(0.01)
    with (
        torch.autocast("cpu", dtype=torch.float16),
        pytest.raises(ValueError, match="torch.float16 value"),
    ):
        norm(x, 1e5)
    torch.testing.assert_close(
        norm(x, 1e5).double(), (0.01 * 1e5 + 1.0) * ln.double(), rtol=1e-5, atol=0
    )


def test_fourier_resample_is_exact_on_trigonometric_polynomials():
    def f(n):
        s = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
        xx, yy = torch.meshgrid(s, s, indexing="ij")
        return torch.sin(3 * xx) * torch.cos(2 * yy) + 0.5 * torch.cos(5 * xx + yy)

    for n, m in ((24, 40), (40, 24), (17, 32), (32, 17)):
        torch.testing.assert_close(fourier_resample(f(n), (m, m)), f(m), rtol=0, atol=1e-12)


# ----------------------------------------------------------------------- model
def test_presets_and_config_errors():
    assert ScOTConfig.poseidon("t").embed_dim == 48
    assert ScOTConfig.poseidon("B").depths == (8, 8, 8, 8)
    large = ScOTConfig.poseidon("L", in_channels=1)
    assert (large.embed_dim, large.num_heads, large.window_size, large.in_channels) == (
        192,
        (3, 6, 12, 24),
        16,
        1,
    )
    with pytest.raises(ValueError, match="divisible"):
        ScOTConfig(image_size=36, patch_size=4)
    with pytest.raises(ValueError, match="T, B, L"):
        ScOTConfig.poseidon("XL")


def test_an_mlp_ratio_that_leaves_no_hidden_channel_is_refused():
    # int(0.1 * 8) = 0 hidden channels: every block's MLP returned its output bias whatever the
    # input, and the model built without a word
    with pytest.raises(ValueError, match=r"mlp_ratio=0.1 gives no hidden channel at embed_dim=8"):
        ScOTConfig(embed_dim=8, num_heads=(1, 2, 4, 8), mlp_ratio=0.1)
    with pytest.raises(ValueError, match=r"mlp_ratio=0.1 at dim=8"):
        SwinV2Block(8, 2, (4, 4), window=4, mlp_ratio=0.1)
    block = SwinV2Block(8, 2, (4, 4), window=4, mlp_ratio=1 / 8)  # the least: one channel
    assert block.mlp[0].weight.shape == (1, 8)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"shift": True}, TypeError, "expected shift to be an int >= 0, got True"),  # rolled by 1
        ({"shift": 1.0}, TypeError, "expected shift to be an int >= 0, got 1.0"),  # forward failed
        ({"grid": (8,)}, ValueError, r"expected grid as \(h, w\) of sizes >= 1, got \(8,\)"),
        ({"grid": 8}, TypeError, "expected grid as a tuple of ints, got 8"),
    ],
)
def test_swin_block_names_a_bad_shift_or_grid(kwargs, error, match):
    args = {"grid": (8, 8), "shift": 0, **kwargs}
    with pytest.raises(error, match=match):
        SwinV2Block(8, 2, args.pop("grid"), window=4, **args)


def test_drop_path_rates_and_shifts_follow_the_reference():
    """Stochastic depth rises linearly over the 2 * sum(depths) blocks, encoder first; a decoder
    stage holds its level's blocks in reverse (rates ascending along the decoder, shifts of the
    encoder order reversed). The lists were read off the reference scOT for this config."""
    cfg = ScOTConfig(image_size=64, patch_size=2, embed_dim=8, depths=(2, 3, 1),
                     num_heads=(2, 2, 2), window_size=8, skip_blocks=(1, 1, 0), in_channels=1,
                     out_channels=1, drop_path_rate=0.3)  # fmt: skip
    model = ScOT(cfg)
    rate = [0.3 * k / 11 for k in range(12)]  # linspace(0, 0.3, 12)
    enc = [b.drop_path.p for stage in model.encoder for b in stage.blocks]
    dec = [b.drop_path.p for stage in model.decoder for b in stage.blocks]
    assert [len(stage.blocks) for stage in model.decoder] == [1, 3, 2]
    assert enc == pytest.approx(rate[:6], abs=1e-7)
    assert dec == pytest.approx(rate[6:], abs=1e-7)
    # grids 32, 16, 8 with window 8: only levels 0 and 1 shift (by 4), odd encoder blocks
    assert [[b.shift for b in stage.blocks] for stage in model.encoder] == [[0, 4], [0, 4, 0], [0]]
    assert [[b.shift for b in stage.blocks] for stage in model.decoder] == [[0], [0, 4, 0], [4, 0]]


def test_a_poseidon_config_without_drop_path_rate_takes_the_references_default(tmp_path):
    """The reference ScOTConfig (camlab-ethz/poseidon scOT/model.py) defaults drop_path_rate to
    0.1; a config.json without the key was read as 0.0 (no stochastic depth in fine-tuning).
    The rates rise linearly to 0.1 over the 2 * sum(depths) = 12 blocks, as the reference's
    linspace."""
    cfg = json.loads((DATA / "cond" / "config.json").read_text())
    del cfg["drop_path_rate"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    config, _ = poseidon.poseidon_config(tmp_path)
    assert config.drop_path_rate == 0.1
    model = ScOT(config)
    rates = [b.drop_path.p for stage in model.encoder for b in stage.blocks]
    assert rates == pytest.approx([0.1 * k / 11 for k in range(6)], abs=1e-7)
    stated, _ = poseidon.poseidon_config(DATA / "cond")  # a stated 0.0 is kept
    assert stated.drop_path_rate == 0.0


def test_initialisation_follows_the_reference():
    """The reference's init (HF Swin-v2) draws every nn.Linear / nn.Conv2d from N(0, 0.02) with zero
    bias and leaves the recovery's nn.ConvTranspose2d at PyTorch's default: weight and bias
    U(-b, b), b = 1 / sqrt(fan_in), fan_in = out_channels * p^2 (measured on the reference code:
    weight std 0.0846 for 3 channels and p = 4, against 0.02 here before)."""
    torch.manual_seed(0)
    cfg = ScOTConfig(image_size=64, patch_size=4, embed_dim=32, depths=(2, 2), num_heads=(2, 4),
                     window_size=8, skip_blocks=(1, 0), in_channels=3, out_channels=3)  # fmt: skip
    model = ScOT(cfg)
    w, b = model.recovery.proj.weight, model.recovery.proj.bias
    bound = 1 / math.sqrt(3 * 4 * 4)
    assert float(w.abs().max()) <= bound and float(b.abs().max()) <= bound
    assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert float(b.abs().min()) > 0
    qkv = model.encoder[0].blocks[0].attn.qkv.weight
    assert float(qkv.std()) == pytest.approx(0.02, rel=0.1)
    assert float(model.embed.proj.weight.std()) == pytest.approx(0.02, rel=0.1)
    assert float(model.embed.proj.bias.abs().max()) == 0.0


def test_forward_errors_name_what_was_expected():
    model = ScOT(
        ScOTConfig(
            in_channels=2,
            out_channels=1,
            image_size=16,
            patch_size=2,
            embed_dim=8,
            depths=(1, 1),
            num_heads=(2, 2),
            window_size=4,
            skip_blocks=(1, 0),
        )
    )
    with pytest.raises(ValueError, match=r"\(batch, 2, h, w\)"):
        model(torch.randn(1, 3, 16, 16), t=0.1)
    with pytest.raises(ValueError, match="pass t"):
        model(torch.randn(1, 2, 16, 16))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
def test_autocast_passes_the_blocks_dtype_checks(dtype):
    """Under CPU autocast the blocks meet low-precision activations with float32 weights, which
    their dtype checks (integer and float32/float64 mismatches only) must let through: a
    conditioned, skip-connected ScOT at its own and at another resolution (Fourier-resampled)
    runs forward and backward, within the low precision's accuracy of float32 (measured
    2.7e-3 bfloat16, 3.1e-4 float16), with float32 gradients on every parameter; a float64
    model under autocast stays float64 (autocast leaves float64 alone)."""
    torch.manual_seed(0)
    cfg = ScOTConfig(in_channels=2, out_channels=2, image_size=32, patch_size=4, embed_dim=16,
                     depths=(1, 1), num_heads=(2, 4), window_size=4, skip_blocks=(1, 0))  # fmt: skip
    model = ScOT(cfg)
    t = torch.tensor([0.5, 1.0])
    tol = {torch.bfloat16: 1e-2, torch.float16: 2e-3}[dtype]
    for size in (32, 24):
        u = torch.randn(2, 2, size, size)
        with torch.no_grad():
            ref = model(u, t=t)
        model.zero_grad()
        with torch.autocast("cpu", dtype=dtype):
            y = model(u, t=t)
        assert y.dtype == dtype
        assert ((y.float() - ref).norm() / ref.norm()).item() < tol
        y.float().square().mean().backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.dtype == torch.float32, name
            assert torch.isfinite(p.grad).all(), name
    wide = model.double()
    u = torch.randn(2, 2, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        ref = wide(u, t=t.double())
        with torch.autocast("cpu", dtype=dtype):
            y = wide(u, t=t.double())
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_width_ratio_is_refused_naming_it(value):
    # int(nan * 8) / round(inf) raised "cannot convert float NaN / infinity to integer"
    from sciml.models import FNOConfig

    with pytest.raises(
        ValueError, match=rf"finite mlp_ratio > 0, got window_size=16, mlp_ratio={value}"
    ):
        ScOTConfig(mlp_ratio=value)
    with pytest.raises(
        ValueError, match=rf"channel_mlp_expansion must be a finite number >= 0, got {value}"
    ):
        FNOConfig(channel_mlp_expansion=value)


def _tiny_scot() -> ScOT:
    torch.manual_seed(0)
    return ScOT(
        ScOTConfig(in_channels=2, out_channels=1, image_size=16, patch_size=2, embed_dim=8,
                   depths=(1, 1), num_heads=(2, 2), window_size=4, skip_blocks=(1, 0))
    ).eval()  # fmt: skip


LEAD_TIME_WORDS = (
    "ScOT expected a finite lead time t >= 0 (the time from the input to the output, as the "
    "model was trained on), got "
)


def test_a_negative_or_non_finite_lead_time_is_refused():
    """A NaN lead time made every output NaN, inf and negative ones ran without a word (the
    model is conditioned on t >= 0, the time from input to output). Now a ValueError naming
    the values, for numbers and tensors alike; t = 0 and positive times still run."""
    model = _tiny_scot()
    u = torch.randn(2, 2, 16, 16)
    bad = {
        math.nan: "t=nan", -0.5: "t=-0.5", math.inf: "t=inf",
        torch.tensor([0.5, math.nan]): "t with values [nan]",
        torch.tensor([-1.0, 0.25]): "t with values [-1.0]",
        torch.tensor(-math.inf): "t with values [-inf]",
    }  # fmt: skip
    with torch.no_grad():
        for t, given in bad.items():
            with pytest.raises(ValueError) as info:
                model(u, t=t)
            assert str(info.value) == LEAD_TIME_WORDS + given
        # zero and positive times pass: a float, a 0-d tensor and a (batch,) tensor alike
        want = model(u, t=torch.tensor([0.0, 0.75]))
        assert bool(want.isfinite().all())
        torch.testing.assert_close(model(u[:1], t=0.0), want[:1], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(
            model(u[1:], t=torch.tensor(0.75)), want[1:], rtol=1e-6, atol=1e-6
        )


def test_a_lead_time_past_the_models_dtype_is_refused_naming_the_value_given():
    """t is checked as given, before the cast to the model's dtype: in float16 (largest finite
    value 65504) a t of 1e5 became inf on the way, so a tensor was refused as 'values [inf]'
    and a number ran to non-finite outputs without an error; under float16 autocast (float32
    weights, float16 norms) the same. Now a ValueError naming 100000.0 and the dtype; 65504
    itself, a NaN and a valid t behave as before."""
    model = _tiny_scot().half()
    u = torch.randn(2, 2, 16, 16).half()
    past = ", past the largest torch.float16 value 65504.0 (the dtype the model runs in)"
    with torch.no_grad():
        for t, given in (
            (1e5, "t=100000.0"),
            (torch.tensor([1e5, 0.5]), "t with values [100000.0]"),
            (torch.tensor([0.5, 7e4], dtype=torch.float64), "t with values [70000.0]"),
            (torch.tensor([65520, 1]), "t with values [65520]"),
        ):
            with pytest.raises(ValueError) as info:
                model(u, t=t)
            assert str(info.value) == LEAD_TIME_WORDS + given + past
        with pytest.raises(ValueError) as info:
            model(u, t=torch.tensor([math.nan, 1e5]))
        assert str(info.value) == LEAD_TIME_WORDS + "t with values [nan]"
        # the largest float16 is representable: no error (the cast is exact)
        model(u, t=torch.tensor([65504.0, 0.5]))
        want = model(u, t=torch.tensor([0.25, 0.5]))
        assert bool(want.isfinite().all())
        torch.testing.assert_close(model(u[:1], t=0.25), want[:1], rtol=2e-3, atol=2e-3)
        wide = _tiny_scot()
        with torch.autocast("cpu", dtype=torch.float16), pytest.raises(ValueError) as info:
            wide(u.float(), t=1e5)
        assert str(info.value) == LEAD_TIME_WORDS + "t=100000.0" + past
        assert bool(wide(u.float(), t=1e5).isfinite().all())  # float32 holds it


@pytest.mark.slow
def test_a_negative_or_nan_lead_time_is_refused_when_compiled_or_exported():
    """Under torch.compile (fullgraph, no graph break) and torch.export the check is an assert
    in the graph with the same words (reading t would break the graph); valid times give the
    eager outputs. About 25 s on a loaded CPU (compile and export)."""
    model = _tiny_scot()
    u, t = torch.randn(2, 2, 16, 16), torch.tensor([0.0, 0.75])
    with torch.no_grad():
        want = model(u, t=t)
    explained = torch._dynamo.explain(model)(u, t=t)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    program = torch.export.export(model, (u,), {"t": t}).module()
    with torch.no_grad():
        torch.testing.assert_close(compiled(u, t=t), want, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(program(u, t=t), want, rtol=1e-6, atol=1e-6)
        for run in (compiled, program):
            for bad in (torch.tensor([0.5, math.nan]), torch.tensor([-1.0, 0.25])):
                with pytest.raises(RuntimeError) as info:
                    run(u, t=bad)
                assert LEAD_TIME_WORDS + "a negative, NaN or infinite value" in str(info.value)
    torch._dynamo.reset()


def test_a_compiled_scot_compiles_once_for_every_float_lead_time():
    """dynamo takes a Python float for a constant of the graph: torch.compile(model) called with
    t = 0.1, 0.2, 0.3, 2 traced a graph for each (the old code: CompileCounter 4). A forward
    pre-hook run outside the compiled frame hands the graph a tensor: one graph for every float
    (and an int) t, whose outputs equal the eager model's bit for bit."""
    from torch._dynamo.testing import CompileCounter

    model = _tiny_scot()
    u = torch.randn(2, 2, 16, 16)
    torch._dynamo.reset()
    try:
        counter = CompileCounter()
        compiled = torch.compile(model, backend=counter)
        with torch.no_grad():
            for t in (0.1, 0.2, 0.3, 2):
                torch.testing.assert_close(compiled(u, t=t), model(u, t=t), rtol=0, atol=0)
        assert counter.frame_count == 1
    finally:
        torch._dynamo.reset()


@pytest.mark.slow
def test_a_scot_inside_a_compiled_module_takes_float_lead_times_without_a_graph_break():
    """Inside a larger compiled module dynamo traces the hooks with the model: the lead-time
    hook must break no graph (fullgraph=True) and forward makes the tensor itself, so floats
    cost at most two graphs (the first call's constant, then a symbolic float); the old code
    traced one per t. Outputs equal the eager model's. About 20 s on a loaded CPU."""
    from torch._dynamo.testing import CompileCounter

    model = _tiny_scot()
    u = torch.randn(2, 2, 16, 16)

    class Outer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scot = model

        def forward(self, u: torch.Tensor, t: float) -> torch.Tensor:
            return 2 * self.scot(u, t=t)

    torch._dynamo.reset()
    try:
        counter = CompileCounter()
        compiled = torch.compile(Outer(), backend=counter, fullgraph=True)
        with torch.no_grad():
            for t in (0.1, 0.2, 0.3, 0.4):
                torch.testing.assert_close(compiled(u, t=t), 2 * model(u, t=t), rtol=0, atol=0)
        assert counter.frame_count <= 2
    finally:
        torch._dynamo.reset()


def _loop_window_attention(attn: WindowAttention, x: torch.Tensor, ws: int, s: int):
    """Swin-v2 shifted-window attention on a (b, H, W, c) grid (H, W multiples of ws), one
    query token at a time, from the definition: token (i, j) attends to (k, l) iff both lie in
    the same ws x ws window of the grid rolled by -s and the roll wraps neither coordinate
    between them (else they came from opposite sides of the grid), with the log-spaced
    position bias of their offset; masked keys left out (the layer adds MASK_VALUE instead)."""
    b, H, W, c = x.shape
    heads, d = attn.num_heads, c // attn.num_heads
    zeros = torch.zeros_like(attn.v_bias)
    qkv = torch.nn.functional.linear(
        x, attn.qkv.weight, torch.cat([attn.q_bias, zeros, attn.v_bias])
    )
    q, k, v = qkv.view(b, H, W, 3, heads, d).unbind(3)  # each (b, H, W, heads, d)
    q, k = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(k, dim=-1)
    scale = attn.logit_scale.clamp(max=math.log(100.0)).exp().view(heads)
    table = 16 * torch.sigmoid(attn.cpb(attn.rel_table))  # ((2 ws - 1)^2, heads)
    out = torch.zeros(b, H, W, heads, d, dtype=x.dtype)
    cells = [(i, j) for i in range(H) for j in range(W)]
    for i, j in cells:
        ri, rj = (i - s) % H, (j - s) % W
        keys = [
            (kk, ll, ri - (kk - s) % H, rj - (ll - s) % W)
            for kk, ll in cells
            if ri // ws == (kk - s) % H // ws and rj // ws == (ll - s) % W // ws
            and i - kk == ri - (kk - s) % H and j - ll == rj - (ll - s) % W
        ]  # fmt: skip
        rows, cols = [kk for kk, *_ in keys], [ll for _, ll, *_ in keys]
        bias = table[[(di + ws - 1) * (2 * ws - 1) + dj + ws - 1 for *_, di, dj in keys]]
        logits = scale * torch.einsum("bhd,bnhd->bnh", q[:, i, j], k[:, rows, cols]) + bias
        out[:, i, j] = torch.einsum("bnh,bnhd->bhd", logits.softmax(1), v[:, rows, cols])
    return attn.proj(out.reshape(b, H, W, c))


@pytest.mark.parametrize(
    "grid, window, shift",
    [((8, 8), 4, 2), ((8, 12), 4, 1), ((6, 10), 4, 2), ((5, 7), 4, 3), ((8, 8), 4, 0)],
)
def test_a_shifted_window_block_matches_a_loop_over_its_tokens(grid, window, shift):
    """SwinV2Block (roll, window partition, seam mask, zero padding of a grid that is no
    multiple of the window, reverse roll, crop) against the definition token by token
    (_loop_window_attention on the zero-padded grid, as the reference pads), in float64 with
    every parameter drawn at random: square, non-square, padded and unshifted grids."""
    torch.manual_seed(0)
    blk = SwinV2Block(8, 2, grid, window=window, shift=shift, conditional=True).double().eval()
    assert (blk.window, blk.shift) == (window, shift)
    with torch.no_grad():
        for p in blk.parameters():
            p.normal_(0, 0.5)
        x, t = torch.randn(2, *grid, 8, dtype=torch.float64), torch.tensor([0.3, 1.2])
        h, w = grid
        padded = torch.nn.functional.pad(x, (0, 0, 0, (-w) % window, 0, (-h) % window))
        y = _loop_window_attention(blk.attn, padded, window, shift)[:, :h, :w]
        want = x + blk.norm1(y, t)
        want = want + blk.norm2(blk.mlp(want), t)
        torch.testing.assert_close(blk(x, t), want, rtol=1e-10, atol=1e-10)


def test_a_non_square_grid_clips_the_window_to_its_shorter_side():
    """The Swin-v2 reference rule (microsoft/Swin-Transformer; HF's Swin): when min(h, w) <= the
    window, the window becomes min(h, w) and the shift 0. By hand: (8, 32) at window 16 gives
    min = 8 <= 16, so window 8, shift 0 (the old "both sides" test kept 16 and padded 8 zero rows
    into every window); (32, 8) the same; (8, 32) at window 4 is not clipped. The forward pass on
    the (8, 32) grid equals the token loop with 8 x 8 windows and no roll (float64)."""
    for grid, window, shift, want in (
        ((8, 32), 16, 8, (8, 0)), ((32, 8), 16, 8, (8, 0)), ((6, 40), 6, 3, (6, 0)),
        ((8, 32), 4, 2, (4, 2)), ((16, 16), 8, 4, (8, 4)),
    ):  # fmt: skip
        blk = SwinV2Block(8, 2, grid, window=window, shift=shift)
        assert (blk.window, blk.shift) == want, (grid, window, shift)
    torch.manual_seed(0)
    blk = SwinV2Block(8, 2, (8, 32), window=16, shift=8, conditional=True).double().eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.normal_(0, 0.5)
        x, t = torch.randn(2, 8, 32, 8, dtype=torch.float64), torch.tensor([0.3, 1.2])
        want = x + blk.norm1(_loop_window_attention(blk.attn, x, 8, 0), t)
        want = want + blk.norm2(blk.mlp(want), t)
        torch.testing.assert_close(blk(x, t), want, rtol=1e-10, atol=1e-10)


def test_patch_merging_and_unmerging_follow_the_references_token_layout():
    """PatchMerging / PatchUnmerging against index loops of the reference's layout (scOT's
    ScOTPatchMerging / ScOTPatchUnmerging): a merged token (i, j) reads x(2i, 2j), x(2i+1, 2j),
    x(2i, 2j+1), x(2i+1, 2j+1) in that order (zeros past an odd grid's edge); an unmerged token
    (r, s) is sub-token (r % 2) * 2 + s % 2 of token (r // 2, s // 2), cropped to the size
    asked. Both with time-conditioned norms, float64, random weights, an odd 5 x 7 grid."""
    from sciml.layers import PatchMerging, PatchUnmerging

    torch.manual_seed(0)
    merge = PatchMerging(3, conditional=True).double()
    unmerge = PatchUnmerging(6, conditional=True).double()
    with torch.no_grad():
        for p in (*merge.parameters(), *unmerge.parameters()):
            p.normal_()
        x, t = torch.randn(2, 5, 7, 3, dtype=torch.float64), torch.tensor([0.2, 0.9])
        z = merge(x, t)
        assert z.shape == (2, 3, 4, 6)
        padded = torch.zeros(2, 6, 8, 3, dtype=torch.float64)
        padded[:, :5, :7] = x
        want = torch.empty(2, 3, 4, 6, dtype=torch.float64)
        for i in range(3):
            for j in range(4):
                four = [
                    padded[:, 2 * i + a, 2 * j + b_] for a, b_ in ((0, 0), (1, 0), (0, 1), (1, 1))
                ]
                want[:, i, j] = merge.reduction(torch.cat(four, -1))
        torch.testing.assert_close(z, merge.norm(want, t), rtol=1e-12, atol=1e-12)
        y = unmerge(z, (5, 7), t)
        expanded = unmerge.expand(z)  # (2, 3, 4, 12): four sub-tokens of 3 channels
        want = torch.empty(2, 5, 7, 3, dtype=torch.float64)
        for r in range(5):
            for s in range(7):
                k = (r % 2) * 2 + s % 2
                want[:, r, s] = expanded[:, r // 2, s // 2, 3 * k : 3 * (k + 1)]
        torch.testing.assert_close(y, unmerge.mix(unmerge.norm(want, t)), rtol=1e-12, atol=1e-12)


def test_a_complex_or_bool_lead_time_is_refused_before_it_is_cast():
    """A complex t is refused by its dtype before any cast: the cast came first and torch warned
    'Casting complex values to real discards the imaginary part' on the way to the TypeError;
    the lead time conditions every norm, so nothing of it may be dropped silently or loudly."""
    import warnings

    cfg = ScOTConfig(image_size=16, patch_size=2, embed_dim=8, depths=(1, 1), num_heads=(2, 2),
                     window_size=4, skip_blocks=(1, 0), in_channels=1, out_channels=1)  # fmt: skip
    model = ScOT(cfg)
    u = torch.randn(2, cfg.in_channels, 16, 16)
    for t, given in (
        (torch.tensor([0.5, 1j]), "torch.complex64"),
        (torch.tensor(True), "torch.bool"),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(TypeError, match=f"expected a real lead time t .*got {given}"):
                model(u, t=t)
        assert [str(w.message) for w in caught] == []
    ok = model(u, t=torch.tensor([0.5, 1.0]))
    assert torch.isfinite(ok).all()
