"""Eulerian PINN vs Lagrangian PINN on fast convection, side by side.

Trains both on ``u_t + beta u_x = 0``, ``u0 = sin(x)`` on ``[0, 2 pi)``, ``t in [0, 1]`` with the
same collocation points, network size and optimiser (Adam, then L-BFGS), prints their relative
L2 errors against the exact solution and saves a figure (exact | PINN | LPINN) with matplotlib.

    OMP_NUM_THREADS=1 .venv/bin/python examples/lpinn_convection.py --out lpinn_convection.png
    .venv/bin/python examples/lpinn_convection.py --beta 50 --adam 3000 --lbfgs 1000   # longer
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from sciml.cli import HelpFormatter
from sciml.pinn import (
    PINN,
    Box,
    Convection,
    LagrangianPINN,
    LossWeights,
    PINNTrainConfig,
    fit,
    sobol,
)
from sciml.pinn.reference import periodic_grid
from sciml.train import LpLoss


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument(
        "--beta", type=float, default=30.0, help="convection speed beta in u_t + beta u_x = 0"
    )
    ap.add_argument("--points", type=int, default=2048, help="collocation points (Sobol)")
    ap.add_argument("--width", type=int, default=50, help="hidden units per layer")
    ap.add_argument("--depth", type=int, default=4, help="hidden layers")
    ap.add_argument("--adam", type=int, default=1500, help="Adam steps (first)")
    ap.add_argument("--lbfgs", type=int, default=300, help="L-BFGS steps (after Adam)")
    ap.add_argument("--out", default="lpinn_convection.png", help="the figure")
    args = ap.parse_args(argv)
    check(ap, args)
    torch.set_num_threads(1)
    torch.manual_seed(0)

    problem = Convection(beta=args.beta)
    pts = sobol(args.points, Box((0.0, 0.0), (2 * math.pi, problem.t_final)), seed=0)
    x, t = pts[:, :1].clone().requires_grad_(), pts[:, 1:].clone().requires_grad_()
    x_ic = periodic_grid(128).float()[:, None]
    config = PINNTrainConfig(adam_steps=args.adam, lr=1e-3, lbfgs_steps=args.lbfgs, log_every=500)

    pinn = PINN(width=args.width, depth=args.depth)
    lpinn = LagrangianPINN(width=args.width, state_depth=args.depth, curve_depth=2)
    runs = {
        "PINN": (pinn, LossWeights({"ic": 100.0})),
        "LPINN": (lpinn, LossWeights({"ic_x": 100.0, "ic_u": 100.0})),
    }
    xg = periodic_grid(256)
    tg = torch.linspace(0, problem.t_final, 101, dtype=torch.float64)
    exact = problem.reference(xg, tg)
    fields = {"exact": exact}
    for name, (model, weights) in runs.items():
        res = fit(model, lambda m=model: m.loss_terms(problem, x, t, x_ic), config, weights=weights)
        u = model.evaluate(xg.float(), tg.float()).double()
        err = float(LpLoss()(u[None], exact[None]))  # one sample: the whole (t, x) grid
        fields[f"{name} (rel L2 {err:.1e})"] = u
        print(
            f"{name}: rel L2 {err:.3e}, loss {res.loss:.2e}, "
            f"{1e3 * res.seconds_per_adam_step:.1f} ms per Adam step"
        )

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)")
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True, layout="constrained")
    for ax, (title, u) in zip(axes, fields.items()):
        im = ax.pcolormesh(
            tg.numpy(), xg.numpy(), u.T.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, shading="auto"
        )
        ax.set_title(title)
        ax.set_xlabel("t")
    axes[0].set_ylabel("x")
    fig.colorbar(im, ax=axes, shrink=0.9)
    fig.suptitle(f"u_t + {args.beta:g} u_x = 0, u0 = sin x")
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


def check(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse settings that would fail later (in training, or when saving the figure)."""
    for name in ("points", "width", "depth"):
        value = getattr(args, name)
        if value < 1:
            ap.error(f"--{name} expects an integer >= 1, got {value}")
    for name in ("adam", "lbfgs"):
        value = getattr(args, name)
        if value < 0:
            ap.error(f"--{name} expects a number of steps >= 0, got {value}")
    out = Path(args.out)
    if out.is_dir() or not out.parent.is_dir():
        ap.error(f"--out expects a file name in an existing folder (the figure), got {args.out}")


if __name__ == "__main__":
    main()
