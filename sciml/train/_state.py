"""Pickle-free storage of trainer state: a pytree split into JSON structure + safetensors arrays.

Trainer state (the optimiser's ``state_dict``, the scheduler's, RNG states, counters) is a tree of
dicts, lists and tuples whose leaves are Python scalars, strings, ``torch.Tensor`` and
``numpy.ndarray``. :func:`encode` walks the tree once and returns

* ``structure``: a JSON-serialisable tree in which every array leaf is replaced by a reference
  ``{"__tensor__": "t3"}`` / ``{"__ndarray__": "t4"}`` / ``{"__npscalar__": "t5"}`` (a
  complex128 tensor, which safetensors cannot hold, as its real pairs ``{"__complex__": "t6"}``),
  and
* ``arrays``: ``{"t3": tensor, ...}``, ready for :func:`sciml._io.save_safetensors`.

Everything JSON would lose is tagged so that :func:`decode` gives back an equal tree:

=====================================  ================================================
Python                                 JSON
=====================================  ================================================
``tuple``                              ``{"__tuple__": [...]}``
``dict`` with str keys (no ``__``)     a JSON object
any other ``dict`` (int/tuple keys)    ``{"__dict__": [[key, value], ...]}``
``float`` nan / inf / -inf             ``{"__float__": "nan" | "inf" | "-inf"}``
=====================================  ================================================

Tensors are stored on the CPU; :func:`decode` returns CPU tensors (``Optimizer.load_state_dict``
moves them to the parameters' device).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import fsync, save_safetensors

__all__ = ["encode", "decode", "save_state", "load_state"]

_TAGS = (
    "__tuple__",
    "__dict__",
    "__float__",
    "__tensor__",
    "__complex__",
    "__ndarray__",
    "__npscalar__",
)


def encode(tree: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``tree`` into a JSON-serialisable structure and a flat dict of CPU tensors."""
    arrays: dict[str, torch.Tensor] = {}

    def add(t: torch.Tensor) -> str:
        key = f"t{len(arrays)}"
        # clone: safetensors refuses tensors that share storage (e.g. two views of one buffer)
        arrays[key] = t.detach().to("cpu", copy=True).contiguous()
        return key

    def walk(x: Any) -> Any:
        if x is None or isinstance(x, (bool, int, str)):
            return x
        if isinstance(x, float):
            if math.isfinite(x):
                return x
            return {"__float__": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}
        if isinstance(x, torch.Tensor):
            if x.dtype == torch.complex128:  # safetensors has no complex128: its real pairs
                return {"__complex__": add(torch.view_as_real(x))}
            return {"__tensor__": add(x)}
        if isinstance(x, np.ndarray):
            return {"__ndarray__": add(torch.from_numpy(np.ascontiguousarray(x)))}
        if isinstance(x, np.generic):
            return {"__npscalar__": add(torch.from_numpy(np.asarray(x).reshape(1)))}
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v) for v in x]}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in x):
                return {k: walk(v) for k, v in x.items()}
            return {"__dict__": [[walk(k), walk(v)] for k, v in x.items()]}
        raise TypeError(
            f"cannot store a {type(x).__name__} in trainer state; expected dict, list, tuple, "
            "None, bool, int, float, str, torch.Tensor or numpy.ndarray leaves"
        )

    return walk(tree), arrays


def decode(structure: Any, arrays: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode`: ``decode(*encode(tree)) == tree`` (tensors compared by value)."""

    def walk(x: Any) -> Any:
        if isinstance(x, list):
            return [walk(v) for v in x]
        if not isinstance(x, dict):
            return x
        if len(x) == 1:
            ((tag, value),) = x.items()
            if tag == "__tuple__":
                return tuple(walk(v) for v in value)
            if tag == "__dict__":
                return {_hashable(walk(k)): walk(v) for k, v in value}
            if tag == "__float__":
                return float(value)
            if tag == "__tensor__":
                return arrays[value]
            if tag == "__complex__":
                return torch.view_as_complex(arrays[value])
            if tag == "__ndarray__":
                return arrays[value].numpy()
            if tag == "__npscalar__":
                return arrays[value].numpy()[0]
        return {k: walk(v) for k, v in x.items()}

    return walk(structure)


def _hashable(key: Any) -> Any:
    # dict keys decoded from JSON lists must be tuples to be hashable; encode stores them as tuples
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def save_state(tree: Any, directory: str | os.PathLike, name: str = "trainer_state") -> None:
    """Write ``<name>.safetensors`` (arrays) and ``<name>.json`` (structure) into ``directory``.

    The JSON file is written last and names the arrays file, so a reader that finds the JSON
    finds complete arrays. Files are flushed to disk (``fsync``) before returning.
    """
    directory = Path(directory)
    structure, arrays = encode(tree)
    arrays_path = directory / f"{name}.safetensors"
    save_safetensors(arrays, arrays_path, metadata={"format": "sciml.train_state"})
    fsync(arrays_path)
    record = {
        "format": "sciml.train_state",
        "format_version": 1,
        "arrays": arrays_path.name,
        "state": structure,
    }
    json_path = directory / f"{name}.json"
    with open(json_path, "w") as f:
        json.dump(record, f, indent=1, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def load_state(directory: str | os.PathLike, name: str = "trainer_state") -> Any:
    """Read the tree written by :func:`save_state` (no pickle involved)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..errors import CheckpointError

    directory = Path(directory)
    json_path = directory / f"{name}.json"
    # (why) a truncated or overwritten file raised json's or safetensors' own error, naming
    # no file ('Error while deserializing header: header too small')
    try:
        record = json.loads(json_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{json_path}: damaged trainer state file ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != "sciml.train_state":
        raise CheckpointError(f"{json_path}: not a sciml trainer state file")
    arrays_path = directory / str(record.get("arrays"))
    try:
        arrays = load_file(str(arrays_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{arrays_path}: damaged trainer state file ({exc})") from None
    try:
        return decode(record["state"], arrays)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(
            f"{json_path}: damaged trainer state file ({type(exc).__name__}: {exc})"
        ) from None
