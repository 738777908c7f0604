"""DeepONet on DeepXDE's antiderivative data: sciml vs DeepXDE (PyTorch backend), one run.

Both sides train the same network (branch [100, 40, 40], trunk [1, 40, 40], ReLU, Glorot-normal
init, trunk output activated, one output bias), Cartesian-product form, MSE loss, Adam lr 1e-3,
full batch (150 training functions x 100 points) for ``--iterations`` steps, in float32 with the
same intra-op thread count. Only the training iterations are timed:

* sciml: a plain PyTorch loop around ``sciml.models.DeepONet`` (forward, MSE, backward, Adam
  step), with ``torch.optim.Adam(fused=True)`` (the same update, one kernel for all tensors), and
  again with the default non-fused Adam that DeepXDE uses (``sciml_plain_adam``);
* DeepXDE: ``Model.train`` between its ``on_train_begin`` and ``on_train_end`` callbacks, minus
  the time spent in its periodic test-set evaluations (``Model._test``; ``display_every`` is set
  to the iteration count so there is one).

The error is the test mean relative L2 ``mean_i ||pred_i - y_i|| / ||y_i||`` over the 1000 test
functions, computed the same way (numpy, float64) for both.

    OMP_NUM_THREADS=1 DDE_BACKEND=pytorch .venv/bin/python benchmarks/deeponet.py
    .venv/bin/python benchmarks/deeponet.py --iterations 500 --seeds 0   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sciml._environment import run_environment  # noqa: E402

# the shared reference data beside the checkout (../shared), as the developers' guide lays it out
DATA = Path(__file__).resolve().parents[2] / "shared" / "reference-data" / "deepxde-antiderivative"


def load(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.load(DATA / f"antiderivative_{split}.npz", allow_pickle=False)
    return (
        d["v"].astype(np.float32),
        d["x"].astype(np.float32),
        d["y"].astype(np.float32),
    )


def rel_l2(pred: np.ndarray, y: np.ndarray) -> float:
    pred, y = np.asarray(pred, np.float64).reshape(y.shape), np.asarray(y, np.float64)
    return float(np.mean(np.linalg.norm(pred - y, axis=1) / np.linalg.norm(y, axis=1)))


class SciML:
    """sciml's DeepONet in a plain PyTorch loop (forward, MSE, backward, Adam step)."""

    def __init__(self, train, test, seed: int, *, fused: bool) -> None:
        from sciml.models import DeepONet, DeepONetConfig
        from sciml.models.deeponet import MLPSpec

        torch.manual_seed(seed)
        spec = MLPSpec(hidden=(40,), activation="relu", init="glorot_normal")
        self.model = DeepONet(
            DeepONetConfig(sensors=100, coord_dim=1, basis=40, branch=spec, trunk=spec)
        ).train()
        self.v, self.x, y = (torch.from_numpy(a) for a in train)
        self.y = y.unsqueeze(-1)  # (150, 100, 1)
        self.test = test
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=fused)

    def block(self, iterations: int) -> float:
        model, opt, v, x, y = self.model, self.opt, self.v, self.x, self.y
        start = time.perf_counter()
        for _ in range(iterations):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(v, x=x), y)
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - start
        self.loss = loss.item()
        return seconds

    def result(self) -> dict:
        self.model.eval()
        with torch.no_grad():
            v, x = torch.from_numpy(self.test[0]), torch.from_numpy(self.test[1])
            pred = self.model(v, x=x)[..., 0].numpy()
        return {
            "final_train_mse": self.loss,
            "test_mean_rel_l2": rel_l2(pred, self.test[2]),
            "num_parameters": self.model.num_parameters(),
        }


class DeepXDE:
    """DeepXDE's ``Model.train``, timed between its ``on_train_begin`` / ``on_train_end``
    callbacks minus its test-set evaluations (``Model._test``)."""

    def __init__(self, train, test, seed: int) -> None:
        import deepxde as dde

        dde.config.set_random_seed(seed)
        data = dde.data.TripleCartesianProd(
            X_train=(train[0], train[1]),
            y_train=train[2],
            X_test=(test[0], test[1]),
            y_test=test[2],
        )
        self.net = dde.nn.DeepONetCartesianProd([100, 40, 40], [1, 40, 40], "relu", "Glorot normal")
        self.model = dde.Model(data, self.net)
        self.model.compile("adam", lr=1e-3, metrics=["mean l2 relative error"])
        self.test = test
        clock = self.clock = {"test": 0.0}
        inner_test = self.model._test

        def timed_test(*args, **kwargs):
            t0 = time.perf_counter()
            out = inner_test(*args, **kwargs)
            clock["test"] += time.perf_counter() - t0
            return out

        class Timer(dde.callbacks.Callback):
            def on_train_begin(self):
                clock["test"] = 0.0
                clock["begin"] = time.perf_counter()

            def on_train_end(self):
                clock["end"] = time.perf_counter()

        self.model._test = timed_test
        self.timer = Timer()
        self.excluded = 0.0

    def block(self, iterations: int) -> float:
        # Successive train() calls continue the same optimiser state and step count.
        self.model.train(
            iterations=iterations, display_every=iterations, callbacks=[self.timer], verbose=0
        )
        self.excluded += self.clock["test"]
        return self.clock["end"] - self.clock["begin"] - self.clock["test"]

    def result(self) -> dict:
        pred = self.model.predict((self.test[0], self.test[1]))
        return {
            "excluded_test_eval_seconds": self.excluded,
            "final_train_mse": float(np.sum(self.model.train_state.loss_train)),
            "test_mean_rel_l2": rel_l2(pred, self.test[2]),
            "num_parameters": int(sum(p.numel() for p in self.net.parameters())),
        }


def run_seed(train, test, iterations: int, block: int, seed: int) -> dict:
    """Train the three sides in interleaved blocks of ``block`` iterations, rotating their
    order, so that all of them see the same (shared, noisy) machine load."""
    sides = {
        "sciml": SciML(train, test, seed, fused=True),
        "sciml_plain_adam": SciML(train, test, seed, fused=False),
        "deepxde": DeepXDE(train, test, seed),
    }
    # Built layer by layer like DeepXDE's FNN, sciml's net draws the same initial weights from
    # the same seed: the comparison is paired (checked here, recorded in the JSON).
    ours = dict(sides["sciml_plain_adam"].model.named_parameters())
    theirs = dict(sides["deepxde"].net.named_parameters())
    same_init = all(
        torch.equal(ours[f"{a}.0.layers.{i}.{w}"], theirs[f"{b}.linears.{i}.{w}"])
        for a, b in (("branches", "branch"), ("trunks", "trunk"))
        for i in (0, 1)
        for w in ("weight", "bias")
    )
    seconds = dict.fromkeys(sides, 0.0)
    names = list(sides)
    done, turn = 0, 0
    while done < iterations:
        n = min(block, iterations - done)
        for name in names[turn % 3 :] + names[: turn % 3]:
            seconds[name] += sides[name].block(n)
        done, turn = done + n, turn + 1
    row = {"seed": seed, "same_initial_weights": same_init}
    for name, side in sides.items():
        row[name] = {
            "seconds": seconds[name],
            "iterations_per_s": iterations / seconds[name],
            **side.result(),
            "threads": torch.get_num_threads(),
        }
    return row


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    ap.add_argument("--iterations", type=int, default=10_000, help="Adam steps per run")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one run each")
    ap.add_argument("--block", type=int, default=250, help="iterations per interleaved block")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both sides)")
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "deeponet.json"), help="JSON path"
    )
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    train, test = load("train"), load("test")
    import deepxde as dde

    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        row = run_seed(train, test, args.iterations, args.block, seed)
        ref = row["deepxde"]["iterations_per_s"]
        row["speedup"] = row["sciml"]["iterations_per_s"] / ref
        row["speedup_plain_adam"] = row["sciml_plain_adam"]["iterations_per_s"] / ref
        print(
            f"seed {seed}: sciml {row['sciml']['iterations_per_s']:.0f} it/s, "
            f"rel L2 {row['sciml']['test_mean_rel_l2']:.4f} | deepxde "
            f"{row['deepxde']['iterations_per_s']:.0f} it/s, rel L2 "
            f"{row['deepxde']['test_mean_rel_l2']:.4f} | speedup {row['speedup']:.2f}x "
            f"({row['speedup_plain_adam']:.2f}x with the same non-fused Adam)",
            flush=True,
        )
        runs.append(row)

    def mean(side: str, key: str) -> float:
        return float(np.mean([r[side][key] for r in runs]))

    summary = {
        "sciml_iterations_per_s": mean("sciml", "iterations_per_s"),
        "deepxde_iterations_per_s": mean("deepxde", "iterations_per_s"),
        "sciml_plain_adam_iterations_per_s": mean("sciml_plain_adam", "iterations_per_s"),
        "speedup_median": float(np.median([r["speedup"] for r in runs])),
        "speedup_plain_adam_median": float(np.median([r["speedup_plain_adam"] for r in runs])),
        "sciml_test_mean_rel_l2": mean("sciml", "test_mean_rel_l2"),
        "sciml_plain_adam_test_mean_rel_l2": mean("sciml_plain_adam", "test_mean_rel_l2"),
        "deepxde_test_mean_rel_l2": mean("deepxde", "test_mean_rel_l2"),
    }
    result = {
        "benchmark": "deeponet_antiderivative_deepxde_data",
        "command": " ".join(["python", *sys.argv]),
        "iterations": args.iterations,
        "block": args.block,
        "threads": args.threads,
        # (why) both sides run in this process, so they share the allocator it records
        "environment": run_environment("cpu"),
        "torch": torch.__version__,
        "deepxde": dde.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "summary": summary,
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
