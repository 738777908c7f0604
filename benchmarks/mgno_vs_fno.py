"""MgNO vs the FNO baseline on the same Darcy data, in one run.

Data: sciml's Darcy generator (piecewise-constant coefficient 12 / 3 thresholded from a GRF,
``-div(a grad u) = 1``, zero Dirichlet, 5-point finite differences + sparse direct solve), solved
directly on an ``R x R`` node grid for each ``R`` in ``--resolutions``; the first ``--n-train``
samples train, the next ``--n-test`` test. Both models see the same normalised data
(per-channel mean / std of the training inputs and targets, stored inside the model with
:class:`sciml.models.Normalized`, so predictions are in physical units).

Models (comparable parameter counts):

* MgNO, the paper's Darcy configuration (6 levels, 24 channels, 4 layers: 572,661 parameters),
  fewer levels on grids too small for 6;
* FNO (``sciml.models.FNO``) with 4 Fourier layers, ``--fno-modes`` modes and ``--fno-width``
  channels (defaults 12 / 16: 593,281 parameters), 8 points of zero padding for the
  non-periodic domain.

Training: the common :class:`sciml.train.Trainer` for both, the same epochs, batch size, AdamW,
one-cycle schedule and loss (the paper's recipe: H1 loss, :func:`sciml.models.mgno.darcy_recipe`);
learning rate ``--lr-mgno`` / ``--lr-fno``. Reported: test relative L2 (mean over test samples
of ``||pred - u|| / ||u||``) of the final model, parameters, and seconds per epoch measured in the
same process (contended CPU: compare the ratio, not the absolute seconds).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mgno_vs_fno.py                      # full: 1000/100, 64 and 128
    .venv/bin/python benchmarks/mgno_vs_fno.py --resolutions 64 --n-train 200 --n-test 50 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from sciml._environment import run_environment
from sciml.data.generators import generate
from sciml.models import FNO, FNOConfig, MgNO, MgNOConfig, Normalized
from sciml.models.mgno import PAPER_DARCY_SMOOTHING, darcy_recipe
from sciml.train import LpLoss, Trainer

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "_data"
RESULTS = ROOT / "results" / "mgno_vs_fno.json"


def load_darcy(
    resolution: int, n: int, seed: int, data_dir: Path = DATA
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, u)`` of shape ``(n, 1, R, R)`` (float32), generated once and cached in ``data_dir``."""
    import h5py

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"darcy_pwc_R{resolution}_n{n}_seed{seed}.h5"
    if not path.exists():
        t0 = time.perf_counter()
        generate("darcy", n=n, resolution=resolution, out=path, seed=seed)
        print(f"generated {path.name} in {time.perf_counter() - t0:.0f}s", flush=True)
    with h5py.File(path, "r") as f:
        fields = _find(f, ("a", "u"))
        a, u = (torch.from_numpy(np.asarray(fields[k], dtype=np.float32)) for k in ("a", "u"))
    return a.reshape(n, 1, resolution, resolution), u.reshape(n, 1, resolution, resolution)


def _find(f, names):
    """The datasets called ``names`` anywhere in the HDF5 file (sciml's layout nests them)."""
    found = {}

    def visit(name, obj):
        leaf = name.rsplit("/", 1)[-1]
        if leaf in names and hasattr(obj, "shape") and leaf not in found:
            found[leaf] = obj[()]

    f.visititems(visit)
    missing = [k for k in names if k not in found]
    if missing:
        raise KeyError(f"{f.filename}: no datasets {missing}")
    return found


def mgno_config(resolution: int) -> MgNOConfig:
    smoothing = PAPER_DARCY_SMOOTHING
    while (resolution + 2 ** (len(smoothing) - 1) - 1) // 2 ** (len(smoothing) - 1) < 2:
        smoothing = smoothing[1:]  # fewer levels on small grids
    return (
        MgNOConfig.darcy()
        if smoothing == PAPER_DARCY_SMOOTHING
        else MgNOConfig(smoothing=smoothing)
    )


def wrap(inner, a: torch.Tensor, u: torch.Tensor) -> Normalized:
    return Normalized.wrap(
        inner,
        in_mean=a.mean().reshape(1),
        in_std=a.std().reshape(1),
        out_mean=u.mean().reshape(1),
        out_std=u.std().reshape(1),
    )


def train_one(name, model, train, test, args, lr) -> dict:
    recipe = darcy_recipe(epochs=args.epochs, batch_size=args.batch_size, lr=lr, seed=args.seed)
    items = [{"input": a, "target": u} for a, u in zip(*train)]
    trainer = Trainer(
        model, items, loss=recipe.loss, config=recipe.config, progress=False, device=args.device
    )
    t0 = time.perf_counter()
    result = trainer.fit()
    total = time.perf_counter() - t0  # training only (no validation data is passed)
    model.eval()
    rel = LpLoss(reduction="none")
    with torch.no_grad():
        dev = trainer.device
        errs = torch.cat(
            [rel(model(a.to(dev)), u.to(dev)).cpu() for a, u in zip(*(t.split(50) for t in test))]
        )
    out = {
        "model": name,
        "num_parameters": model.num_parameters(),
        "test_rel_l2": float(errs.mean()),
        "final_train_loss_h1": float(result.train_loss),
        "seconds_per_epoch": total / args.epochs,
        "lr": lr,
    }
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    from sciml.cli import HelpFormatter

    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument(
        "--resolutions",
        type=int,
        nargs="+",
        default=[64, 128],
        help="grid points per side, one run each",
    )
    p.add_argument("--n-train", type=int, default=1000, help="training samples")
    p.add_argument("--n-test", type=int, default=100, help="test samples")
    p.add_argument("--epochs", type=int, default=500, help="training epochs (both models)")
    p.add_argument("--batch-size", type=int, default=8, help="samples per batch")
    p.add_argument("--lr-mgno", type=float, default=1e-3, help="MgNO's learning rate")
    p.add_argument("--lr-fno", type=float, default=2e-3, help="FNO's learning rate")
    p.add_argument("--fno-modes", type=int, default=12, help="FNO Fourier modes kept per axis")
    p.add_argument("--fno-width", type=int, default=16, help="FNO channel width")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and batches")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument(
        "--device", default=None, help="torch device (default: cuda if available, else cpu)"
    )
    p.add_argument("--data-dir", type=Path, default=DATA, help="Darcy data cache folder")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON path")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    runs = []
    for res in args.resolutions:
        a, u = load_darcy(res, args.n_train + args.n_test, args.seed, args.data_dir)
        train = (a[: args.n_train], u[: args.n_train])
        test = (a[args.n_train :], u[args.n_train :])
        row = {"resolution": res}
        torch.manual_seed(args.seed)
        mgno = wrap(MgNO(mgno_config(res)), *train)
        row["mgno"] = train_one("mgno", mgno, train, test, args, args.lr_mgno)
        torch.manual_seed(args.seed)
        fno_cfg = FNOConfig(
            modes=(args.fno_modes, args.fno_modes), width=args.fno_width, n_layers=4, padding=8
        )
        fno = wrap(FNO(fno_cfg), *train)
        row["fno"] = train_one("fno", fno, train, test, args, args.lr_fno)
        row["error_ratio_mgno_over_fno"] = row["mgno"]["test_rel_l2"] / row["fno"]["test_rel_l2"]
        row["time_ratio_mgno_over_fno"] = (
            row["mgno"]["seconds_per_epoch"] / row["fno"]["seconds_per_epoch"]
        )
        runs.append(row)
        _write(args, runs)
        print(
            f"R={res}: MgNO {row['mgno']['test_rel_l2']:.4f} vs FNO {row['fno']['test_rel_l2']:.4f} "
            f"(ratio {row['error_ratio_mgno_over_fno']:.2f}); s/epoch ratio "
            f"{row['time_ratio_mgno_over_fno']:.2f}",
            flush=True,
        )
    print(f"wrote {args.out}")


def _write(args, runs: list[dict]) -> None:
    """Write the results so far (after every resolution, so a cut-off run keeps its rows)."""
    record = {
        "benchmark": "mgno_vs_fno",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name()
            if torch.cuda.is_available() and args.device != "cpu"
            else "cpu",
        },
        "environment": run_environment(args.device),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
