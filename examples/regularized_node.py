"""Neural ODEs with and without the local solver-heuristic regulariser (Pal et al., ICML 2023).

Two tasks:

``rings`` (default): the vector field learns to map points of an inner ring to an outer ring (a
rotation plus an expansion), once without and once with the local regulariser; each prints its
test MSE and the field evaluations (NFE) of the prediction. Small (under a minute on one CPU
thread)::

    .venv/bin/python examples/regularized_node.py [--iterations 300] [--weight 0.5] [--adjoint]

This map is too easy for the penalty to pay off: measured, both models take 32 evaluations at
the defaults (test MSE 2.7e-4 without, 1.7e-3 with the regulariser), at ``--iterations 300``
(8.6e-5 / 1.6e-3) and at ``--weight 0.05`` (2.7e-4 / 3.4e-4); ``--weight 5`` gets 20
evaluations for a field that no longer fits (MSE 1.26). It shows the API; the NFE savings are
measured in ``benchmarks/neural_de.py`` (``benchmarks/README.md``).

``lotka-volterra``: trains the shipped surrogate ``node-lotka-volterra``, a :class:`sciml.models.NODE`
(an autonomous MLP field ``dy/dt = s f((y - c) / s)``, Dopri5 at rtol 1e-5 / atol 1e-6) on
predator-prey trajectories ``x' = 1.5 x - x y, y' = x y - 3 y`` from random initial states
(``sciml data generate lotka_volterra``: DOP853 reference solutions at 51 times of [0, 5]).
Training fits windows of the trajectories that grow from 1 time unit to the whole horizon, with
the local regulariser (weight annealed exponentially). The card metrics (trajectory relative L2
error and the prediction NFE) are measured on held-out initial states (seed ``train_seed + 1``)
by the ``node`` evaluator of ``sciml.pretrained.evaluate`` (what ``sciml evaluate NAME`` runs
with a fresh seed), and ``OUT/node-lotka-volterra/`` gets the checkpoint and ``card.json``::

    .venv/bin/python examples/regularized_node.py --task lotka-volterra --out runs/zoo
    cp -r runs/zoo/node-lotka-volterra sciml/pretrained/weights/    # or: --install
    sciml evaluate node-lotka-volterra

``--weight 0`` trains the same model without the regulariser (a comparison; not shipped).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import _zoo  # examples/_zoo.py: command line, hardware, card writing, --install
import torch
from torch import nn

import sciml
from sciml.de import Autonomous, Dopri5, ExponentialWeight, LocalHeuristic, NeuralODE
from sciml.models import NODE, NODEConfig

NAME = "node-lotka-volterra"
LV_OPTIONS = {"resolution": 51, "t_final": 5.0, "ic_low": 0.5, "ic_high": 1.5}
# what --iterations / --weight default to, per --task
TASK_DEFAULTS = {
    "rings": {"iterations": 150, "weight": 0.5},
    "lotka-volterra": {"iterations": 1500, "weight": 0.1},
}


# ------------------------------------------------------------------------------------ rings
def rings(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    a = 2 * math.pi * torch.rand(n)
    inner = torch.stack([torch.cos(a), torch.sin(a)], 1)
    outer = 2.0 * torch.stack([torch.cos(a + 1.0), torch.sin(a + 1.0)], 1)
    return inner, outer


def train_rings(regulariser, args) -> dict:
    torch.manual_seed(0)
    field = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2))
    node = NeuralODE(
        Autonomous(field),
        Dopri5(rtol=1e-5, atol=1e-6),
        adjoint=args.adjoint,
        regulariser=regulariser,
    )
    opt = torch.optim.Adam(node.parameters(), lr=1e-2)
    t = torch.tensor([0.0, 1.0])
    start = time.perf_counter()
    for _ in range(args.iterations):
        x, y = rings(128)
        opt.zero_grad()
        loss = (node(x, t)[-1] - y).pow(2).mean()
        (loss + node.regularisation).backward()
        opt.step()
    train_s = time.perf_counter() - start
    node.eval()
    x, y = rings(1000)
    with torch.no_grad():
        mse = float((node(x, t)[-1] - y).pow(2).mean())
    return {"test_mse": mse, "nfe_prediction": node.nfe_forward, "train_s": round(train_s, 2)}


def rings_task(args) -> None:
    print("vanilla:", train_rings(None, args))
    # the weight decays over training: shape the dynamics early, fit the data late
    reg = LocalHeuristic(error_weight=ExponentialWeight(args.weight, decay=0.995))
    print("local  :", train_rings(reg, args))


# --------------------------------------------------------------------------- Lotka-Volterra
def lv_data(args) -> dict:
    """The card's ``data`` record."""
    return _zoo.seeded_data_record(
        args,
        "lotka_volterra",
        LV_OPTIONS,
        "DOP853 reference trajectories (rtol 1e-10); held-out initial states from seed "
        "train_seed + 1",
    )


def lotka_volterra_task(args) -> None:
    torch.manual_seed(args.train_seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = LV_OPTIONS
    fields = ["prey", "predator"]
    path = out / f"lotka_volterra_train_{args.n_train}_seed{args.train_seed}.h5"
    _zoo.generate_data("lotka_volterra", options, n=args.n_train, seed=args.train_seed, out=path)
    ds = sciml.data.open(path)
    data = torch.from_numpy(ds.read(slice(None), None, fields))  # (n, time, 2)
    times = torch.as_tensor(ds.time, dtype=torch.float32)
    flat = data.reshape(-1, 2)
    center, scale = flat.mean(0), flat.std(0)
    config = NODEConfig(
        state_dim=2,
        hidden=(64, 64),
        activation="tanh",
        solver="dopri5",
        rtol=1e-5,
        atol=1e-6,
        center=tuple(round(float(v), 4) for v in center),
        scale=tuple(round(float(v), 4) for v in scale),
    )
    regulariser = None
    if args.weight > 0:
        # the weight decays over training: shape the dynamics early, fit the data late
        regulariser = LocalHeuristic(error_weight=ExponentialWeight(args.weight, args.decay))
    model = NODE(config, regulariser=regulariser, adjoint=args.adjoint)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iterations, eta_min=args.lr / 30)
    n_times = data.shape[1]
    g = torch.Generator().manual_seed(args.train_seed)
    start = time.perf_counter()
    for it in range(args.iterations):
        # windows grow from 11 times (1 time unit) to the whole horizon over the first half
        frac = min(1.0, it / (0.5 * args.iterations))
        length = int(round(11 + frac * (n_times - 11)))
        first = int(torch.randint(0, n_times - length + 1, (), generator=g))
        idx = torch.randint(0, data.shape[0], (args.batch_size,), generator=g)
        window = data[idx, first : first + length]  # (batch, length, 2)
        t = times[first : first + length] - times[first]
        model.train()
        pred = model(window[:, 0], t=t)
        loss = ((pred - window) / scale).pow(2).mean()
        opt.zero_grad()
        (loss + model.regularisation).backward()
        opt.step()
        sched.step()
        if it % 100 == 0 or it == args.iterations - 1:
            print(
                f"it {it:5d}  window {length:2d}  loss {loss.item():.3e}  "
                f"reg {float(model.regularisation.detach()):.3e}  nfe {model.nfe}  "
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )
    seconds = time.perf_counter() - start
    model.eval()

    card = {
        "schema": 1,
        "name": NAME,
        "family": "node",
        "summary": "locally regularised neural ODE for Lotka-Volterra predator-prey dynamics",
        "pde": "x' = 1.5 x - x y, y' = x y - 3 y (x prey, y predator); initial state -> "
        "trajectory at 51 times of [0, 5]; (x0, y0) = (3, 1.5) * U[0.5, 1.5]^2",
        "paper": "Pal, Edelman & Rackauckas, Locally Regularized Neural Differential Equations: "
        "Some Black Boxes Were Meant to Remain Closed!, ICML 2023 (the regulariser); Chen, "
        "Rubanova, Bettencourt & Duvenaud, Neural Ordinary Differential Equations, NeurIPS 2018",
        "parameters": model.num_parameters(),
        "data": lv_data(args),
        "training": {
            **_zoo.run_record(seconds),
            "iterations": args.iterations,
            "batch_size": args.batch_size,
            "optimizer": f"Adam lr {args.lr}, cosine decay to lr / 30; loss: MSE of the "
            "normalised trajectory windows (1 -> 5 time units over the first half)",
            "regulariser": (
                f"LocalHeuristic(error_weight=ExponentialWeight({args.weight}, {args.decay}))"
                if regulariser is not None
                else "none"
            ),
            "gradients": ("adjoint method with" if args.adjoint else "backpropagation through")
            + " Dopri5 (rtol 1e-5, atol 1e-6)",
            "final_train_loss": loss.item(),
        },
        "metrics": {},
        "evaluation": _zoo.evaluation_record("node", args.n_test, fields=fields, fast_n=256),
        "intended_use": "fast, solver-friendly surrogate of the Lotka-Volterra system with the "
        "classic rates (1.5, 1, 3, 1) for initial states near the equilibrium (3, 1.5); an "
        "example of a regularised neural ODE with a measured prediction cost (NFE)",
        "limitations": "learnt from 5 time units of trajectories with initial states in "
        "(3, 1.5) * [0.5, 1.5]^2; longer horizons (errors grow with time), other rates or "
        "initial states far from that box are out of distribution. The learnt field does not "
        "conserve the Lotka-Volterra invariant exactly. nfe counts the evaluations of one "
        "batched solve of all n test trajectories (it depends mildly on n).",
        "license": "same as sciml",
    }
    card["metrics"] = _zoo.evaluate_card(model, card, seed=args.train_seed + 1)  # held out
    if args.compare:  # checked before training (check)
        other = json.loads((Path(args.compare) / NAME / "card.json").read_text())
        card["training"]["unregularised_comparison"] = {
            "command": other["training"]["command"],
            "time_s": other["training"]["time_s"],
            **other["metrics"],
        }
    m = card["metrics"]
    print(f"{args.iterations} iterations in {seconds:.0f}s, held-out NFE {m['nfe']:.0f}")
    fresh = _zoo.save_and_recheck(
        model, card, out / NAME, train_seed=args.train_seed, install_it=args.install
    )
    print(f"fresh NFE {fresh['nfe']:.0f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=_zoo.HelpFormatter)
    ap.add_argument(
        "--task", choices=["rings", "lotka-volterra"], default="rings", help="the experiment"
    )

    def default(name: str) -> str:
        rings, lv = TASK_DEFAULTS["rings"][name], TASK_DEFAULTS["lotka-volterra"][name]
        return f"default: {rings} (rings), {lv} (lotka-volterra)"

    ap.add_argument("--iterations", type=int, help=f"training iterations ({default('iterations')})")
    ap.add_argument(
        "--weight", type=float, help=f"initial weight of the local penalty ({default('weight')})"
    )
    ap.add_argument("--decay", type=float, default=0.998, help="per-iteration weight decay (LV)")
    ap.add_argument(
        "--adjoint", action="store_true", help="adjoint gradients (local reg works too)"
    )
    ap.add_argument("--out", default="runs/zoo", help="lotka-volterra: output directory")
    ap.add_argument(
        "--n-train", type=int, default=256, help="lotka-volterra: training trajectories"
    )
    ap.add_argument(
        "--n-test",
        type=int,
        default=512,
        help="lotka-volterra: held-out trajectories (card metric)",
    )
    ap.add_argument(
        "--batch-size", type=int, default=32, help="lotka-volterra: trajectories per batch"
    )
    ap.add_argument("--lr", type=float, default=3e-3, help="lotka-volterra: learning rate")
    ap.add_argument(
        "--train-seed", type=int, default=0, help="lotka-volterra: seed of the data and weights"
    )
    ap.add_argument("--threads", type=int, default=1, help="CPU threads")
    ap.add_argument("--install", action="store_true", help="copy into sciml/pretrained/weights")
    ap.add_argument(
        "--compare",
        help="lotka-volterra: OUT directory of a --weight 0 run; its card metrics (same held-out "
        "data) are recorded on this card as the unregularised comparison (default: none)",
    )
    args = ap.parse_args(argv)
    check(ap, args)
    torch.set_num_threads(args.threads)
    for name, value in TASK_DEFAULTS[args.task].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.task == "rings":
        rings_task(args)
    else:
        lotka_volterra_task(args)


def check(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse settings that would fail later (in training, or when the card is written)."""
    counts = ("n_train", "n_test", "batch_size", "threads")
    if args.iterations is not None:  # None: the task's default
        counts += ("iterations",)
    # and --lr > 0; --out is lotka-volterra's output directory (the rings task writes nothing)
    _zoo.check_counts(ap, args, counts, out=args.task == "lotka-volterra")
    if args.weight is not None and args.weight < 0:
        ap.error(f"--weight expects a value >= 0, got {args.weight}")
    if not 0 < args.decay <= 1:
        ap.error(f"--decay expects a factor in (0, 1], got {args.decay}")
    if args.task != "lotka-volterra":
        return
    if args.compare:  # the comparison's card, read now rather than after the training
        path = Path(args.compare) / NAME / "card.json"
        try:
            other = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            ap.error(f"--compare {args.compare}: expected a run's OUT folder with {path}: {err}")
        unregularised = other.get("training", {}).get("regulariser") == "none"
        if other.get("data") != lv_data(args) or not unregularised:
            ap.error(
                f"--compare {args.compare}: expected a --weight 0 run with the same --n-train, "
                "--n-test and --train-seed"
            )


if __name__ == "__main__":
    main()
