"""What ``sciml.train.Trainer`` costs per step over a plain PyTorch training loop.

The same model (same initial weights), data, optimiser (AdamW, lr 1e-3, weight decay 1e-4), the
Trainer's default cosine schedule and loss (``LpLoss``), the same number of epochs and steps,
trained four ways in one process, interleaved (the order rotates), median of ``--repeats``:

* ``plain``: the loop a user writes: a shuffling ``DataLoader``, forward, loss, backward,
  ``step``, scheduler ``step``, and the epoch's mean loss from ``loss.item() * len(batch)``;
* ``trainer``: ``Trainer(model, data, config=TrainConfig(epochs, batch_size)).fit()``, its
  defaults (``progress=False``, so a terminal does not change what is timed);
* ``plain_val_ckpt``: ``plain`` plus, after every epoch, a validation pass (the mean relative
  L2) and ``torch.save`` of the model's and optimiser's state dicts;
* ``trainer_val_ckpt``: ``trainer`` with ``val_data`` and ``out_dir``: its default validation
  and checkpoint (``last`` and ``best``, written and fsync'ed) at every epoch end, and
  ``metrics.csv`` / ``metrics.json``.

Each run is timed from building the optimiser (or the Trainer) to the end of training, so the
Trainer's set-up counts; the per-step overhead is ``(t_trainer - t_plain) / steps``. Both the
process's CPU time (``time.process_time``: steadier on a shared machine, but blind to waits such
as a checkpoint's fsync) and the wall-clock time are recorded. Cases: ``fno`` (a tiny FNO on
32 x 32: width 8, 6 x 6 modes, 2 layers; batch 8) and ``deeponet`` (a tiny DeepONet: 32
sensors, 16 query points, one hidden layer of 32, basis 32; batch 8; a step of about a
millisecond). float32, CPU, one thread.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/trainer_overhead.py

``--baseline-trainer FILE`` adds the runs ``baseline`` and ``baseline_val_ckpt`` with the
Trainer of another version of ``sciml/train/trainer.py`` (loaded beside the current
``sciml.train``; e.g. ``git show COMMIT:sciml/train/trainer.py > /tmp/trainer_old.py``): a
before / after comparison in one run. Writes ``benchmarks/results/trainer_overhead.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from sciml._environment import run_environment
from sciml.models import FNO, DeepONet, DeepONetConfig, FNOConfig
from sciml.models.deeponet import MLPSpec
from sciml.train import LpLoss, TrainConfig, Trainer

HERE = Path(__file__).resolve().parent
LR, WEIGHT_DECAY = 1e-3, 1e-4  # TrainConfig's defaults


def fno_case(n: int, grid: int) -> tuple:
    g = torch.Generator().manual_seed(1)
    u = torch.randn(n, 1, grid, grid, generator=g)
    data = [{"input": u[i], "target": 0.5 * torch.roll(u[i], 3, dims=-1)} for i in range(n)]

    def build():
        torch.manual_seed(0)
        return FNO(FNOConfig(modes=(6, 6), width=8, n_layers=2, projection_channels=16))

    return build, data


def deeponet_case(n: int, sensors: int = 32, points: int = 16) -> tuple:
    g = torch.Generator().manual_seed(1)
    u = torch.randn(n, sensors, generator=g)
    x = torch.rand(n, points, 1, generator=g)
    y = (u[:, :points, None] * x).cumsum(1) / points
    data = [{"input": u[i], "x": x[i], "target": y[i]} for i in range(n)]

    def build():
        torch.manual_seed(0)
        spec = MLPSpec(hidden=(32,))
        return DeepONet(DeepONetConfig(sensors=sensors, basis=32, branch=spec, trunk=spec))

    return build, data


def forward(model, batch):
    kwargs = {"x": batch["x"]} if "x" in batch else {}
    return model(batch["input"], **kwargs)


def plain(model, data, val, epochs: int, batch_size: int, out: Path | None) -> list[float]:
    """The user's loop; with ``val`` and ``out``, a validation pass and a save every epoch."""
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps = epochs * math.ceil(len(data) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    loss_fn, metric = LpLoss(), LpLoss(reduction="none")
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True)
    # (why) the validation items are batched here, inside the timed run, as the Trainer batches
    # its val_data: the loop was given batches collated once outside the timing
    val_loader = None if val is None else torch.utils.data.DataLoader(val, batch_size=batch_size)
    means = []
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            opt.zero_grad()
            loss = loss_fn(forward(model, batch), batch["target"])
            loss.backward()
            opt.step()
            sched.step()
            n = len(batch["target"])
            total, count = total + loss.item() * n, count + n
        means.append(total / count)
        if val_loader is not None:
            model.eval()
            with torch.no_grad():
                errs = [metric(forward(model, b), b["target"]) for b in val_loader]
            means.append(torch.cat(errs).mean().item())
            torch.save(
                {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch},
                out / "last.pt",
            )
    return means


def trainer_run(cls: type):
    def run(model, data, val, epochs: int, batch_size: int, out: Path | None) -> list[float]:
        config = TrainConfig(epochs=epochs, batch_size=batch_size)
        t = cls(model, data, val_data=val, config=config, out_dir=out, progress=False)
        return [t.fit().train_loss]

    return run


def load_trainer(path: Path) -> type:
    """The ``Trainer`` class of another ``trainer.py``, imported as a sibling module of
    ``sciml.train`` (its relative imports resolve to the current package)."""
    spec = importlib.util.spec_from_file_location("sciml.train._baseline_trainer", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.Trainer


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    ap.add_argument(
        "--cases", nargs="+", default=["fno", "deeponet"], help="models to train: fno, deeponet"
    )
    ap.add_argument("--epochs", type=int, default=5, help="training epochs per run")
    ap.add_argument("--batch-size", type=int, default=8, help="samples per batch")
    ap.add_argument("--n-fno", type=int, default=64, help="FNO training samples")
    ap.add_argument("--n-deeponet", type=int, default=256, help="DeepONet training samples")
    ap.add_argument("--n-val", type=int, default=16, help="validation samples")
    ap.add_argument("--grid", type=int, default=32, help="FNO grid points per side")
    ap.add_argument("--repeats", type=int, default=15, help="timed runs per case and trainer")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--baseline-trainer",
        type=Path,
        default=None,
        help="another trainer.py to time beside the installed one (default: none)",
    )
    ap.add_argument(
        "--out", type=Path, default=HERE / "results" / "trainer_overhead.json", help="JSON path"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    trainers = {"trainer": Trainer}
    if args.baseline_trainer is not None:
        trainers["baseline"] = load_trainer(args.baseline_trainer)

    results = {}
    for case in args.cases:
        if case == "fno":
            build, data = fno_case(args.n_fno + args.n_val, args.grid)
        elif case == "deeponet":
            build, data = deeponet_case(args.n_deeponet + args.n_val)
        else:
            raise SystemExit(f"unknown case {case!r}; expected fno or deeponet")
        train, val = data[: -args.n_val], data[-args.n_val :]
        steps = args.epochs * math.ceil(len(train) / args.batch_size)
        runs = {"plain": (plain, None), "plain_val_ckpt": (plain, val)}
        for name, cls in trainers.items():
            runs[name] = (trainer_run(cls), None)
            runs[f"{name}_val_ckpt"] = (trainer_run(cls), val)
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        wall: dict[str, list[float]] = {name: [] for name in runs}
        with tempfile.TemporaryDirectory() as tmp:
            # repeat 0 is a warm-up (allocator, lazy imports, first-call caches), not counted
            for rep in range(args.repeats + 1):
                names = list(runs)
                names = names[rep % len(names) :] + names[: rep % len(names)]  # rotate the order
                for name in names:
                    fn, v = runs[name]
                    out = Path(tmp) / f"{name}-{rep}" if v is not None else None
                    if out is not None:
                        out.mkdir()
                    model = build()
                    t0, c0 = time.perf_counter(), time.process_time()
                    losses = fn(model, train, v, args.epochs, args.batch_size, out)
                    c1, t1 = time.process_time(), time.perf_counter()
                    if not all(math.isfinite(x) for x in losses):
                        raise SystemExit(f"{case} {name}: non-finite loss {losses}")
                    if rep > 0:
                        cpu[name].append(c1 - c0)
                        wall[name].append(t1 - t0)
        summary = {}
        for clock, times in (("cpu", cpu), ("wall", wall)):
            ms = {name: 1e3 * statistics.median(ts) / steps for name, ts in times.items()}
            summary[clock] = {"ms_per_step": ms}
            for name in trainers:
                for suffix in ("", "_val_ckpt"):
                    a, b = ms[f"{name}{suffix}"], ms[f"plain{suffix}"]
                    summary[clock][f"{name}{suffix}_overhead_ms_per_step"] = a - b
                    summary[clock][f"{name}{suffix}_over_plain{suffix}"] = a / b
        results[case] = {
            "steps": steps,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "train_samples": len(train),
            "val_samples": len(val),
            "parameters": sum(p.numel() for p in build().parameters()),
            **summary,
            "cpu_s": cpu,
            "wall_s": wall,
        }
        for clock in ("cpu", "wall"):
            r = summary[clock]
            line = ", ".join(f"{k} {v:.3f}" for k, v in r["ms_per_step"].items())
            print(f"{case} ({steps} steps), {clock} ms/step: {line}")
            for name in trainers:
                for suffix in ("", "_val_ckpt"):
                    key = f"{name}{suffix}"
                    print(
                        f"  {key} / plain{suffix}: {r[f'{key}_over_plain{suffix}']:.3f} "
                        f"({r[f'{key}_overhead_ms_per_step']:+.3f} ms/step)"
                    )

    record = {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        # (why) the Trainer picks CUDA where present (the plain loop stays on the CPU)
        "environment": run_environment(),
        "repeats": args.repeats,
        "baseline_trainer": str(args.baseline_trainer) if args.baseline_trainer else None,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
