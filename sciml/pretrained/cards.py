"""Model cards of the shipped surrogates: ``card.json`` beside each checkpoint, schema 1.

A card states what a user needs to trust and reproduce a surrogate::

    schema: 1                      name: dir name (lower-case, dash separated)
    family: registered Operator family of the model (for a checkpoint saved with normalisation,
            the family inside the Normalized wrapper)   summary / pde / paper: text
    parameters: parameter count of the shipped model, model.num_parameters() (real scalars:
                a complex spectral weight counts twice)
    data:       {generator: name in sciml.data.generators.GENERATORS or null,
                 options: exact generator kwargs incl. resolution (not n / seed / out),
                 n_train, n_test, train_seed, description?}
    training:   {command, time_s, hardware, ...free keys}
    metrics:    {name: number or JSON, ...}   held-out test metrics
    evaluation: {evaluator: key of sciml.pretrained.evaluate.EVALUATORS,
                 metric: key of metrics that `sciml evaluate NAME` reproduces,
                 n: fresh test cases, options?: the evaluator's options (the keys it reads,
                 plus fast_n: the sample size of a quick check)}
    intended_use / limitations / license: text;   notes?: text

:func:`validate_card` checks all of it and raises :class:`CardError` naming the first problem.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._scalars import is_int, is_real
from ..errors import SciMLError

__all__ = [
    "CardError",
    "SCHEMA_VERSION",
    "load_card",
    "validate_card",
    "round_metrics",
    "unregistered_names",
    "CARD_FILE",
]

SCHEMA_VERSION = 1
CARD_FILE = "card.json"
_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def round_metrics(metrics: Mapping[str, Any], digits: int = 6) -> dict[str, Any]:
    """A card's ``metrics`` with every number at ``digits`` significant digits (decimal rounding
    would leave an MSE of 2e-6 one digit); other values (nested tables) are kept as they are."""
    return {
        k: float(f"{v:.{digits}g}")
        if isinstance(v, (int, float)) and not isinstance(v, bool)
        else v
        for k, v in metrics.items()
    }


# (why) sciml's own operator families and evaluators by name, so that a card naming neither can
# be reported without the registries, which import torch (`sciml pretrained list` does without
# it); tests/test_pretrained_zoo.py checks that they are exactly the registered ones from sciml
_BUILTIN_FAMILIES = frozenset(
    {"dcdm", "deeponet", "fno", "mgno", "node", "normalized", "pod_deeponet", "prose", "scot", "t1"}
)
_BUILTIN_EVALUATORS = frozenset({"all_pairs", "dcdm", "deeponet", "grid", "node"})


def _known(builtin: frozenset[str], module: str, registry: str) -> set[str]:
    """``builtin``, and where ``module`` is imported already (torch with it) the names its
    ``registry`` holds, a user's registrations included; nothing is imported here."""
    loaded = sys.modules.get(module)
    return set(builtin) | set(getattr(loaded, registry, {}))


def unregistered_names(card: Mapping[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """What a schema-valid card names that no registry known here holds, without importing
    torch: ``{"family": (name, registered), "evaluator": (name, registered)}``, each key only
    where its name is unknown (``{}`` for a card that the full :func:`validate_card` accepts
    on these two points). Known: sciml's built-in families and evaluators, and those of the
    registries where they are imported already (a user's own, registered in this process)."""
    found = {}
    families = _known(_BUILTIN_FAMILIES, "sciml.operator", "_REGISTRY")
    if card["family"] not in families:
        found["family"] = (card["family"], sorted(families))
    evaluators = _known(_BUILTIN_EVALUATORS, "sciml.pretrained.evaluate", "_EVALUATORS")
    if card["evaluation"]["evaluator"] not in evaluators:
        found["evaluator"] = (card["evaluation"]["evaluator"], sorted(evaluators))
    return found


class CardError(SciMLError, ValueError):
    """A model card is missing, not valid JSON, or does not follow the card schema."""


_TEXT = (str,)
_INT = (int,)
_NUMBER = (int, float)
_DICT = (dict,)

# key -> (accepted types, required)
_TOP: dict[str, tuple[tuple[type, ...], bool]] = {
    "schema": (_INT, True),
    "name": (_TEXT, True),
    "family": (_TEXT, True),
    "summary": (_TEXT, True),
    "pde": (_TEXT, True),
    "paper": (_TEXT, True),
    "parameters": (_INT, True),
    "data": (_DICT, True),
    "training": (_DICT, True),
    "metrics": (_DICT, True),
    "evaluation": (_DICT, True),
    "intended_use": (_TEXT, True),
    "limitations": (_TEXT, True),
    "license": (_TEXT, True),
    "notes": (_TEXT, False),
}
_DATA = {
    "generator": ((str, type(None)), True),
    "options": (_DICT, True),
    "n_train": (_INT, True),
    "n_test": (_INT, True),
    "train_seed": (_INT, True),
    "description": (_TEXT, False),
}
_TRAINING = {  # free keys allowed besides these
    "command": (_TEXT, True),
    "time_s": (_NUMBER, True),
    "hardware": (_TEXT, True),
}
_EVALUATION = {
    "evaluator": (_TEXT, True),
    "metric": (_TEXT, True),
    "n": (_INT, True),
    "options": (_DICT, False),
}


def _type_names(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object"}
    names[type(None)] = "null"
    if types == _NUMBER:
        return "a number"
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_keys(
    obj: Mapping[str, Any],
    schema: Mapping[str, tuple[tuple[type, ...], bool]],
    where: str,
    *,
    free: bool = False,
) -> None:
    if not isinstance(obj, Mapping):
        raise CardError(f"{where}: expected an object, got {type(obj).__name__}")
    missing = [k for k, (_, required) in schema.items() if required and k not in obj]
    if missing:
        raise CardError(f"{where}: missing key(s) {missing}; a card needs {sorted(schema)}")
    if not free:
        unknown = sorted(set(obj) - set(schema))
        if unknown:
            raise CardError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(schema)}")
    for key, (types, _) in schema.items():
        if key not in obj:
            continue
        value = obj[key]
        # bool is an int subclass, but `"parameters": true` is a mistake
        if isinstance(value, bool) or not isinstance(value, types):
            raise CardError(
                f"{where}.{key}: expected {_type_names(types)}, got {type(value).__name__} "
                f"{value!r:.60}"
            )


def validate_card(
    card: Mapping[str, Any], *, where: str = "card", registries: bool = True
) -> dict[str, Any]:
    """Check ``card`` against schema 1; returns it as a plain dict.

    Checks keys and types, the name pattern, the schema version, that the family, the data
    generator (and its options) and the evaluator exist, that an evaluator drawing its cases
    from a generator has one, that the evaluation options are ones the evaluator reads (and,
    for the built-in evaluators and ``fast_n``, values of the type and range it reads), and
    that the evaluation metric is a finite number in ``metrics``.

    With ``registries=False`` the checks against the registries (family, data generator and
    the options it takes, evaluator and its options) are skipped; the generator options' integer
    ``resolution`` and the absence of ``n`` / ``seed`` / ``out`` are still checked. The
    registries import torch, which ``sciml pretrained list`` does without (its table needs
    only the schema; the shipped cards are checked in full by the test suite, ``show`` and
    ``evaluate``).

    Raises:
        CardError: the first problem found, prefixed with ``where`` (e.g. the card's path).
    """
    _check_keys(card, _TOP, where)
    if card["schema"] != SCHEMA_VERSION:
        raise CardError(
            f"{where}.schema: this sciml reads card schema {SCHEMA_VERSION}, got {card['schema']}"
        )
    if not _NAME.match(card["name"]):
        raise CardError(
            f"{where}.name: expected lower-case words joined by '-' (e.g. 'fno-ns2d'), "
            f"got {card['name']!r}"
        )
    if card["parameters"] < 1:
        raise CardError(f"{where}.parameters: expected a positive count, got {card['parameters']}")

    if registries:
        from ..operator import registered_families

        families = registered_families()
        if card["family"] not in families:
            raise CardError(
                f"{where}.family: unknown operator family {card['family']!r}; registered: "
                f"{sorted(families)}"
            )

    data = card["data"]
    _check_keys(data, _DATA, f"{where}.data")
    for key in ("n_train", "n_test"):
        if data[key] < 0:
            raise CardError(f"{where}.data.{key}: expected a count >= 0, got {data[key]}")
    if data["train_seed"] < 0:  # the generators' seeds are numpy seeds
        raise CardError(f"{where}.data.train_seed: expected a seed >= 0, got {data['train_seed']}")
    if data["generator"] is not None:
        _check_generator(data["generator"], data["options"], f"{where}.data", registries=registries)

    _check_keys(card["training"], _TRAINING, f"{where}.training", free=True)
    time_s = card["training"]["time_s"]
    if not (math.isfinite(time_s) and time_s >= 0):  # NaN passes a plain `< 0` test
        raise CardError(f"{where}.training.time_s: expected finite seconds >= 0, got {time_s}")

    evaluation = card["evaluation"]
    _check_keys(evaluation, _EVALUATION, f"{where}.evaluation")
    if registries:
        _check_evaluator(evaluation, data, where)
    if evaluation["n"] < 1:
        raise CardError(f"{where}.evaluation.n: expected at least 1, got {evaluation['n']}")
    for key, value in card["metrics"].items():
        _check_metric(value, f"{where}.metrics.{key}")
    metric = evaluation["metric"]
    if metric not in card["metrics"]:
        raise CardError(
            f"{where}.evaluation.metric: {metric!r} is not in metrics {sorted(card['metrics'])}"
        )
    value = card["metrics"][metric]
    if isinstance(value, bool) or not isinstance(value, _NUMBER) or not math.isfinite(value):
        raise CardError(f"{where}.metrics.{metric}: expected a finite number, got {value!r:.60}")
    return dict(card)


def _check_metric(value: Any, where: str) -> None:
    """A metric is a finite real number, or a table (object / list) of them such as the
    dcdm-poisson3d card's iteration counts per grid."""
    # (why) only the evaluation metric was checked: a NaN or "n/a" beside it was shipped and
    # shown as if measured
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _check_metric(v, f"{where}[{k!r}]")
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            _check_metric(v, f"{where}[{i}]")
    elif not (is_real(value) and math.isfinite(value)):
        raise CardError(
            f"{where}: expected a finite number, got {value!r:.60} (a metric is a number or a "
            "non-empty table of numbers)"
        )


def _positive_int(v: Any) -> bool:
    return is_int(v) and v >= 1


def _names(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, str) and x for x in v)


_POSITIVE_INT = (_positive_int, "an integer >= 1")
_NAMES = (_names, "a non-empty list of field names")
# (evaluator, option) -> (accepts, what it expects) for the built-in evaluators' options;
# ("*", key) for an option every evaluator accepts
_OPTION_VALUES: dict[tuple[str, str], tuple[Any, str]] = {
    ("*", "fast_n"): _POSITIVE_INT,
    ("grid", "batch_size"): _POSITIVE_INT,
    ("dcdm", "grid"): _POSITIVE_INT,
    ("dcdm", "geometry"): (lambda v: v in ("box", "obstacle"), "'box' or 'obstacle'"),
    ("dcdm", "rtol"): (
        lambda v: is_real(v) and math.isfinite(v) and v > 0,
        "a finite relative residual > 0",
    ),
    ("dcdm", "k"): _POSITIVE_INT,
    ("dcdm", "maxiter"): _POSITIVE_INT,
    ("deeponet", "inputs"): _NAMES,
    ("deeponet", "targets"): _NAMES,
    ("deeponet", "batch_size"): _POSITIVE_INT,
    ("node", "fields"): _NAMES,
    ("all_pairs", "fields"): (lambda v: v is None or _names(v), "null or " + _NAMES[1]),
    ("all_pairs", "max_lead"): (lambda v: v is None or _positive_int(v), "null or an integer >= 1"),
    ("all_pairs", "batch_size"): _POSITIVE_INT,
}


def _check_evaluator(evaluation: Mapping[str, Any], data: Mapping[str, Any], where: str) -> None:
    from .evaluate import _SPECS, EVALUATORS

    name = evaluation["evaluator"]
    if name not in EVALUATORS:
        raise CardError(
            f"{where}.evaluation.evaluator: unknown evaluator {name!r}; "
            f"registered: {sorted(EVALUATORS)}"
        )
    needs_generator, accepted = _SPECS.get(name, (False, None))
    if needs_generator and data["generator"] is None:
        raise CardError(
            f"{where}.data.generator: the {name!r} evaluator draws its test cases from a data "
            "generator, got null; name one of sciml.data.generators.GENERATORS with its options"
        )
    options = evaluation.get("options", {})
    unknown = sorted(set(options) - accepted) if accepted else []
    if unknown:
        raise CardError(
            f"{where}.evaluation.options: unknown key(s) {unknown} for the {name!r} evaluator; "
            f"it reads {sorted(accepted)}"
        )
    # (why) the evaluators read their options with int() / float() / list(): a damaged value
    # ran as another one (batch_size true as 1, grid 8.5 as 8, fields "prey" as 4 one-letter
    # fields) or failed after the model had loaded with a bare error
    for key, value in options.items():
        check = _OPTION_VALUES.get((name, key)) or _OPTION_VALUES.get(("*", key))
        if check is not None and not check[0](value):
            raise CardError(
                f"{where}.evaluation.options.{key}: expected {check[1]}, got "
                f"{type(value).__name__} {value!r:.60}"
            )


def _check_generator(
    name: str, options: Mapping[str, Any], where: str, *, registries: bool = True
) -> None:
    """The generator and its options; with ``registries=False`` only what needs no torch (the
    resolution is an integer, the evaluation's own ``n`` / ``seed`` / ``out`` are not fixed)."""
    if registries:
        from ..data.generators import GENERATORS

        if name not in GENERATORS:
            raise CardError(
                f"{where}.generator: unknown data generator {name!r}; available: "
                f"{sorted(GENERATORS)}"
            )
    resolution = options.get("resolution")
    # (why) 0 or a negative resolution passed (validate_options leaves resolution out), was
    # listed and shown, and `sciml evaluate` failed in the generator after loading the model
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise CardError(
            f"{where}.options.resolution: expected an integer grid resolution >= 2 (the "
            f"generators' smallest), got {resolution!r}"
        )
    forbidden = sorted({"n", "seed", "out"} & set(options))
    if forbidden:
        raise CardError(
            f"{where}.options: {forbidden} are chosen by the evaluation, not fixed by the card"
        )
    if not registries:
        return
    from ..data.generators import validate_options

    try:
        validate_options(name, {k: v for k, v in options.items() if k != "resolution"})
    except ValueError as exc:
        raise CardError(f"{where}.options: {exc}") from None


def load_card(path: str | os.PathLike, *, registries: bool = True) -> dict[str, Any]:
    """Read and validate a ``card.json`` (or the card of a checkpoint directory);
    ``registries`` as for :func:`validate_card`."""
    path = Path(path)
    if path.is_dir():
        path = path / CARD_FILE
    if not path.is_file():
        raise CardError(f"{path}: no model card (expected {CARD_FILE} beside config.json)")
    try:
        # (why) read as UTF-8 whatever the locale, as json.dump writes it: bytes in another
        # encoding reached a bare UnicodeDecodeError naming no file (and a traceback from
        # `sciml pretrained list`), an unreadable file a bare OSError
        card = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CardError(f"{path}: not valid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise CardError(f"{path}: not UTF-8 text, as a card.json must be ({exc})") from None
    except OSError as exc:
        raise CardError(f"{path}: unreadable ({exc.strerror or exc})") from None
    card = validate_card(card, where=str(path), registries=registries)
    if card["name"] != path.parent.name:
        raise CardError(
            f"{path}.name: {card['name']!r} differs from its directory name {path.parent.name!r}"
        )
    _check_family_of_config(card, path)
    return card


def _config_family(record: Any) -> tuple[str | None, bool]:
    """The family a sciml ``config.json`` holds (inside any Normalized wrappers, as a card
    names it) and whether it was wrapped; ``None`` for a file that names none."""
    if not isinstance(record, dict) or record.get("format") != "sciml.operator":
        return None, False
    family, config, wrapped = record.get("family"), record.get("config"), False
    while family == "normalized" and isinstance(config, dict) and "family" in config:
        family, config, wrapped = config["family"], config.get("config"), True
    return (family if isinstance(family, str) else None), wrapped


def _check_family_of_config(card: Mapping[str, Any], path: Path) -> None:
    # (why) a trained directory not yet installed (evaluate_pretrained(DIR)) whose card names
    # another family was scored and reported under the card's family without a word; a
    # config.json that is missing or damaged is left to the loader, which names its problem
    config_path = path.parent / "config.json"
    try:
        record = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    family, wrapped = _config_family(record)
    if family is not None and family != card["family"]:
        inside = " (inside its Normalized wrapper)" if wrapped else ""
        raise CardError(
            f"{path}.family: {card['family']!r}, but {config_path} holds a {family!r} "
            f"model{inside}; the card must name the family of the checkpoint beside it"
        )
