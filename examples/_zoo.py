"""Shared steps of the scripts that train sciml's shipped surrogates (``examples/zoo_*.py``).

Each script generates its training data with a sciml generator, trains with the common
:class:`sciml.train.Trainer`, measures the card's test metric on held-out data drawn with
``train_seed + 1`` by the same functions the card's evaluator uses (what ``sciml evaluate NAME``
runs on a fresh seed), and writes ``OUT/<name>/`` = checkpoint + ``card.json``. ``--install``
copies that directory into ``sciml/pretrained/weights/<name>/`` (what the package ships).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sciml._config import config_from_dict
from sciml.data.generators import generate
from sciml.experiment import DataSpec, build_views, evaluate
from sciml.pretrained.cards import CARD_FILE, validate_card

WEIGHTS = Path(__file__).resolve().parents[1] / "sciml" / "pretrained" / "weights"


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
    """``sciml.data.generators.generate`` with the card's ``options`` (incl. ``resolution``);
    ``extra`` are options that do not change the data (``device``, ``batch_size``)."""
    opts = dict(options)
    resolution = opts.pop("resolution")
    return generate(
        generator,
        n=n,
        resolution=resolution,
        out=out,
        seed=seed,
        overwrite=True,
        **opts,
        **(extra or {}),
    )


def grid_metrics(
    model: torch.nn.Module,
    view: Mapping[str, Any],
    generator: str,
    options: Mapping[str, Any],
    *,
    n: int,
    seed: int,
    batch_size: int = 32,
) -> dict[str, float]:
    """The ``grid`` evaluator's steps (``sciml/pretrained/evaluate.py``) for a checkpoint that
    is not shipped yet: ``n`` fresh samples with ``seed``, the recorded data view, and
    :func:`sciml.experiment.evaluate`."""
    with tempfile.TemporaryDirectory(prefix="sciml-zoo-") as tmp:
        path = generate_data(generator, options, n=n, seed=seed, out=Path(tmp) / "test.h5")
        spec = config_from_dict(DataSpec, {**view, "path": str(path)}, where="metadata.data")
        result = evaluate(model.cpu().eval(), build_views(spec), batch_size=batch_size)
    return {
        "test_rel_l2": result["rel_l2"],
        "test_rel_l2_max": result["rel_l2_max"],
        "test_mse": result["mse"],
    }


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


def report(directory: Path, card: Mapping[str, Any]) -> None:
    metric = card["evaluation"]["metric"]
    size = (directory / "model.safetensors").stat().st_size
    print(
        f"{card['name']}: {card['parameters']:,} parameters ({size / 2**20:.2f} MiB), "
        f"{metric} = {card['metrics'][metric]:.4f} on {card['data']['n_test']} held-out samples, "
        f"trained in {card['training']['time_s']:.0f} s -> {directory}",
        flush=True,
    )
