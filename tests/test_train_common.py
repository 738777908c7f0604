"""A tiny operator and problem shared by the trainer tests, and a script entry point.

The subprocess tests (SIGKILL + resume, torchrun data parallelism) run this file as a script:

    python tests/test_train_common.py OUT_DIR [--kill-at K] [--dtype float64] [--dropout P] ...

It trains :class:`Tiny` on :class:`ShiftData` with :func:`make_trainer` and writes
``OUT_DIR/result.json`` (rank 0) when ``fit`` returns. Holds no tests itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

import sciml
from sciml.train import Callback, TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TinyConfig:
    hidden: int = 16
    dropout: float = 0.0


class Tiny(sciml.Operator, family="test-train-tiny"):
    """Two periodic 1-D convolutions with dropout: ``(batch, 1, n) -> (batch, 1, n)``."""

    config_class = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.inp = torch.nn.Conv1d(1, config.hidden, 5, padding=2, padding_mode="circular")
        self.drop = torch.nn.Dropout(config.dropout)
        self.out = torch.nn.Conv1d(config.hidden, 1, 5, padding=2, padding_mode="circular")

    def forward(self, u, *, x=None, t=None):
        return self.out(self.drop(torch.nn.functional.gelu(self.inp(u))))


class ShiftData(torch.utils.data.Dataset):
    """``u`` a random 3-mode Fourier series on 32 points, target ``0.5 * u(x - 3h)``."""

    def __init__(self, n: int, *, seed: int = 1, dtype: torch.dtype = torch.float32) -> None:
        g = torch.Generator().manual_seed(seed)
        x = torch.arange(32, dtype=torch.float64) * (2 * torch.pi / 32)
        a = torch.randn(n, 3, 1, generator=g, dtype=torch.float64)
        u = a[:, 0] * torch.sin(x) + a[:, 1] * torch.cos(2 * x) + a[:, 2] * torch.sin(3 * x)
        self.u = u.unsqueeze(1).to(dtype)  # (n, 1, 32)
        self.y = 0.5 * torch.roll(self.u, 3, dims=-1)
        self.seen: list[int] = []

    def __len__(self) -> int:
        return len(self.u)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        self.seen.append(int(i))
        return {"input": self.u[i], "target": self.y[i]}


class KillAt(Callback):
    """SIGKILL this process right after optimiser step ``step`` (no cleanup of any kind)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def make_trainer(
    out_dir, *, dtype=torch.float32, dropout=0.0, callbacks=(), n_train=40, metadata=None, **config
) -> Trainer:
    torch.manual_seed(0)
    model = Tiny(TinyConfig(dropout=dropout)).to(dtype)
    defaults = dict(epochs=3, batch_size=8, lr=3e-3, log_every=1, checkpoint_every=3, seed=7)
    defaults.update(config)
    return Trainer(
        model,
        ShiftData(n_train, dtype=dtype),
        val_data=ShiftData(12, seed=2, dtype=dtype),
        config=TrainConfig(**defaults),
        out_dir=out_dir,
        callbacks=callbacks,
        progress=False,
        metadata=metadata,
    )


def run_script(*args: str, launcher: tuple[str, ...] = (), timeout: float = 120):
    """Run this file as a script in a fresh interpreter (1 thread), return the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, *launcher, str(Path(__file__).resolve()), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--micro-batch", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    callbacks = [KillAt(args.kill_at)] if args.kill_at is not None else []
    trainer = make_trainer(
        args.out_dir,
        dtype=getattr(torch, args.dtype),
        dropout=args.dropout,
        callbacks=callbacks,
        n_train=args.n_train,
        epochs=args.epochs,
        checkpoint_every=args.checkpoint_every,
        micro_batch=args.micro_batch,
    )
    result = trainer.fit(resume="auto" if args.resume else False)
    seen = trainer.train_data.seen
    if trainer.is_main:
        record = {
            "train_loss": result.train_loss,
            "step": result.step,
            "world": trainer.dist.world_size,
        }
        Path(args.out_dir, "result.json").write_text(json.dumps(record))
    Path(args.out_dir, f"seen-{trainer.dist.rank}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    _main()
