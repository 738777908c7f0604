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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sciml.pretrained.cards import CARD_FILE, validate_card
from sciml.pretrained.evaluate import generate_samples

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
    """Training data: :func:`sciml.pretrained.evaluate.generate_samples` (the evaluators' own
    data path) with the card's ``options``; ``extra`` do not change the data."""
    return generate_samples(generator, options, n=n, seed=seed, out=out, **(extra or {}))


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
