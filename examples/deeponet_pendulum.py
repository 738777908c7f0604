"""DeepONet learns the solution operator of the forced gravity pendulum, and writes the shipped surrogate ``deeponet-pendulum`` (checkpoint + model card).

    s1' = s2,   s2' = -sin(s1) + u(t),   s(0) = 0,   t in [0, 1];   G: u -> (s1, s2)

1. generate forcings ``u`` ~ GRF with the RBF kernel (length scale 0.2) on m = 100 sensors of
   [0, 1] and the RK4 solutions ``s1``, ``s2`` there (``sciml data generate pendulum``),
   training set from ``--train-seed``;
2. read it into memory (input ``u`` at the sensors, targets ``(s1, s2)`` at every time);
3. train a DeepONet (branch [100, 100, 100, 100], trunk [1, 100, 100, 100], ReLU, two outputs
   with ``split_both``, p = 50) with Adam, MSE and a cosine-decayed learning rate. The loop is
   written out rather than run by ``Trainer``: every function shares the 100 query times, so the
   trunk runs once per step on ``(100, 1)`` instead of once per function (the ``Trainer``'s
   ``PointSamples`` batches carry per-function points), which is several times faster on CPU;
4. measure the test metrics on held-out functions (seed ``train_seed + 1``) with the ``deeponet``
   evaluator of ``sciml.pretrained.evaluate`` (the code path of ``sciml evaluate NAME``), write
   ``OUT/deeponet-pendulum/`` (``config.json``, ``model.safetensors``, ``card.json``) and
   re-measure on fresh functions (seed ``train_seed + 1000``, what ``sciml evaluate`` uses).

To ship the result, copy the directory into the package and check it::

    python examples/deeponet_pendulum.py --out runs/zoo
    cp -r runs/zoo/deeponet-pendulum sciml/pretrained/weights/    # or: --install
    sciml evaluate deeponet-pendulum

``benchmarks/deeponet_accuracy.py --problem pendulum`` is the same problem with a plain training
loop (reported in ``benchmarks/README.md``); ``--quick`` is a one-minute smoke run (not the
shipped model).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _zoo  # examples/_zoo.py: command line, hardware, card writing, --install
import torch

import sciml
from sciml.data.generators import generate
from sciml.models import DeepONet, DeepONetConfig
from sciml.models.deeponet import MLPSpec

NAME = "deeponet-pendulum"
M = 100  # sensors = grid points of [0, 1]
#: the defaults --quick sets (a one-minute smoke run); its help is written from them
QUICK = {"n_train": 500, "iterations": 200}


def main(argv: list[str] | None = None) -> None:
    p = _zoo.deeponet_parser(
        __doc__, n_train=5000, steps=("--iterations", 30000), batch_size=100,
        quick=QUICK,
    )  # fmt: skip
    # --quick sets new defaults: a flag given on the command line still wins
    args = _zoo.parse_args(p, argv, preset="quick", **QUICK)
    check(p, args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.train_seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    options = {"resolution": M, "length_scale": 0.2, "k": 1.0, "refine": 10}
    train_file = out / f"pendulum_train_{args.n_train}_seed{args.train_seed}.h5"
    if not train_file.exists():
        generate("pendulum", n=args.n_train, out=train_file, seed=args.train_seed, **options)
    ds = sciml.data.open(train_file)
    u = torch.from_numpy(ds.read_static(slice(None), ["u"])[:, 0])  # (n, 100)
    s = torch.from_numpy(ds.read_static(slice(None), ["s1", "s2"])).transpose(1, 2)  # (n, 100, 2)
    x = torch.linspace(0.0, 1.0, M).unsqueeze(-1)  # the sensor times, shared: (100, 1)

    spec = MLPSpec(hidden=(100, 100), activation="relu", init="glorot_normal")
    model = DeepONet(
        DeepONetConfig(
            sensors=M,
            coord_dim=1,
            out_channels=2,
            basis=50,
            multi_output="split_both",
            branch=spec,
            trunk=spec,
        )
    )
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iterations, args.lr / 100)
    g = torch.Generator().manual_seed(args.train_seed)
    t0 = time.perf_counter()
    for it in range(args.iterations):
        idx = torch.randint(0, len(u), (args.batch_size,), generator=g)
        loss = torch.nn.functional.mse_loss(model(u[idx], x=x), s[idx])  # (batch, 100, 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (it + 1) % 500 == 0:
            elapsed = time.perf_counter() - t0
            print(f"step {it + 1}: loss {loss.item():.3e}  {elapsed:.0f}s", flush=True)
    seconds = time.perf_counter() - t0
    model.eval()

    card = {
        "schema": 1,
        "name": NAME,
        "family": "deeponet",
        "summary": "DeepONet for the forced pendulum: forcing u(t) on [0, 1] -> (s1, s2)(t)",
        "pde": "s1' = s2, s2' = -sin(s1) + u(t), s(0) = 0 on [0, 1]; "
        "u ~ GP(0, exp(-(s-t)^2 / (2 * 0.2^2))) at 100 sensors, (s1, s2) at the 100 sensor times",
        "paper": "Lu, Jin, Pang, Zhang & Karniadakis, Learning nonlinear operators via DeepONet "
        "based on the universal approximation theorem of operators, Nature Machine "
        "Intelligence 3, 218-229 (2021)",
        "parameters": model.num_parameters(),
        "data": _zoo.seeded_data_record(
            args,
            "pendulum",
            options,
            "every forcing with the RK4 solution at all 100 times; held-out test set from seed "
            "train_seed + 1",
        ),
        "training": {
            **_zoo.run_record(seconds),
            "iterations": args.iterations,
            "batch_size": args.batch_size,
            "optimizer": f"Adam lr {args.lr}, cosine decay to 1%, MSE loss; batches of "
            f"{args.batch_size} random functions x all 100 times",
            "final_train_loss": loss.item(),
        },
        "metrics": {},
        "evaluation": _zoo.evaluation_record(
            "deeponet", args.n_test, inputs=["u"], targets=["s1", "s2"], fast_n=256
        ),
        "intended_use": "fast surrogate of the forced pendulum from rest for smooth forcings "
        "sampled at 100 uniform times of [0, 1] (a multi-output DeepONet example)",
        "limitations": "trained on RBF-kernel GRF forcings with length scale 0.2 and k = 1, "
        "zero initial state, t in [0, 1] only; other forcing statistics, initial states, "
        "horizons or sensor grids are out of distribution. The relative L2 error is over "
        "(s1, s2) jointly, so the smaller s1 weighs less.",
        "license": "same as sciml",
    }
    card["metrics"] = _zoo.evaluate_card(model, card, seed=args.train_seed + 1)  # held out
    print(
        f"{args.n_train} forcings x {M} times, {args.iterations} steps in {seconds:.0f}s, "
        f"test MSE {card['metrics']['test_mse']:.2e}"
    )
    _zoo.save_and_recheck(
        model, card, out / NAME, train_seed=args.train_seed, install_it=args.install
    )


def check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse settings that would fail later (after the data generation, or in training)."""
    _zoo.check_counts(p, args, ("n_train", "iterations", "batch_size", "n_test", "threads"))


if __name__ == "__main__":
    main()
