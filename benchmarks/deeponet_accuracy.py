"""DeepONet accuracy on the problems of Lu et al. (2021) and Wang et al. (2021), one command each.

Each problem generates its data with sciml's generators (train and test sets from different
seeds), trains a DeepONet with Adam and a cosine-decayed learning rate for ``--iterations`` steps
(or until ``--max-minutes``), and writes the test error and the exact settings to
``benchmarks/results/deeponet_accuracy_<problem>.json``:

* ``antiderivative``: ``G(v)(x) = int_0^x v``, m = 100 sensors, GRF length scale 0.2, 10,000
  training pairs ``(v, x, G(v)(x))`` (10,000 functions with one random point each, as in the
  paper), branch [100, 40, 40], trunk [1, 40, 40], ReLU; metric: test MSE (target < 1e-6).
* ``pendulum``: ``s1' = s2, s2' = -sin(s1) + u(t)``, both outputs (``split_both``), 5,000 training
  functions x 100 times; metric: test mean relative L2 over (s1, s2) (target < 2%).
* ``diffusion_reaction``: ``s_t = 0.01 s_xx + 0.01 s^2 + u(x)``, finite-difference data on a
  100 x 100 (x, t) grid, 1,000 training functions, 1,000 random (x, t) grid points per step
  (shared by the functions of the batch);
  metric: test mean relative L2 over the grid (target < 2%).
* ``pi_diffusion_reaction``: the same operator learnt from the PDE alone (physics-informed:
  residual at random collocation points + initial/boundary terms, no solution data), tanh nets;
  metric: test mean relative L2 against the finite-difference solution (target < 3%).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/deeponet_accuracy.py --problem pendulum
    .venv/bin/python benchmarks/deeponet_accuracy.py --problem antiderivative --iterations 200  # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sciml._environment import run_environment
from sciml.data.generators import (
    generate_antiderivative,
    generate_diffusion_reaction,
    generate_pendulum,
)
from sciml.models import DeepONet, DeepONetConfig
from sciml.models.deeponet import MLPSpec
from sciml.models.deeponet_pi import DiffusionReaction, diffusion_reaction_loss

DEFAULTS = {  # iterations, lr, batch (functions per step)
    "antiderivative": (75_000, 1e-3, 1_000),
    "pendulum": (15_000, 1e-3, 100),
    "diffusion_reaction": (15_000, 1e-3, 50),
    "pi_diffusion_reaction": (12_000, 1e-3, 20),
}


def rel_l2(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over functions of ``||pred - target|| / ||target||`` over all points and outputs."""
    e = (pred - target).flatten(1).double().norm(dim=1)
    return float((e / target.flatten(1).double().norm(dim=1)).mean())


class Problem:
    """Data, model, a training-loss closure and the test metric for one problem."""

    def __init__(self, name: str, seed: int, n_train: int | None) -> None:
        self.name = name
        g = torch.Generator().manual_seed(seed)
        self.g = g
        getattr(self, f"_setup_{name}")(n_train)

    # -------------------------------------------------------------- antiderivative
    def _setup_antiderivative(self, n_train: int | None) -> None:
        n = n_train or 10_000
        tr = generate_antiderivative(n, 100, seed=0)["static_fields"]
        te = generate_antiderivative(1000, 100, seed=1)["static_fields"]
        x = torch.linspace(0, 1, 100)
        pick = torch.randint(0, 100, (n,), generator=self.g)  # one point per function
        self.v = torch.from_numpy(tr["v"])
        self.y = x[pick].unsqueeze(-1)  # (n, 1)
        self.s = torch.from_numpy(tr["u"])[torch.arange(n), pick].unsqueeze(-1)  # (n, 1)
        self.test = (
            torch.from_numpy(te["v"]),
            x.unsqueeze(-1),
            torch.from_numpy(te["u"])[..., None],
        )
        spec = MLPSpec(hidden=(40,), activation="relu")
        self.model = DeepONet(DeepONetConfig(sensors=100, basis=40, branch=spec, trunk=spec))
        self.settings = {"train_pairs": n, "points_per_function": 1, "test_functions": 1000}

    def _loss_antiderivative(self, batch: int) -> torch.Tensor:
        idx = slice(None) if batch >= len(self.v) else torch.randint(0, len(self.v), (batch,))
        pred = self.model(self.v[idx], x=self.y[idx], pointwise=True)
        return torch.nn.functional.mse_loss(pred, self.s[idx])

    # -------------------------------------------------------------- pendulum
    def _setup_pendulum(self, n_train: int | None) -> None:
        n = n_train or 5000
        tr = generate_pendulum(n, 100, seed=0)["static_fields"]
        te = generate_pendulum(1000, 100, seed=1)["static_fields"]

        def pack(d):
            return torch.from_numpy(d["u"]), torch.from_numpy(np.stack([d["s1"], d["s2"]], -1))

        self.u, self.s = pack(tr)
        u_te, s_te = pack(te)
        self.x = torch.linspace(0, 1, 100).unsqueeze(-1)
        self.test = (u_te, self.x, s_te)
        spec = MLPSpec(hidden=(100, 100), activation="relu")
        self.model = DeepONet(
            DeepONetConfig(
                sensors=100,
                out_channels=2,
                basis=50,
                multi_output="split_both",
                branch=spec,
                trunk=spec,
            )
        )
        self.settings = {"train_functions": n, "points_per_function": 100, "test_functions": 1000}

    def _loss_pendulum(self, batch: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.u), (batch,), generator=self.g)
        return torch.nn.functional.mse_loss(self.model(self.u[idx], x=self.x), self.s[idx])

    # -------------------------------------------------------------- diffusion-reaction
    def _dr_data(self, n: int) -> None:
        tr = generate_diffusion_reaction(n, 100, seed=0)
        te = generate_diffusion_reaction(200, 100, seed=1)
        xs, ts = torch.linspace(0, 1, 100), torch.linspace(0, 1, 100)
        grid = torch.stack(torch.meshgrid(xs, ts, indexing="xy"), -1).reshape(-1, 2)  # (t, x) order
        self.grid = grid  # row j = (x_{j % 100}, t_{j // 100}), matching s.reshape(n, -1)
        self.u = torch.from_numpy(tr["static_fields"]["u"])
        self.s = torch.from_numpy(tr["fields"]["s"]).reshape(n, -1)  # (n, t * x)
        u_te = torch.from_numpy(te["static_fields"]["u"])
        self.test = (u_te, grid, torch.from_numpy(te["fields"]["s"]).reshape(200, -1, 1))
        self.xs = xs

    def _setup_diffusion_reaction(self, n_train: int | None) -> None:
        n = n_train or 1000
        self._dr_data(n)
        spec = MLPSpec(hidden=(100, 100), activation="relu")
        self.model = DeepONet(
            DeepONetConfig(sensors=100, coord_dim=2, basis=100, branch=spec, trunk=spec)
        )
        self.points = 1000
        self.settings = {
            "train_functions": n,
            "grid": "100 x 100",
            "random_grid_points_per_step_shared_by_the_batch": self.points,
            "test_functions": 200,
        }

    def _loss_diffusion_reaction(self, batch: int) -> torch.Tensor:
        # the same random points for the whole batch: one trunk pass, one (B, p) x (p, P) matmul
        idx = torch.randint(0, len(self.u), (batch,), generator=self.g)
        pts = torch.randperm(self.grid.shape[0], generator=self.g)[: self.points]
        pred = self.model(self.u[idx], x=self.grid[pts])[..., 0]  # (B, P)
        return torch.nn.functional.mse_loss(pred, self.s[idx[:, None], pts[None]])

    # -------------------------------------------------------------- physics-informed
    def _setup_pi_diffusion_reaction(self, n_train: int | None) -> None:
        n = n_train or 1000
        self._dr_data(n)
        spec = MLPSpec(hidden=(100, 100, 100), activation="tanh")
        self.model = DeepONet(
            DeepONetConfig(sensors=100, coord_dim=2, basis=100, branch=spec, trunk=spec)
        )
        self.problem = DiffusionReaction(0.01, 0.01)
        self.points = 100
        self.settings = {
            "train_functions": n,
            "solution_data_used": False,
            "collocation_points_per_function_per_step": self.points,
            "initial_points": self.points,
            "boundary_points": self.points,
            "test_functions": 200,
        }

    def _loss_pi_diffusion_reaction(self, batch: int) -> torch.Tensor:
        g, p = self.g, self.points
        idx = torch.randint(0, len(self.u), (batch,), generator=g)
        u = self.u[idx]
        j = torch.randint(0, 100, (batch, p), generator=g)  # x on the sensor grid: u(x) exact
        t = torch.rand(batch, p, generator=g)
        y_r = torch.stack([self.xs[j], t], -1)
        source = u.gather(1, j)
        x0 = torch.rand(batch, p, generator=g)
        y_i = torch.stack([x0, torch.zeros_like(x0)], -1)
        side = (torch.rand(batch, p, generator=g) < 0.5).float()
        y_b = torch.stack([side, torch.rand(batch, p, generator=g)], -1)
        terms = diffusion_reaction_loss(
            self.model,
            u,
            y_residual=y_r,
            source=source,
            y_initial=y_i,
            y_boundary=y_b,
            problem=self.problem,
        )
        self.last_terms = {k: v.item() for k, v in terms.items()}
        return terms["loss"]

    # -------------------------------------------------------------- common
    def loss(self, batch: int) -> torch.Tensor:
        return getattr(self, f"_loss_{self.name}")(batch)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        u, x, s = self.test
        pred = torch.cat([self.model(u[i : i + 100], x=x) for i in range(0, len(u), 100)])
        self.model.train()
        return {
            "test_mse": float(torch.mean((pred.double() - s.double()) ** 2)),
            "test_mean_rel_l2": rel_l2(pred, s),
        }


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    ap.add_argument(
        "--problem", choices=sorted(DEFAULTS), required=True, help="the benchmark problem"
    )
    ap.add_argument(
        "--iterations", type=int, default=None, help="training steps (default: the problem's)"
    )
    ap.add_argument(
        "--lr", type=float, default=None, help="initial learning rate (default: the problem's)"
    )
    ap.add_argument(
        "--batch",
        type=int,
        default=None,
        help="functions (or pairs) per step (default: the problem's)",
    )
    ap.add_argument(
        "--n-train", type=int, default=None, help="training functions (default: the problem's)"
    )
    ap.add_argument("--min-lr-factor", type=float, default=0.01, help="cosine decay floor")
    ap.add_argument(
        "--max-minutes", type=float, default=15.0, help="stop training after this many minutes"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--out",
        default=None,
        help="JSON path (default: benchmarks/results/deeponet_accuracy_PROBLEM.json)",
    )
    args = ap.parse_args()
    iters, lr, batch = DEFAULTS[args.problem]
    iters, lr, batch = args.iterations or iters, args.lr or lr, args.batch or batch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    prob = Problem(args.problem, args.seed, args.n_train)
    data_seconds = time.perf_counter() - t0
    opt = torch.optim.Adam(prob.model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda i: (
            args.min_lr_factor
            + (1 - args.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * min(i / iters, 1.0)))
        ),
    )
    # (why) the 20 test-set evaluations along the way are timed apart: "train_seconds" is the
    # optimisation alone (before, it included them); the time limit still counts both
    history, start, done, eval_seconds = [], time.perf_counter(), 0, 0.0
    for it in range(iters):
        opt.zero_grad(set_to_none=True)
        loss = prob.loss(batch)
        loss.backward()
        opt.step()
        sched.step()
        done = it + 1
        if done % max(1, iters // 20) == 0 or done == iters:
            t_eval = time.perf_counter()
            row = {"iteration": done, "loss": loss.item(), "seconds": t_eval - start - eval_seconds}
            row.update(prob.evaluate())
            eval_seconds += time.perf_counter() - t_eval
            history.append(row)
            print(json.dumps(row), flush=True)
        if time.perf_counter() - start > 60 * args.max_minutes:
            print(f"stopping at the time limit after {done} iterations", flush=True)
            break
    train_seconds = time.perf_counter() - start - eval_seconds
    final = prob.evaluate()
    result = {
        "benchmark": f"deeponet_accuracy_{args.problem}",
        "command": " ".join(["python", *sys.argv]),
        "problem": args.problem,
        "iterations_planned": iters,
        "iterations_done": done,
        "lr": lr,
        "schedule": f"cosine to {args.min_lr_factor} x lr over the planned iterations",
        "batch": batch,
        "seed": args.seed,
        "threads": args.threads,
        "num_parameters": prob.model.num_parameters(),
        "config": prob.model.config_dict(),
        "data": prob.settings,
        "data_seconds": data_seconds,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "final": final,
        "history": history,
        "environment": run_environment("cpu"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out = Path(
        args.out or Path(__file__).parent / "results" / f"deeponet_accuracy_{args.problem}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"problem": args.problem, "iterations": done, **final}))


if __name__ == "__main__":
    main()
