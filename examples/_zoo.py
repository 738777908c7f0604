"""Shared steps of the scripts that train sciml's shipped surrogates (``examples/zoo_*.py``).

Each script generates its training data with a sciml generator, trains with the common
:class:`sciml.train.Trainer`, measures the card's test metric on held-out data drawn with
``train_seed + 1`` by the same functions the card's evaluator uses (what ``sciml evaluate NAME``
runs on a fresh seed), and writes ``OUT/<name>/`` = checkpoint + ``card.json``. ``--install``
copies that directory into ``sciml/pretrained/weights/<name>/`` (what the package ships).

The other scripts that write a shipped surrogate's card (``deeponet_antiderivative.py``,
``deeponet_pendulum.py``, ``regularized_node.py``) use the card and command-line plumbing here
too (``dcdm_poisson.py``, which trains ``dcdm-poisson3d``, writes no card). Only plumbing lives
here (options, card records, writing, installing); each script keeps its data, model and
training in its own file, where a reader looks for them. The examples that write no card import
nothing from ``examples/``: each can be copied out and run alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sciml.cli import HelpFormatter
from sciml.data import split
from sciml.experiment import DataSpec, build_views
from sciml.pretrained.cards import CARD_FILE, validate_card
from sciml.pretrained.evaluate import generate_samples

WEIGHTS = Path(__file__).resolve().parents[1] / "sciml" / "pretrained" / "weights"


def parser(
    doc: str | None,
    *,
    n_train: int,
    n_val: int,
    n_test: int,
    resolution: int,
    epochs: int,
    batch_size: int,
    lr: float,
    n_train_help: str | None = None,
    resolution_help: str | None = None,
) -> argparse.ArgumentParser:
    """The options every zoo script has, with its defaults; add the script's own after these."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=HelpFormatter)
    ap.add_argument("--out", default="runs/zoo", help="output directory (data, run, card)")
    ap.add_argument("--n-train", type=int, default=n_train, help=n_train_help or "training samples")
    ap.add_argument("--n-val", type=int, default=n_val, help="validation samples")
    ap.add_argument("--n-test", type=int, default=n_test, help="held-out samples (card metric)")
    ap.add_argument(
        "--resolution", type=int, default=resolution, help=resolution_help or "grid points per side"
    )
    ap.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    ap.add_argument("--batch-size", type=int, default=batch_size, help="samples per batch")
    ap.add_argument("--lr", type=float, default=lr, help="learning rate")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads")
    ap.add_argument("--install", action="store_true", help="copy into sciml/pretrained/weights")
    return ap


def deeponet_parser(
    doc: str | None,
    *,
    n_train: int,
    steps: tuple[str, int],
    batch_size: int,
    quick: Mapping[str, Any],
) -> argparse.ArgumentParser:
    """The options of the DeepONet surrogate scripts: ``steps`` = (the flag that counts the
    training, its default), e.g. ``("--epochs", 500)``; ``quick`` = the ``--quick`` preset, the
    defaults it sets by option name (``{"n_train": 500}``), which the caller passes to
    :func:`parse_args` too. The help of ``--quick`` is written from it (it was written by
    hand, so it could drift from the values applied)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=HelpFormatter)
    ap.add_argument("--out", default="deeponet_out", help="output directory (data, run, card)")
    ap.add_argument("--n-train", type=int, default=n_train, help="training functions")
    ap.add_argument(steps[0], type=int, default=steps[1], help="training " + steps[0][2:])
    ap.add_argument("--batch-size", type=int, default=batch_size, help="functions per batch")
    ap.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    ap.add_argument(
        "--train-seed", type=int, default=0, help="seed of the training data and weights"
    )
    ap.add_argument("--n-test", type=int, default=2000, help="held-out functions (card metric)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads")
    ap.add_argument("--install", action="store_true", help="copy into sciml/pretrained/weights")
    ap.add_argument("--quick", action="store_true", help=f"smoke run: {preset_help(quick)}")
    return ap


def preset_help(preset: Mapping[str, Any]) -> str:
    """What a preset sets, as the flags that would set it: ``--n-train 500 --epochs 10``."""
    flags = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in preset.items())
    return f"{flags} (a flag given with it wins)"


def parse_args(
    ap: argparse.ArgumentParser, argv: list[str] | None, *, preset: str, **defaults: Any
) -> argparse.Namespace:
    """Parse ``argv``; with the flag ``--<preset>`` (e.g. ``--quick``) given, parse it again with
    ``defaults`` as the new defaults, so that a flag given on the command line, before or after
    the preset, still wins (overwriting the parsed values could not tell a flag given with its
    default's value from one left out)."""
    args = ap.parse_args(argv)
    if getattr(args, preset):
        ap.set_defaults(**defaults)
        args = ap.parse_args(argv)
    return args


def add_ns2d_options(ap: argparse.ArgumentParser) -> None:
    """``--T``, ``--dt`` and ``--augment``: the options of the w(0) -> w(T) Navier-Stokes
    surrogates (``fno-ns2d``, ``t1-ns2d``), with their defaults."""
    ap.add_argument("--T", type=float, default=3.0, help="lead time of w(0) -> w(T)")
    ap.add_argument("--dt", type=float, default=5e-3, help="solver time step")
    ap.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="move each training pair by a random exact symmetry of the problem "
        "(sciml.data.generators.fno_forcing_symmetries) every time it is read",
    )


def check_counts(
    ap: argparse.ArgumentParser, args: argparse.Namespace, counts: tuple, *, out: bool = True
) -> None:
    """Refuse a count below 1 among ``counts`` (option names), a non-positive ``--lr`` and, with
    ``out`` (a script that writes to ``--out``), an ``--out`` that is a file: argparse's usage
    line and exit status 2."""
    for name in counts:
        value = getattr(args, name)
        if value < 1:
            ap.error(f"--{name.replace('_', '-')} expects an integer >= 1, got {value}")
    if args.lr <= 0:
        ap.error(f"--lr expects a positive learning rate, got {args.lr}")
    if out and Path(args.out).exists() and not Path(args.out).is_dir():
        ap.error(f"--out {args.out} is a file: expected a directory (created when missing)")


def check(ap: argparse.ArgumentParser, args: argparse.Namespace, *, navier_stokes: bool) -> None:
    """Refuse settings of the common options (and of :func:`add_ns2d_options`) that would fail
    later, after the data generation or in training: argparse's usage line and exit status 2.
    ``navier_stokes``: the data come from the pseudo-spectral solver (an even grid)."""
    counts = ("n_train", "n_val", "n_test", "resolution", "epochs", "batch_size", "threads")
    check_counts(ap, args, counts)
    if navier_stokes and args.resolution % 2:
        ap.error(
            f"--resolution expects an even grid size (the spectral solver), got {args.resolution}"
        )
    if hasattr(args, "dt") and not (args.T > 0 and args.dt > 0):
        ap.error(f"--T and --dt expect positive times, got {args.T:g} and {args.dt:g}")


def start(args: argparse.Namespace, name: str) -> tuple[str, Path, Path]:
    """Set the thread count and return ``(device, out, work)``: CUDA when present, else CPU;
    ``work = out/<name>-run`` (created) holds the data and the training run."""
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    work = out / f"{name}-run"
    work.mkdir(parents=True, exist_ok=True)
    return device, out, work


def train_val_views(spec: DataSpec, n: int):
    """The training and validation views of ``spec``'s file of ``n`` samples (its split)."""
    parts = split(n, spec.split, seed=spec.seed)
    train = build_views(spec, samples=list(parts.train), training=True)
    return train, build_views(spec, samples=list(parts.val))


def training_record(
    args: argparse.Namespace,
    device: str,
    *,
    train_s: float,
    gen_s: float,
    optimizer: str,
    loss: str,
    model_config: Mapping[str, Any],
) -> dict[str, Any]:
    """The card's ``training`` block."""
    return {
        **run_record(train_s, device),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": optimizer,
        "loss": loss,
        "data_generation_s": round(gen_s, 1),
        "model_config": model_config,
    }


def data_record(
    args: argparse.Namespace, generator: str, options: Mapping[str, Any], unit: str, details: str
) -> dict[str, Any]:
    """The card's ``data``: ``n_train + n_val`` ``unit`` (e.g. "pairs") drawn with seed 0,
    ``n_test`` held out with seed 1; ``details`` ends the description."""
    return {
        "generator": generator,
        "options": options,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "train_seed": 0,
        "description": (
            f"{args.n_train} train + {args.n_val} validation {unit} (seed 0), "
            f"{args.n_test} held-out test {unit} (seed 1){details}"
        ),
    }


def run_record(seconds: float, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The first entries of a card's ``training`` block: the command line, the training time
    in seconds and the hardware it ran on."""
    return {"command": command(), "time_s": round(seconds, 1), "hardware": hardware(device)}


def evaluation_record(evaluator: str, n: int, **options: Any) -> dict[str, Any]:
    """The card's ``evaluation`` block: ``evaluator`` (a key of
    :data:`sciml.pretrained.evaluate.EVALUATORS`) scores the test relative L2 on ``n`` samples
    with ``options``."""
    return {"evaluator": evaluator, "metric": "test_rel_l2", "n": n, "options": options}


def seeded_data_record(
    args: argparse.Namespace, generator: str, options: Mapping[str, Any], description: str
) -> dict[str, Any]:
    """The card's ``data`` of a script with ``--train-seed``: ``n_train`` samples of
    ``generator`` with ``options`` drawn with that seed, ``n_test`` held out."""
    return {
        "generator": generator,
        "options": options,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "train_seed": args.train_seed,
        "description": description,
    }


def augment_note(args: argparse.Namespace) -> str:
    """What the training loss's description adds with ``--augment`` (:func:`add_ns2d_options`)."""
    if not args.augment:
        return ""
    return (
        "; each training pair moved by a random exact symmetry of the problem "
        "(fno_forcing_symmetries) every time it is read"
    )


def evaluate_card(
    model, card: Mapping[str, Any], *, seed: int, device: str = "cpu"
) -> dict[str, float]:
    """The card's metrics of ``model``: the card's evaluator (``card["evaluation"]``, the code
    of ``sciml evaluate NAME``) on its ``n`` samples drawn with ``seed``."""
    from sciml.pretrained.evaluate import EVALUATORS

    evaluation = card["evaluation"]
    evaluator = EVALUATORS[evaluation["evaluator"]]
    return evaluator(model, card, n=evaluation["n"], seed=seed, device=device)


def hardware(device: str | torch.device) -> str:
    """What the training ran on, in words, for the card."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"1x {torch.cuda.get_device_name(dev)} GPU, float32"
    return (
        f"{os.cpu_count()} shared CPU cores ({platform.machine()}, contended), "
        f"{torch.get_num_threads()} torch thread(s), float32"
    )


def command() -> str:
    """The command line that ran this script."""
    return shlex.join(["python", *sys.argv])


def generate_data(
    generator: str,
    options: Mapping[str, Any],
    *,
    n: int,
    seed: int,
    out: Path,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Training data: :func:`sciml.pretrained.evaluate.generate_samples` (the evaluators' own
    data path) with the card's ``options``; ``extra`` do not change the data."""
    return generate_samples(generator, options, n=n, seed=seed, out=out, **(extra or {}))


def navier_stokes_data(
    options: Mapping[str, Any], *, n: int, work: Path, device: str
) -> tuple[Path, float]:
    """``n`` Navier-Stokes trajectories (seed 0) in ``work/navier_stokes.h5``, and the seconds
    the generation took."""
    t0 = time.perf_counter()
    path = generate_data(
        "navier_stokes", options, n=n, seed=0, out=work / "navier_stokes.h5",
        extra={"device": device, "batch_size": 256},
    )  # fmt: skip
    return path, time.perf_counter() - t0


def ns2d_lead_time_data(
    args: argparse.Namespace, work: Path, device: str, *, normalize: bool
) -> tuple[dict[str, Any], int, DataSpec, float]:
    """The data of ``fno-ns2d`` and ``t1-ns2d``: vorticity w(0) -> w(T) (``args.resolution``,
    ``args.T``, ``args.dt``; nu = 1e-3), ``n_train + n_val`` trajectories split in that ratio.
    Returns ``(options, n, spec, generation seconds)``."""
    options = {"resolution": args.resolution, "nu": 1e-3, "T": args.T, "dt": args.dt}
    options["record_steps"] = 1
    n = args.n_train + args.n_val
    path, gen_s = navier_stokes_data(options, n=n, work=work, device=device)
    spec = DataSpec(
        path=str(path), view="snapshots", inputs=("w",), targets=("w",), input_step=0,
        target_step=-1, split=(args.n_train / n, args.n_val / n, 0.0), seed=0,
        normalize=normalize,
    )  # fmt: skip
    return options, n, spec, gen_s


def ns2d_pde(T: float) -> str:
    """The card's ``pde`` text for the Navier-Stokes surrogates with lead time ``T``."""
    return (
        "2D incompressible Navier-Stokes in vorticity form on the unit torus, "
        "w_t + u.grad w = nu Lap w + f, nu=1e-3, f = 0.1 (sin 2pi(x+y) + cos 2pi(x+y)); "
        f"maps w(0) to w(T={T:g})"
    )


def write_card(directory: Path, card: Mapping[str, Any]) -> Path:
    """Validate ``card`` (schema 1) and write ``directory/card.json``."""
    card = validate_card(card, where=f"{directory}/{CARD_FILE}")
    path = directory / CARD_FILE
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def install(directory: Path) -> Path:
    """Copy a finished ``OUT/<name>/`` (config, weights, card) into the package's weights."""
    target = WEIGHTS / directory.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", CARD_FILE):
        shutil.copyfile(directory / name, target / name)  # plain 0644 files for the wheel
    return target


def finish(directory: Path, card: Mapping[str, Any], *, install_it: bool) -> None:
    """Write the card next to the saved checkpoint, print the summary, optionally install."""
    write_card(directory, card)
    report(directory, card)
    if install_it:
        print("installed ->", install(directory))


def report(directory: Path, card: Mapping[str, Any]) -> None:
    metric = card["evaluation"]["metric"]
    size = (directory / "model.safetensors").stat().st_size
    print(
        f"{card['name']}: {card['parameters']:,} parameters ({size / 2**20:.2f} MiB), "
        f"{metric} = {card['metrics'][metric]:.4f} on {card['data']['n_test']} held-out samples, "
        f"trained in {card['training']['time_s']:.0f} s -> {directory}",
        flush=True,
    )


def save_and_recheck(
    model, card: dict[str, Any], directory: Path, *, train_seed: int, install_it: bool
) -> dict[str, float]:
    """Save ``model`` with ``card`` (its ``metrics`` measured on seed ``train_seed + 1``) into
    ``directory``, then reload the checkpoint and measure it again with the card's evaluator on
    a fresh seed, ``train_seed + 1000``: what ``sciml evaluate NAME`` does. Prints both numbers
    of the card's metric and returns the fresh metrics; ``install_it`` copies the directory into
    the package's weights."""
    import sciml

    model.save_pretrained(directory, metadata={"card": card["name"], "train_seed": train_seed})
    write_card(directory, card)
    evaluation = card["evaluation"]
    fresh_seed = train_seed + 1000
    fresh = evaluate_card(sciml.load(directory), card, seed=fresh_seed)
    name = evaluation["metric"]
    held, new = card["metrics"][name], fresh[name]
    print(
        f"{card['name']}: {name} {held:.4f} held out (seed {train_seed + 1}, n={evaluation['n']}), "
        f"{new:.4f} fresh (seed {fresh_seed}; rel diff {abs(new - held) / held:.1%}); "
        f"wrote {directory}",
        flush=True,
    )
    if install_it:
        print("installed ->", install(directory))
    return fresh
