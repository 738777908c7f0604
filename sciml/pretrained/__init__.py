"""Registry of pretrained surrogates shipped inside the package.

    sciml.pretrained.names()                    # ['dcdm-poisson3d', 'fno-ns2d', ...]
    model = sciml.load("fno-ns2d")              # offline: the weights are in the package
    sciml.pretrained.card("fno-ns2d")           # the model card (dict, schema 1)
    sciml.pretrained.evaluate_pretrained("fno-ns2d")   # re-measure the card metric

A shipped model lives in ``sciml/pretrained/weights/<name>/`` as an ordinary checkpoint directory
(``config.json`` + ``model.safetensors``) with its model card ``card.json`` (see
:mod:`sciml.pretrained.cards`). Nothing is downloaded: a name that is not shipped is an error
that lists the close matches and every shipped name.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_attributes as _lazy_attributes
from .cards import CARD_FILE, CardError, load_card, validate_card

if TYPE_CHECKING:
    from .evaluate import EVALUATORS, evaluate_pretrained, register_evaluator

# (why) the evaluators import torch: they load on first use (PEP 562), so the names, the cards
# and `sciml pretrained list | show` (and `sciml --help`, which builds that parser) need no torch
_LAZY = {
    "EVALUATORS": "evaluate",
    "evaluate_pretrained": "evaluate",
    "register_evaluator": "evaluate",
}


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, ("evaluate",))


__all__ = [
    "names",
    "is_registered",
    "load",
    "path_of",
    "unknown_name_message",
    "card",
    "validate_card",
    "CardError",
    "evaluate_pretrained",
    "register_evaluator",
    "EVALUATORS",
]

_WEIGHTS = Path(__file__).parent / "weights"


def names() -> list[str]:
    """Names of the shipped pretrained models (directories with a card and a checkpoint)."""
    if not _WEIGHTS.is_dir():
        return []
    return sorted(
        p.name
        for p in _WEIGHTS.iterdir()
        if (p / "config.json").is_file() and (p / CARD_FILE).is_file()
    )


def is_registered(name: str) -> bool:
    """Whether ``name`` is a shipped pretrained model."""
    return name in names()


def unknown_name_message(name: str) -> str:
    """``'name' is not a shipped pretrained model ...; did you mean ...? shipped: ...``."""
    shipped = names()
    close = difflib.get_close_matches(str(name), shipped, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    # (why) "; shipped:" after the looked-in folder: without a close match the list ran on
    # from the closing parenthesis ("(looked in ...) shipped: ...")
    return (
        f"{str(name)!r} is not a shipped pretrained model (looked in {_WEIGHTS}){hint}"
        f"{' ' if close else '; '}shipped: {', '.join(shipped) or 'none yet'}"
    )


def path_of(name: str) -> Path:
    """Directory of the shipped model ``name``."""
    if not isinstance(name, str):
        raise TypeError(
            f"expected a pretrained model name (a str such as {', '.join(names()[:2])}), "
            f"got {type(name).__name__} {name!r}"
        )
    if not is_registered(name):
        from ..errors import CheckpointError

        raise CheckpointError(unknown_name_message(name))
    return _WEIGHTS / name


def card(name: str) -> dict[str, Any]:
    """The validated model card of the shipped model ``name``."""
    return load_card(path_of(name) / CARD_FILE)


def load(name: str, *, map_location: Any = "cpu"):
    """Load the shipped model ``name`` (see :func:`names`) onto the device ``map_location``."""
    import torch

    from ..operator import Operator

    directory = path_of(name)
    try:  # else the weights file would be blamed for a bad device string
        torch.device(map_location)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"expected map_location a torch device such as 'cpu' or 'cuda:0', got {map_location!r}"
        ) from None
    return Operator.from_pretrained(directory, map_location=map_location)
