"""DeepONet for diffusion-reaction ``s_t = 0.01 s_xx + 0.01 s^2 + u(x)`` (Lu et al. 2021), trained
from finite-difference data or, with ``--physics``, from the PDE alone (physics-informed DeepONet,
Wang et al. 2021), both with the common ``Trainer``.

1. ``sciml data generate diffusion_reaction``: ``u`` ~ GRF (RBF kernel, length scale 0.2) on 100
   sensors, ``s`` by central differences + Crank-Nicolson on the 100 x 100 (x, t) grid (HDF5);
2. items: the source ``u`` at the sensors (branch input), ``--points`` random ``(x, t)`` grid
   points per function and ``s`` there (data-driven targets; the physics-informed model ignores
   them and samples its own collocation, initial and boundary points at every step);
3. train, then report the test mean relative L2 error on the whole grid against the
   finite-difference solution.

    python examples/deeponet_diffusion_reaction.py --out dr_out              # data-driven
    python examples/deeponet_diffusion_reaction.py --out dr_out --physics    # physics-informed

Data-driven defaults (1,000 training functions x 100 fixed random points, batches of 25
functions, Adam lr 3e-3 with cosine decay, 400 epochs = 16,000 steps), measured on one CPU core
of a shared 2-core machine:

    OMP_NUM_THREADS=1 python examples/deeponet_diffusion_reaction.py --out dr_out
    # -> 89 s of training (93 s with the data): test mean relative L2 0.0128 (1.28%)

(0.0120 when this was written at 8a04876; 0.0128 from 2026-11 on, measured twice, after later
Trainer changes such as the cosine schedule reaching its floor at the last step instead of one
step early; not bisected. The 89 s are from the first measurement on an idle core.)

For reference, on the same 100 test functions: the training set's mean field scores 1.004 (the
solutions have about zero mean at every (x, t), so this is no better than predicting 0), and a
linear least-squares map from the 100 sensor values to the 10,000 grid values (1.01 M
coefficients) 0.0023: with D = k = 0.01 the operator is nearly linear. The former defaults
(500 functions x 200 points, batches of 50, lr 1e-3, 30 epochs: 300 steps in 10 s) stopped at
0.2018; the set-up was sound, the training just far too short. ``--physics`` keeps its own
defaults (500 functions, batches of 50, lr 1e-3, 30 epochs: 0.628 in 31 s, far from converged).
``benchmarks/deeponet_accuracy.py`` (``--problem diffusion_reaction`` /
``pi_diffusion_reaction``) holds the long runs reported in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import sciml
from sciml.cli import HelpFormatter
from sciml.data.generators import generate
from sciml.models import DeepONet, DeepONetConfig
from sciml.models.deeponet import MLPSpec
from sciml.models.deeponet_pi import PhysicsInformedDiffusionReaction
from sciml.train import MSE, Cosine, LpLoss, TrainConfig, Trainer


def load(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``u`` ``(n, nx)``, the (x, t) grid ``(nt * nx, 2)`` and ``s`` ``(n, nt * nx)``."""
    ds = sciml.data.open(path)
    n = len(ds)
    u = np.stack([ds.read_static(i, ["u"])[0, 0] for i in range(n)])
    s = np.stack([ds.read(i, slice(None), ["s"])[0, :, 0] for i in range(n)])  # (n, nt, nx)
    x = torch.from_numpy(np.asarray(ds.coords["x"], dtype=np.float32))
    t = torch.from_numpy(np.asarray(ds.time, dtype=np.float32))
    grid = torch.stack(torch.meshgrid(x, t, indexing="xy"), -1).reshape(-1, 2)  # row = (x, t)
    return torch.from_numpy(u), grid, torch.from_numpy(s).reshape(n, -1)


def items(u, grid, s, points: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(len(u)):
        pick = torch.randperm(grid.shape[0], generator=g)[:points]
        out.append({"input": u[i], "x": grid[pick], "target": s[i, pick, None]})
    return out


# The data-driven defaults make 16,000 steps of 25 functions x 100 points (about 1.5 minutes on
# one core); the physics-informed ones are the settings it has always had.
DEFAULTS = {
    "data": {"n_train": 1000, "points": 100, "epochs": 400, "batch_size": 25, "lr": 3e-3},
    "physics": {"n_train": 500, "points": 200, "epochs": 30, "batch_size": 50, "lr": 1e-3},
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--out", default="dr_out", help="output directory (data files, run)")
    p.add_argument("--physics", action="store_true", help="physics-informed: no solution data")

    def default(name: str) -> str:
        return f"default: {DEFAULTS['data'][name]} (data); {DEFAULTS['physics'][name]} (--physics)"

    p.add_argument("--n-train", type=int, help=f"training functions ({default('n_train')})")
    p.add_argument("--n-test", type=int, default=100, help="test functions")
    p.add_argument("--points", type=int, help=f"points per training function ({default('points')})")
    p.add_argument("--epochs", type=int, help=f"training epochs ({default('epochs')})")
    p.add_argument("--batch-size", type=int, help=f"functions per batch ({default('batch_size')})")
    p.add_argument("--lr", type=float, help=f"learning rate, cosine-decayed ({default('lr')})")
    p.add_argument("--threads", type=int, default=1, help="CPU threads")
    args = p.parse_args(argv)
    for name, value in DEFAULTS["physics" if args.physics else "data"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    check(p, args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    files = {}
    # validation functions of their own (seed 2): the test functions (seed 1) are only scored
    splits = (("train", args.n_train, 0), ("val", 50, 2), ("test", args.n_test, 1))
    for split, n, seed in splits:
        files[split] = out / f"diffusion_reaction_{split}_{n}.h5"
        if not files[split].exists():
            generate("diffusion_reaction", n=n, resolution=100, out=files[split], seed=seed)
    u, grid, s = load(files["train"])
    u_val, grid_val, s_val = load(files["val"])
    u_te, grid_te, s_te = load(files["test"])

    act = "tanh" if args.physics else "relu"  # the residual needs second derivatives
    spec = MLPSpec(hidden=(100, 100), activation=act)
    net = DeepONet(DeepONetConfig(sensors=100, coord_dim=2, basis=100, branch=spec, trunk=spec))
    model = PhysicsInformedDiffusionReaction(net, grid[:100, 0]) if args.physics else net
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=0.0,
        schedule=Cosine(min_factor=0.05),
        log_every=50,
        # a data-driven epoch is 40 short steps: validating and checkpointing after each one
        # made the default run 130 s instead of 89 s, so do both every 1,000 steps instead
        eval_every=0 if args.physics else 1000,
        checkpoint_every=0 if args.physics else 1000,
    )
    t0 = time.perf_counter()
    Trainer(
        model,
        items(u, grid, s, args.points, seed=0),
        val_data=items(u_val, grid_val, s_val, 500, seed=1),
        loss=MSE(),
        config=config,
        out_dir=out / ("run_pi" if args.physics else "run"),
        progress=False,
    ).fit()
    seconds = time.perf_counter() - t0

    # on the CPU with the test functions: the Trainer trains on a GPU when there is one
    net.cpu().eval()
    with torch.no_grad():
        pred = net(u_te, x=grid_te)[..., 0]  # every test function on the whole grid
    rel = LpLoss()(pred, s_te).item()  # per-function relative L2, mean over the test set
    kind = "physics-informed (no solution data)" if args.physics else "data-driven"
    print(
        f"{kind}: {args.n_train} train functions, {args.epochs} epochs in {seconds:.0f}s: test "
        f"mean relative L2 vs the finite-difference solution {rel:.4f}"
    )


def check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse settings that would fail later (after the data generation, or in training)."""
    for name in ("n_train", "n_test", "points", "epochs", "batch_size", "threads"):
        value = getattr(args, name)
        if value < 1:
            p.error(f"--{name.replace('_', '-')} expects an integer >= 1, got {value}")
    if args.lr <= 0:
        p.error(f"--lr expects a positive learning rate, got {args.lr}")
    if args.points > 100 * 100:  # the (x, t) grid of the generated solutions
        p.error(f"--points expects at most 10000 (the 100 x 100 grid), got {args.points}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        p.error(f"--out {args.out} is a file: expected a directory (created when missing)")


if __name__ == "__main__":
    main()
