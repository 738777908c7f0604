"""``sciml pretrained list | show NAME`` and ``sciml evaluate NAME`` (see :mod:`sciml.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "evaluate_name", "format_card", "format_table"]


def add_parser(sub: Any) -> None:
    """Add ``sciml pretrained`` to the ``sciml`` sub-command parsers ``sub``."""
    p = sub.add_parser("pretrained", help="list the shipped pretrained surrogates, show a card")
    p.set_defaults(help_parser=p)  # `sciml pretrained` alone prints this help
    psub = p.add_subparsers(dest="pretrained_command", parser_class=type(p))
    ls = psub.add_parser("list", help="one line per shipped surrogate")
    ls.add_argument("--json", action="store_true", help="print every card as one JSON object")
    ls.set_defaults(handler=_list)
    show = psub.add_parser("show", help="print the model card of NAME")
    show.add_argument("name", help="a shipped name (sciml pretrained list)")
    show.add_argument("--json", action="store_true", help="print the raw card.json")
    show.set_defaults(handler=_show)


_KIND = {"family": "operator family", "evaluator": "evaluator"}


def _list(args: argparse.Namespace) -> int:
    from . import CARD_FILE, names, path_of
    from .cards import load_card, unregistered_names

    # (why) without the registry checks, which import torch (1 s or more of a 2 s command);
    # the table needs only the schema, and `show` / the test suite check the cards in full
    cards = [load_card(path_of(name) / CARD_FILE, registries=False) for name in names()]
    for c in cards:
        # (why) such a card (a broken install, a card from another sciml version) was listed
        # silently, and `show` / `sciml evaluate` / sciml.load then refused it
        for what, (name, registered) in unregistered_names(c).items():
            print(
                f"sciml: warning: {path_of(c['name']) / CARD_FILE}: unknown {_KIND[what]} "
                f"{name!r} (registered: {', '.join(registered)}); `sciml pretrained show "
                f"{c['name']}` and `sciml evaluate {c['name']}` will refuse this card: reinstall "
                "sciml or correct the card",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps({c["name"]: c for c in cards}, indent=2))
    else:
        print(format_table(cards))
    return 0


def _show(args: argparse.Namespace) -> int:
    from . import card

    c = card(args.name)
    print(json.dumps(c, indent=2) if args.json else format_card(c))
    return 0


def _metric(c: dict[str, Any]) -> str:
    metric = c["evaluation"]["metric"]
    return f"{metric}={c['metrics'][metric]:.4g}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(cards: list[dict[str, Any]]) -> str:
    """The ``sciml pretrained list`` table: name, family, parameters, metric, PDE."""
    if not cards:
        return "no pretrained surrogates shipped"
    rows = [("name", "family", "params", "metric", "pde")]
    rows += [
        (c["name"], c["family"], f"{c['parameters']:,}", _metric(c), _short(c["pde"], 60))
        for c in cards
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i != 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))
        )
        + "  "
        + r[4]
        for r in rows
    )


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def format_card(c: dict[str, Any]) -> str:
    """A model card as readable text (``sciml pretrained show NAME``)."""
    data, training, ev = c["data"], c["training"], c["evaluation"]
    lines = [
        f"{c['name']}  ({c['family']}, {c['parameters']:,} parameters)",
        f"  {c['summary']}",
        f"  pde:          {c['pde']}",
        f"  paper:        {c['paper']}",
        "  data:",
        f"    generator:  {data['generator'] or '(none: see description)'}",
    ]
    if data["options"]:
        lines.append(f"    options:    {json.dumps(data['options'])}")
    lines.append(
        f"    samples:    {data['n_train']} train, {data['n_test']} test, "
        f"train_seed {data['train_seed']}"
    )
    if "description" in data:
        lines.append(f"    about:      {data['description']}")
    lines += ["  training:"]
    lines += [f"    {k + ':':11s} {_value(v)}" for k, v in training.items()]
    lines += ["  metrics:"]
    lines += [f"    {k}: {_value(v)}" for k, v in c["metrics"].items()]
    lines += [
        "  evaluation:",
        f"    sciml evaluate {c['name']}   ({ev['evaluator']} evaluator, {ev['n']} fresh "
        f"cases, reproduces {ev['metric']} = {c['metrics'][ev['metric']]:.4g} within 10%)",
    ]
    if ev.get("options"):
        lines.append(f"    options:    {json.dumps(ev['options'])}")
    lines += [
        f"  intended use: {c['intended_use']}",
        f"  limitations:  {c['limitations']}",
        f"  license:      {c['license']}",
    ]
    if "notes" in c:
        lines.append(f"  notes:        {c['notes']}")
    return "\n".join(lines)


def evaluate_name(name: str, *, n: int | None, seed: int | None, as_json: bool) -> int:
    """``sciml evaluate NAME``: 0 if the card metric is reproduced within 10%, else 1."""
    from .evaluate import evaluate_pretrained

    r = evaluate_pretrained(name, n=n, seed=seed)
    if as_json:
        print(json.dumps(r))
    else:
        from .evaluate import _card_and_loader

        verdict = "OK" if r["ok"] else "MISMATCH"
        card_n = int(_card_and_loader(name)[0]["evaluation"]["n"])
        # (why) the tolerance is set for the card's number of cases: with fewer, a healthy model
        # can miss it by sampling noise alone (deeponet-antiderivative --n 50: 16.8%)
        fewer = (
            f" (on {r['n']} of the card's {card_n} cases the difference includes more sampling "
            f"noise: run without --n to compare like with like)"
            if r["n"] < card_n and not r["ok"]
            else ""
        )
        print(
            f"{name}: {r['metric']} = {r['value']:.4g} on {r['n']} fresh cases (seed "
            f"{r['seed']}); card {r['card_value']:.4g}; relative difference "
            f"{100 * r['rel_diff']:.1f}% (tolerance {100 * r['tolerance']:.0f}%): {verdict}{fewer}"
        )
    return 0 if r["ok"] else 1
