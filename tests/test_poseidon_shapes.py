"""Damaged Poseidon checkpoints are refused naming what is wrong: tensors that do not fit their
config under the file's own tensor names, a damaged shard index or a missing shard by file
(tests/data/scot: written by the reference scOT code)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from sciml.errors import CheckpointError
from sciml.models import ScOT
from sciml.pretrained.poseidon import from_poseidon_state_dict, load_poseidon, poseidon_config

DATA = Path(__file__).parent / "data" / "scot"
QUERY = "encoder.layers.0.blocks.0.attention.self.query.weight"
KEY = "encoder.layers.0.blocks.0.attention.self.key.weight"
POS = "embeddings.position_embeddings"
BIAS = "embeddings.patch_embeddings.projection.bias"


def _state(case: str) -> dict[str, torch.Tensor]:
    if (DATA / case / "model.safetensors").is_file():
        return load_file(str(DATA / case / "model.safetensors"))
    return torch.load(DATA / case / "pytorch_model.bin", weights_only=True)


@pytest.mark.parametrize(
    "case, key, cut, message",
    [
        ("cond", QUERY, lambda w: w[:, :8], f"tensor {QUERY!r} has shape (16, 8), the scOT "
         "config builds (16, 16) (sciml's 'encoder.0.blocks.0.attn.qkv.weight')"),
        ("cond", KEY, lambda w: torch.cat([w, w[:4]]), f"tensor {KEY!r} has shape (20, 16), "
         "the scOT config builds (16, 16) (sciml's 'encoder.0.blocks.0.attn.qkv.weight')"),
        ("plain", POS, lambda w: w[:, :-3], f"tensor {POS!r} has shape (1, 253, 16), the scOT "
         "config builds (1, 256, 16) (sciml's 'pos')"),
        ("cond", BIAS, lambda w: w[:-1], f"tensor {BIAS!r} has shape (15,), the scOT config "
         "builds (16,) (sciml's 'embed.proj.bias')"),
    ],
)  # fmt: skip
def test_a_tensor_of_another_shape_is_named_as_the_checkpoint_names_it(
    tmp_path, case, key, cut, message
):
    """A query / key / value of another shape had reached torch.cat's bare 'Sizes of tensors
    must match except in dimension 0' (columns) or been named as sciml's fused qkv with the sum
    of the three (rows); a position embedding of another length a bare 'shape [1, 16, 16, -1] is
    invalid'; any other tensor was named by sciml's name only."""
    state = _state(case)
    state[key] = cut(state[key])
    d = tmp_path / case
    d.mkdir()
    shutil.copy(DATA / case / "config.json", d / "config.json")
    save_file({k: v.contiguous() for k, v in state.items()}, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError) as info:
        load_poseidon(d)
    assert str(info.value) == f"{d}: {message}"
    config, _ = poseidon_config(DATA / case)
    with pytest.raises(CheckpointError) as info:
        from_poseidon_state_dict(state, config)
    assert str(info.value) == f"state dict: {message}"


@pytest.mark.parametrize("case", ["cond", "plain", "pad"])
def test_the_fitting_checkpoints_still_map_tensor_for_tensor(case):
    """The renamed state holds the file's tensors unchanged: q / k / v stacked in that order,
    the position embedding reshaped to the token grid (checked against the file by hand)."""
    state = _state(case)
    config, _ = poseidon_config(DATA / case)
    out = from_poseidon_state_dict(state, config)
    assert set(out) == set(ScOT(config).state_dict())
    qkv = out["encoder.0.blocks.0.attn.qkv.weight"]
    c = state[QUERY].shape[0]
    for part, name in zip(qkv.split(c), ("query", "key", "value")):
        assert torch.equal(part, state[QUERY.replace("query", name)])
    if POS in state:
        g = config.grid
        assert torch.equal(out["pos"][0, 3, 5], state[POS][0, 3 * g + 5])


@pytest.mark.parametrize(
    "weight_map, message",
    [
        (["a.bin"], "weight_map: expected a non-empty object of tensor name -> shard file name, "
         "got ['a.bin']"),
        ({"x": 3}, "weight_map: expected a non-empty object of tensor name -> shard file name, "
         "got {'x': 3}"),
        ({}, "weight_map: expected a non-empty object of tensor name -> shard file name, got {}"),
        ("missing", "shard 'gone.bin' is not in "),
    ],
)  # fmt: skip
def test_a_damaged_shard_index_or_a_missing_shard_is_named(tmp_path, weight_map, message):
    """A weight_map that is a list or maps to a number had reached a bare AttributeError /
    TypeError, a .bin shard named in the index but absent torch.load's bare FileNotFoundError.
    The intact two-shard .bin checkpoint loads tensor for tensor as the single file."""
    state = _state("plain")
    keys = sorted(state)
    halves = {"a.bin": keys[: len(keys) // 2], "b.bin": keys[len(keys) // 2 :]}
    d = tmp_path / "sharded"
    d.mkdir()
    shutil.copy(DATA / "plain" / "config.json", d / "config.json")
    for shard, ks in halves.items():
        torch.save({k: state[k] for k in ks}, d / shard)
    index = d / "pytorch_model.bin.index.json"
    intact = {k: shard for shard, ks in halves.items() for k in ks}
    index.write_text(json.dumps({"weight_map": intact}))
    whole = load_poseidon(DATA / "plain").state_dict()
    for name, tensor in load_poseidon(d).state_dict().items():
        assert torch.equal(tensor, whole[name]), name
    if weight_map == "missing":
        weight_map = {**intact, keys[0]: "gone.bin"}
    index.write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError) as info:
        load_poseidon(d)
    assert str(info.value).startswith(f"{index}: {message}")


@pytest.mark.parametrize(
    "obj, message",
    [
        (
            lambda st: {"state_dict": st, "step": 5},
            "entry 'state_dict' is of type dict, not a tensor",
        ),
        (lambda st: {**st, "step": 5}, "entry 'step' is of type int, not a tensor"),
        (lambda st: list(st.values()), "expected a dict of tensors, got list"),
    ],
)
def test_a_bin_that_is_not_a_state_dict_names_the_entry(tmp_path, obj, message):
    """A training checkpoint ({"state_dict": ..., "step": 5}) or a state dict with one extra
    non-tensor entry was refused as 'expected a dict of tensors, got dict', naming nothing."""
    d = tmp_path / "plain"
    d.mkdir()
    shutil.copy(DATA / "plain" / "config.json", d / "config.json")
    torch.save(obj(_state("plain")), d / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as info:
        load_poseidon(d)
    assert str(info.value).startswith(f"{d / 'pytorch_model.bin'}: ")
    assert message in str(info.value)


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_a_bin_needing_code_names_what_it_holds(tmp_path, capsys):
    """The refusal quoted the first line of torch's error, 'Weights only load failed. This file
    can still be loaded, to do so you have two options, <ANSI bold>do those steps only if you
    trust the source ...' (which goes on to advise weights_only=False), not what the file
    held."""
    d = tmp_path / "evil"
    d.mkdir()
    shutil.copy(DATA / "plain" / "config.json", d / "config.json")
    torch.save({**_state("plain"), "embeddings.norm.weight": _Payload()}, d / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as info:
        load_poseidon(d)
    assert str(info.value) == (
        f"{d / 'pytorch_model.bin'}: refused: the file cannot be read with "
        "torch.load(weights_only=True) (it needs code to unpickle, or is not a state dict): "
        "it holds print"
    )
    assert "unpickled code ran" not in capsys.readouterr().out


PROJ = "embeddings.patch_embeddings.projection.weight"


def _set(w: torch.Tensor, indices: list[tuple[int, ...]], value: float) -> torch.Tensor:
    w = w.clone()
    for index in indices:
        w[index] = value
    return w


@pytest.mark.parametrize(
    "cut, message",
    [
        (lambda w: w.to(torch.int32), f"tensor {PROJ!r} has dtype torch.int32, expected a real "
         "floating point tensor (float32, float16, bfloat16 or float64) of trained weights"),
        (lambda w: w.to(torch.complex64), f"tensor {PROJ!r} has dtype torch.complex64, expected "
         "a real floating point tensor (float32, float16, bfloat16 or float64) of trained "
         "weights"),
        (lambda w: _set(w, [(3, 1, 0, 1), (2, 0, 1, 0)], float("nan")), f"tensor {PROJ!r} "
         "holds 2 non-finite value(s), the first nan at index (2, 0, 1, 0)"),
        (lambda w: _set(w, [(1, 0, 1, 1)], float("-inf")), f"tensor {PROJ!r} holds 1 non-finite "
         "value(s), the first -inf at index (1, 0, 1, 1)"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("layout", ["safetensors", "shard"])
def test_integer_or_non_finite_weights_are_refused_naming_the_tensor_and_file(
    tmp_path, cut, message, layout
):
    """Integer weights were cast into the float32 model and NaN / inf weights loaded without a
    word (a model answering NaN). The file (or shard) holding the tensor is named, with the
    checkpoint's key and the dtype or the first non-finite index."""
    state = _state("cond")
    state[PROJ] = cut(state[PROJ])
    d = tmp_path / "cond"
    d.mkdir()
    shutil.copy(DATA / "cond" / "config.json", d / "config.json")
    if layout == "safetensors":
        where = d / "model.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(where))
    else:
        where = d / "b.bin"
        torch.save({PROJ: state[PROJ]}, where)
        torch.save({k: v for k, v in state.items() if k != PROJ}, d / "a.bin")
        weight_map = {k: ("b.bin" if k == PROJ else "a.bin") for k in state}
        (d / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError) as info:
        load_poseidon(d)
    assert str(info.value).startswith(f"{where}: {message}")


def test_half_precision_weights_still_load_as_their_float32_values(tmp_path):
    """The refusal of non-float dtypes keeps float16 weights: they load as their exact float32
    values (float16 -> float32 is exact)."""
    state = {k: v.half() for k, v in _state("cond").items()}
    d = tmp_path / "cond"
    d.mkdir()
    shutil.copy(DATA / "cond" / "config.json", d / "config.json")
    save_file({k: v.contiguous() for k, v in state.items()}, str(d / "model.safetensors"))
    config, _ = poseidon_config(d)
    expected = from_poseidon_state_dict({k: v.float() for k, v in state.items()}, config)
    for name, tensor in load_poseidon(d).state_dict().items():
        assert torch.equal(tensor, expected[name]), name
