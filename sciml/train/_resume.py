"""The Trainer's state in a checkpoint: what is saved, and how a resume puts it back.

:func:`state_tree` is everything a run needs to continue exactly (counters, optimiser, schedule,
scaler, RNG states, history, callback states); :func:`save` writes it as a checkpoint and
:func:`save_final` leaves `last` at a run's final state. :func:`restore` reads it back, warning
where the run now differs from the one that wrote it (config, training set, param-group weight
decays and lrs, a mid-epoch change of batch size or seed) and refusing an optimiser state that
does not fit, or a checkpoint of the other ``mode`` or of another ``monitor``; :func:`restore_after_nonfinite` puts the state back after a nan loss, and
:func:`seed_everything` starts a fresh run's RNG states instead.

The functions take the :class:`~sciml.train.Trainer`; those the Trainer calls are bound as its
private methods (``Trainer._restore`` is :func:`restore`: no extra frame, so the warnings'
``stacklevel`` still points at the caller of ``fit``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import reprlib
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._scalars import is_int as _is_int
from .._scalars import is_real as _is_real
from ..errors import CheckpointError, ConfigError
from ._runlog import pack_rows, unpack_rows
from ._state import decode, load_state
from .checkpoint import STATE_NAME, _state_json, find_checkpoint, read_checkpoint
from .config import TrainConfig
from .sampler import epoch_permutation
from .schedules import build_scheduler, lr_factor

if TYPE_CHECKING:
    from .callbacks import Callback
    from .trainer import Trainer

STATE_FORMAT_VERSION = 1


def state_tree(trainer: Trainer) -> dict[str, Any]:
    rng: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "format_version": STATE_FORMAT_VERSION,
        "config": trainer.config.to_dict(),
        "step": trainer.step,
        "epoch": trainer.epoch,
        "batch_in_epoch": trainer.batch_in_epoch,
        "run_id": trainer.run_id,
        "best_metric": trainer.best_metric,
        "best_step": trainer.best_step,
        "mode": trainer.mode,
        "monitor": trainer.monitor,
        "epoch_loss": tuple(trainer._epoch_loss),
        "last_epoch_loss": trainer._last_epoch_loss,
        "log_window": tuple(trainer._log_window),
        "time_s": time.perf_counter() - trainer._t0,
        "world_size": trainer.dist.world_size,
        # (why) a resume on a training set of another size draws the rest of a started epoch
        # from another order; the size tells it so (older checkpoints: none)
        "train_size": len(trainer.train_data),
        "optimizer": trainer.optimizer.state_dict(),
        "built_weight_decay": trainer._built_decay,
        "built_lr": trainer._built_lr,
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
        "rng": rng,
        "history": pack_rows(trainer.history),
        "callbacks": {
            key: state
            for key, cb in keyed_callbacks(trainer)
            if (state := cb.state_dict()) is not None
        },
    }


def save(trainer: Trainer, links: Sequence[str]) -> None:
    """Write a checkpoint of the state in memory and point ``links`` ("last", "best") at it."""
    # (why) metrics.json holds at least the rows of the newest checkpoint after a crash
    trainer._log.flush()
    trainer._modes = None
    trainer._saved_at = (trainer.step, trainer.epoch)
    if "last" in links:
        trainer._last_at = trainer._saved_at
    if trainer._ckpt is None:
        return
    path = trainer._ckpt.save(trainer.model, state_tree(trainer), trainer.step, links=links)
    stale, trainer._stale_best = trainer._stale_best, None
    if stale is not None and "best" not in links and trainer._ckpt.link("best") == stale:
        # an earlier run's `best`, left by a fresh run in its directory: dropped once this run
        # has a checkpoint of its own (`last` no longer points at the earlier run either)
        trainer._ckpt.unlink("best")
    trainer._state_path = path
    trainer._state_moments = True
    for cb in trainer.callbacks:
        cb.on_checkpoint(trainer, path)


def save_final(trainer: Trainer) -> None:
    """Leave `last` at the final state of a run that was not aborted."""
    now = (trainer.step, trainer.epoch)
    if trainer._last_at == now:
        return
    if trainer._saved_at == now and trainer._ckpt is not None:
        # the final state is saved already (as `best` only): point `last` at it too; it had
        # stayed at an earlier checkpoint
        trainer._ckpt.point("last", trainer._state_path)
        trainer._last_at = now
    else:
        save(trainer, ("last",))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def keyed_callbacks(trainer: Trainer) -> list[tuple[str, Callback]]:
    """``(key, callback)``: the key of a callback's state in a checkpoint is its class name,
    with ``#k`` appended for the k-th further callback of the same class."""
    seen: dict[str, int] = {}
    keyed = []
    for cb in trainer.callbacks:
        name = type(cb).__qualname__
        k = seen[name] = seen.get(name, -1) + 1
        keyed.append((name if k == 0 else f"{name}#{k}", cb))
    return keyed


def resume_target(trainer: Trainer, resume: bool | str | Path) -> Path | None:
    if resume is False or resume is None:
        return None
    if resume is True or resume == "auto":
        if trainer.out_dir is None:
            raise ValueError("fit(resume='auto') needs out_dir: that is where `last` lives")
        if not trainer._has_checkpoint():
            # (why) a link to a deleted checkpoint read as "no checkpoint": the run started
            # afresh without a word and trained everything again
            for name in ("last", "best"):
                link = trainer.out_dir / name
                if link.is_symlink():
                    raise CheckpointError(
                        f"{link} points at {os.readlink(link)}, which does not exist (deleted?), "
                        "so fit(resume='auto') has nothing to continue; pass another checkpoint "
                        "as resume=, or resume=False to start afresh in this directory"
                    )
            return None
        return find_checkpoint(trainer.out_dir)  # the newer of `last` and `best`
    return find_checkpoint(resume)


def note_built(trainer: Trainer) -> None:
    """Note each param group's weight decay and base lr as the optimiser and schedule were
    built (a recipe may have replaced them since ``__init__``): checkpoints store them, so
    a resume tells a new recipe or config from a change a callback made during the run.

    (why) only for an optimiser or schedule not noted yet: a run continued in process
    (``fit()`` again after a stop) would take what a callback set during the run for what
    was built, and a resume of its checkpoints put the built values back."""
    if trainer._built_for is not None and (
        trainer._built_for[0] is trainer.optimizer and trainer._built_for[1] is trainer.scheduler
    ):
        return
    trainer._built_decay = [group.get("weight_decay") for group in trainer.optimizer.param_groups]
    trainer._built_lr = list(trainer.scheduler.base_lrs)
    trainer._built_for = (trainer.optimizer, trainer.scheduler)


def restore(trainer: Trainer, path: Path, *, optimizer_state: bool = True) -> None:
    trainer._note_built()
    check_state_json(path)
    check_mode_fits(trainer, path)
    check_monitor_fits(trainer, path)

    def check(state: dict[str, Any]) -> None:
        check_rng_states(state, path)
        if optimizer_state:
            check_optimizer_moments(trainer, state, path)

    state = read_checkpoint(path, trainer.model, check=check, finite=True)
    saved_groups = state["optimizer"]["param_groups"]
    check_optimizer_fits(trainer, path, saved_groups, optimizer_state)
    saved = TrainConfig.from_dict(state["config"])
    if saved != trainer.config:
        changed = [
            f.name
            for f in dataclasses.fields(TrainConfig)
            if getattr(saved, f.name) != getattr(trainer.config, f.name)
        ]
        warnings.warn(
            f"resuming from {path} with a different TrainConfig (changed: {changed}); the run "
            "continues with the new config and will not match an uninterrupted run",
            stacklevel=3,
        )
    n, saved_n = len(trainer.train_data), state.get("train_size")  # older checkpoints: none
    saved_n = n if saved_n is None else saved_n
    if state["batch_in_epoch"]:
        message = mid_epoch_change(trainer, saved, state["epoch"], state["batch_in_epoch"], saved_n)
        if message is not None:
            warnings.warn(f"resuming from {path} {message}", stacklevel=3)
    elif saved_n != n:
        warnings.warn(
            f"resuming from {path} at the start of epoch {state['epoch']} with a training "
            f"set of {n} samples, where the checkpoint's run had {saved_n}: the epochs left "
            f"read the {n} samples ({trainer.steps_per_epoch} steps each), and the schedule "
            "spans the steps taken and those left; the run will not match one on either set",
            stacklevel=3,
        )
    # (why) the weight decay each group was built with here (the config's for the Trainer's
    # own optimiser, a recipe's for a replaced one), against the one the checkpoint's run
    # was built with (stored since; older checkpoints: the checkpoint's groups). By value,
    # a group without decay and a group at a saved config weight_decay of 0 cannot be told
    # apart, so the built values are compared, not the config
    built_decay = trainer._built_decay
    saved_decay = [group.get("weight_decay") for group in saved_groups]
    saved_built = state.get("built_weight_decay", saved_decay)
    if (
        optimizer_state
        and built_decay != saved_built
        and (saved.weight_decay == trainer.config.weight_decay)
    ):  # (a changed TrainConfig weight_decay was named in the warning above)
        warnings.warn(
            f"resuming from {path} with an optimiser built with param-group weight decays "
            f"{built_decay}, where the checkpoint's was built with {saved_built} (another "
            "FineTuneRecipe weight_decay?); the run continues with the new ones and will "
            "not match an uninterrupted run",
            stacklevel=3,
        )
    # the same for each group's base lr (the schedule's peak); older checkpoints: None
    saved_built_lr = state.get("built_lr")
    new_lr = saved_built_lr is not None and trainer._built_lr != saved_built_lr
    if new_lr and saved.lr == trainer.config.lr:
        warnings.warn(
            f"resuming from {path} with an optimiser built with param-group lrs "
            f"{trainer._built_lr}, where the checkpoint's was built with {saved_built_lr} "
            "(another FineTuneRecipe lr?); the run continues with the new ones and will not "
            "match an uninterrupted run",
            stacklevel=3,
        )
    if optimizer_state:
        trainer.optimizer.load_state_dict(state["optimizer"])
        # (why) load_state_dict restores each group's weight decay too, so a recipe's new
        # one gave way to the checkpoint's; per group, with nothing new the checkpoint's
        # stays (a callback may have changed it during the run; a changed TrainConfig
        # weight_decay is new for every group)
        for group, decay, was in zip(trainer.optimizer.param_groups, built_decay, saved_built):
            if decay != was or saved.weight_decay != trainer.config.weight_decay:
                group["weight_decay"] = decay
    else:  # fresh moments, at the lr the checkpoint set for its next step
        # (why) a trainer that has stepped (fit() before, or a nan loss's restore) kept its
        # moments, so the resume was neither fresh nor the checkpoint's
        trainer.optimizer.state.clear()
        for group, saved_group in zip(trainer.optimizer.param_groups, saved_groups):
            group["lr"] = saved_group["lr"]
    # what a callback multiplied the schedule's lr by (TimeBudget's anneal), per group: kept
    # below where the lr is set anew (it was dropped for the first step after the resume)
    scheduled = state["scheduler"].get("_last_lr") or []
    extra = [
        group["lr"] / was if was else 1.0
        for group, was in zip(trainer.optimizer.param_groups, scheduled)
    ]
    # (why) steps taken at another batch size: the schedule spans those and the ones left
    # (epochs * steps_per_epoch counted every step at the new size)
    # (the sampler skips the whole epoch when the batches done exceed its new length)
    done = min(state["batch_in_epoch"], trainer.steps_per_epoch)
    left = (trainer.config.epochs - state["epoch"]) * trainer.steps_per_epoch - done
    rebuilt = state["step"] + max(left, 0) != trainer.total_steps
    if rebuilt:
        trainer.total_steps = state["step"] + max(left, 0)
        cfg = trainer.config
        trainer.scheduler = build_scheduler(
            trainer.optimizer, cfg.schedule, trainer.total_steps, cfg.warmup_steps
        )
        trainer._built_for = (trainer.optimizer, trainer.scheduler)  # the built values stay
    trainer.scheduler.load_state_dict(state["scheduler"])
    # a rebuilt scheduler set the lr of its step 0
    if saved != trainer.config or rebuilt or new_lr:
        # (why) both states carry the saved lr, which would otherwise stay (a recipe's new
        # lr, with an unchanged config, gave way to the checkpoint's). Per group: the base
        # lr the optimiser resumed into was built with where it differs from the one the
        # checkpoint's run was built with (the config's lr for the Trainer's own optimiser,
        # a recipe's for a replaced one), else the checkpoint's. Checkpoints without the
        # built lrs: a group at the saved lr takes the new one, a group at its own (ScOT's
        # param_groups: embeddings at another lr) keeps it, scaled as the config's. (The
        # weight decay was put back to the built one above.)
        cfg = trainer.config
        f = lr_factor(cfg.schedule, state["step"], trainer.total_steps, cfg.warmup_steps)
        bases = []
        for i, base in enumerate(trainer.scheduler.base_lrs):
            if saved_built_lr is not None:  # per group: a callback's change stays
                new = trainer._built_lr[i] != saved_built_lr[i]
                bases.append(trainer._built_lr[i] if new else base)
            elif base == saved.lr or cfg.lr == saved.lr:
                bases.append(cfg.lr if base == saved.lr else base)
            else:
                bases.append(base * cfg.lr / saved.lr if saved.lr else base)
        trainer.scheduler.base_lrs = bases
        extra += [1.0] * (len(bases) - len(extra))
        for group, base, k in zip(trainer.optimizer.param_groups, bases, extra):
            group.update(lr=base * f * k, initial_lr=base)
        trainer.scheduler._last_lr = [base * f for base in bases]  # the schedule's own lr
    if trainer.scaler is not None and state["scaler"] is not None:
        trainer.scaler.load_state_dict(state["scaler"])
    trainer.step = state["step"]
    trainer.epoch = state["epoch"]
    trainer.batch_in_epoch = state["batch_in_epoch"]
    trainer.best_metric = state["best_metric"]
    trainer.best_step = state["best_step"]
    if trainer.best_metric is not None and not math.isfinite(trainer.best_metric):
        # (why) a nan best (kept by earlier versions) would never be beaten
        trainer.best_metric = trainer.best_step = None
    trainer._epoch_loss = list(state["epoch_loss"])
    trainer._last_epoch_loss = state["last_epoch_loss"]
    trainer._log_window = list(state.get("log_window", (0.0, 0)))  # older checkpoints: none
    trainer._time_offset = state["time_s"]
    trainer.run_id = state.get("run_id", trainer.run_id)  # older checkpoints: none
    # resumed from another run's checkpoint: this run writes a `last` of its own at the end;
    # from its own `best` (newer than `last` after a kill), `last` is pointed at it
    path = Path(path).resolve()
    own = trainer._ckpt is not None and path.parent == trainer._ckpt.run_dir.resolve()
    trainer._saved_at = (trainer.step, trainer.epoch) if own else None
    trainer._state_path, trainer._state_moments = path, optimizer_state
    here = own and trainer._ckpt.link("last") == path
    trainer._last_at = trainer._saved_at if here else None
    trainer._log.rows = unpack_rows(state["history"])
    saved_callbacks = state.get("callbacks", {})  # older checkpoints: none
    for key, cb in keyed_callbacks(trainer):
        if key in saved_callbacks:
            cb.load_state_dict(saved_callbacks[key])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if "cuda" in rng and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError, IndexError):
            torch.cuda.set_rng_state_all(rng["cuda"])


def check_state_json(path: Path) -> None:
    """A :class:`CheckpointError` naming the key where the trainer state JSON at ``path``
    lacks what a resume reads, or holds it in another form.

    (why) a state file that parses but lacks a key or holds another type (edited by hand,
    damaged inside a value, written by another program) failed with a bare ``KeyError:
    'optimizer'`` or ``TypeError: can only concatenate str (not "int") to str``, naming no
    file. Read from the JSON part before the weights, so a refused resume leaves the model as
    it was."""
    if not (path / f"{STATE_NAME}.json").is_file():
        return  # not a checkpoint: read_checkpoint says so
    state = _state_json(path)

    def number(v: Any) -> bool:  # a JSON number, or a tagged nan / inf
        return _is_real(v) or (isinstance(v, dict) and set(v) == {"__float__"})

    def pair(v: Any) -> bool:  # (loss sum, samples), a tagged tuple
        v = v.get("__tuple__") if isinstance(v, dict) and set(v) == {"__tuple__"} else v
        return isinstance(v, list) and len(v) == 2 and all(map(number, v))

    def groups(v: Any) -> bool:
        return isinstance(v, list) and all(
            isinstance(g, dict) and isinstance(g.get("params"), list) for g in v
        )

    expected = {
        "config": ("a JSON object (the TrainConfig)", lambda v: isinstance(v, dict)),
        "step": ("an int >= 0", lambda v: _is_int(v) and v >= 0),
        "epoch": ("an int >= 0", lambda v: _is_int(v) and v >= 0),
        "batch_in_epoch": ("an int >= 0", lambda v: _is_int(v) and v >= 0),
        "best_metric": ("a number or null", lambda v: v is None or number(v)),
        "best_step": ("an int >= 0 or null", lambda v: v is None or (_is_int(v) and v >= 0)),
        "epoch_loss": ("a pair of numbers", pair),
        "last_epoch_loss": ("a number", number),
        "time_s": ("a number", number),
        "optimizer": (
            "an optimiser state (an object with state and param_groups)",
            lambda v: isinstance(v, dict) and "state" in v and groups(v.get("param_groups")),
        ),
        "scheduler": ("a JSON object (the schedule's state)", lambda v: isinstance(v, dict)),
        "scaler": ("a JSON object or null", lambda v: v is None or isinstance(v, dict)),
        "rng": (
            "an object with the torch, numpy and python RNG states",
            lambda v: isinstance(v, dict) and {"torch", "numpy", "python"} <= set(v),
        ),
        "history": ("the run's rows", lambda v: isinstance(v, (dict, list))),
    }
    for key, (what, fits) in expected.items():
        if key not in state or not fits(state[key]):
            got = "nothing" if key not in state else reprlib.repr(state[key])
            raise CheckpointError(
                f"{path / (STATE_NAME + '.json')}: damaged trainer state file: expected {key} "
                f"as {what}, got {got}; resume from another checkpoint (a run directory's "
                "`last` or `best`, or a ckpt-<step> beside them)"
            )
    # (why) the stored TrainConfig, checked here with the rest of the JSON: read after the
    # weights, a bad field ("lr": "x") was a ConfigError naming the field but not the file,
    # raised with the checkpoint's weights already in the model
    try:
        if (ref := _array_reference(state["config"], "TrainConfig")) is not None:
            # (why) decode looked the reference up among no arrays: 'KeyError: 't0''
            where, tag = ref
            raise ConfigError(
                f"{where}: expected a JSON value (a number, string, bool, null, list or "
                f"object; a TrainConfig holds no arrays), got a reference to a stored "
                f"{_ARRAY_TAGS[tag[0]]} {{{tag[0]!r}: {tag[1]!r}}}"
            )
        TrainConfig.from_dict(decode(state["config"], {}))
    except (ConfigError, KeyError, TypeError) as exc:
        reason = exc if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
        raise ConfigError(
            f"{path / (STATE_NAME + '.json')}: the checkpoint's stored config: {reason}; "
            "resume from another checkpoint, or put the value the run was written with back"
        ) from None


# the tags encode gives an array kept in the arrays file, and what each stands for
_ARRAY_TAGS = {
    "__tensor__": "tensor",
    "__complex__": "complex tensor",
    "__ndarray__": "numpy array",
    "__npscalar__": "numpy scalar",
}


def _array_reference(x: Any, where: str) -> tuple[str, tuple[str, Any]] | None:
    """The first reference to the arrays file in the encoded ``x``: where it is (``where.key``,
    ``where[i]``) and its ``(tag, name)``; None if there is none."""
    if isinstance(x, list):
        for i, v in enumerate(x):
            if (found := _array_reference(v, f"{where}[{i}]")) is not None:
                return found
    elif isinstance(x, dict):
        if len(x) == 1 and next(iter(x)) in _ARRAY_TAGS:
            return where, next(iter(x.items()))
        for k, v in x.items():
            if (found := _array_reference(v, f"{where}.{k}")) is not None:
                return found
    return None


def check_rng_states(state: dict[str, Any], path: Path) -> None:
    """A :class:`CheckpointError` naming the file and the entry where the checkpoint's RNG
    states are not states that torch, numpy and random take.

    (why) checked on throwaway generators after the state is read and before the weights are
    loaded: a damaged entry (``rng.torch`` a float tensor) raised torch's bare ``TypeError:
    RNG state must be a torch.ByteTensor`` at the end of the restore, with the weights,
    optimiser and counters already put back. A numpy or Python key whose MT19937 state is all
    zero (which those generators take, and draw 0 from forever) is refused as well."""
    rng = state["rng"]
    tensors = path / f"{STATE_NAME}.safetensors"

    def numpy_key(value: Any) -> Any:  # the MT19937 key as the generator took it
        generator = np.random.RandomState()
        generator.set_state(value)
        return generator.get_state()[1]

    def python_key(value: Any) -> Any:
        generator = random.Random()
        generator.setstate(value)
        return generator.getstate()[1][:624]

    checks = {
        "torch": (tensors, "the torch CPU generator's", torch.Generator().set_state),
        "numpy": (tensors, "numpy's legacy", numpy_key),
        "python": (path / f"{STATE_NAME}.json", "Python random's", python_key),
    }
    for entry, (where, what, take) in checks.items():
        try:
            key = take(rng[entry])
            # (why) numpy and random take a zeroed key (a zeroed block of the file) and draw 0
            # forever: MT19937's state is the top bit of key[0] and key[1:] (torch refuses it)
            if entry != "torch" and not (int(key[0]) >> 31 or np.asarray(key[1:]).any()):
                raise ValueError("its MT19937 state is all zero, which draws 0 forever")
        except (TypeError, ValueError, RuntimeError, IndexError, KeyError, OverflowError) as exc:
            # (OverflowError: numpy's for a negative key value)
            raise CheckpointError(
                f"{where}: damaged trainer state: rng.{entry} is not {what} RNG state "
                f"({_described(rng[entry])}: {exc}); resume from another checkpoint (a run "
                "directory's `last` or `best`, or a ckpt-<step> beside them)"
            ) from None
    cuda = rng.get("cuda")
    if cuda is not None and not (
        isinstance(cuda, list)
        and all(
            isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1 for t in cuda
        )
    ):
        raise CheckpointError(
            f"{tensors}: damaged trainer state: rng.cuda is not a list of CUDA RNG states "
            f"(1-dim uint8 tensors, one per device), got {_described(cuda)}; resume from "
            "another checkpoint"
        )


# AdamW's (the Trainer's own) and torch's other optimisers' per-parameter tensors that have
# the shape of their parameter; the running means of gradients, and of their squares
_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")
_FIRST = ("exp_avg", "momentum_buffer")
_SQUARES = ("exp_avg_sq", "max_exp_avg_sq")


def check_optimizer_moments(trainer: Trainer, state: dict[str, Any], path: Path) -> None:
    """A :class:`CheckpointError` naming the file and the entry where a per-parameter entry of
    the checkpoint's optimiser state is damaged: a moment (``exp_avg``, ``exp_avg_sq``, ...)
    without the shape of its parameter, or with values no run writes (nan; an infinite mean of
    gradients; a negative mean of squares), a ``step`` that is not a count (a finite number
    >= 0, or a one-element tensor of one), or any other tensor of its parameter's shape (a
    custom optimiser's) that holds nan.

    (why) ``Optimizer.load_state_dict`` takes any tensor: a damaged moment raised torch's bare
    'The size of tensor a (3) must match the size of tensor b (5)' at the first step after the
    resume, with the whole state already restored; a negative or two-element ``step``
    torch's 'result type ComplexFloat can't be cast to the desired output type Float' or 'a
    Tensor with 2 elements cannot be converted to Scalar' there; and a nan ``step`` or moment
    trained on, writing nan into the weights, which the next step's loss reported as the run's
    own nan. Values a run can write stay accepted: an infinite mean of squares (the square
    of a float16 gradient over 256), an integer ``step`` (older torch) or a float one, and whatever
    a custom optimiser keeps in other shapes. Where the param groups do not fit,
    :func:`check_optimizer_fits` says so instead."""
    saved = state["optimizer"]
    groups = trainer.optimizer.param_groups
    if len(groups) != len(saved["param_groups"]) or any(
        len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved["param_groups"])
    ):
        return
    params = {
        index: p
        for group, saved_group in zip(groups, saved["param_groups"])
        for index, p in zip(saved_group["params"], group["params"])
    }
    for index, entry in saved["state"].items():
        p = params.get(index)
        if p is None or not isinstance(entry, dict):
            continue
        for key, t in entry.items():
            problem = _state_entry_problem(key, t, tuple(p.shape))
            if problem is None:
                continue
            got, expected = problem
            # (why) a tensor is in the arrays file, a number or other value in the JSON
            where = "safetensors" if isinstance(t, torch.Tensor) else "json"
            raise CheckpointError(
                f"{path / f'{STATE_NAME}.{where}'}: damaged trainer state: "
                f"optimizer.state[{index}].{key} is {got}, expected {expected}; resume from "
                "another checkpoint, or with fit(resume=..., optimizer_state=False) for fresh "
                "moments"
            )


def _state_entry_problem(key: Any, t: Any, shape: tuple[int, ...]) -> tuple[str, str] | None:
    """``(got, expected)`` where the optimiser state entry ``key`` of a parameter of ``shape``
    is damaged (see :func:`check_optimizer_moments`), else None."""
    if key == "step":
        # (a bool or complex tensor's .item() is no real number either)
        count = t.item() if isinstance(t, torch.Tensor) and t.numel() == 1 else t
        if _is_real(count) and math.isfinite(count) and count >= 0:
            return None
        if not (isinstance(t, torch.Tensor) and tuple(t.shape) == shape and t.numel() > 1):
            got = _described(t) + (f" holding {count}" if _is_real(count) else "")
            return got, "the optimiser's step count, a finite number >= 0 (or a 1-element tensor)"
        # a custom optimiser's per-element tensor named step: checked as any other below
    fits = isinstance(t, torch.Tensor) and tuple(t.shape) == shape
    if key in _MOMENTS and t is not None and not fits:
        return _described(t), f"the shape {shape} of its parameter"
    if not (fits and (t.is_floating_point() or t.is_complex())):
        return None
    real = torch.view_as_real(t) if t.is_complex() else t
    nan = int(torch.isnan(real).sum())
    inf = int(torch.isinf(real).sum()) if key in _FIRST else 0
    negative = int((real < 0).sum()) if key in _SQUARES else 0
    if not (nan or inf or negative):
        return None
    counts = [f"{n} {what}" for n, what in ((nan, "nan"), (inf, "inf"), (negative, "< 0")) if n]
    got = f"{_described(t)} holding {' and '.join(counts)} of {t.numel()} values"
    if key in _SQUARES:
        return got, "values >= 0 and not nan (a running mean of squared gradients)"
    if key in _FIRST:
        return got, "finite values (a running mean of gradients)"
    return got, "values that are not nan"


def _described(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {', '.join(_described(v) for v in value[:3])}" + (
            ", ..." if len(value) > 3 else ""
        )
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return reprlib.repr(value)


def check_mode_fits(trainer: Trainer, path: Path) -> None:
    """A ValueError unless the checkpoint at ``path`` was written under ``trainer.mode``.

    (why) its best_metric is the best in its run's direction: under the other mode the run
    would keep an accuracy's worst value as best, and replace `best` by any worse model.
    Read from the state's JSON before the weights, so a refused resume leaves the model as it
    was. Checkpoints written before the mode was stored come from runs that had only "min"."""
    if not (path / f"{STATE_NAME}.json").is_file():
        return  # not a checkpoint: read_checkpoint says so
    saved = _state_json(path).get("mode", "min")
    if saved != trainer.mode:
        raise ValueError(
            f"{path} was written by a run with mode={saved!r} (its best_metric is the "
            f"{'lowest' if saved == 'min' else 'highest'} value so far), and this Trainer has "
            f"mode={trainer.mode!r}; pass Trainer(mode={saved!r}) to continue that run, or "
            "train into another out_dir"
        )


def check_monitor_fits(trainer: Trainer, path: Path) -> None:
    """A ValueError unless the checkpoint at ``path`` was written by a run that monitored
    ``trainer.monitor``.

    (why) its best_metric is a value of its run's monitor: a resume monitoring another metric
    compared that metric's values with it (an mse against a best rel_l2) and kept or replaced
    `best` by the wrong numbers. Read before the weights, so a refused resume leaves the model
    as it was.

    Checkpoints written before the monitor was stored (any metric could have been monitored)
    are judged by their history, so that every one of them still resumes under the metric it
    was written with: accepted when the best is not set, or when the validation row at
    ``best_step`` holds ``best_metric`` as this monitor's value; refused, naming the metrics
    that do hold it there, when it is another's; accepted with a warning when the history has
    no such row (it cannot tell)."""
    if not (path / f"{STATE_NAME}.json").is_file():
        return  # not a checkpoint: read_checkpoint says so
    state = _state_json(path)
    saved = state.get("monitor")
    if saved is None:  # an older checkpoint
        best, step = state.get("best_metric"), state.get("best_step")
        if best is None or not math.isfinite(best):
            return  # no best to mix with this monitor's values (a nan best is dropped)
        rows = unpack_rows(load_state(path, STATE_NAME)["history"])
        holders = sorted(
            {
                key[4:]
                for r in rows
                if r.get("step") == step
                for key, value in r.items()
                if key.startswith("val_") and value == best
            }
        )
        if trainer.monitor in holders:
            return
        if not holders:
            warnings.warn(
                f"{path} was written before checkpoints stored their monitored metric, and "
                f"its history has no validation row at its best step {step} holding its "
                f"best_metric {best}: resuming with monitor={trainer.monitor!r} compares "
                f"this metric's values with that best, which may be another metric's",
                stacklevel=4,
            )
            return
        saved = " or ".join(map(repr, holders))
    elif saved == trainer.monitor:
        return
    else:
        saved = repr(saved)
    raise ValueError(
        f"{path} was written by a run with monitor={saved} (its best_metric "
        f"{state.get('best_metric')} at step {state.get('best_step')} is that metric's value), "
        f"and this Trainer has monitor={trainer.monitor!r}, whose values would be compared "
        f"with it; pass Trainer(monitor={saved}) to continue that run, or train into another "
        "out_dir"
    )


def mid_epoch_change(
    trainer: Trainer, saved: TrainConfig, epoch: int, done: int, saved_n: int
) -> str | None:
    """What a resume after batch ``done`` of ``epoch`` does to that epoch's samples when the
    batch size, the seed or the training set's size (``saved_n`` in the checkpoint) differs,
    or None when none does: the rest of the epoch is drawn with the new ones, so some
    samples are read twice or not at all."""
    cfg = trainer.config
    n = len(trainer.train_data)
    names = [f for f in ("batch_size", "seed") if getattr(saved, f) != getattr(cfg, f)]
    expected = [f"{f}={getattr(saved, f)}" for f in names]
    got = [f"{f}={getattr(cfg, f)}" for f in names]
    if saved_n != n:
        expected.append(f"a training set of {saved_n} samples")
        got.append(f"a training set of {n} samples")
    if not got:
        return None
    # the batches before `done` are whole (only an epoch's last one can be short)
    order = epoch_permutation(saved_n, saved.seed, epoch)
    before = set(order[: done * saved.batch_size].tolist())
    end = sum(trainer.train_sampler.global_batch_sizes())
    after = epoch_permutation(n, cfg.seed, epoch)[min(n, done * cfg.batch_size) : end]
    again = len(before.intersection(after.tolist()))
    missed = n - len({i for i in before if i < n}.union(after.tolist()))
    expected_text, got_text = ", ".join(expected), ", ".join(got)
    same = f" (sample i of the {saved_n} counted as sample i of the {n})" if saved_n != n else ""
    return (
        f"in the middle of epoch {epoch} (after {done} batch{'es' if done > 1 else ''}) "
        f"with {got_text}, where the checkpoint has {expected_text}: the rest of epoch "
        f"{epoch} is drawn with {got_text}, so {again} of the {len(before)} samples read "
        f"before the resume are read again and {missed} of the {n} samples are not read in "
        f"this epoch{same} (later epochs are whole). Resume with {expected_text} to continue "
        "exactly, or from a checkpoint written at an epoch end (checkpoint_every=0)"
    )


def check_optimizer_fits(
    trainer: Trainer, path: Path, saved_groups: list[dict[str, Any]], optimizer_state: bool
) -> None:
    """Raise a :class:`CheckpointError` saying what to do when the checkpoint's optimiser
    param groups do not fit this trainer's optimiser (torch's own error names neither the
    cause nor a way on)."""
    sizes = [len(group["params"]) for group in trainer.optimizer.param_groups]
    saved = [len(group["params"]) for group in saved_groups]
    if len(saved) != len(sizes):
        raise CheckpointError(
            f"{path}: the checkpoint's optimiser has {len(saved)} param group(s) of "
            f"{saved} parameters, this trainer's has {len(sizes)} of {sizes}; build the "
            "optimiser as the run that wrote it did (e.g. apply the same FineTuneRecipe "
            "before fit)"
        )
    if saved == sizes or not optimizer_state:
        return
    from safetensors import safe_open

    from ..operator import obsolete_state_keys

    with safe_open(str(Path(path) / "model.safetensors"), "pt") as f:
        obsolete = sorted(set(f.keys()) & obsolete_state_keys(trainer.model))
    cause = (
        f"its weights hold {len(obsolete)} tensor(s) that this version of "
        f"{type(trainer.model).__name__} no longer builds ({', '.join(obsolete[:5])}"
        f"{' ...' if len(obsolete) > 5 else ''}): it was written by an older sciml, and "
        "the optimiser state of those parameters, stored by position, cannot be told "
        "apart from the others'"
        if obsolete
        else "was the model or the set of trained parameters changed?"
    )
    raise CheckpointError(
        f"{path}: the checkpoint's optimiser state holds {saved} parameters per param "
        f"group, this model has {sizes}; {cause}. The weights load: resume with "
        "fit(resume=..., optimizer_state=False) (sciml train --resume --fresh-optimizer) to "
        "continue from the checkpoint's weights, "
        "step, schedule and RNG states with fresh AdamW moments (not an exact resume), or "
        "finish the run with the sciml version that wrote it"
    )


def has_checkpoint(trainer: Trainer) -> bool:
    return any((trainer.out_dir / name).exists() for name in ("last", "best"))


def restore_after_nonfinite(trainer: Trainer, what: str) -> str:
    """Put the model, optimiser, schedule, counters, history and RNG states back to the
    newest checkpoint this state was saved to or resumed from, as ``fit(resume=checkpoint)``
    would, after a step whose loss was not finite wrote non-finite values into the weights
    and AdamW's moments; return the error message, which says what the state in memory is
    now.

    (why) a notebook user went on with ``trainer.model`` and got nan everywhere, while the
    message pointed only at `last` on disk. Costs nothing but on this path."""
    advice = "lower the lr, set grad_clip, or check the data"
    damage = "the step's update, from non-finite gradients, leaves nan in the weights and "
    damage += "AdamW's moments"
    path, moments = trainer._state_path, trainer._state_moments
    how = "fit(resume=...)" if moments else "fit(resume=..., optimizer_state=False)"
    if path is not None and not trainer.dist.distributed:
        try:
            trainer._restore(path, optimizer_state=moments)
        except Exception as error:  # (why) the nan error must not be lost to this one
            reason = f"putting it back to {path} failed ({type(error).__name__}: {error})"
        else:
            return (
                f"{what}; the model, optimiser, schedule, counters and history in memory are "
                f"put back to the run's newest checkpoint {path} (step {trainer.step}), as "
                f"{how} would ({damage}); {advice}, then fit() continues from there"
            )
    elif trainer.dist.distributed:
        reason = "under data parallelism the processes do not put it back"
    else:
        reason = "the run has no checkpoint to put it back to" + (
            " (out_dir=None)" if trainer.out_dir is None else ""
        )
    return (
        f"{what}; the model and optimiser in memory are not usable ({damage}; {reason}); "
        f"{advice}, then resume from a checkpoint with fit(resume=...) or start afresh"
    )
