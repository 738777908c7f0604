"""The one :class:`Trainer` for every sciml operator.

A batch is a dict of tensors: ``"input"`` ``(batch, ...)``, ``"target"`` ``(batch, ...)`` and,
when the data provides them, ``"x"`` (query coordinates) and ``"t"`` (lead time). The default
training loss of a batch is::

    loss_fn(model(batch["input"], x=batch["x"], t=batch["t"]), batch["target"])

with ``x`` / ``t`` passed only when present; a model that needs something else defines
``training_loss(batch, loss_fn) -> scalar`` and the Trainer calls that instead. Losses are means
over the batch (as :class:`LpLoss` is).

One optimiser step uses exactly one global batch of ``config.batch_size`` samples, with AdamW
and a per-step learning-rate schedule. Under ``torchrun`` the same code runs data-parallel: each
of ``N`` ranks computes the loss on its ``batch_size / N`` samples, DDP averages the gradients,
and the result equals the single-process step up to float rounding.

Example::

    trainer = Trainer(model, train_set, val_data=val_set, loss=LpLoss(p=2),
                      config=TrainConfig(epochs=50, batch_size=32, lr=1e-3), out_dir="runs/darcy")
    result = trainer.fit(resume="auto")      # Ctrl-C saves `last`; rerun to continue
    best = sciml.load("runs/darcy/best")
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._io import metadata_json
from . import _resume
from ._batch import _collate, _LossModule, _split_batch, batch_loss, predict
from ._runlog import MetricsLog
from .callbacks import Callback, _check_mode, _improves
from .checkpoint import CheckpointManager
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_sum, barrier, setup
from .losses import MSE, LpLoss
from .sampler import ShardedBatchSampler, epoch_seed
from .schedules import build_scheduler

__all__ = ["Trainer", "FitResult", "predict"]

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        train_loss: mean training loss over the last completed epoch (sample-weighted; the
            running mean of the current epoch if the run stopped inside one).
        best_metric: best value of the monitored validation metric (the lowest, or with
            ``mode="max"`` the highest), None without validation data.
        best_step: the step at which it was reached.
        history: the rows written to ``metrics.csv`` / ``metrics.json``.
        interrupted: True when Ctrl-C (or ``KeyboardInterrupt``) stopped the run.
        step, epoch: optimiser steps done and the current epoch index.
        checkpoint: the directory ``last`` points at (None without ``out_dir``).
    """

    train_loss: float
    best_metric: float | None
    best_step: int | None
    history: list[dict[str, Any]] = field(repr=False)
    interrupted: bool
    step: int
    epoch: int
    checkpoint: Path | None


class Trainer:
    """Trains any ``nn.Module`` (usually a :class:`sciml.Operator`) on dict batches.

    Every optimiser step runs with the model as ``model.train()`` leaves it: an ``eval()`` set
    on a submodule before ``fit``, by a callback or by the model's own code during a step is
    undone at the next step. A submodule meant to stay in eval mode (a frozen BatchNorm's
    running statistics) needs a model whose ``train(mode)`` puts it back in eval mode.

    Args:
        model: the model; moved to ``device``.
        train_data: a map-style data set (``len`` and ``[i]``) whose items are dicts with
            ``"input"``, ``"target"`` and optionally ``"x"``, ``"t"`` (a 2-tuple is read as
            ``(input, target)``).
        val_data: validation data set in the same form, or None.
        loss: the training loss ``loss(pred, target) -> scalar``, mean over the batch.
        config: the :class:`TrainConfig`.
        out_dir: run directory for checkpoints and metrics; None writes nothing.
        callbacks: :class:`Callback` objects.
        metrics: validation metrics ``name -> metric(pred, target)`` returning per-sample values
            ``(batch,)`` (or a batch mean); default relative L2 (``rel_l2``) and ``mse``. The
            validation loss is always reported as ``loss``.
        monitor: the metric that decides ``best``. Stored in every checkpoint; a resume
            monitoring another metric is refused.
        mode: ``"min"`` (the default: lower ``monitor`` is better, an error or a loss) or
            ``"max"`` (higher is better, an accuracy). Stored in every checkpoint; a resume
            under the other mode is refused.
        device: default ``cuda:LOCAL_RANK`` if CUDA is available, else the CPU.
        progress: show a tqdm bar (rank 0); None shows it only on a terminal.
        metadata: JSON-serialisable facts (data set, splits) written into every checkpoint:
            its ``config.json`` (``save_pretrained(..., metadata=...)``) for an Operator, its
            ``metadata.json`` for a plain ``nn.Module`` (which has no ``config.json``). With an
            ``out_dir``, metadata JSON cannot hold raises ``TypeError`` here, before training.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Any,
        *,
        val_data: Any = None,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        config: TrainConfig | None = None,
        out_dir: str | Path | None = None,
        callbacks: Iterable[Callback] = (),
        metrics: Mapping[str, Metric] | None = None,
        monitor: str = "rel_l2",
        mode: str = "min",
        device: str | torch.device | None = None,
        progress: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        # (why) a metric class (metrics={"mse": MSE}) failed only at the first validation, after
        # an epoch and before its checkpoint; a config dict, a loss class at the first step
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(
                f"config: expected a TrainConfig, got a {type(config).__name__}; "
                "TrainConfig.from_dict(d) builds one from a dict"
            )
        for what, fn in (
            ("loss", loss),
            *((f"metrics[{k!r}]", m) for k, m in (metrics or {}).items()),
        ):
            if fn is not None and (isinstance(fn, type) or not callable(fn)):
                hint = f"; pass an instance: {fn.__name__}()" if isinstance(fn, type) else ""
                got = f"the class {fn.__name__}" if isinstance(fn, type) else repr(fn)
                raise TypeError(
                    f"{what}: expected a callable fn(pred, target) -> tensor, got {got}{hint}"
                )
        self.config = config if config is not None else TrainConfig()
        self.dist: DistInfo = setup(device)
        self.device = self.dist.device
        self.model = model.to(self.device)
        self.train_data = train_data
        self.val_data = val_data
        self.loss_fn = loss if loss is not None else LpLoss()
        self.metrics: dict[str, Metric] = dict(
            metrics
            if metrics is not None
            else {"rel_l2": LpLoss(reduction="none"), "mse": MSE(reduction="none")}
        )
        if "loss" in self.metrics:
            raise ValueError("the metric name 'loss' is reserved for the validation loss")
        if monitor not in ("loss", *self.metrics):
            raise ValueError(
                f"monitor={monitor!r} is not a validation metric; expected 'loss' or one of "
                f"{sorted(self.metrics)}"
            )
        self.monitor = monitor
        self.mode = _check_mode(mode)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks: list[Callback] = list(callbacks)
        self.progress = progress
        cfg = self.config
        # an empty validation set would fail only after the first epoch, losing it
        for name, data in (("train_data", train_data), ("val_data", val_data)):
            if data is not None:
                _check_data(name, data)
            if data is not None and len(data) == 0:
                hint = "; val_data=None trains without validation" if name == "val_data" else ""
                raise ValueError(
                    f"{name}: expected a non-empty data set, got 0 samples (an empty split? "
                    f"split(n, sizes) rounds small parts to 0){hint}"
                )
        # (why) metadata JSON cannot hold was refused only by the first checkpoint's write,
        # after an epoch (or checkpoint_every steps) of training, and on rank 0 alone
        if metadata and out_dir is not None:
            metadata_json(metadata)

        self.train_sampler = ShardedBatchSampler(
            len(train_data),
            cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.steps_per_epoch = self.train_sampler.num_batches()
        if self.steps_per_epoch == 0:
            # (why) a last batch smaller than the world size is dropped: nothing was left, and
            # the run trained no step and failed at its first validation (division by zero)
            raise ValueError(
                f"train_data: expected at least {self.dist.world_size} samples (one per "
                f"data-parallel rank), got {len(train_data)}; use fewer ranks or more data"
            )
        self.total_steps = cfg.epochs * self.steps_per_epoch

        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
        self.scheduler = build_scheduler(
            self.optimizer, cfg.schedule, self.total_steps, cfg.warmup_steps
        )
        self._amp_dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if cfg.amp is not None:
            if self.device.type != "cuda":
                warnings.warn(
                    f"amp={cfg.amp!r} needs a CUDA device; training on {self.device} in full "
                    "precision instead",
                    stacklevel=2,
                )
            else:
                self._amp_dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
                if cfg.amp == "fp16":
                    self.scaler = torch.amp.GradScaler("cuda")

        self._loss_module: nn.Module = _LossModule(self.model, self.loss_fn)
        self._ddp: nn.Module | None = None
        if self.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device] if self.device.type == "cuda" else None
            self._loss_module = DistributedDataParallel(self._loss_module, device_ids=ids)
            self._ddp = self._loss_module
        if cfg.compile:
            self._loss_module = torch.compile(self._loss_module)

        self._ckpt = (
            CheckpointManager(self.out_dir, metadata=metadata)
            if self.out_dir is not None and self.is_main
            else None
        )
        columns = ["step", "epoch", "time_s", "lr", "train_loss", "samples_per_s", "val_loss"]
        columns += [f"val_{name}" for name in self.metrics]
        self._log = MetricsLog(self.out_dir if self.is_main else None, columns)

        # counters: everything needed to continue exactly is in _state_tree()
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self._epoch_loss = [0.0, 0]  # sum of sample-weighted losses, samples, this epoch
        self._last_epoch_loss = math.nan
        # loss sum and samples since the last training row (across epoch ends): a resumed run's
        # next row averages the same steps as an uninterrupted run's
        self._log_window = [0.0, 0]
        self._stop = False
        self._sigint = False
        self._warned_nonfinite = False
        # each module's mode after model.train(), or None where the model may have left those
        # modes (a new epoch, a validation, a checkpoint): see _train_step
        self._modes: list[tuple[nn.Module, bool]] | None = None
        # the checkpoint the state in memory was last saved to or restored from (another run's
        # included): where a nan loss puts the state back to, and whether with its moments (a
        # resume with optimizer_state=False started them afresh)
        self._state_path: Path | None = None
        # the (step, epoch) of the newest state saved, or restored from a checkpoint of this
        # run's directory (then `_state_path`; None after another run's), and the (step, epoch)
        # `last` points at: a run ends with `last` at its final state. The epoch tells apart the
        # two states of an epoch's final step (before and after the epoch-end bookkeeping)
        self._saved_at: tuple[int, int] | None = None
        self._state_moments = True
        self._last_at: tuple[int, int] | None = None
        self._stale_best: Path | None = None  # an earlier run's `best` in out_dir (fit sets it)
        self._time_offset = 0.0
        self._t0 = time.perf_counter()
        self._built_decay: list[float | None] = []
        self._built_lr: list[float] = []
        self._built_for: tuple[Any, Any] | None = None  # the optimiser and schedule noted
        self._note_built()
        # names the run a checkpoint belongs to (kept across resumes): `best` left in out_dir by
        # an earlier run is not taken for this run's newest state
        self.run_id = uuid.uuid4().hex

    # ------------------------------------------------------------------ public
    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that writes files)."""
        return self.dist.is_main

    @property
    def history(self) -> list[dict[str, Any]]:
        """The metrics rows logged so far, as written to ``metrics.csv`` / ``metrics.json`` (on
        every rank; a resume restores them): one dict per row with the keys ``step``,
        ``epoch`` (fractional), ``time_s``, ``lr`` (param group 0's, for the step after the
        row's), ``train_loss``, ``samples_per_s``,
        ``val_loss`` and ``val_<metric>``, None where the row has no value. The live list: a
        row a callback changes or adds a value to (``trainer.history[-1]["val_psnr"] = ...`` in
        :meth:`Callback.on_evaluate`) is written so to ``metrics.json`` at its next rewrite (at
        the latest when ``fit`` returns) and into checkpoints; ``metrics.csv`` keeps the rows as
        they were logged, in the columns above."""
        return self._log.rows

    def request_stop(self) -> None:
        """Finish the current step, save ``last`` and return from :meth:`fit`."""
        self._stop = True

    def fit(self, resume: bool | str | Path = False, *, optimizer_state: bool = True) -> FitResult:
        """Train for ``config.epochs`` epochs (minus those done) and return a :class:`FitResult`.

        Args:
            resume: False: start from the current state (fresh runs seed the RNGs from
                ``config.seed``); ``"auto"``: continue from ``out_dir/last`` if it exists (from
                ``best`` where a kill left it newer); a path: continue from that checkpoint or
                run directory (the newer of its ``last`` and ``best``).
            optimizer_state: with a resume, restore AdamW's moments as well (exact resume).
                False keeps everything else of the checkpoint (weights, step, schedule, RNG
                states, history) and starts the moments afresh (AdamW's bias correction starts
                over): for a checkpoint whose optimiser state does not fit the model, as one
                written by an older sciml for a model that had more parameters.

        Ctrl-C finishes the current step, saves ``last`` and returns with ``interrupted=True``.
        A second Ctrl-C (or a ``KeyboardInterrupt`` from a callback) aborts at once: ``fit``
        returns with ``interrupted=True`` and ``last`` stays at the newest checkpoint written
        before, since the model in memory may be half-way through a step.

        Raises:
            FloatingPointError: a step's training loss is nan or inf, or its gradients are
                (the message names that step; under fp16's GradScaler, which skips the steps
                whose gradients overflow, only the loss is checked). That step's update has
                reached the weights, so the state in memory is first put back to the run's
                newest checkpoint (as a resume from it would; the message names it), except
                without one or under data parallelism, where the message says the model in
                memory is not usable.
        """
        self._note_built()
        if self._ckpt is not None:
            self._ckpt.check_links()  # before any step: a checkpoint could not be published
        checkpoint = self._resume_target(resume)
        if checkpoint is not None:
            self._restore(checkpoint, optimizer_state=optimizer_state)
        elif self.step == 0:
            if self.is_main and self.out_dir is not None and self._has_checkpoint():
                warnings.warn(
                    f"{self.out_dir} holds a checkpoint (`last` / `best`) and this run starts "
                    "afresh, replacing it as it goes; pass fit(resume='auto') (on the command "
                    "line: sciml train --resume) to continue it instead",
                    stacklevel=2,
                )
                # (why) `best` was replaced only by a better validation of this run: a run
                # without validation (or whose validations were all nan) ended with `best` at
                # the earlier run's model, which sciml.load(out_dir / "best") and sciml train's
                # test evaluation took for this run's; its first checkpoint drops the link
                self._stale_best = self._ckpt.link("best")
            _resume.seed_everything(self.config.seed)
        self._log.reset(self._log.rows)
        interrupted = aborted = False
        self._stop = False  # before on_fit_start, which may request a stop
        self._sigint = False
        for cb in self.callbacks:
            cb.on_fit_start(self)

        self._t0 = time.perf_counter() - self._time_offset
        bar = self._progress_bar()
        previous_handler = self._install_sigint()
        nonfinite: _NonFiniteLoss | None = None
        try:
            while self.epoch < self.config.epochs and not self._stop:
                self._run_epoch(bar)
        except KeyboardInterrupt:
            # (why) raised anywhere in a step (a second Ctrl-C, a callback): the state in memory
            # may be half-updated, so `last` stays at the newest consistent checkpoint
            interrupted = aborted = True
        except _NonFiniteLoss as error:
            nonfinite = error
        finally:
            # (why) the training time so far: a later fit() in this process (after a stop)
            # counted time_s from 0 again, so its rows and checkpoints went back in time; the
            # time between two fits is not training (a nan loss's restore sets the checkpoint's)
            self._time_offset = time.perf_counter() - self._t0
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            if bar is not None:
                bar.close()
            self._log.flush()  # metrics.json is rewritten only now and then during the run
        if nonfinite is not None:
            # (why) after the files got the rows up to the failure: the restore drops them from
            # the history in memory, as a resume from the checkpoint would
            raise FloatingPointError(self._restore_after_nonfinite(str(nonfinite))) from None
        interrupted = interrupted or self._sigint
        if not aborted:
            self._save_final()
        barrier(self.dist)
        result = FitResult(
            train_loss=self._last_epoch_loss if self.batch_in_epoch == 0 else self._running_loss(),
            best_metric=self.best_metric,
            best_step=self.best_step,
            history=[dict(r) for r in self.history],
            interrupted=interrupted,
            step=self.step,
            epoch=self.epoch,
            checkpoint=self._ckpt.link("last") if self._ckpt is not None else None,
        )
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        # (why) a callback may have changed rows after the rewrite above (its on_checkpoint of
        # the final save, its on_fit_end); the file ends equal to trainer.history
        self._log.flush()
        return result

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        """Validation loss and metrics over ``data``: sample means over the whole data set.

        Returns ``{"loss": ..., <metric name>: ...}``. Under data parallelism each rank
        evaluates its shard and the sums are all-reduced, so every rank gets the same numbers.
        """
        _check_data("data", data)
        sampler = ShardedBatchSampler(
            len(data),
            self.config.batch_size,
            shuffle=False,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            keep_small_last=True,
        )
        names = ["loss", *self.metrics]
        sums = torch.zeros(len(names) + 1, dtype=torch.float64, device=self.device)
        was_training = self.model.training
        self.model.eval()
        try:
            for batch in self._loader(data, sampler, epoch=0):
                batch = self._to_device(batch)
                # (why) the forward at the whole batch_size ran out of memory in runs that
                # train in micro_batch chunks; each chunk adds its sample-weighted sums, so the
                # means are those of one whole-batch pass
                n_batch = batch["input"].shape[0]
                for chunk, n in _split_batch(batch, n_batch, self.config.micro_batch):
                    with self._autocast():
                        pred = predict(self.model, chunk)
                        # (why) the default loss is of this prediction: one forward pass, not two
                        if getattr(self.model, "training_loss", None) is None:
                            loss = self.loss_fn(pred, chunk["target"])
                        else:
                            loss = batch_loss(self.model, chunk, self.loss_fn)
                    target = chunk["target"]
                    pred = pred.to(target.dtype)
                    sums[0] += loss.detach().double() * n
                    for i, name in enumerate(self.metrics, start=1):
                        value = self.metrics[name](pred, target).detach().double()
                        if value.ndim > 0 and tuple(value.shape) != (n,):
                            # (why) elementwise values (nn.MSELoss(reduction="none")) were summed
                            # over their points: the metric came out that many times too large
                            raise ValueError(
                                f"metric {name!r} gave shape {tuple(value.shape)} for a batch of "
                                f"{n}; expected per-sample values ({n},) or a scalar batch mean "
                                "(LpLoss(reduction='none') and MSE(reduction='none') give the first)"
                            )
                        sums[i] += value.sum() if value.ndim > 0 else value * n
                    sums[-1] += n
        finally:
            self.model.train(was_training)
        all_reduce_sum(sums, self.dist)
        count = sums[-1].item()
        return {name: (sums[i] / count).item() for i, name in enumerate(names)}

    # ------------------------------------------------------------------ the loop
    def _run_epoch(self, bar: Any) -> None:
        cfg = self.config
        self._modes = None
        self.train_sampler.set_epoch(self.epoch, self.batch_in_epoch)
        # a data set that redraws per epoch (PointSamples' query points) is told the epoch, so
        # each epoch draws anew and a resumed run draws what an uninterrupted one would
        set_data_epoch = getattr(self.train_data, "set_epoch", None)
        if callable(set_data_epoch):
            set_data_epoch(self.epoch)
        sizes = self.train_sampler.global_batch_sizes()
        timer = [0, time.perf_counter()]  # samples and start time since the last row (this process)
        for local in self._loader(self.train_data, self.train_sampler, epoch=self.epoch):
            n_global = sizes[self.batch_in_epoch]
            loss, stop = self._train_step(self._to_device(local), n_global)
            self.step += 1
            self.batch_in_epoch += 1
            self._epoch_loss[0] += loss * n_global
            self._epoch_loss[1] += n_global
            self._log_window[0] += loss * n_global
            self._log_window[1] += n_global
            timer[0] += n_global
            if stop:
                self._sigint = True
                self._stop = True
            for cb in self.callbacks:
                cb.on_step_end(self, loss)
            if self._sigint and not self.dist.distributed:
                self._stop = True  # data-parallel ranks agree on stopping in the next step
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            if self.step % cfg.log_every == 0:
                elapsed = max(time.perf_counter() - timer[1], 1e-12)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.4g}", samples_s=f"{timer[0] / elapsed:.1f}")
                total, n = self._log_window
                self._log_row(train_loss=total / n, samples_per_s=timer[0] / elapsed)
                self._log_window = [0.0, 0]
                timer = [0, time.perf_counter()]
            links: list[str] = []
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self._validate():
                links.append("best")
            # (why) a periodic checkpoint on an epoch's final batch waits for the epoch end: the
            # state before it would have a resume validate that epoch again
            final_batch = self.batch_in_epoch == len(sizes)
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and not final_batch:
                links.append("last")
            if links:
                self._save(links)
            if self._sigint and not self.dist.distributed:
                # (why) a Ctrl-C during the validation or the checkpoint above: the run
                # trained one more step before it stopped
                self._stop = True
            if self._stop:
                return
        # the epoch is complete
        self._last_epoch_loss = self._running_loss()
        self.epoch += 1
        self.batch_in_epoch = 0
        self._epoch_loss = [0.0, 0]
        # (why) `_log_window` runs on: a row at step k (k % log_every == 0) averages the steps
        # since the previous row, as its label says, also across an epoch end
        for cb in self.callbacks:
            cb.on_epoch_end(self, self.epoch - 1)
        links = []
        if cfg.eval_every == 0 and self._validate():
            links.append("best")
        if cfg.checkpoint_every == 0 or self.step % cfg.checkpoint_every == 0:
            links.append("last")
        if links:
            self._save(links)
        if self._sigint and not self.dist.distributed:
            self._stop = True  # a Ctrl-C during the epoch end's validation or checkpoint

    def _train_step(self, batch: dict[str, Any], n_global: int) -> tuple[float, bool]:
        """One optimiser step on this rank's shard of a global batch of ``n_global`` samples.

        Returns the global batch's mean loss and whether any rank asked to stop (Ctrl-C).
        The loss of each chunk of ``n`` samples (a mean over them; the chunk is the whole
        local share unless ``config.micro_batch`` splits it) is scaled by ``n * N / n_global``
        before backward, so the accumulated gradient, averaged by DDP over ``N`` ranks, is
        that of the global mean even when the last batch splits unevenly.
        """
        # (why) every step starts with each module in the mode model.train() gives it, as with
        # train() at every step; but train() walks the modules setting each (35-45 us for a
        # 13-module FNO, measured), so it runs only where the mode may have changed (a new
        # epoch, a validation or checkpoint, any callback hook) or a module is out of that
        # mode: the model's own code (a training_loss, a hook) may put a submodule in eval mode
        # and leave it there. Reading the flags of the modules noted after the epoch's first
        # train() costs 1-2 us (a module added to the model mid-epoch is read from the next
        # epoch on); a model whose train() keeps a submodule in eval mode (a frozen BatchNorm)
        # has that noted, so it is not trained again at every step
        modes = self._modes
        if modes is None or self.callbacks or not all(m.training == on for m, on in modes):
            self.model.train()
            if modes is None:
                self._modes = [(module, module.training) for module in self.model.modules()]
        n_local = batch["input"].shape[0]
        chunks = _split_batch(batch, n_local, self.config.micro_batch)
        self.optimizer.zero_grad(set_to_none=True)
        # the sample-weighted loss sum in float64, read once after the optimiser step (on CUDA
        # the host then queues the step before it waits): for one chunk its loss times n,
        # computed by Python (the same float64 product, no tensor ops); else summed on the device
        loss_sum: torch.Tensor | None = None
        for i, (chunk, n) in enumerate(chunks):
            # (why) DDP reduces gradients in the last chunk's backward only
            last = i == len(chunks) - 1
            sync = (
                self._ddp.no_sync()
                if self._ddp is not None and not last
                else contextlib.nullcontext()
            )
            with sync:
                with self._autocast():
                    loss = self._loss_module(chunk)
                if loss.ndim != 0:
                    raise ValueError(
                        f"expected the training loss to be a scalar (a mean over the batch), got "
                        f"shape {tuple(loss.shape)}; use reduction='mean'"
                    )
                weight = n * self.dist.world_size / n_global
                # (why) a weight of 1 (a whole batch on one process) is exact: no product, and
                # no node in the graph to differentiate through
                scaled = loss if weight == 1.0 else loss * weight
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            if len(chunks) > 1:
                part = loss.detach().double() * n
                loss_sum = part if loss_sum is None else loss_sum + part
        clip = self.config.grad_clip
        norm: torch.Tensor | None = None
        if self.scaler is not None:
            if clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if clip is not None:
                norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            else:
                norm = _largest_gradient_norm(self.optimizer)
            self.optimizer.step()
        self.scheduler.step()
        total = loss.item() * n if loss_sum is None else loss_sum.item()
        if self.dist.distributed:
            stats = torch.tensor(
                [total, float(n_local), float(self._sigint)],
                dtype=torch.float64,
                device=self.device,
            )
            all_reduce_sum(stats, self.dist)
            value, stop = stats[0].item() / stats[1].item(), stats[2].item() > 0
        else:
            # (why) the all-reduce's tensor and three reads cost 28 us a step on the CPU (and
            # a host-to-device copy and three syncs on CUDA) to return these same numbers
            value, stop = total / float(n_local), self._sigint
        if not math.isfinite(value):
            # (why) the loss is read after the optimiser step (one sync a step): the step has
            # already applied the non-finite gradients; fit puts the state back
            raise _NonFiniteLoss(
                f"training loss is {value} at step {self.step + 1} (epoch {self.epoch})"
            )
        # (why) a finite loss with inf / nan gradients (an overflow in backward) put nan into
        # the weights through the step, and was reported one step late as the next step's nan
        # loss; a checkpoint written in between held the nan weights, and `last` moved onto
        # it. The norm (grad_clip's, else the largest of one parameter's) is read after the
        # loss's read above has waited for the step: a read of one number, no wait of its own.
        # Not under fp16's GradScaler, which skips the steps whose gradients overflow by design.
        if (
            norm is not None
            and not math.isfinite(grad_norm := norm.item())
            and (clip is not None or not _gradients_finite(self.optimizer))
        ):
            what = "gradient norm" if clip is not None else "largest gradient norm"
            raise _NonFiniteLoss(
                f"{what} is {grad_norm} at step {self.step + 1} (epoch {self.epoch}), "
                f"with a finite training loss {value}: the gradients went non-finite in this "
                "step's backward"
            )
        return value, stop

    def _validate(self) -> bool:
        """Evaluate ``val_data``, log it, and return True when the monitored metric improved."""
        if self.val_data is None:
            return False
        metrics = self.evaluate(self.val_data)
        self._modes = None
        self._log_row(**{f"val_{k}": v for k, v in metrics.items()})
        for cb in self.callbacks:
            cb.on_evaluate(self, metrics)
        value = metrics[self.monitor]
        if not math.isfinite(value):
            # (why) a nan compares False with everything: taken as the first best it stayed best
            # for the rest of the run, and `best` kept that model
            if not self._warned_nonfinite:
                self._warned_nonfinite = True
                warnings.warn(
                    f"the validation {self.monitor!r} is {value} at step {self.step}, so it is "
                    "not a candidate for `best` (an all-zero target in val_data makes relative "
                    "metrics inf or nan: monitor='mse' or a metric defined there avoids that)",
                    stacklevel=4,
                )
            return False
        if self.best_metric is None or _improves(value, self.best_metric, self.mode):
            self.best_metric, self.best_step = value, self.step
            return True
        return False

    # ------------------------------------------------------------------ helpers
    def _loader(self, data: Any, sampler: ShardedBatchSampler, epoch: int) -> DataLoader:
        # a private generator: creating the iterator must not draw from the global RNG, or a
        # resumed run (which creates it mid-epoch) would diverge from an uninterrupted one
        gen = torch.Generator().manual_seed(epoch_seed(self.config.seed + 1, epoch))
        return DataLoader(
            data,
            batch_sampler=sampler,
            num_workers=self.config.num_workers,
            collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
            generator=gen,
        )

    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()
        }

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def _running_loss(self) -> float:
        total, n = self._epoch_loss
        return total / n if n else math.nan

    def _log_row(self, **values: Any) -> None:
        row = {
            "step": self.step,
            "epoch": self.epoch + self.batch_in_epoch / self.steps_per_epoch,
            "time_s": round(time.perf_counter() - self._t0, 3),
            "lr": self.optimizer.param_groups[0]["lr"],
            **values,
        }
        self._log.append(row)

    def _progress_bar(self) -> Any:
        if not self.is_main or self.progress is False:
            return None
        from tqdm.auto import tqdm

        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=None if self.progress is None else False,
        )
        if bar.disable:  # progress=None off a terminal: no bar (its per-step updates cost 6 us)
            bar.close()
            return None
        return bar

    def _install_sigint(self) -> Any:
        """Route Ctrl-C to a flag checked after every step; a second Ctrl-C raises at once."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, frame: Any) -> None:
            if self._sigint:
                raise KeyboardInterrupt
            self._sigint = True

        return signal.signal(signal.SIGINT, handler)

    # ------------------------------------------------------------------ state
    # (why) the checkpoint state (what is saved, when `last` moves, how a resume restores it)
    # is one concept of its own, in _resume.py; its functions take the trainer and are bound
    # here as methods
    _state_tree = _resume.state_tree
    _resume_target = _resume.resume_target
    _has_checkpoint = _resume.has_checkpoint
    _note_built = _resume.note_built
    _restore = _resume.restore
    _restore_after_nonfinite = _resume.restore_after_nonfinite
    _save = _resume.save
    _save_final = _resume.save_final


def _check_data(name: str, data: Any) -> None:
    """A TypeError unless ``data`` is a map-style data set (``len`` and ``[i]``).

    (why) a DataLoader given as val_data failed only after the first epoch ("object is not
    subscriptable"): the Trainer batches a data set itself, by ``config.batch_size``."""
    loader = isinstance(data, DataLoader)
    if loader or not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        hint = "; pass its data set (loader.dataset): the Trainer batches it by "
        hint += "TrainConfig.batch_size"
        raise TypeError(
            f"{name}: expected a map-style data set (len and [i], items dicts with 'input' and "
            f"'target'), got a {type(data).__name__}{hint if loader else ''}"
        )


def _largest_gradient_norm(optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
    """The largest 2-norm of the gradient of one of ``optimizer``'s parameters (a complex one
    as its real pairs), a 0-dim tensor on their device, or None without gradients: nan or inf
    where a gradient holds nan or inf, and inf also where a norm of finite values overflows
    (:func:`_gradients_finite` tells the two apart).

    (why) per parameter, not the norm of all: fewer overflows. Complex gradients as real pairs
    keep one dtype (CUDA's fused kernel), and on the CPU the 2-norms of real values took 30 us
    a step for the 12 tensors of benchmarks/trainer_overhead.py's FNO, where the largest
    magnitudes took 94 (the abs of complex values; measured on 1 thread of a loaded 2-core
    machine)."""
    grads = [
        p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]
    if not grads:
        return None
    grads = [torch.view_as_real(g) if g.is_complex() else g for g in grads]
    return torch.stack(torch._foreach_norm(grads)).max()


def _gradients_finite(optimizer: torch.optim.Optimizer) -> bool:
    """Whether every gradient of ``optimizer``'s parameters is finite (read only where a norm
    was not: a norm of large finite values, float16's above 65504, overflows)."""
    grads = [
        p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]
    return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())


class _NonFiniteLoss(FloatingPointError):
    """A step's training loss was nan or inf (raised inside the loop; fit raises a
    FloatingPointError saying what became of the state in memory)."""
