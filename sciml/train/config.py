"""``TrainConfig``: the frozen, JSON round-trippable description of a training run."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from .._config import config_from_dict, config_to_dict
from .._scalars import is_int as _is_int
from .._scalars import is_real as _is_real
from .schedules import Constant, Cosine, OneCycle, schedule_from_name

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Every field is plain data, so the config is stored in each checkpoint.

    Attributes:
        epochs: passes over the training data.
        batch_size: the GLOBAL batch: samples per optimiser step summed over all data-parallel
            ranks (each of ``N`` ranks reads ``batch_size / N``; must divide evenly).
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled weight decay.
        schedule: :class:`Cosine`, :class:`OneCycle` or :class:`Constant` (an object); a string
            alias from :data:`~sciml.train.schedules.SCHEDULES` (``"onecycle"``, as experiment
            files write it) is replaced by the object with default parameters.
        warmup_steps: linear warm-up steps before the schedule (0 for none). With
            :class:`OneCycle` the one-cycle's own rise is the warm-up: it lasts ``warmup_steps``
            steps, in place of ``pct_start`` (a linear warm-up before it would ramp twice).
        grad_clip: clip the global gradient 2-norm to this value (``None``: no clipping).
        amp: ``"bf16"`` / ``"fp16"`` autocast on CUDA (fp16 with a ``GradScaler``), ``None`` off.
            On the CPU it is ignored with a warning.
        seed: seeds torch / numpy / random at the start of a fresh run and the per-epoch shuffle
            (the order of epoch ``e`` is a function of ``(seed, e)`` only).
        num_workers: ``DataLoader`` worker processes per rank.
        eval_every: validate every this many optimiser steps; 0 = at the end of every epoch.
        checkpoint_every: write ``last`` every this many steps; 0 = at the end of every epoch.
        log_every: write a training row to the metrics files at every step ``k`` divisible by
            this; its ``train_loss`` is the sample-weighted mean over steps ``k - log_every + 1``
            to ``k``, across epoch ends.
        micro_batch: split each rank's share of a batch into chunks of at most this many
            samples, run forward and backward on each and step the optimiser once on the summed
            gradients (gradient accumulation: a ``batch_size`` that does not fit in memory at
            once). The step is that of the whole batch when the loss is a mean over samples (the
            default losses); the number of steps, the schedule and resuming are unchanged.
            Validation runs its forwards in the same chunks, with the whole batch's means.
            ``None``: the whole share at once. Batch-norm statistics and losses that are not
            per-sample means (PROSE's token cross-entropy) see the chunks.
        compile: run the training step's forward pass and loss through ``torch.compile``
            (inductor: a C++ compiler on the CPU, Triton on CUDA). The first steps pay for the
            compilation (tens of seconds); evaluation and checkpoints use the eager model.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: Cosine | OneCycle | Constant | str = field(default_factory=Cosine)
    warmup_steps: int = 0
    grad_clip: float | None = None
    amp: Literal["bf16", "fp16"] | None = None
    seed: int = 0
    num_workers: int = 0
    eval_every: int = 0
    checkpoint_every: int = 0
    log_every: int = 10
    compile: bool = False
    micro_batch: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.schedule, str):
            object.__setattr__(self, "schedule", schedule_from_name(self.schedule))
        # (why) a bool, a float or a str passed through the old range checks (True >= 1): the
        # run trained and wrote checkpoints that from_dict, hence a resume, refused; seed=-1
        # failed in the first shuffle, and a nan grad_clip or inf lr put nan in the weights
        for name, least in (("epochs", 1), ("batch_size", 1), ("log_every", 1), ("seed", 0),
                            ("warmup_steps", 0), ("num_workers", 0), ("eval_every", 0),
                            ("checkpoint_every", 0)):  # fmt: skip
            value = getattr(self, name)
            if not _is_int(value):
                raise TypeError(f"expected {name} as an int >= {least}, got {value!r}")
            if value < least:
                raise ValueError(f"expected {name} as an int >= {least}, got {value!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not _is_real(value):
                raise TypeError(f"expected {name} as a finite number >= 0, got {value!r}")
            if not 0 <= value < math.inf:
                raise ValueError(f"expected {name} as a finite number >= 0, got {value!r}")
        if not isinstance(self.compile, bool):
            raise TypeError(f"expected compile as a bool, got {self.compile!r}")
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"expected amp in ('bf16', 'fp16', None), got {self.amp!r}")
        # (why) as the int fields above: a NumPy int (np.int64(4)) was refused as if out of
        # range ('expected micro_batch as an int >= 1 or None, got np.int64(4)')
        if self.micro_batch is not None and not (
            _is_int(self.micro_batch) and self.micro_batch >= 1
        ):
            error = ValueError if _is_int(self.micro_batch) else TypeError
            raise error(f"expected micro_batch as an int >= 1 or None, got {self.micro_batch!r}")
        if self.grad_clip is not None and not (_is_real(self.grad_clip) and self.grad_clip > 0):
            error = ValueError if _is_real(self.grad_clip) else TypeError
            raise error(f"expected grad_clip as a number > 0 or None, got {self.grad_clip!r}")
        default_pct = next(f.default for f in fields(OneCycle) if f.name == "pct_start")
        if (
            isinstance(self.schedule, OneCycle)
            and self.warmup_steps > 0
            and self.schedule.pct_start != default_pct
        ):
            # (why) a warning, not an error: configs stored in older checkpoints must still load
            warnings.warn(
                f"OneCycle(pct_start={self.schedule.pct_start}) with warmup_steps="
                f"{self.warmup_steps}: the one-cycle's rise is its warm-up, so it lasts "
                f"warmup_steps={self.warmup_steps} steps and pct_start is not used; set "
                "warmup_steps=0 to rise over pct_start of the run",
                stacklevel=3,
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``TrainConfig.from_dict(c.to_dict()) == c``."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict (strict: unknown fields and wrong types raise ``ConfigError``)."""
        return config_from_dict(cls, data, where="TrainConfig")

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text; ``TrainConfig.from_json(c.to_json()) == c``."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Build from JSON text such as :meth:`to_json` writes (strict, as :meth:`from_dict`)."""
        return cls.from_dict(json.loads(text))
