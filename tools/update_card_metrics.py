"""Measure a shipped surrogate's card metrics with its own evaluator on held-out data.

    .venv/bin/python tools/update_card_metrics.py NAME [--n N] [--seed S] [--write]

Runs the card's evaluator (``sciml.pretrained.evaluate``) on ``n`` cases drawn with the held-out
seed ``train_seed + 1`` (not the ``train_seed + 1000`` that ``sciml evaluate NAME`` uses) and
prints the metrics; ``--write`` stores them, at 6 significant digits, in the card's ``metrics``
(other keys are kept).
Run ``tools/gen_zoo_docs.py`` afterwards: docs/zoo.md is generated from the cards.
"""

from __future__ import annotations

import argparse
import json
import time

from sciml import pretrained
from sciml.pretrained.cards import CARD_FILE, round_metrics


def main() -> int:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument(
        "name", choices=pretrained.names(), help="the shipped model whose card to update"
    )
    ap.add_argument("--n", type=int, help="held-out cases (default: the card's evaluation.n)")
    ap.add_argument(
        "--seed", type=int, help="seed of the held-out cases (default: the card's train_seed + 1)"
    )
    ap.add_argument("--write", action="store_true", help="update the card's metrics")
    args = ap.parse_args()
    card = pretrained.card(args.name)
    seed = card["data"]["train_seed"] + 1 if args.seed is None else args.seed
    t0 = time.perf_counter()
    result = pretrained.evaluate_pretrained(args.name, n=args.n, seed=seed)
    print(
        json.dumps({"n": result["n"], "seed": seed, **result["metrics"]}, indent=2),
        f"\n({time.perf_counter() - t0:.1f} s)",
    )
    if args.write:
        path = pretrained.path_of(args.name) / CARD_FILE
        raw = json.loads(path.read_text())
        raw["metrics"].update(round_metrics(result["metrics"]))
        pretrained.validate_card(raw, where=str(path))
        path.write_text(json.dumps(raw, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
