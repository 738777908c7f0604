"""Train the shipped ``scot-ns2d`` surrogate: a small time-conditioned scOT (Poseidon-style) on
2D Navier-Stokes trajectories, all pairs w(t_i) -> w(t_j) at lead time t_j - t_i.

1. generate ``n_train + n_val`` trajectories with sciml's ``navier_stokes`` generator
   (nu = 1e-3, FNO forcing, GRF initial vorticity, 32 x 32, 9 snapshots t = 0, 0.5, ..., 4;
   the pretraining data of ``examples/scot_finetune.py``) with seed 0;
2. train a small scOT (patch 2, embedding 20, depths (2, 2, 2), window 8, time-conditioned
   norms: ~518k parameters, ~2 MB) with the common Trainer on Poseidon's all-to-all pairs
   (:class:`sciml.data.AllPairs`, ``j > i``) and Poseidon's relative L1 loss;
3. measure the card metrics on ``n_test`` held-out trajectories drawn with seed 1 with the
   card's ``all_pairs`` evaluator (``sciml/pretrained/evaluate.py``) and write
   ``OUT/scot-ns2d/`` (checkpoint + ``card.json``). ``sciml evaluate scot-ns2d`` re-measures it.

The checkpoint loads with ``sciml.load("scot-ns2d")`` / ``ScOT.from_pretrained`` and fine-tunes
as the public Poseidon checkpoints do (:class:`sciml.models.scot_training.FineTuneRecipe`);
``sciml.pretrained.poseidon.save_poseidon`` writes it in Poseidon's own layout.

    python examples/zoo_scot_ns2d.py --out runs/zoo              # CUDA if present, else CPU
    python examples/zoo_scot_ns2d.py --out runs/zoo --install    # + copy into sciml/pretrained
"""

from __future__ import annotations

import time

import _zoo
import torch

import sciml
from sciml._config import config_to_dict
from sciml.data import AllPairs, split
from sciml.models import ScOT, ScOTConfig
from sciml.models.scot_training import PoseidonLoss
from sciml.pretrained.cards import round_metrics
from sciml.train import Cosine, TrainConfig, Trainer

NAME = "scot-ns2d"


def scot_config(resolution: int, e: int) -> ScOTConfig:
    """The time-conditioned scOT: 3 levels, windows of 8, embedding width ``e``."""
    return ScOTConfig(
        in_channels=1,
        out_channels=1,
        image_size=resolution,
        patch_size=2,
        embed_dim=e,
        depths=(2, 2, 2),
        num_heads=(e // 10, e // 5, 2 * e // 5) if e % 10 == 0 else (1, 2, 4),
        window_size=8,
        skip_blocks=(2, 1, 0),
        time_conditioning=True,
    )


def main(argv: list[str] | None = None) -> None:
    ap = _zoo.parser(
        __doc__, n_train=128, n_val=16, n_test=32, resolution=32, epochs=12, batch_size=32,
        lr=1e-3, n_train_help="trajectories (36 pairs each)",
    )  # fmt: skip
    ap.add_argument("--embed-dim", type=int, default=20, help="scOT embedding width (embed_dim)")
    args = ap.parse_args(argv)
    _zoo.check(ap, args, navier_stokes=True)
    try:  # the grid must split into the model's patches and halve at every level
        config = scot_config(args.resolution, args.embed_dim)
    except ValueError as err:
        ap.error(f"--resolution {args.resolution} and --embed-dim {args.embed_dim}: {err}")
    device, out, work = _zoo.start(args, NAME)

    options = {"resolution": args.resolution, "nu": 1e-3, "T": 4.0, "dt": 1e-3}
    options["record_steps"] = 8
    n = args.n_train + args.n_val
    data, gen_s = _zoo.navier_stokes_data(options, n=n, work=work, device=device)
    ds = sciml.data.open(data, in_memory=True)
    parts = split(n, (args.n_train / n, args.n_val / n, 0.0), seed=0)
    train = AllPairs(ds, include_self=False, samples=list(parts.train))
    val = AllPairs(ds, include_self=False, samples=list(parts.val))

    train_config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=0.0,
        schedule=Cosine(),
        warmup_steps=50,
        grad_clip=5.0,
        seed=0,
    )
    torch.manual_seed(train_config.seed)
    model = ScOT(config)
    trainer = Trainer(
        model,
        train,
        val_data=val,
        loss=PoseidonLoss(),
        config=train_config,
        out_dir=work / "run",
        metadata={"generated_data": {"generator": "navier_stokes", "options": options}},
        progress=False,
    )
    t0 = time.perf_counter()
    trainer.fit()
    train_s = time.perf_counter() - t0

    model = sciml.load(work / "run" / "best")
    evaluation = _zoo.evaluation_record("all_pairs", args.n_test, fields=["w"], batch_size=64)
    card = {
        "schema": 1,
        "name": NAME,
        "family": "scot",
        "summary": (
            "Small time-conditioned scOT (Poseidon-style) for 2D Navier-Stokes (nu=1e-3): "
            f"w(t) -> w(t + lead), lead in (0, 4], {args.resolution}x{args.resolution}"
        ),
        "pde": (
            "2D incompressible Navier-Stokes in vorticity form on the unit torus, "
            "w_t + u.grad w = nu Lap w + f, nu=1e-3, f = 0.1 (sin 2pi(x+y) + cos 2pi(x+y)); "
            "maps w(t_i) and the lead time t_j - t_i to w(t_j), 0 <= t_i < t_j <= 4"
        ),
        "paper": (
            "Herde, Raonic, Rohner, Kaeppeli, Molinaro, de Bezenac, Mishra, Poseidon: Efficient "
            "Foundation Models for PDEs, NeurIPS 2024"
        ),
        "parameters": model.num_parameters(),
        "data": _zoo.data_record(
            args,
            "navier_stokes",
            options,
            "trajectories",
            ", 9 snapshots each; every pair j > i (36 per trajectory) is a sample",
        ),  # fmt: skip
        "training": _zoo.training_record(
            args,
            device,
            train_s=train_s,
            gen_s=gen_s,
            optimizer="AdamW (no weight decay), 50 warm-up steps, cosine, grad clip 5",
            loss="Poseidon's relative L1 (PoseidonLoss)",
            model_config=config_to_dict(config),
        ),
        "metrics": {},
        "evaluation": evaluation,
        "intended_use": (
            "A small pretrained Poseidon-style model to fine-tune on related 2D flows "
            "(ScOT.from_pretrained + FineTuneRecipe, as in examples/scot_finetune.py), or to "
            "predict this flow at lead times up to 4 (those it was trained on: multiples of 0.5) "
            "or autoregressively (model.rollout)."
        ),
        "limitations": (
            f"Tiny next to Poseidon-T (21M parameters) and trained on one PDE at "
            f"{args.resolution}x{args.resolution} (other grids are Fourier-resampled to it); "
            "GRF initial vorticity, nu=1e-3 and this forcing only; lead times beyond 4 are "
            "extrapolation. Trained on snapshots 0.5 apart, so on lead times 0.5, 1, ..., 4: at "
            "much shorter leads its error stays near its floor, and below about 0.2 predicting "
            "no change (w(t + lead) = w(t)) does better. Inputs are raw vorticity (no "
            "normalisation constants)."
        ),
        "license": "same as sciml",
    }
    metrics = _zoo.evaluate_card(model, card, seed=1, device=device)
    card["metrics"] = round_metrics(metrics)
    target = out / NAME
    model.save_pretrained(target, metadata={"generated_data": card["data"]})
    _zoo.finish(target, card, install_it=args.install)


if __name__ == "__main__":
    main()
