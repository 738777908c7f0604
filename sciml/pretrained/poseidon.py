"""Read and write checkpoints in the layout of the public Poseidon / scOT models.

A Poseidon checkpoint directory (as on the model hub, e.g. ``camlab-ethz/Poseidon-T``) holds

* ``config.json``: HF ``PretrainedConfig`` fields of scOT (``embed_dim``, ``depths``,
  ``num_heads``, ``skip_connections``, ``use_conditioning``, ...);
* ``model.safetensors`` or ``pytorch_model.bin`` (or sharded ``*.index.json`` variants) with the
  reference parameter names (``encoder.layers.0.blocks.0.attention.self.query.weight``,
  ``embeddings.norm.weight.weight``, ``residual_blocks.0.0.dwconv.weight``, ...).

:func:`load_poseidon` maps both onto :class:`~sciml.models.ScOT` (query / key / value are fused
into one ``qkv`` matrix, the time-conditioned norms' ``weight`` / ``bias`` Linear layers become
``scale`` / ``shift``); :func:`save_poseidon` writes the reverse. Nothing is downloaded. A
``.bin`` file is read with ``torch.load(weights_only=True)``: a file that needs code to unpickle
is refused.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .._scalars import is_int, is_real
from ..errors import CheckpointError

__all__ = [
    "is_poseidon_checkpoint",
    "load_poseidon",
    "save_poseidon",
    "poseidon_config",
    "to_poseidon_state_dict",
    "from_poseidon_state_dict",
]

_REQUIRED = ("embed_dim", "depths", "num_heads", "window_size", "patch_size", "image_size")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def is_poseidon_checkpoint(path: str | os.PathLike) -> bool:
    """True if ``path`` is a directory whose ``config.json`` is an HF scOT config (not sciml's)."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        data = json.loads(cfg.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "format" not in data and all(k in data for k in _REQUIRED)


def poseidon_config(path: str | os.PathLike):
    """``(ScOTConfig, extras)`` from a Poseidon ``config.json`` (a file or its directory).

    ``extras`` holds what is not architecture: ``channel_slices`` (the loss's channel groups,
    ``channel_slice_list_normalized_loss``) and ``p`` (1: L1 loss). Settings sciml does not
    implement (ResNet skips, pretrained window sizes, other activations) raise
    :class:`~sciml.errors.CheckpointError`. A key the file omits takes the reference
    ``ScOTConfig``'s default (``drop_path_rate`` 0.1, which acts in training only).
    """
    from ..models.scot import ScOTConfig

    path = Path(path)
    cfg_path = path / "config.json" if path.is_dir() else path
    d = _read_json(cfg_path)
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise CheckpointError(f"{cfg_path}: not a Poseidon/scOT config, missing {missing}")

    def unsupported(key: str, value: Any, expected: Any) -> None:
        raise CheckpointError(
            f"{cfg_path}: {key}={value!r} is not supported by sciml's ScOT (expected {expected})"
        )

    if d.get("residual_model", "convnext") != "convnext":
        unsupported("residual_model", d["residual_model"], "'convnext'")
    if d.get("hidden_act", "gelu") != "gelu":
        unsupported("hidden_act", d["hidden_act"], "'gelu'")
    if any(d.get("pretrained_window_sizes") or ()):
        unsupported("pretrained_window_sizes", d["pretrained_window_sizes"], "all 0")
    if not d.get("qkv_bias", True):
        unsupported("qkv_bias", False, "true")

    # (why) int() / float() / bool() had read a damaged config as another model (depths
    # [1.5, 1] as [1, 1], image_size true as 1, use_conditioning "false" as true) or failed
    # with a bare TypeError / ValueError naming no key (depths 2, layer_norm_eps "x")
    def bad(key: str, value: Any, expected: str) -> None:
        raise CheckpointError(f"{cfg_path}: {key}: expected {expected}, got {value!r:.60}")

    def integer(key: str, default: Any = None) -> int:
        v = d.get(key, default)
        if not is_int(v):
            bad(key, v, "an integer")
        return int(v)

    def integers(key: str, default: Any = None) -> tuple[int, ...]:
        v = d.get(key, default)
        # (why) the reference scOT reads true / false as 1 / 0 skip blocks
        ok = (lambda x: is_int(x) or isinstance(x, bool)) if key == "skip_connections" else is_int
        if not isinstance(v, list) or not v or not all(ok(x) for x in v):
            bad(key, v, "a non-empty list of integers")
        return tuple(int(x) for x in v)

    def real(key: str, default: float) -> float:
        v = d.get(key, default)
        if not (is_real(v) and math.isfinite(v)):
            bad(key, v, "a finite number")
        return float(v)

    def flag(key: str) -> bool:
        v = d.get(key, False)
        if not isinstance(v, bool):
            bad(key, v, "true or false")
        return v

    def square(key: str) -> int:
        v = d[key]
        if isinstance(v, (list, tuple)):
            if not v or len(set(map(repr, v))) != 1:
                unsupported(key, v, "a square size")
            v = v[0]
        if not is_int(v):
            bad(key, v, "an integer size (or a list of equal ones)")
        return int(v)

    depths = integers("depths")
    if "skip_connections" not in d:
        # (why) the reference's default, 3 entries, builds no model of other than 3 stages and
        # fails in its forward for 4; a hub config always states it
        bad("skip_connections", None, f"{len(depths)} entries, one per stage (it is missing)")
    skips = integers("skip_connections")
    if len(skips) != len(depths):
        unsupported("skip_connections", d.get("skip_connections"), f"{len(depths)} entries")
    cond = flag("use_conditioning")
    if not math.isclose(real("layer_norm_eps", 1e-5), 1e-5):
        unsupported("layer_norm_eps", d["layer_norm_eps"], "1e-05")
    try:
        config = ScOTConfig(
            in_channels=integer("num_channels", 3),
            out_channels=integer("num_out_channels", 1),
            image_size=square("image_size"),
            patch_size=square("patch_size"),
            embed_dim=integer("embed_dim"),
            depths=depths,
            num_heads=integers("num_heads"),
            window_size=square("window_size"),
            skip_blocks=skips,
            mlp_ratio=real("mlp_ratio", 4.0),
            time_conditioning=cond,
            learn_residual=flag("learn_residual") and cond,
            absolute_position_embedding=flag("use_absolute_embeddings"),
            # (why) the reference ScOTConfig's default (its train.py states 0.0 in what it
            # writes); a config without the key read 0.0 here. Training only
            drop_path_rate=real("drop_path_rate", 0.1),
        )
    except ValueError as exc:
        raise CheckpointError(f"{cfg_path}: {exc}") from None
    extras = {"channel_slices": d.get("channel_slice_list_normalized_loss"), "p": d.get("p", 1)}
    return config, extras


def _config_to_poseidon(config, extras: dict[str, Any] | None = None) -> dict[str, Any]:
    c = config
    extras = extras or {}
    return {
        "architectures": ["ScOT"],
        "model_type": "swinv2",
        "image_size": c.image_size,
        "patch_size": c.patch_size,
        "num_channels": c.in_channels,
        "num_out_channels": c.out_channels,
        "embed_dim": c.embed_dim,
        "depths": list(c.depths),
        "num_layers": len(c.depths),
        "num_heads": list(c.num_heads),
        "skip_connections": list(c.skip_blocks),
        "window_size": c.window_size,
        "mlp_ratio": c.mlp_ratio,
        "qkv_bias": True,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "drop_path_rate": c.drop_path_rate,
        "hidden_act": "gelu",
        "use_absolute_embeddings": c.absolute_position_embedding,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-5,
        "hidden_size": c.embed_dim * 2 ** (len(c.depths) - 1),
        "pretrained_window_sizes": [0] * len(c.depths),
        "p": extras.get("p", 1),
        "channel_slice_list_normalized_loss": extras.get("channel_slices"),
        "residual_model": "convnext",
        "use_conditioning": c.time_conditioning,
        "learn_residual": c.learn_residual,
        "torch_dtype": "float32",
    }


# ---------------------------------------------------------------------------- parameter names
def _key_pairs(config) -> tuple[dict[str, str], dict[str, tuple[str, str, str]]]:
    """(poseidon name -> sciml name, sciml qkv name -> (query, key, value) poseidon names)."""
    c = config
    cond = c.time_conditioning
    pairs: dict[str, str] = {}
    fused: dict[str, tuple[str, str, str]] = {}

    def lin(o: str, s: str, bias: bool = True) -> None:
        pairs[f"{o}.weight"] = f"{s}.weight"
        if bias:
            pairs[f"{o}.bias"] = f"{s}.bias"

    def norm(o: str, s: str) -> None:
        if cond:
            lin(f"{o}.weight", f"{s}.scale")
            lin(f"{o}.bias", f"{s}.shift")
        else:
            lin(o, s)

    def block(o: str, s: str) -> None:
        a = f"{o}.attention.self"
        fused[f"{s}.attn.qkv.weight"] = (
            f"{a}.query.weight",
            f"{a}.key.weight",
            f"{a}.value.weight",
        )
        pairs[f"{a}.query.bias"] = f"{s}.attn.q_bias"
        pairs[f"{a}.value.bias"] = f"{s}.attn.v_bias"
        pairs[f"{a}.logit_scale"] = f"{s}.attn.logit_scale"
        lin(f"{a}.continuous_position_bias_mlp.0", f"{s}.attn.cpb.0")
        lin(f"{a}.continuous_position_bias_mlp.2", f"{s}.attn.cpb.2", bias=False)
        lin(f"{o}.attention.output.dense", f"{s}.attn.proj")
        norm(f"{o}.layernorm_before", f"{s}.norm1")
        norm(f"{o}.layernorm_after", f"{s}.norm2")
        lin(f"{o}.intermediate.dense", f"{s}.mlp.0")
        lin(f"{o}.output.dense", f"{s}.mlp.2")

    lin("embeddings.patch_embeddings.projection", "embed.proj")
    norm("embeddings.norm", "embed.norm")
    if c.absolute_position_embedding:
        pairs["embeddings.position_embeddings"] = "pos"  # reshaped (1, G*G, C) <-> (1, G, G, C)
    n = len(c.depths)
    for i, d in enumerate(c.depths):
        for j in range(d):
            block(f"encoder.layers.{i}.blocks.{j}", f"encoder.{i}.blocks.{j}")
        if i < n - 1:
            lin(
                f"encoder.layers.{i}.downsample.reduction",
                f"encoder.{i}.merge.reduction",
                bias=False,
            )
            norm(f"encoder.layers.{i}.downsample.norm", f"encoder.{i}.merge.norm")
    for k in range(n):
        lvl = n - 1 - k
        for j in range(c.depths[lvl]):
            block(f"decoder.layers.{k}.blocks.{j}", f"decoder.{k}.blocks.{j}")
        if lvl > 0:
            u = f"decoder.layers.{k}.upsample"
            lin(f"{u}.upsample", f"decoder.{k}.unmerge.expand", bias=False)
            norm(f"{u}.norm", f"decoder.{k}.unmerge.norm")
            lin(f"{u}.mixup", f"decoder.{k}.unmerge.mix", bias=False)
    for i, count in enumerate(c.skip_blocks):
        for j in range(count):
            o, s = f"residual_blocks.{i}.{j}", f"skips.{i}.{j}"
            lin(f"{o}.dwconv", f"{s}.dwconv")
            norm(f"{o}.norm", f"{s}.norm")
            lin(f"{o}.pwconv1", f"{s}.pwconv1")
            lin(f"{o}.pwconv2", f"{s}.pwconv2")
            pairs[f"{o}.weight"] = f"{s}.gamma"
    lin("patch_recovery.projection", "recovery.proj")
    lin("patch_recovery.mixup", "recovery.mix", bias=False)
    return pairs, fused


def from_poseidon_state_dict(
    state: dict[str, torch.Tensor], config, *, where: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Rename (and fuse) a Poseidon state dict into :class:`~sciml.models.ScOT`'s names.

    Raises :class:`~sciml.errors.CheckpointError` listing missing or unexpected tensors, or
    naming the first tensor whose shape the config does not give (under its Poseidon name).
    """
    pairs, fused = _key_pairs(config)
    expected = set(pairs) | {k for names in fused.values() for k in names}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: tensors do not fit the scOT config: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''} ({len(missing)}), unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''} ({len(unexpected)})"
        )
    # (why) checked under the file's names, before fusing and reshaping: a query / key / value
    # of another shape had reached torch.cat's bare "Sizes of tensors must match" or been named
    # as the fused qkv, and a position embedding of another size a bare reshape error
    for o, (shape, s) in _poseidon_shapes(config, pairs, fused).items():
        if tuple(state[o].shape) != shape:
            raise CheckpointError(
                f"{where}: tensor {o!r} has shape {tuple(state[o].shape)}, the scOT config "
                f"builds {shape} (sciml's {s!r})"
            )
    out = {s: state[o] for o, s in pairs.items()}
    for s, names in fused.items():
        out[s] = torch.cat([state[o] for o in names], dim=0)
    if "pos" in out:
        g = config.grid
        out["pos"] = out["pos"].reshape(1, g, g, -1)
    return out


def _poseidon_shapes(
    config, pairs: dict[str, str], fused: dict[str, tuple[str, str, str]]
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Poseidon name -> (the shape ``config`` gives it, the sciml name it maps to)."""
    from ..models.scot import ScOT

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        shapes = {k: tuple(v.shape) for k, v in ScOT(config).state_dict().items()}
    out = {o: (shapes[s], s) for o, s in pairs.items()}
    for s, names in fused.items():
        rows, *rest = shapes[s]
        for o in names:
            out[o] = ((rows // 3, *rest), s)
    if "embeddings.position_embeddings" in out:
        _, g, g2, c = shapes["pos"]
        out["embeddings.position_embeddings"] = ((1, g * g2, c), "pos")
    return out


def to_poseidon_state_dict(model) -> dict[str, torch.Tensor]:
    """The state dict of a :class:`~sciml.models.ScOT` under Poseidon's parameter names."""
    state = {k: v.detach() for k, v in model.state_dict().items()}
    pairs, fused = _key_pairs(model.config)
    out = {o: state[s] for o, s in pairs.items()}
    for s, names in fused.items():
        for o, part in zip(names, state[s].chunk(3, dim=0)):
            out[o] = part
    if model.config.absolute_position_embedding:
        pos = out["embeddings.position_embeddings"]
        out["embeddings.position_embeddings"] = pos.reshape(1, -1, pos.shape[-1])
    return {k: v.contiguous().cpu() for k, v in out.items()}


# ---------------------------------------------------------------------------- files
def _weights_only_refusal(exc: BaseException) -> str:
    """What ``torch.load(weights_only=True)`` refused, from its error: ``"it holds NAME"`` for
    an object it would need code to rebuild, else the error's last line."""
    # (why) torch's message opens with "Weights only load failed. This file can still be
    # loaded ..." (ANSI-bold, advising weights_only=False); the refused object is named below
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return f"it holds {found.group(1)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _load_bin(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: refused: the file cannot be read with torch.load(weights_only=True) "
            f"(it needs code to unpickle, or is not a state dict): {_weights_only_refusal(exc)}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    for key, value in state.items():
        # (why) a dict with one non-tensor entry (a training checkpoint's {"state_dict": ...,
        # "step": 5}) was refused as "expected a dict of tensors, got dict", naming nothing
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: expected a dict of tensors (a state dict), but entry {key!r} is of type "
                f"{type(value).__name__}, not a tensor; a training checkpoint's model weights "
                "must be saved on their own (torch.save(model.state_dict(), ...))"
            )
    return state


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None


def _check_values(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # (why) load_state_dict copies into the model's float32 parameters: integer weights were
    # cast without a word and NaN / inf weights loaded into a model that answers NaN
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise CheckpointError(
                f"{path}: tensor {key!r} has dtype {tensor.dtype}, expected a real floating "
                "point tensor (float32, float16, bfloat16 or float64) of trained weights"
            )
        bad = (~torch.isfinite(tensor)).nonzero()
        if len(bad):
            index = tuple(int(i) for i in bad[0])
            raise CheckpointError(
                f"{path}: tensor {key!r} holds {len(bad)} non-finite value(s), the first "
                f"{tensor[index].item()} at index {index}; the checkpoint is damaged (or was "
                "saved after training diverged)"
            )
    return state


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    for name, reader in (
        ("model.safetensors", _load_safetensors),
        ("pytorch_model.bin", _load_bin),
    ):
        if (directory / name).is_file():
            return _check_values(directory / name, reader(directory / name))
        index = directory / f"{name}.index.json"
        if index.is_file():
            weight_map = _read_json(index).get("weight_map")
            # (why) a list or a non-string shard reached a bare AttributeError / TypeError
            if (
                not isinstance(weight_map, dict)
                or not weight_map
                or not all(isinstance(v, str) for v in weight_map.values())
            ):
                raise CheckpointError(
                    f"{index}: weight_map: expected a non-empty object of tensor name -> shard "
                    f"file name, got {weight_map!r:.80}"
                )
            shards = sorted(set(weight_map.values()))
            state: dict[str, torch.Tensor] = {}
            origin: dict[str, str] = {}
            for shard in shards:
                if Path(shard).name != shard:
                    raise CheckpointError(f"{index}: shard name {shard!r} leaves the directory")
                if not (directory / shard).is_file():
                    # (why) a missing .bin shard reached torch.load's bare FileNotFoundError
                    raise CheckpointError(f"{index}: shard {shard!r} is not in {directory}")
                part = _check_values(directory / shard, reader(directory / shard))
                # (why) a tensor in two shards was silently taken from the later one
                for key in part:
                    if key in origin:
                        raise CheckpointError(
                            f"{index}: tensor {key!r} is in two shards, {origin[key]} and {shard}"
                        )
                    origin[key] = shard
                state.update(part)
            return state
    raise CheckpointError(
        f"{directory}: no weights; expected model.safetensors or pytorch_model.bin "
        "(or a sharded *.index.json)"
    )


def load_poseidon(path: str | os.PathLike, *, map_location: str | torch.device = "cpu"):
    """Load a Poseidon / scOT checkpoint directory into :class:`~sciml.models.ScOT` (eval mode).

    The loss settings of the checkpoint's config are kept in ``model.poseidon_extras``.
    """
    from ..models.scot import ScOT

    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory (expected config.json + weights)")
    config, extras = poseidon_config(directory)
    state = from_poseidon_state_dict(_read_weights(directory), config, where=str(directory))
    model = ScOT(config)
    expected = model.state_dict()
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{directory}: tensor {name!r} has shape {tuple(tensor.shape)}, the config builds "
                f"{tuple(expected[name].shape)}"
            )
    model.load_state_dict(state, strict=True)
    model.poseidon_extras = extras
    return model.to(map_location).eval()


def save_poseidon(
    model, directory: str | os.PathLike, *, extras: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (a :class:`~sciml.models.ScOT`) as ``config.json`` + ``model.safetensors``
    in Poseidon's layout, readable by the reference ``scOT`` code and by :func:`load_poseidon`.

    Raises ``ValueError`` for a model the layout cannot describe (``learn_residual`` without
    ``time_conditioning``), before anything is written."""
    from safetensors.torch import save_file

    c = model.config
    if c.learn_residual and not c.time_conditioning:
        # scOT reads learn_residual only with use_conditioning: the file would load (here and in
        # the reference) as the model without the residual, a different function
        raise ValueError(
            "the Poseidon layout cannot hold learn_residual=True without time_conditioning (scOT "
            "ignores learn_residual when use_conditioning is false); save this model with "
            "model.save_pretrained(directory) instead"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        to_poseidon_state_dict(model),
        str(directory / "model.safetensors"),
        metadata={"format": "pt"},
    )
    extras = extras if extras is not None else getattr(model, "poseidon_extras", None)
    cfg = _config_to_poseidon(model.config, extras)
    (directory / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return directory
