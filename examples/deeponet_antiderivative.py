"""DeepONet learns the antiderivative operator G(v)(x) = int_0^x v(t) dt with the common Trainer,
and writes the shipped surrogate ``deeponet-antiderivative`` (checkpoint + model card).

1. generate ``v`` ~ GRF with the RBF kernel (length scale 0.2) on m = 100 sensors of [0, 1] and
   ``u = int_0^x v`` (``sciml data generate antiderivative``), training set from ``--train-seed``;
2. read it with ``PointSamples`` (input ``v`` at the sensors, targets ``u`` at every point);
3. train a DeepONet (branch [100, 40, 40], trunk [1, 40, 40], ReLU) with ``Trainer``, MSE and a
   cosine-decayed learning rate;
4. measure the test metrics on held-out functions (seed ``train_seed + 1``) with the ``deeponet``
   evaluator of ``sciml.pretrained.evaluate`` (the code path of ``sciml evaluate NAME``), write
   ``OUT/deeponet-antiderivative/`` (``config.json``, ``model.safetensors``, ``card.json``) and
   re-measure on fresh functions (seed ``train_seed + 1000``, what ``sciml evaluate`` uses).

To ship the result, copy the directory into the package and check it::

    python examples/deeponet_antiderivative.py --out runs/zoo
    cp -r runs/zoo/deeponet-antiderivative sciml/pretrained/weights/    # or: --install
    sciml evaluate deeponet-antiderivative

The full setting of Lu et al. (2021) (10,000 training pairs, one random point per function, test
MSE below 1e-6 after 75,000 iterations) is ``benchmarks/deeponet_accuracy.py --problem
antiderivative``; ``--quick`` is a one-minute smoke run (not the shipped model).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _zoo  # examples/_zoo.py: command line, hardware, card writing, --install
import torch

import sciml
from sciml.data import PointSamples
from sciml.data.generators import generate
from sciml.models import DeepONet, DeepONetConfig
from sciml.models.deeponet import MLPSpec
from sciml.train import MSE, Callback, Cosine, TrainConfig, Trainer


class _Progress(Callback):
    """Print the loss every ``every`` epochs (the run is long and otherwise silent)."""

    def __init__(self, every: int) -> None:
        self.every, self.start = every, time.perf_counter()

    def on_step_end(self, trainer, loss: float) -> None:
        self.loss = loss

    def on_epoch_end(self, trainer, epoch: int) -> None:
        if (epoch + 1) % self.every == 0:
            elapsed = time.perf_counter() - self.start
            print(f"epoch {epoch + 1}: loss {self.loss:.3e}  {elapsed:.0f}s", flush=True)


NAME = "deeponet-antiderivative"
M = 100  # sensors = grid points of [0, 1]
#: the defaults --quick sets (a one-minute smoke run); its help is written from them
QUICK = {"n_train": 500, "epochs": 10}


def main(argv: list[str] | None = None) -> None:
    p = _zoo.deeponet_parser(
        __doc__, n_train=2000, steps=("--epochs", 500), batch_size=50,
        quick=QUICK,
    )  # fmt: skip
    # --quick sets new defaults: a flag given on the command line still wins
    args = _zoo.parse_args(p, argv, preset="quick", **QUICK)
    check(p, args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.train_seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    options = {"resolution": M, "length_scale": 0.2}
    train_file = out / f"antiderivative_train_{args.n_train}_seed{args.train_seed}.h5"
    if not train_file.exists():
        generate("antiderivative", n=args.n_train, out=train_file, seed=args.train_seed, **options)
    train = PointSamples(sciml.data.open(train_file, in_memory=True), inputs=["v"], targets=["u"])

    spec = MLPSpec(hidden=(40,), activation="relu", init="glorot_normal")
    model = DeepONet(DeepONetConfig(sensors=M, coord_dim=1, basis=40, branch=spec, trunk=spec))
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=0.0,
        schedule=Cosine(min_factor=0.01),
        seed=args.train_seed,
        log_every=100,
    )
    t0 = time.perf_counter()
    trainer = Trainer(
        model, train, loss=MSE(), config=config, callbacks=[_Progress(10)], progress=False
    )
    result = trainer.fit()
    seconds = time.perf_counter() - t0
    model.cpu().eval()  # the Trainer trains on a GPU when there is one; scored on the CPU

    card = {
        "schema": 1,
        "name": NAME,
        "family": "deeponet",
        "summary": "DeepONet for the antiderivative operator v -> int_0^x v on [0, 1], 100 sensors",
        "pde": "u(x) = int_0^x v(t) dt on [0, 1]; v ~ GP(0, exp(-(s-t)^2 / (2 * 0.2^2))), "
        "100 sensors, outputs at the 100 sensor points",
        "paper": "Lu, Jin, Pang, Zhang & Karniadakis, Learning nonlinear operators via DeepONet "
        "based on the universal approximation theorem of operators, Nature Machine "
        "Intelligence 3, 218-229 (2021)",
        "parameters": model.num_parameters(),
        "data": _zoo.seeded_data_record(
            args,
            "antiderivative",
            options,
            "every function at all 100 points; held-out test set from seed train_seed + 1",
        ),
        "training": {
            **_zoo.run_record(seconds, trainer.device),
            "epochs": args.epochs,
            "steps": result.step,
            "batch_size": args.batch_size,
            "optimizer": f"AdamW lr {args.lr}, no weight decay, cosine decay to 1%, MSE loss",
            "final_train_loss": result.train_loss,
        },
        "metrics": {},
        "evaluation": _zoo.evaluation_record(
            "deeponet", args.n_test, inputs=["v"], targets=["u"], fast_n=256
        ),
        "intended_use": "antiderivatives of smooth functions sampled at 100 uniform points of "
        "[0, 1] (a DeepONet teaching example and a test fixture)",
        "limitations": "trained on RBF-kernel GRFs with length scale 0.2 only; rougher or "
        "larger inputs, other sensor grids or intervals are out of distribution. The mean "
        "relative L2 error is dominated by functions whose antiderivative is close to zero "
        "(see test_rel_l2_max).",
        "license": "same as sciml",
    }
    card["metrics"] = _zoo.evaluate_card(model, card, seed=args.train_seed + 1)  # held out
    print(
        f"{args.n_train} functions x {M} points, {args.epochs} epochs in {seconds:.0f}s, "
        f"test MSE {card['metrics']['test_mse']:.2e}"
    )
    _zoo.save_and_recheck(
        model, card, out / NAME, train_seed=args.train_seed, install_it=args.install
    )


def check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse settings that would fail later (after the data generation, or in training)."""
    _zoo.check_counts(p, args, ("n_train", "epochs", "batch_size", "n_test", "threads"))


if __name__ == "__main__":
    main()
