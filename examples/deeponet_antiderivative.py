"""DeepONet learns the antiderivative operator G(v)(x) = int_0^x v(t) dt with the common Trainer.

1. generate ``v`` ~ GRF with the RBF kernel (length scale 0.2) on m = 100 sensors of [0, 1] and
   ``u = int_0^x v`` (``sciml data generate antiderivative``), train and test files;
2. read them with ``PointSamples`` (input ``v`` at the sensors, targets ``u`` at query points);
3. train a DeepONet (branch [100, 40, 40], trunk [1, 40, 40], ReLU) with ``Trainer`` and MSE;
4. print the test MSE and mean relative L2 of the final model.

The full setting of Lu et al. (2021) uses 10,000 training pairs (one random query point per
function) and reaches a test MSE below 1e-6 after long training; ``--full`` selects 10,000
training functions (all 100 points each) and 500 epochs, which takes hours on CPU. The default is
CPU-friendly (1,000 functions, a couple of minutes).

    python examples/deeponet_antiderivative.py --out deeponet_out
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import sciml
from sciml.data import PointSamples
from sciml.data.generators import generate
from sciml.models import DeepONet, DeepONetConfig
from sciml.models.deeponet import MLPSpec
from sciml.train import MSE, Constant, TrainConfig, Trainer, predict


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="deeponet_out")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--full", action="store_true", help="10,000 training functions, 500 epochs")
    args = p.parse_args()
    if args.full:
        args.n_train, args.epochs = 10_000, 500
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    m = 100
    files = {}
    for split, n, seed in (("train", args.n_train, 0), ("test", args.n_test, 1)):
        files[split] = out / f"antiderivative_{split}_{n}.h5"
        if not files[split].exists():
            generate("antiderivative", n=n, resolution=m, out=files[split], seed=seed)
    train = PointSamples(sciml.data.open(files["train"]), inputs=["v"], targets=["u"])
    test = PointSamples(sciml.data.open(files["test"]), inputs=["v"], targets=["u"])

    spec = MLPSpec(hidden=(40,), activation="relu", init="glorot_normal")
    model = DeepONet(DeepONetConfig(sensors=m, coord_dim=1, basis=40, branch=spec, trunk=spec))
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=1e-3,
        weight_decay=0.0,
        schedule=Constant(),
        log_every=100,
    )
    t0 = time.perf_counter()
    Trainer(
        model, train, val_data=test, loss=MSE(), config=config, out_dir=out / "run", progress=False
    ).fit()
    seconds = time.perf_counter() - t0

    model.eval()
    batch = {k: torch.stack([test[i][k] for i in range(len(test))]) for k in ("input", "x")}
    target = torch.stack([test[i]["target"] for i in range(len(test))])
    with torch.no_grad():
        pred = predict(model, batch)
    mse = torch.mean((pred - target) ** 2).item()
    rel = ((pred - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)).mean().item()
    print(
        f"{args.n_train} train functions x {m} points, {args.epochs} epochs in {seconds:.0f}s: "
        f"test MSE {mse:.2e}, test mean relative L2 {rel:.4f}"
    )


if __name__ == "__main__":
    main()
