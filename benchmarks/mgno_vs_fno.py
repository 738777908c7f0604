"""MgNO vs sciml's FNO vs neuraloperator's FNO on the same Darcy data, in one run.

Data: sciml's Darcy generator (piecewise-constant coefficient 12 / 3 thresholded from a GRF,
``-div(a grad u) = 1``, zero Dirichlet, 5-point finite differences + sparse direct solve), solved
directly on an ``R x R`` node grid for each ``R`` in ``--resolutions``; the first ``--n-train``
samples train, the next ``--n-test`` test. Every model sees the same normalised data
(per-channel mean / std of the training inputs and targets, stored inside the model with
:class:`sciml.models.Normalized`, so predictions are in physical units).

Models (comparable parameter counts; ``--models`` picks a subset):

* ``mgno``: MgNO, the paper's Darcy configuration (6 levels, 24 channels, 4 layers: 572,661
  parameters), fewer levels on grids too small for 6;
* ``fno``: sciml's FNO (``sciml.models.FNO``) with 4 Fourier layers, ``--fno-modes`` modes and
  ``--fno-width`` channels (defaults 12 / 16: 593,281 parameters), linear lifting, projection
  MLP with 128 hidden channels, 8 points of zero padding appended to each dim for the
  non-periodic domain;
* ``neuralop_fno``: neuraloperator's FNO (``neuralop.models.FNO``, what a user would otherwise
  pick) built to match ``fno`` as far as its API allows: the same kept modes
  (``n_modes = (2m, 2m - 2)`` keeps what sciml's ``modes = (m, m)`` keeps), width, 4 layers,
  linear lifting (``lifting_channel_ratio=0``; its default is a two-layer MLP) and a projection
  MLP with 128 hidden channels (``projection_channel_ratio = 128 / width``). Where it differs:
  its padding is a fraction of the grid, ``domain_padding = 4 / R``: 4 zero points on *both*
  sides of each dim (sciml: 8 appended at the end); each Fourier layer keeps neuraloperator's
  default channel MLP (width -> width / 2 -> width, soft-gating skip), which sciml's ``fno``
  here has not (``use_channel_mlp=False`` would make neuraloperator 2.0 apply the activation
  twice per layer); its grid embedding spans ``[0, 1]``, sciml's ``[0, 1)``. 594,465 parameters
  at the defaults (a complex weight counted as two reals, as sciml counts them). It runs inside
  a small ``nn.Module`` that applies the same normalisation as ``Normalized`` (neuraloperator's
  FNO already takes and returns sciml's channel-first ``(batch, channels, h, w)`` tensors) and
  trains through the same ``Trainer``. Skipped with a message where neuraloperator is not
  installed.

Training: the common :class:`sciml.train.Trainer` for every model, the same epochs, batch size,
AdamW, one-cycle schedule and loss (the paper's recipe: H1 loss,
:func:`sciml.models.mgno.darcy_recipe`); learning rate ``--lr-mgno`` / ``--lr-fno`` /
``--lr-neuralop``. Reported: test relative L2 (mean over test samples of ``||pred - u|| / ||u||``)
of the final model, parameters, and seconds per epoch measured in the same process (contended
CPU: compare the ratio, not the absolute seconds), and each model's error and time over
neuraloperator's (``*_over_neuralop_fno``).

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

from sciml._environment import optional_missing, optional_version, run_environment
from sciml.data.generators import generate
from sciml.models import FNO, FNOConfig, MgNO, MgNOConfig, Normalized
from sciml.models.mgno import PAPER_DARCY_SMOOTHING, darcy_recipe
from sciml.train import LpLoss, Trainer

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "_data"
RESULTS = ROOT / "results" / "mgno_vs_fno.json"
MODELS = ("mgno", "fno", "neuralop_fno")
FNO_PADDING = 8  # points appended to each dim by sciml's FNO (neuraloperator: 4 on each side)
PROJECTION = 128  # hidden channels of both FNOs' projection MLP (sciml's FNOConfig default)


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


def neuralop_missing() -> str | None:
    """Why neuraloperator's FNO cannot run here, or None where it can."""
    return optional_missing("neuralop", "neuraloperator")


class NeuralopFNO(torch.nn.Module):
    """neuraloperator's FNO inside the normalisation :class:`sciml.models.Normalized` applies:
    ``u: (batch, 1, h, w)`` raw -> ``(u - mu_a) / s_a`` -> FNO -> ``v s_u + mu_u``, same
    shape, physical units (neuraloperator already uses sciml's channel-first layout)."""

    def __init__(self, modes: int, width: int, resolution: int, a, u) -> None:
        from neuralop.models import FNO as NeuralopFNOModel

        super().__init__()
        self.net = NeuralopFNOModel(
            n_modes=(2 * modes, 2 * modes - 2),  # sciml's modes=(m, m): |k| < m, last dim 0..m-1
            in_channels=1,
            out_channels=1,
            hidden_channels=width,
            n_layers=4,
            lifting_channel_ratio=0,  # linear lifting, as sciml's FNO
            projection_channel_ratio=PROJECTION / width,
            domain_padding=FNO_PADDING / 2 / resolution,  # round(f R) = 4 points on each side
        )
        for name, v in (("in_mean", a.mean()), ("in_std", a.std()), ("out_mean", u.mean()),
                        ("out_std", u.std())):  # fmt: skip
            self.register_buffer(name, v.reshape(()).clone())

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.net((u - self.in_mean) / self.in_std) * self.out_std + self.out_mean

    def num_parameters(self) -> int:
        """Scalar parameters, a complex one counted twice (as :meth:`sciml.Operator.num_parameters`)."""
        return sum(p.numel() * (2 if p.is_complex() else 1) for p in self.parameters())


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
    p.add_argument(
        "--lr-neuralop", type=float, default=2e-3, help="neuraloperator FNO's learning rate"
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=None,
        help="models to train (default: all three; neuralop_fno is skipped with a message where "
        "neuraloperator is not installed)",
    )
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
    skipped = {}
    missing = neuralop_missing()
    if args.models is None:
        args.models = list(MODELS)
        if missing:
            args.models.remove("neuralop_fno")
            skipped["neuralop_fno"] = missing
            print(f"skipping neuralop_fno: {missing}", flush=True)
    elif "neuralop_fno" in args.models and missing:
        p.error(f"--models neuralop_fno: {missing}")
    args.models = [m for m in MODELS if m in args.models]  # the order of MODELS, no repeats

    runs = []
    for res in args.resolutions:
        a, u = load_darcy(res, args.n_train + args.n_test, args.seed, args.data_dir)
        train = (a[: args.n_train], u[: args.n_train])
        test = (a[args.n_train :], u[args.n_train :])
        row = {"resolution": res}
        for name in args.models:
            torch.manual_seed(args.seed)
            if name == "mgno":
                model, lr = wrap(MgNO(mgno_config(res)), *train), args.lr_mgno
            elif name == "fno":
                fno_cfg = FNOConfig(
                    modes=(args.fno_modes, args.fno_modes),
                    width=args.fno_width,
                    n_layers=4,
                    projection_channels=PROJECTION,
                    padding=FNO_PADDING,
                )
                model, lr = wrap(FNO(fno_cfg), *train), args.lr_fno
            else:
                model = NeuralopFNO(args.fno_modes, args.fno_width, res, *train)
                lr = args.lr_neuralop
            row[name] = train_one(name, model, train, test, args, lr)
        # (why) "A over B" for every pair in the order of MODELS: mgno / fno (the old keys),
        # mgno / neuralop_fno and fno / neuralop_fno
        for i, a_name in enumerate(args.models):
            for b_name in args.models[i + 1 :]:
                a_row, b_row = row[a_name], row[b_name]
                row[f"error_ratio_{a_name}_over_{b_name}"] = (
                    a_row["test_rel_l2"] / b_row["test_rel_l2"]
                )
                row[f"time_ratio_{a_name}_over_{b_name}"] = (
                    a_row["seconds_per_epoch"] / b_row["seconds_per_epoch"]
                )
        runs.append(row)
        _write(args, runs, skipped)
        print(table(row, args.models), flush=True)
    print(f"wrote {args.out}")


def table(row: dict, models: list[str]) -> str:
    """One resolution's results as a text table; the ratio columns divide by neuralop_fno's."""
    ref = "neuralop_fno" if "neuralop_fno" in models else None
    head = f"R={row['resolution']}: {'model':<13} {'parameters':>10} {'lr':>7} {'test rel L2':>11}"
    head += f" {'s/epoch':>8}" + (" error / neuralop  s/epoch / neuralop" if ref else "")
    lines = [head]
    for name in models:
        r = row[name]
        line = f"{'':{len(str(row['resolution'])) + 4}}{name:<13} {r['num_parameters']:>10,}"
        line += f" {r['lr']:>7g} {r['test_rel_l2']:>11.4f} {r['seconds_per_epoch']:>8.2f}"
        if ref:
            over = row[ref]
            line += f" {r['test_rel_l2'] / over['test_rel_l2']:>16.2f}"
            line += f" {r['seconds_per_epoch'] / over['seconds_per_epoch']:>19.2f}"
        lines.append(line)
    return "\n".join(lines)


def _write(args, runs: list[dict], skipped: dict[str, str]) -> None:
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
        "neuraloperator": optional_version("neuralop", "neuraloperator"),
        "skipped": skipped,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
