"""Re-measure a shipped surrogate's card metric on freshly generated data.

    result = sciml.pretrained.evaluate_pretrained("fno-ns2d")     # sciml evaluate fno-ns2d
    result["value"], result["card_value"], result["rel_diff"], result["ok"]

Each card names an *evaluator* (``card["evaluation"]["evaluator"]``), a function registered
here with :func:`register_evaluator`::

    fn(model, card, *, n: int, seed: int, device) -> dict[str, float]

that draws ``n`` fresh test cases with ``seed`` and returns metrics, at least the card's
``evaluation.metric``. Its registration states whether it needs the card's data generator and
which ``evaluation.options`` it reads; :func:`sciml.pretrained.validate_card` refuses a card
without the generator or with another option key (``fast_n``, a quick check's sample size, is
always allowed). Built in:

``grid``
    generate an HDF5 file with the card's generator (``card["data"]``: ``generator`` and its
    exact ``options``, ``n`` samples, the new ``seed``) and evaluate the model on the data view
    recorded in the evaluated checkpoint (``metadata["data"]``, what ``sciml train`` records;
    for ``evaluate_pretrained(DIR)`` the view in ``DIR``, not in a shipped namesake) with
    :func:`sciml.experiment.evaluate`, the code path of ``sciml evaluate CHECKPOINT DATA``.
    Metrics: ``test_rel_l2`` (mean relative L2 over samples), ``test_rel_l2_max``, ``test_mse``.
``dcdm``
    iterations of CG and of the deep conjugate-direction method to relative residual ``rtol``
    on a 3D Poisson problem (``options``: ``grid``, ``geometry`` = ``box`` | ``obstacle``,
    ``rtol``, ``k``, ``maxiter``) for ``n`` Gaussian right-hand sides drawn with ``seed``.
    Metrics: ``dcdm_iterations`` and ``cg_iterations`` (means over the right-hand sides),
    ``iteration_ratio`` (CG / DCDM) and ``dcdm_converged`` (fraction that converged).
``deeponet``
    ``n`` fresh functions from the card's generator, read as :class:`sciml.data.PointSamples`
    (``options``: ``inputs`` at the sensors, ``targets`` at every grid point) and scored with
    :func:`sciml.experiment.evaluate`. Metrics: ``test_rel_l2``, ``test_rel_l2_max``,
    ``test_mse``.
``node``
    ``n`` fresh reference trajectories from the card's generator (``options``: ``fields``, the
    state channels); the neural ODE integrates all ``n`` initial states in one batched solve.
    Metrics: ``test_rel_l2``, ``test_rel_l2_max``, ``test_mse`` and ``nfe`` (vector-field
    evaluations of that solve).
``all_pairs``
    time-conditioned operators (scOT): ``n`` fresh trajectories of the card's generator, every
    pair ``u(t_i) -> u(t_j)``, ``j > i``, at lead time ``t_j - t_i`` (``options``: ``fields``,
    ``max_lead``, ``batch_size``). Metrics: ``test_rel_l2`` (mean over pairs),
    ``test_rel_l2_max``, ``test_rel_l1_median`` / ``test_rel_l1_mean`` (Poseidon's relative L1)
    and ``n_pairs``.

The default seed is ``card["data"]["train_seed"] + 1000``: data neither the training nor the
held-out test set of the card used.
"""

from __future__ import annotations

import contextvars
import math
import os
import tempfile
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from .._scalars import is_int, is_real

__all__ = [
    "EVALUATORS",
    "register_evaluator",
    "evaluate_pretrained",
    "default_seed",
    "TOLERANCE",
    "dcdm_geometry",
]

Evaluator = Callable[..., dict[str, float]]

#: relative difference to the card value that ``sciml evaluate NAME`` accepts
TOLERANCE = 0.10

_EVALUATORS: dict[str, Evaluator] = {}
#: Read-only view: evaluator name -> ``fn(model, card, *, n, seed, device) -> metrics``.
EVALUATORS: Mapping[str, Evaluator] = types.MappingProxyType(_EVALUATORS)

#: evaluator name -> (needs the card's data generator, accepted ``evaluation.options`` keys or
#: None for any); read by :func:`sciml.pretrained.cards.validate_card`
_SPECS: dict[str, tuple[bool, frozenset[str] | None]] = {}

#: ``evaluation.options`` key every evaluator accepts: the sample size of a quick check
#: (tests/test_pretrained_zoo.py), which the evaluators themselves do not read
_COMMON_OPTIONS = frozenset({"fast_n"})

# The checkpoint directory `evaluate_pretrained` is scoring: the 'grid' evaluator reads the data
# view recorded there. Its card's name is not enough: a trained, not yet installed directory
# (runs/zoo/NAME) is not shipped, and an installed older copy may record another view.
_CHECKPOINT: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "sciml_evaluated_checkpoint", default=None
)


def register_evaluator(
    name: str, *, needs_generator: bool = False, options: Iterable[str] | None = None
) -> Callable[[Evaluator], Evaluator]:
    """Decorator registering ``fn(model, card, *, n, seed, device) -> dict`` under ``name``.

    Args:
        name: the key a card names in ``evaluation.evaluator``; a name already registered to
            another function raises ``ValueError`` (registering the same function again is
            allowed).
        needs_generator: cards using it must name a data generator (``data.generator``).
        options: the ``evaluation.options`` keys it reads; a card with another key is refused
            (a misspelt option would silently fall back to its default); ``fast_n`` is always
            accepted. None: any key.
    """

    def add(fn: Evaluator) -> Evaluator:
        if name in _EVALUATORS and _EVALUATORS[name] is not fn:
            raise ValueError(f"an evaluator named {name!r} is already registered")
        _EVALUATORS[name] = fn
        _SPECS[name] = (
            bool(needs_generator),
            None if options is None else frozenset(options) | _COMMON_OPTIONS,
        )
        return fn

    return add


def default_seed(card: Mapping[str, Any]) -> int:
    """Seed of the fresh evaluation data: the card's training seed + 1000."""
    return int(card["data"].get("train_seed", 0)) + 1000


def evaluate_pretrained(
    name: str | os.PathLike[str],
    n: int | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    *,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Re-measure the card metric of the shipped model ``name`` on fresh data.

    Args:
        name: a shipped model (:func:`sciml.pretrained.names`), or a directory (a ``str`` or
            a path object) holding a checkpoint and its ``card.json`` (what the
            ``examples/zoo_*.py`` scripts write before ``--install``).
        n: fresh test cases (default: the card's ``evaluation.n``).
        seed: seed of the fresh data (default: :func:`default_seed`).
        device: where the model runs.
        tolerance: relative difference to the card value counted as a reproduction.

    Returns:
        dict with ``name``, ``metric``, ``value`` (measured), ``card_value``, ``rel_diff``
        (``|value - card_value| / |card_value|``; ``|value|`` for a card value of 0), ``n``,
        ``seed``, ``ok``
        (``rel_diff <= tolerance``), ``tolerance``, ``evaluator`` and ``metrics`` (everything
        the evaluator measured).
    """
    # (why) the result's "name" is a str either way: a Path there broke json.dumps of it
    name = os.fspath(name)
    card, directory, load = _card_and_loader(name)
    spec = card["evaluation"]
    # (why) int() had run n=True as 1 case, n=2.7 as 2, seed=3.9 as 3 and n="2" as 2
    if n is not None and not (is_int(n) and n >= 1):
        raise ValueError(f"n: expected a positive number of test cases, got {n!r}")
    n = int(spec["n"] if n is None else n)
    if seed is not None and not (is_int(seed) and seed >= 0):
        # (why) a negative seed reached numpy's bare "expected non-negative integer"
        raise ValueError(
            f"seed: expected a non-negative integer (the seed of the fresh data), got {seed!r}; "
            f"leave it out for the card's default, {default_seed(card)}"
        )
    seed = default_seed(card) if seed is None else int(seed)
    # (why) a NaN or negative tolerance made every result a MISMATCH, True ran as 1 (100%)
    if not (is_real(tolerance) and math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(
            f"tolerance: expected a finite relative difference >= 0 (e.g. {TOLERANCE}), "
            f"got {tolerance!r}"
        )
    evaluator = _EVALUATORS[spec["evaluator"]]  # validate_card checked the name
    model = load(map_location=device)
    model.eval()
    token = _CHECKPOINT.set(directory)
    try:
        metrics = evaluator(model, card, n=n, seed=seed, device=device)
    finally:
        _CHECKPOINT.reset(token)
    metric = spec["metric"]
    if metric not in metrics:
        raise ValueError(
            f"evaluator {spec['evaluator']!r} returned {sorted(metrics)}, not the card metric "
            f"{metric!r} of {name!r}"
        )
    value, card_value = float(metrics[metric]), float(card["metrics"][metric])
    rel_diff = abs(value - card_value) / abs(card_value) if card_value else abs(value)
    return {
        "name": name,
        "metric": metric,
        "value": value,
        "card_value": card_value,
        "rel_diff": rel_diff,
        "n": n,
        "seed": seed,
        "ok": bool(math.isfinite(rel_diff) and rel_diff <= tolerance),
        "tolerance": tolerance,
        "evaluator": spec["evaluator"],
        "metrics": {k: float(v) for k, v in metrics.items()},
    }


def _card_and_loader(name: str | Path) -> tuple[dict[str, Any], Path, Callable[..., Any]]:
    """The card of a checkpoint directory with a ``card.json`` or of a shipped name, that
    checkpoint's directory, and a function loading its model (an existing directory wins, as in
    ``sciml evaluate DIR DATA``)."""
    from . import card, load, path_of
    from .cards import CARD_FILE, load_card

    directory = Path(name)
    if directory.is_dir() and (directory / CARD_FILE).is_file():
        from ..operator import load as load_dir

        return (
            load_card(directory / CARD_FILE),
            directory,
            lambda map_location: load_dir(directory, map_location=map_location),
        )
    found = card(name)  # a shipped name; else CheckpointError naming the shipped ones
    return found, path_of(name), lambda map_location: load(name, map_location=map_location)


# --------------------------------------------------------------------------- grid evaluator


@register_evaluator("grid", needs_generator=True, options=("batch_size",))
def _grid(model: Any, card: Mapping[str, Any], *, n: int, seed: int, device: Any) -> dict:
    """Fresh HDF5 data from the card's generator, the checkpoint's recorded data view (of the
    checkpoint :func:`evaluate_pretrained` scores; called directly, of the shipped
    ``card["name"]``)."""
    from ..operator import read_checkpoint_record
    from . import path_of

    directory = _CHECKPOINT.get() or path_of(card["name"])
    record, _ = read_checkpoint_record(directory)
    view = (record.get("metadata") or {}).get("data")
    if view is None:
        raise ValueError(
            f"{directory}: the 'grid' evaluator needs the checkpoint's data view "
            "(metadata['data'], as 'sciml train' records it); this checkpoint has none"
        )
    batch_size = int(card["evaluation"].get("options", {}).get("batch_size", 32))
    data = card["data"]
    return grid_metrics(
        model, view, data["generator"], data["options"], n=n, seed=seed, device=device,
        batch_size=batch_size,
    )  # fmt: skip


def grid_metrics(
    model: Any,
    view: Mapping[str, Any],
    generator: str,
    options: Mapping[str, Any],
    *,
    n: int,
    seed: int,
    device: Any = "cpu",
    batch_size: int = 32,
) -> dict[str, float]:
    """The ``grid`` evaluator for any model: ``n`` fresh samples of ``generator`` (``options``
    with ``resolution``) drawn with ``seed``, read through the data ``view`` (a
    :class:`sciml.experiment.DataSpec` dict without its path), scored by
    :func:`sciml.experiment.evaluate`. Training scripts call it to measure a card's metric
    before the model is shipped."""
    from .._config import config_from_dict
    from ..experiment import DataSpec, build_views, evaluate
    from ..models import Normalized

    with tempfile.TemporaryDirectory(prefix="sciml-eval-") as tmp:
        path = generate_samples(generator, options, n=n, seed=seed, out=Path(tmp) / "test.h5")
        spec = config_from_dict(DataSpec, {**view, "path": str(path)}, where="metadata.data")
        views = build_views(spec, float64_inputs=isinstance(model, Normalized))
        result = evaluate(_on(model, device), views, batch_size=batch_size)
    return {
        "test_rel_l2": result["rel_l2"],
        "test_rel_l2_max": result["rel_l2_max"],
        "test_mse": result["mse"],
    }


def _on(model: Any, device: Any) -> Any:
    """``model`` on ``device``, taking CPU batches and returning CPU predictions (what
    :func:`sciml.experiment.evaluate` compares against the CPU targets)."""
    if torch.device(device).type == "cpu":
        return model
    return _OnDevice(model.to(device), torch.device(device))


class _OnDevice(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model, self.device = model, device
        if callable(getattr(model, "predict_batch", None)):
            self.predict_batch = lambda batch: model.predict_batch(self._move(batch)).cpu()

    def _move(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(self.device)
        if isinstance(value, Mapping):
            return {k: self._move(v) for k, v in value.items()}
        return value

    def forward(self, u: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.model(self._move(u), **self._move(kwargs)).cpu()


# --------------------------------------------------------------------------- dcdm evaluator


def dcdm_geometry(name: str, n: int) -> Any:
    """Solid mask (True = solid) of the named test geometry on an ``n^3`` grid, or None.

    ``box``: empty box. ``obstacle``: a solid sphere and a solid slab with a square window
    (the unseen geometry of ``examples/dcdm_poisson.py``).
    """
    import numpy as np

    if name == "box":
        return None
    if name != "obstacle":
        raise ValueError(f"geometry: expected 'box' or 'obstacle', got {name!r}")
    z, y, x = np.meshgrid(*(np.arange(n) + 0.5,) * 3, indexing="ij")
    c = n / 2
    sphere = (x - 0.35 * n) ** 2 + (y - c) ** 2 + (z - c) ** 2 < (0.15 * n) ** 2
    window = (np.abs(y - c) < 0.15 * n) & (np.abs(z - c) < 0.15 * n)
    slab = (np.abs(x - 0.7 * n) < 0.04 * n + 0.5) & ~window
    return sphere | slab


@register_evaluator("dcdm", options=("grid", "geometry", "rtol", "k", "maxiter"))
def _dcdm(model: Any, card: Mapping[str, Any], *, n: int, seed: int, device: Any) -> dict:
    """CG vs DCDM iterations on ``n`` Gaussian right-hand sides of a 3D Poisson problem."""
    import numpy as np

    from ..linalg import CG, DeepConjugateDirection, Wall, poisson, solve

    opts = card["evaluation"].get("options", {})
    grid = int(opts.get("grid", 32))
    rtol = float(opts.get("rtol", 1e-6))
    maxiter = int(opts.get("maxiter", 2000))
    problem = poisson(
        (grid,) * 3, walls=Wall.NEUMANN, solid=dcdm_geometry(opts.get("geometry", "box"), grid)
    )
    op = problem.stencil(device=device)
    model = model.to(device)
    dcdm = DeepConjugateDirection(model, k=int(opts.get("k", 2)))
    rng = np.random.default_rng(seed)
    its: dict[str, list[int]] = {"cg": [], "dcdm": []}
    converged = 0
    for _ in range(n):
        b = torch.from_numpy(rng.standard_normal(problem.n)).to(device)
        _, res_cg = solve(op, b, method=CG(), rtol=rtol, maxiter=maxiter)
        _, res = solve(op, b, method=dcdm, rtol=rtol, maxiter=maxiter)
        its["cg"].append(res_cg.iterations)
        its["dcdm"].append(res.iterations)
        converged += bool(res.converged)
    cg_mean, dcdm_mean = float(np.mean(its["cg"])), float(np.mean(its["dcdm"]))
    return {
        "dcdm_iterations": dcdm_mean,
        "cg_iterations": cg_mean,
        "iteration_ratio": cg_mean / dcdm_mean,
        "dcdm_converged": converged / n,
    }


# --------------------------------------------------------------------------- deeponet evaluator


@register_evaluator("deeponet", needs_generator=True, options=("inputs", "targets", "batch_size"))
def _deeponet(model: Any, card: Mapping[str, Any], *, n: int, seed: int, device: Any) -> dict:
    """Fresh functions from the card's generator; the input fields at the sensors, the targets
    at every grid point (:class:`sciml.data.PointSamples`), scored by
    :func:`sciml.experiment.evaluate`. ``options``: ``inputs``, ``targets`` (field names),
    ``batch_size``. Metrics: ``test_rel_l2`` (mean over functions of the relative L2 error over
    all points and outputs), ``test_rel_l2_max``, ``test_mse``."""
    from ..data import PointSamples
    from ..data import open as open_data
    from ..experiment import evaluate

    opts = card["evaluation"].get("options", {})
    for key in ("inputs", "targets"):
        if not opts.get(key):
            raise ValueError(
                f"{card['name']}: the 'deeponet' evaluator needs evaluation.options.{key} "
                "(field names), got none"
            )
    with tempfile.TemporaryDirectory(prefix="sciml-eval-") as tmp:
        path = _generate_for(card, n=n, seed=seed, out=Path(tmp) / "test.h5")
        view = PointSamples(
            open_data(path, in_memory=True), inputs=opts["inputs"], targets=opts["targets"]
        )
        result = evaluate(_on(model, device), view, batch_size=int(opts.get("batch_size", 100)))
    return {
        "test_rel_l2": result["rel_l2"],
        "test_rel_l2_max": result["rel_l2_max"],
        "test_mse": result["mse"],
    }


def _generate_for(card: Mapping[str, Any], *, n: int, seed: int, out: Path) -> Path:
    """Write ``n`` samples of the card's generator with ``seed`` to ``out``."""
    data = card["data"]
    return generate_samples(data["generator"], data["options"], n=n, seed=seed, out=out)


def generate_samples(
    generator: str, options: Mapping[str, Any], *, n: int, seed: int, out: Path, **extra: Any
) -> Path:
    """:func:`sciml.data.generators.generate` with a card's ``options`` (which hold
    ``resolution``); ``extra`` are options that do not change the data (``device``,
    ``batch_size``)."""
    from ..data.generators import generate

    opts = dict(options)
    resolution = opts.pop("resolution")
    return generate(
        generator, n=n, resolution=resolution, out=out, seed=seed, overwrite=True, **opts, **extra
    )


# --------------------------------------------------------------------------- neural ODE evaluator


@register_evaluator("node", needs_generator=True, options=("fields",))
def _node(model: Any, card: Mapping[str, Any], *, n: int, seed: int, device: Any) -> dict:
    """Trajectories from ``n`` fresh initial states of the card's generator (a reference
    solver's trajectories stored as time-dependent fields, no spatial axes) against the model's,
    all ``n`` in one batched solve. ``options``: ``fields`` (state channels in order).
    Metrics: ``test_rel_l2`` (mean over trajectories of the relative L2 error over all times and
    channels), ``test_rel_l2_max``, ``test_mse`` and ``nfe`` (vector-field evaluations of the
    batched prediction solve, the model's ``nfe`` counter)."""
    from ..data import open as open_data
    from ..train import MSE, LpLoss

    fields = card["evaluation"].get("options", {}).get("fields")
    if not fields:
        raise ValueError(
            f"{card['name']}: the 'node' evaluator needs evaluation.options.fields (the state "
            "channels, in order), got none"
        )
    with tempfile.TemporaryDirectory(prefix="sciml-eval-") as tmp:
        ds = open_data(_generate_for(card, n=n, seed=seed, out=Path(tmp) / "test.h5"))
        target = torch.from_numpy(ds.read(slice(None), None, list(fields)))  # (n, time, C)
        times = torch.as_tensor(ds.time, dtype=target.dtype)
    model = model.to(device).eval()
    with torch.no_grad():
        pred = model(target[:, 0].to(device), t=times.to(device)).cpu()
    nfe = int(model.nfe)
    rel = LpLoss(reduction="none")(pred, target)
    return {
        "test_rel_l2": float(rel.mean()),
        "test_rel_l2_max": float(rel.max()),
        "test_mse": float(MSE(reduction="none")(pred, target).mean()),
        "nfe": float(nfe),
    }


# --------------------------------------------------------------------------- all-pairs evaluator


@register_evaluator("all_pairs", needs_generator=True, options=("fields", "max_lead", "batch_size"))
def _all_pairs(model: Any, card: Mapping[str, Any], *, n: int, seed: int, device: Any) -> dict:
    """Time-conditioned operators (scOT, Poseidon-style): ``n`` fresh trajectories of the card's
    generator, every pair ``u(t_i) -> u(t_j)``, ``j > i``, with lead time ``t_j - t_i``
    (:class:`sciml.data.AllPairs`). ``options``: ``fields`` (default: all), ``max_lead`` (in
    steps), ``batch_size``. Metrics over all pairs: ``test_rel_l2`` (mean relative L2),
    ``test_rel_l2_max``, ``test_rel_l1_median`` and ``test_rel_l1_mean`` (Poseidon's relative
    L1 error, ``sum |pred - u| / sum |u|``) and ``n_pairs``."""
    from ..data import AllPairs
    from ..data import open as open_data
    from ..models.scot_training import relative_l1
    from ..train import LpLoss, predict

    opts = card["evaluation"].get("options", {})
    rel_l2 = LpLoss(reduction="none")
    l2, l1 = [], []
    with tempfile.TemporaryDirectory(prefix="sciml-eval-") as tmp:
        ds = open_data(
            _generate_for(card, n=n, seed=seed, out=Path(tmp) / "test.h5"), in_memory=True
        )
        view = AllPairs(
            ds, include_self=False, fields=opts.get("fields"), max_lead=opts.get("max_lead")
        )
        loader = torch.utils.data.DataLoader(view, batch_size=int(opts.get("batch_size", 32)))
        wrapped = _on(model.eval(), device)
        with torch.no_grad():
            for batch in loader:
                pred = predict(wrapped, batch)
                l2.append(rel_l2(pred, batch["target"]))
                l1.append(relative_l1(pred, batch["target"]))
    e2, e1 = torch.cat(l2), torch.cat(l1)
    return {
        "test_rel_l2": float(e2.mean()),
        "test_rel_l2_max": float(e2.max()),
        "test_rel_l1_median": float(e1.median()),
        "test_rel_l1_mean": float(e1.mean()),
        "n_pairs": float(e2.numel()),
    }
