"""Crash-safe training checkpoints: whole directories, published by swinging a symlink.

A run directory looks like::

    run/
      ckpt-1200/           config.json  model.safetensors        (model.save_pretrained)
                           trainer_state.json  trainer_state.safetensors
                           (a plain nn.Module: no config.json; metadata.json if given)
      ckpt-1000/
      last -> ckpt-1200    the newest state, what resume="auto" reads (`best` if newer)
      best -> ckpt-1000    the best validation metric so far
      metrics.csv  metrics.json

Writing a checkpoint never modifies a published directory:

1. everything is written into a fresh hidden directory ``.ckpt-<step>.partial-<pid>`` and
   flushed to disk (``fsync``);
2. it is renamed to ``ckpt-<step>`` (atomic, and never over an existing name);
3. a temporary symlink ``.last.tmp-<pid> -> ckpt-<step>`` is created and moved onto ``last``
   (and/or ``best``) with ``os.replace``, which is atomic on POSIX.

A process killed at any moment therefore leaves ``last`` pointing at a complete checkpoint (the
previous one or the new one); leftovers of the interrupted write are removed by the next
:meth:`CheckpointManager.prune`, and a ``SIGTERM`` with the default action removes them at once
(:func:`sciml._io.watch_sigterm`). Each checkpoint directory is itself loadable with
``sciml.load(run / "best")`` when the model is a :class:`sciml.Operator`. No pickle is written or
read: the trainer state goes through :mod:`sciml.train._state`.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import (
    atomic_write_text,
    metadata_json,
    save_safetensors,
    unwatch_sigterm,
    watch_sigterm,
)
from ..errors import CheckpointError
from ._state import load_state, save_state

__all__ = ["CheckpointManager", "write_checkpoint", "read_checkpoint", "find_checkpoint"]

WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"  # a plain nn.Module's metadata (an Operator's is in config.json)
STATE_NAME = "trainer_state"
LINKS = ("last", "best")


def write_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    state: Any,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the model (``save_pretrained(directory, metadata=...)`` for an Operator, else its
    ``state_dict`` as ``model.safetensors``) and the trainer ``state`` tree into ``directory``,
    synced to disk.

    ``metadata`` (JSON-serialisable) goes into an Operator's ``config.json``; a plain
    ``nn.Module`` has no ``config.json``, so a non-empty ``metadata`` is written as the JSON
    object ``metadata.json`` instead (``json.loads`` of it gives ``metadata`` back).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(directory, metadata=metadata)
    else:
        from ..operator import _unique_state

        # (why) a plain module's checkpoint had no config.json, and Trainer(metadata=...) was
        # dropped without a word; checked before any file is written, as save_pretrained does
        text = metadata_json(metadata, indent=2) + "\n" if metadata else None
        # (why) save_file alone recreates the file owner-only (0o600); an Operator's weights
        # and the trainer state keep the permissions a plain open() gives
        save_safetensors(_unique_state(model), directory / WEIGHTS_FILE, metadata={"format": "pt"})
        if text is not None:
            atomic_write_text(directory / METADATA_FILE, text)
    save_state(state, directory, STATE_NAME)
    for f in directory.iterdir():
        _fsync_path(f)
    _fsync_path(directory)
    return directory


def read_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    *,
    check: Callable[[Any], None] | None = None,
    finite: bool = False,
) -> Any:
    """Load the weights in ``directory`` into ``model`` (in place) and return the trainer state.

    The state is read first: a checkpoint whose state does not load, whose weights do not fit
    ``model``, whose parameters hold nan or inf where ``finite`` is set, or that ``check``
    refuses (called with the state once the weights are known to fit, before they are loaded)
    leaves ``model`` as it was.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..operator import (
        _restore_complex,
        _saved_state_errors,
        _shape_mismatches,
        _unique_state,
        obsolete_state_keys,
        optional_state_keys,
    )

    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file() or not (directory / f"{STATE_NAME}.json").is_file():
        raise CheckpointError(
            f"{directory}: not a training checkpoint (expected {WEIGHTS_FILE} and "
            f"{STATE_NAME}.json/.safetensors written by sciml.train)"
        )
    # (why) the state first: one that does not load (a truncated trainer_state.json) leaves the
    # model untouched, so a failed restore after a nan loss does not mix two states
    state = load_state(directory, STATE_NAME)
    params = next(model.parameters(), None)
    device = params.device if params is not None else torch.device("cpu")
    expected = model.state_dict()
    try:
        tensors = load_file(str(weights), device=str(device))
    except SafetensorError as exc:
        raise CheckpointError(f"{weights}: damaged weights file ({exc})") from None
    tensors = _restore_complex(tensors, expected)
    # (why) checked before load_state_dict, which copies every tensor that fits before it
    # raises: a refused checkpoint left the model a mix of its own and the checkpoint's
    # weights, and a shape mismatch came as torch's RuntimeError, not a CheckpointError
    aliased = set(expected) - set(_unique_state(model))
    missing = sorted(set(expected) - set(tensors) - aliased - optional_state_keys(model))
    unexpected = sorted(set(tensors) - set(expected) - obsolete_state_keys(model))
    if missing or unexpected:
        raise CheckpointError(
            f"{weights}: weights do not fit {type(model).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}; was the checkpoint written for another model config?"
        )
    wrong = _shape_mismatches(tensors, expected)
    if wrong:
        raise CheckpointError(
            f"{weights}: {len(wrong)} tensor(s) do not have the shapes of this "
            f"{type(model).__name__}: {', '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}; "
            "the checkpoint was written for another model config"
        )
    damaged = _saved_state_errors(model, tensors)
    if damaged:  # (why) before loading: load_state_dict copies the rest, then raises
        raise CheckpointError(f"{weights}: {'; '.join(damaged)}")
    if finite:
        # (why) before the state's checks: nan weights come with nan moments, and the moments'
        # advice (optimizer_state=False) would only lead on to these weights
        _check_finite(weights, model, tensors)
    if check is not None:  # (why) after the weights' checks, whose message says more
        check(state)
    cast = sorted(
        {(str(t.dtype), str(expected[k].dtype)) for k, t in tensors.items() if k in expected}
        - {(str(t.dtype), str(t.dtype)) for t in tensors.values()}
    )
    if cast:
        # (why) load_state_dict casts to the model's dtypes without a word: a float64 run
        # resumed into a model built in float32 went on in float32
        saved, built = (", ".join(sorted({pair[i] for pair in cast})) for i in (0, 1))
        warnings.warn(
            f"{weights}: the checkpoint's weights are {saved}, this model's {built}: they are "
            f"cast on loading, and a resumed run goes on in {built} (it will not match the "
            f"run that wrote them); build the model in {saved} to continue it exactly",
            stacklevel=2,
        )
    try:
        result = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # (why) a value a module refuses that the checks above missed
        raise CheckpointError(f"{weights}: {exc}") from None
    if result.unexpected_keys:  # an obsolete key its module's load hook did not consume
        raise CheckpointError(
            f"{weights}: weights do not fit {type(model).__name__}: unexpected "
            f"{sorted(result.unexpected_keys)[:5]}"
        )
    return state


def _check_finite(weights: Path, model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """A :class:`CheckpointError` naming the first parameter of ``model`` whose saved tensor
    holds nan or inf, with its first such index and how many there are.

    (why) weights written after a run diverged (sciml before the step's non-finite gradient
    check wrote such checkpoints, and a damaged file can hold them) resumed without a word and
    failed only at the next step's nan loss, which blamed the lr. One ``isfinite`` per
    parameter; buffers are not checked (a mask may hold -inf on purpose)."""
    for name, _ in model.named_parameters():
        t = tensors.get(name)
        if t is None or not (t.is_floating_point() or t.is_complex()):
            continue
        ok = torch.isfinite(t)
        if bool(ok.all()):
            continue
        bad = (~ok).nonzero()
        index = tuple(int(i) for i in bad[0])
        at = f"{name}[{', '.join(map(str, index))}]" if index else name
        raise CheckpointError(
            f"{weights}: the checkpoint's weights are not finite: {at} is {t[index].item()} "
            f"(nan or inf in {len(bad)} of its {t.numel()} values); the run had diverged when "
            "it was written, and resuming would train on nan. Resume from an earlier "
            "checkpoint (a ckpt-<step> beside it); sciml.load (or read_checkpoint) still "
            "reads it, to inspect the weights"
        )


def find_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory meant by ``path``: a checkpoint itself, or a run directory (then
    the newer of its ``last`` and ``best`` by (step, epoch), ``last`` on a tie). Raises
    :class:`CheckpointError` naming what was looked for.

    ``best`` is newer than ``last`` when a process was killed after a validation saved ``best``
    and before the next ``last``; it is a whole training state as well, and resuming from the
    older ``last`` would train its steps again and could replace the best model by a rerun that
    does not repeat it bitwise (a GPU's). A ``best`` written by another run (a fresh run in the
    folder has not validated better yet) is never taken over ``last``.
    """
    path = Path(path)
    if (path / f"{STATE_NAME}.json").is_file():
        return path.resolve()
    found = [path / name for name in LINKS if (path / name / f"{STATE_NAME}.json").is_file()]
    if len(found) == 2 and _run_id(found[0]) != _run_id(found[1]):
        return found[0].resolve()  # a `best` of an earlier run in this folder: not this run's
    if found:
        return max(found, key=_progress).resolve()  # the first of equals: `last`
    raise CheckpointError(
        f"no training checkpoint at {path} (looked for {path / (STATE_NAME + '.json')} and "
        f"{path / 'last' / (STATE_NAME + '.json')})"
    )


class CheckpointManager:
    """Writes checkpoints into ``run_dir`` and keeps only those ``last`` / ``best`` point at.

    ``metadata`` (JSON-serialisable) goes into every checkpoint: into ``config.json`` for an
    Operator, into ``metadata.json`` for a plain ``nn.Module`` (:func:`write_checkpoint`).
    """

    def __init__(
        self, run_dir: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None
    ) -> None:
        self.run_dir = Path(run_dir)
        self.metadata = dict(metadata or {})

    def save(
        self, model: nn.Module, state: Any, step: int, *, links: Iterable[str] = ("last",)
    ) -> Path:
        """Write a checkpoint for ``step`` and point every name in ``links`` at it."""
        links = tuple(links)
        bad = [name for name in links if name not in LINKS]
        if bad:
            raise ValueError(f"expected links among {LINKS}, got {bad}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        partial = self.run_dir / f".ckpt-{step}.partial-{os.getpid()}"
        if partial.exists():
            shutil.rmtree(partial)
        # (why) a SIGTERM (a scheduler's time limit) ends the process without unwinding it: the
        # partial directory, weights and optimiser moments, stayed until a later prune
        watch_sigterm(partial)
        try:
            write_checkpoint(partial, model, state, metadata=self.metadata)
            final = self._free_name(step)
            os.rename(partial, final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        finally:
            unwatch_sigterm(partial)
        _fsync_path(self.run_dir)
        for name in links:
            self._point(name, final)
        _fsync_path(self.run_dir)
        self.prune()
        return final

    def point(self, name: str, target: Path) -> None:
        """Point ``name`` ("last" / "best") at the checkpoint directory ``target``."""
        if name not in LINKS:
            raise ValueError(f"expected a link among {LINKS}, got {name!r}")
        self._point(name, Path(target))
        _fsync_path(self.run_dir)
        self.prune()

    def unlink(self, name: str) -> None:
        """Remove the link ``name`` ("last" / "best"); the checkpoint it pointed at is deleted
        unless the other link points at it."""
        if name not in LINKS:
            raise ValueError(f"expected a link among {LINKS}, got {name!r}")
        (self.run_dir / name).unlink(missing_ok=True)
        _fsync_path(self.run_dir)
        self.prune()

    def check_links(self) -> None:
        """Raise a :class:`CheckpointError` where ``last`` or ``best`` is there but not a link.

        (why) a copy that follows links (``cp -rL``, ``rsync`` without ``-l``, a cloud sync)
        makes them directories; a run resumed from one trained to its first checkpoint and
        then failed to publish it (``os.replace`` of a link onto a directory)."""
        for name in LINKS:
            path = self.run_dir / name
            if path.exists() and not path.is_symlink():
                kind = "directory" if path.is_dir() else "file"
                raise CheckpointError(
                    f"{path}: expected a symlink to a checkpoint directory (ckpt-<step>), got a "
                    f"{kind} (a copy that followed links: cp -rL, rsync without -l, a cloud "
                    "sync), which no checkpoint can be published over; move it out of the run "
                    "directory (it is a whole checkpoint: fit(resume=<its new path>) reads it) "
                    "or train into another out_dir"
                )

    def link(self, name: str) -> Path | None:
        """The directory ``name`` ("last" / "best") points at, or None."""
        path = self.run_dir / name
        return path.resolve() if path.is_symlink() and path.exists() else None

    def prune(self) -> None:
        """Delete checkpoints no link points at, and leftovers of interrupted writes."""
        keep = {p.name for p in (self.link(name) for name in LINKS) if p is not None}
        for p in self.run_dir.iterdir():
            stale = p.name.startswith("ckpt-") and p.is_dir() and p.name not in keep
            leftover = p.name.startswith(".ckpt-") and ".partial-" in p.name
            if stale or leftover:
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith((".last.tmp-", ".best.tmp-")) and p.is_symlink():
                p.unlink(missing_ok=True)

    def _free_name(self, step: int) -> Path:
        final = self.run_dir / f"ckpt-{step}"
        k = 1
        while final.exists():
            final = self.run_dir / f"ckpt-{step}-{k}"
            k += 1
        return final

    def _point(self, name: str, target: Path) -> None:
        tmp = self.run_dir / f".{name}.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(target.name, tmp)  # relative: the run directory can be moved
        os.replace(tmp, self.run_dir / name)


def _progress(directory: Path) -> tuple[int, int]:
    """(step, epoch) of the trainer state in ``directory``, read from its JSON part."""
    state = _state_json(directory)
    return state.get("step", -1), state.get("epoch", -1)


def _run_id(directory: Path) -> str | None:
    """The run a trainer state belongs to (None in checkpoints older than run ids)."""
    return _state_json(directory).get("run_id")


def _state_json(directory: Path) -> dict[str, Any]:
    """The ``state`` object of ``directory``'s trainer state JSON, or a CheckpointError."""
    path = (directory / f"{STATE_NAME}.json").resolve()
    try:
        state = json.loads(path.read_text())["state"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: damaged trainer state file ({exc!r})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: damaged trainer state file (no state object)")
    return state


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync directories
    finally:
        os.close(fd)
