"""Experiment files: one JSON/YAML document naming the model, the data and the training.

    model:  {family: fno, config: {in_channels: 1, out_channels: 1, modes: [12, 12], width: 32}}
    data:   {path: data/darcy.h5, view: static_pairs, inputs: [a], targets: [u],
             split: [0.8, 0.1, 0.1], seed: 0, normalize: true}   # (+ augment: fno_forcing, NS only)
            # a wave with a static speed c: {view: windows, inputs: [u], static_fields: [c], ...}
    train:  {epochs: 20, batch_size: 16, lr: 0.001}
    loss:   l2            # l2 | l1 | h1
    monitor: rel_l2       # the validation metric that picks `best`: rel_l2 | mse | loss
    mode:   min           # lower is better (max is refused: every monitor is an error)
    out:    runs/darcy

``run(experiment)`` builds the data views and the model, trains with :class:`sciml.train.Trainer`,
evaluates the best checkpoint on the test split and returns the metrics. The data spec is stored
in every checkpoint's metadata, so ``sciml evaluate CHECKPOINT DATA`` rebuilds the same view.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import reprlib
import shutil
import warnings
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, Literal

from ._config import config_from_dict, config_to_dict
from ._io import atomic_write_text
from .errors import ConfigError

__all__ = [
    "Experiment", "ModelSpec", "DataSpec", "load_experiment", "run", "build_views",
    "augment_view", "AUGMENTATIONS",
]  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """Which operator to build: a registered family name and its config as a dict."""

    family: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSpec:
    """How to turn an HDF5 file into (input, target) pairs.

    Attributes:
        path: the HDF5 file (any layout :func:`sciml.data.open` reads); a relative path is
            read from the current folder, else beside the experiment file. In a file read by
            :func:`load_experiment`, a leading ``~`` is the home folder (``out`` too).
        view: ``static_pairs`` (static input fields -> static target fields, e.g. Darcy a -> u),
            ``snapshots`` (fields at step ``input_step`` -> fields at ``target_step``, e.g.
            Burgers u(0) -> u(T)), ``windows`` (``n_in`` steps -> the next ``n_out`` steps) or
            ``all_pairs`` (the fields at step i -> the same fields at every step j >= i, with the
            lead time ``t_j - t_i`` passed to the model as ``t``: time-conditioned operators such
            as scOT), or ``points`` (input fields on the grid -> target fields at query points
            ``x``, for DeepONet: static fields, or time-dependent ones at ``input_step`` /
            ``target_step``).
        inputs / targets: field names (empty: all fields; ``all_pairs`` maps fields to
            themselves, so give at most one of the two, or both equal; ``points`` needs both).
        static_fields: for ``windows``, ``all_pairs``, ``snapshots`` and ``points``, static
            field names (a wave speed, a forcing, a coefficient) appended to every input after
            the state channels (:class:`sciml.data.Windows`; ``points``: the branch input,
            :class:`sciml.data.PointSamples`); the model's ``in_channels`` (DeepONet's
            ``sensors``) counts them, and an MgNO's ``static_channels`` must equal their number
            when it is residual or not 0. ``static_pairs`` takes static fields as ``inputs``.
        input_step / target_step: time indices for ``snapshots`` (negative counts from the end).
        n_in / n_out / stride: window sizes for ``windows``; ``stride`` also subsamples time for
            ``all_pairs`` (every ``stride``-th step).
        max_lead / include_self: for ``all_pairs``, the largest ``j - i`` in (subsampled) steps
            (None: no limit) and whether ``j == i`` (lead time 0) pairs are included.
        n_points: for ``points``, the query points drawn per training function (None: every
            grid point); validation and test always score every grid point.
        subsample: keep every ``subsample``-th grid point along each spatial dim.
        split: the samples (trajectories) for train / validation / test, as fractions
            (summing to at most 1) or as counts (all three integers, summing to at most the
            file's sample count), as :func:`sciml.data.split` takes them.
        seed: seed of the split's shuffle.
        normalize: wrap the model with per-channel normalisation fitted on the training split.
        augment: train on pairs moved by a random exact symmetry of the problem each time they
            are read (:class:`sciml.data.symmetry.Augmented`; validation and test pairs are not
            moved): the name of a symmetry set in :data:`AUGMENTATIONS`, e.g. ``"fno_forcing"``
            (2D Navier-Stokes with the FNO forcing,
            :func:`~sciml.data.generators.fno_forcing_symmetries`). The input and target fields
            must be of that problem (vorticity, one scalar field each); static fields are moved
            with the state (a forcing ``f``, sign included). Grid views only: ``points`` is
            refused (its targets are values at query points).
    """

    path: str
    view: Literal["static_pairs", "snapshots", "windows", "all_pairs", "points"] = "static_pairs"
    inputs: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    static_fields: tuple[str, ...] = ()
    input_step: int = 0
    target_step: int = -1
    n_in: int = 1
    n_out: int = 1
    stride: int = 1
    max_lead: int | None = None
    include_self: bool = True
    n_points: int | None = None
    subsample: int = 1
    # (why) int first: typed float, counts [16, 2, 2] were read as fractions [16.0, 2.0, 2.0]
    split: tuple[int | float, int | float, int | float] = (0.8, 0.1, 0.1)
    seed: int = 0
    normalize: bool = True
    augment: Literal["fno_forcing"] | None = None

    def __post_init__(self) -> None:
        # (why) refused only by the views, after the file was opened: subsample: 0 as "f.h5:
        # expected a spatial selection of an int stride >= 1 ..." and seed: -1 as "data.split:
        # expected non-negative integer", naming no key (or the wrong one)
        checks = [
            ("n_in", 1, ""), ("n_out", 1, ""), ("stride", 1, ""),
            ("subsample", 1, " (keep every subsample-th grid point)"),
            ("seed", 0, " (the seed of the split's shuffle)"),
            ("max_lead", 0, " or null (no limit)"), ("n_points", 1, " or null (every grid point)"),
        ]  # fmt: skip
        for name, low, note in checks:
            value = getattr(self, name)
            if value is None and note.startswith(" or null"):
                continue
            # (why) Integral: a NumPy int from a sweep is an integer too
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(f"{name}: expected an integer >= {low}{note}, got {value!r}")
        for key in ("inputs", "targets", "static_fields"):
            names = list(getattr(self, key))
            repeated = sorted({n for n in names if names.count(n) > 1}, key=names.index)
            if repeated:
                # (why) inputs: [a, a] built two identical channels of one field without a word
                # (a field in both inputs and targets is another matter: u -> later u)
                raise ValueError(
                    f"{key}: expected each field name once, got {names}, which repeats "
                    f"{', '.join(map(repr, repeated))}; a field is one channel, list it once"
                )
        counts = [s for s in self.split if isinstance(s, Integral) and not isinstance(s, bool)]
        if counts and len(counts) < len(self.split) and sum(self.split) > 1:
            # (why) sciml.data.split reads a split with any float as fractions, so [16, 0.1,
            # 0.1] said "fractions [16, 0.1, 0.1] sum to 16.2 > 1" of what was meant as counts
            raise ValueError(
                f"split: expected fractions (summing to at most 1) or sample counts (all "
                f"integers), got {list(self.split)}, a mix of counts and fractions; write all "
                "three as counts or all three as fractions"
            )
        if len(counts) == len(self.split) and sum(counts) == 1:
            # (why) read as fractions before counts were taken, [1, 0, 0] meant every sample
            # for training; as counts it is one sample, so an old experiment changes silently
            raise ValueError(
                f"split: {list(self.split)} is ambiguous: integers are sample counts (here one "
                "sample in all), where it once meant fractions; write "
                f"{[float(c) for c in counts]} for fractions, or counts summing to 2 or more"
            )


def _fno_forcing() -> tuple[Any, Any]:
    from .data.generators import fno_forcing_symmetries

    return fno_forcing_symmetries()


#: ``DataSpec.augment`` names: each gives ``(group elements, shift directions)`` for
#: :class:`sciml.data.symmetry.RandomSymmetry`.
AUGMENTATIONS = {"fno_forcing": _fno_forcing}


def augment_view(view: Any, name: str, *, seed: int) -> Any:
    """``view`` wrapped in :class:`sciml.data.symmetry.Augmented` with the symmetry set
    ``AUGMENTATIONS[name]``, the map of item ``i`` in epoch ``e`` drawn from ``(seed, e, i)``
    (``Augmented(seed=...)``): a resumed run draws the maps of an uninterrupted one, and
    torchrun ranks, which read other items, those of a single process."""
    from .data.points import PointSamples
    from .data.symmetry import Augmented, RandomSymmetry

    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; expected one of {sorted(AUGMENTATIONS)}")
    if isinstance(view, PointSamples):
        # (why) it failed at the first training batch, inside the DataLoader, with "expected
        # tensors (batch, ..., *grid) with batch 1 and grid (16, 16), got shape (1, 20, 1)"
        raise ConfigError(
            f"data.augment: {name!r} moves functions on the grid by a grid symmetry, got "
            "data.view points, whose targets are values at query points (points, channels) "
            "that it cannot move; use a grid view (snapshots, windows, all_pairs) or drop "
            "data.augment"
        )
    elements, directions = AUGMENTATIONS[name]()
    # (why) one generator's stream, seeded per rank, was not part of a checkpoint: a resumed
    # run drew other maps than the uninterrupted one (and DDP ranks other maps than one process)
    return Augmented(view, RandomSymmetry(elements, shift_directions=directions), seed=seed)


@dataclass(frozen=True)
class Experiment:
    """A whole training run: model, data, training settings, loss and output directory.

    ``train`` holds the fields of :class:`sciml.train.TrainConfig`; ``monitor`` and ``mode``
    are the Trainer's (the validation metric that picks the ``best`` checkpoint, ``rel_l2``,
    ``mse`` or the validation ``loss``, and whether lower or higher is better), read beside
    ``loss`` since the metric names are the ones ``sciml train`` validates with. All three are
    errors, so ``mode`` is ``"min"``; ``"max"`` is refused with a ``ValueError`` (a
    ``ConfigError`` naming the file from :func:`load_experiment`)."""

    model: ModelSpec
    data: DataSpec
    train: dict[str, Any] = field(default_factory=dict)
    loss: Literal["l2", "l1", "h1"] = "l2"
    monitor: Literal["rel_l2", "mse", "loss"] = "rel_l2"
    mode: Literal["min", "max"] = "min"
    out: str = "runs/experiment"

    def __post_init__(self) -> None:
        if not self.out.strip():
            # (why) Path("") is ".": the run's files and checkpoints went into the current folder
            raise ValueError(f"out: expected the run's folder, got {self.out!r}")
        # (why) every metric sciml train can monitor is an error, better lower: mode: max was
        # accepted and kept the worst model as `best` (and as the one evaluated on the test
        # split). The key stays, so a file stays valid once a metric better higher exists
        if self.mode == "max":
            raise ValueError(
                f"mode: max keeps the highest {self.monitor} as best, but every metric "
                "sciml train can monitor (rel_l2, mse, loss) is an error, lower is better; "
                "write mode: min (the default) or leave mode out"
            )


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook refusing a repeated key: (why) json keeps the last of two,
    so ``"train": {"epochs": 1, "epochs": 2}`` trained 2 epochs without a word."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _DuplicateKey(
                f"duplicate key {key!r}: an object holds each key once; keep one of the two"
            )
        data[key] = value
    return data


def load_experiment(path: str | os.PathLike) -> Experiment:
    """Read an experiment from a ``.json``, ``.yaml`` or ``.yml`` file (strictly checked)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment file {path} does not exist")
    if path.suffix not in (".yaml", ".yml", ".json"):
        # (why) checked before reading: a binary file said only "'utf-8' codec can't decode
        # byte 0xae in position 129"
        raise ConfigError(f"{path}: expected a .json, .yaml or .yml experiment file")
    try:
        # (why) utf-8-sig: a byte order mark (Windows editors write one) is skipped, as the YAML
        # reader skips it; json.loads refused it ("Unexpected UTF-8 BOM")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: expected a JSON or YAML text file, got bytes that are not UTF-8 text "
            f"({exc.reason} at byte {exc.start})"
        ) from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        from ._yaml import load_yaml

        try:
            data = load_yaml(text)  # (why) YAML 1.2 floats: lr: 1e-3 is a number
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    else:
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        except _DuplicateKey as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        # (why) config_from_dict said "expected a JSON object, got NoneType" of a YAML file
        got = "an empty file" if data is None else f"{type(data).__name__} {reprlib.repr(data)}"
        raise ConfigError(
            f"{path}: expected a mapping with the keys model, data (and train, loss, out), "
            f"got {got}"
        )
    try:
        experiment = config_from_dict(Experiment, data, where="")
    except ConfigError as exc:
        # (why) where=str(path) read "e.yaml.data.inputs: ...", the file's name run into the
        # key, beside run's "train.epochs: ..." (which sciml train leads with the file, too)
        raise ConfigError(f"{path}: {exc}") from None
    for key in ("monitor", "mode"):
        if key in experiment.train:
            # (why) TrainConfig refused it only when the run started, after the data were read
            raise ConfigError(
                f"{path}: train.{key}: not a field of TrainConfig; {key} is a key of the "
                f"experiment, beside loss (write {key}: {experiment.train[key]} at the top level)"
            )
    # (why) a shell expands ~ on its command line, not inside a file: data.path: ~/d.h5 was
    # looked up as ./~/d.h5, and out: ~/runs/x made a folder named '~' in the current folder
    experiment = dataclasses.replace(
        experiment,
        data=dataclasses.replace(experiment.data, path=os.path.expanduser(experiment.data.path)),
        out=os.path.expanduser(experiment.out),
    )
    # A relative data path is read from the current folder, else beside the experiment file.
    data_path = Path(experiment.data.path)
    candidate = path.parent / data_path
    if not data_path.is_absolute() and candidate.exists():
        if not data_path.exists():
            experiment = dataclasses.replace(
                experiment, data=dataclasses.replace(experiment.data, path=str(candidate))
            )
        elif not data_path.samefile(candidate):
            # (why) the current folder's file was taken without a word, though the file's
            # author may well have meant the one beside it: training on the wrong data
            raise ConfigError(
                f"{path}: data.path: {data_path} names two files, {data_path.absolute()} in the "
                f"current folder and {candidate.absolute()} beside the experiment file; give the "
                "one to train on as an absolute path"
            )
    return experiment


# An error naming a key of the experiment: "data.inputs: ...", "model.config does not fit ...".
_EXPERIMENT_KEY = re.compile(r"(model|data|train|loss|monitor|mode|out)(\.\w+)*[:\s]")


def _name_the_file(exc: BaseException, path: str | os.PathLike) -> BaseException:
    """``exc`` led with the experiment file ``path`` where its message starts with a key of
    the experiment (``e.yaml: train.epochs: ...``), as :func:`load_experiment`'s errors are;
    ``exc`` itself otherwise.

    (why) :func:`run` takes an :class:`Experiment`, not its file, so its errors named the key
    alone (``train.epochs: ...``) where the loader's named the file too."""
    if not isinstance(exc, ValueError) or not _EXPERIMENT_KEY.match(str(exc)):
        return exc
    return ConfigError(f"{Path(path)}: {exc}")


def build_views(
    spec: DataSpec, *, samples: Any = None, training: bool = False, float64_inputs: bool = False
) -> Any:
    """The torch view of ``spec`` over the given sample (trajectory) indices (default: all).
    ``training``: the view to train on (``points`` then draws ``n_points`` query points per
    function; otherwise it takes every grid point). ``float64_inputs``: for a
    :class:`~sciml.models.Normalized` model, the inputs come in float64 where the file stores
    them in float64 (the model centres them before rounding; targets stay float32)."""
    view = _build_view(spec, samples=samples, training=training)
    view._float64_inputs = bool(float64_inputs)
    return view


def _build_view(spec: DataSpec, *, samples: Any, training: bool) -> Any:
    try:
        return _make_view(spec, samples=samples, training=training)
    except KeyError as exc:
        # (why) the file's words "d.h5: no field 'b'; static fields are ['a', 'u']" named no
        # key of the experiment
        message = str(exc.args[0]) if exc.args else ""
        match = re.search(r": no field '(.*)'; ", message)
        keys = [
            f"data.{key}"
            for key in ("inputs", "targets", "static_fields")
            if match and match.group(1) in getattr(spec, key)
        ]
        if not keys:
            raise
        raise ValueError(f"{' and '.join(keys)}: {message}") from None
    except ValueError as exc:
        # (why) the view's "b.h5: SnapshotPairs expected static_fields among the file's static
        # fields [], got ['q']" named no key of the experiment either
        if not (spec.static_fields and " expected static_fields among " in str(exc)):
            raise
        raise ValueError(f"data.static_fields: {exc}") from None


def _make_view(spec: DataSpec, *, samples: Any, training: bool) -> Any:
    from . import data as sd

    ds = sd.open(spec.path)
    kw: dict[str, Any] = {"samples": samples}
    if spec.subsample != 1:
        kw["space"] = spec.subsample
    inputs, targets = list(spec.inputs) or None, list(spec.targets) or None
    static = list(spec.static_fields)
    if static and spec.view == "static_pairs":
        raise ValueError(
            f"data.static_fields is for the time-dependent views (windows, all_pairs, "
            f"snapshots, points), got static_fields={static} with view {spec.view}, whose "
            "inputs are static fields themselves: list them in data.inputs"
        )
    if spec.view == "static_pairs":
        return sd.StaticPairs(
            ds,
            inputs=inputs or ds.static_field_names,
            targets=targets or ds.static_field_names,
            **kw,
        )
    if spec.view == "snapshots" and ds.n_steps is not None:
        n = ds.n_steps
        for key in ("input_step", "target_step"):
            step = getattr(spec, key)
            if not -n <= step < n:
                # (why) the file's own words were "step 50 out of range n_steps=9", no key
                raise ValueError(
                    f"data.{key}: expected a step of {spec.path}'s {n} steps (0 to {n - 1}, or "
                    f"-{n} to -1 from the end), got {step}"
                )
    if spec.view == "snapshots":
        # a fixed pair has one lead time for every item: no model input
        return sd.SnapshotPairs(
            ds,
            spec.input_step,
            spec.target_step,
            inputs=inputs,
            targets=targets,
            static_fields=static,
            lead_time=False,
            **kw,
        )
    if spec.view == "points":
        if not (inputs and targets):
            raise ValueError(
                f"data.view points needs inputs (on the grid) and targets (at the points), got "
                f"inputs={inputs} and targets={targets}"
            )
        return sd.PointSamples(
            ds, inputs=inputs, targets=targets, n_points=spec.n_points if training else None,
            in_step=spec.input_step, out_step=spec.target_step, seed=spec.seed,
            static_fields=static, **kw,
        )  # fmt: skip
    if spec.view == "all_pairs":
        if inputs and targets and inputs != targets:
            raise ValueError(
                f"data.view all_pairs maps fields to the same fields later in time: expected "
                f"inputs == targets (or only one of them), got {inputs} and {targets}"
            )
        return sd.AllPairs(
            ds, dt=spec.stride, max_lead=spec.max_lead, include_self=spec.include_self,
            fields=inputs or targets, static_fields=static, **kw,
        )  # fmt: skip
    return sd.Windows(
        ds, spec.n_in, spec.n_out, spec.stride, fields=inputs, static_fields=static, **kw
    )


def _channel_stats(view: Any, train: Any, spec: DataSpec) -> tuple[list[float], ...]:
    """Per-channel (mean, std) of the view's input and target channels, fitted in one streaming
    pass over the training samples; windows repeat the statistics for each time step, and the
    view's static fields (input only) follow them, once."""
    from . import data as sd

    ds = view.ds
    static_in = list(view.static_fields)
    if spec.view == "static_pairs":
        names_in, names_out = view.inputs, view.targets
        norm = sd.Normalizer.fit(ds, samples=train, fields=[], static_fields=names_in + names_out)
        reps_in = reps_out = 1
    elif spec.view in ("snapshots", "points"):
        names_in, names_out = view.inputs, view.targets
        names = sorted(set(names_in + names_out + static_in))
        static = [n for n in names if n in ds.static_field_names]
        norm = sd.Normalizer.fit(
            ds, samples=train, fields=[n for n in names if n not in static], static_fields=static
        )
        reps_in = reps_out = 1
    else:
        names_in = names_out = view.fields
        norm = sd.Normalizer.fit(ds, samples=train, fields=names_in, static_fields=static_in)
        reps_in, reps_out = (1, 1) if spec.view == "all_pairs" else (spec.n_in, spec.n_out)
    return (
        [norm.mean[n] for n in names_in] * reps_in + [norm.mean[n] for n in static_in],
        [norm.std[n] for n in names_in] * reps_in + [norm.std[n] for n in static_in],
        [norm.mean[n] for n in names_out] * reps_out,
        [norm.std[n] for n in names_out] * reps_out,
    )


# (why) these families learn from something the data views do not give: NODE output times per
# batch (all_pairs gives each sample its own lead time, which NODE refused as unsorted output
# times), PROSE symbolic equations and its own loss, DCDM residuals of a matrix
_TRAINED_ELSEWHERE = {
    "node": "a NODE takes one set of output times per batch, which no data view gives; train it "
    "in Python, with sciml.train.Trainer on items that hold their output times as 't', or as "
    "examples/regularized_node.py does (its own loop)",
    "prose": "PROSE learns from trajectories and symbolic equations with its own loss; train it "
    "as examples/prose_ode.py does",
    "dcdm": "DCDM learns from the residuals of a matrix, not from a data file; train it with "
    "sciml.linalg.train_dcdm as examples/dcdm_poisson.py does",
}


def _check_trainable(spec: ModelSpec) -> None:
    """Refuse, before any data is read, a family that ``sciml train`` cannot train, also
    inside an explicit ``normalized`` wrapper (``model.config.family``)."""
    family, config, where = spec.family, spec.config, "model.family"
    # (why) {"family": "normalized", "config": {"family": "node"}} got past the check and failed
    # as the bare family did, after the data were read
    while family == "normalized" and isinstance(config, dict) and "family" in config:
        family, config = config["family"], config.get("config", {})
        where = where.replace(".family", ".config.family")
    if isinstance(family, str) and family in _TRAINED_ELSEWHERE:
        raise ConfigError(
            f"{where}: sciml train cannot train {family!r}: {_TRAINED_ELSEWHERE[family]}"
        )


def _build_model(spec: ModelSpec, family_class: Any) -> Any:
    """The operator ``spec`` names; a bad family or config is a ConfigError naming
    ``model.family`` / ``model.config.<field>`` (they said ``FNO.width`` or, for a family
    typo, raised a CheckpointError, though no checkpoint is involved)."""
    from .errors import CheckpointError

    try:
        cls = family_class(spec.family)
    except CheckpointError as exc:
        raise ConfigError(f"model.family: {exc}") from None
    config = config_from_dict(cls.config_class, spec.config, where="model.config")
    try:
        return cls(config)
    except ConfigError as exc:  # a wrapper's inner config (Normalized), checked on building
        message = str(exc)
        raise ConfigError(
            f"model.{message}" if message.startswith("config") else f"model.config: {message}"
        ) from None


def _check_static_channels(model: Any, spec: DataSpec) -> None:
    """Refuse a model whose own count of static input channels (MgNO's ``static_channels``)
    is not the number of ``data.static_fields`` the view appends after the states.

    (why) a residual MgNO adds the input channels just before its static ones: with
    static_channels=0 and one static field it added the static field to its output and trained
    on, silently; and ``rollout(..., static=c)`` refuses a model whose count differs.
    """
    check = getattr(model, "_rollout_check_static", None)
    # (why) windows / all_pairs inputs are time-dependent fields only, so their static channels
    # are exactly data.static_fields; a snapshots input may hold what a model calls static
    if check is None or (spec.view not in ("windows", "all_pairs") and not spec.static_fields):
        return
    n = len(spec.static_fields)
    try:
        check(n)
    except ValueError as exc:
        raise ConfigError(
            f"model.config.static_channels: the {spec.view} view appends {n} static channel(s) "
            f"{list(spec.static_fields)} (data.static_fields) after the states, which the model "
            f"refuses ({str(exc).removeprefix('rollout: ')}); set static_channels: {n}"
        ) from None


def _check_model_fits(model: Any, view: Any, spec: DataSpec, loss_fn: Any) -> None:
    """One training item through ``model`` and ``loss_fn`` (a batch of 1, no grad, eval
    mode, the global RNG put back), before any run folder is made: a model that does not fit
    the view is a ConfigError naming model.config, the view and the item's shapes.

    (why) it failed at the first training step with the model's own words ("FNO expected u
    of shape (batch, 2, 2 spatial dims), got (4, 1, 8, 8)"; DeepONet's "expected u of shape
    (batch, 6)" for sensors that leave out the static fields), naming no key of the file.
    One forward of one item: a small cost beside the run's first step."""
    import torch
    from torch.utils.data import default_collate

    from .train._batch import batch_loss

    batch = default_collate([view[0]])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            batch_loss(model, batch, loss_fn)
    except (ValueError, RuntimeError, TypeError, IndexError) as exc:
        shapes = ", ".join(
            f"{key} {tuple(batch[key].shape)}"
            for key in ("input", "target", "x", "t")
            if isinstance(batch.get(key), torch.Tensor)
        )
        static = f", static_fields {list(spec.static_fields)}" if spec.static_fields else ""
        raise ConfigError(
            f"model.config does not fit data.view {spec.view}: one training item as a batch "
            f"of 1 has {shapes}{static}, and the model says: {exc}"
        ) from exc
    finally:
        model.train(was_training)


def _loss(name: str) -> Any:
    from .train import H1Loss, LpLoss

    return {"l2": lambda: LpLoss(p=2), "l1": lambda: LpLoss(p=1), "h1": H1Loss}[name]()


def _splits(ds: Any, spec: DataSpec, saved: Path, *, resume: bool) -> Any:
    """The run's train / val / test split: on a resume, the one the run recorded.

    Splitting again on a resume is not the same split when the file grew (``split`` is a
    function of the sample count), so samples the run had held out for validation or test could
    be trained on. The recorded one is kept: extra samples are left unused (with a warning); a
    file with fewer samples than the record, or an experiment whose split or seed changed since,
    is refused, since neither continues the same run.
    """
    from . import data as sd

    n = len(ds)
    if not (resume and saved.is_file()):
        # (why) the split's own words ("fractions [..] sum to 1.6 > 1") named no key, and a
        # split with no training samples failed in the view ("expected at least one sample")
        try:
            splits = sd.split(n, spec.split, seed=spec.seed)
        except ValueError as exc:
            raise ConfigError(f"data.split: {exc}") from None
        if not splits.train:
            raise ConfigError(
                f"data.split: {list(spec.split)} of the {n} samples in {spec.path} leaves none "
                "to train on"
            )
        return splits
    recorded = sd.Split.load(saved)
    if n < recorded.n:
        raise ValueError(
            f"resume: the run's {saved} splits {recorded.n} samples and {spec.path} now holds "
            f"{n}; a resume continues on the recorded split -- restore the file, or start a new "
            "run (another out folder, or without --resume)"
        )
    if sd.split(recorded.n, spec.split, seed=spec.seed) != recorded:
        raise ValueError(
            f"resume: the experiment's split {list(spec.split)} / seed {spec.seed} is not the one "
            f"recorded in {saved}; a resume continues on the recorded split -- restore them, or "
            "start a new run (another out folder, or without --resume)"
        )
    if n > recorded.n:
        warnings.warn(
            f"resume: {spec.path} holds {n} samples, the run's {saved} splits the first "
            f"{recorded.n}; the resume keeps that split and leaves the {n - recorded.n} new "
            "samples unused (a new split would move held-out samples into training)",
            stacklevel=3,
        )
    return recorded


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    """``{"a.b": leaf}`` for nested dicts (lists are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flat(item, f"{prefix}.{key}"))
    return flat


def _model_with_defaults(model: Any) -> Any:
    """A recorded ``model`` entry with its config's defaults filled in (as it was, where it
    does not build)."""
    from .operator import family_class

    try:
        config = family_class(model["family"]).config_class
        return {**model, "config": config_to_dict(config_from_dict(config, model["config"]))}
    except Exception:  # (why) only a comparison: a config that does not build, as written
        return model


def _warn_changed_since_recorded(experiment: Experiment, recorded_path: Path) -> None:
    """On a resume, a warning naming each key of ``model``, ``data`` (but its ``path``) and
    ``loss`` whose value differs from the run's recorded ``experiment.json``.

    (why) ``loss: l1`` on a run started with ``l2``, inputs and targets swapped (the same model
    fits), or another activation resumed without a word, though the run no longer continues the
    one it resumes, and experiment.json was rewritten as if the whole run had used them. The
    TrainConfig's changes are the Trainer's to name (it warns too), ``monitor`` / ``mode`` it
    refuses, ``split`` / ``seed`` :func:`_splits` refuses, and ``out`` / ``data.path`` may name
    the same files another way."""
    try:
        recorded = json.loads(recorded_path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(recorded, dict):
        return
    now = config_to_dict(experiment)
    # (why) model.config as written: `n_layers: 4` (the default) beside a file without it is
    # the same model, so both are compared with the family's defaults filled in
    for record in (recorded, now):
        record["model"] = _model_with_defaults(record.get("model"))
    old, new = {}, {}
    for key in ("model", "data", "loss"):
        old.update(_flat(recorded.get(key), key))
        new.update(_flat(now[key], key))
    changed = [
        f"{key} (recorded {old.get(key)!r}, now {new.get(key)!r})"
        for key in sorted(set(old) | set(new))
        if key not in ("data.path", "data.split", "data.seed") and old.get(key) != new.get(key)
    ]
    if changed:
        warnings.warn(
            f"resume: the experiment differs from the run's {recorded_path} in "
            f"{', '.join(changed)}; the run continues with the new settings and will not match "
            "an uninterrupted run",
            stacklevel=3,
        )


def _check_out_folder(out: str | os.PathLike, name: str) -> None:
    """Refuse a run folder ``out`` that is a file or lies under one (``name``: the key or flag
    that gave it), before any data are read.

    (why) it failed only at the folder's creation, after the data were read and the model
    built, as "[Errno 17] File exists: 'e.yaml'" or "[Errno 20] Not a directory", naming
    neither the setting nor what it expects."""
    from ._io import file_in_the_way

    out = Path(out)
    folder = file_in_the_way(out)
    if folder is not None:
        got = f"the file {out}" if folder == out else f"{out}, whose parent {folder} is a file"
        raise ConfigError(f"{name}: expected a folder for the run's files, got {got}")


def _missing_folders(out: Path) -> list[Path]:
    """``out`` and its parents that do not exist yet, innermost first ([] if ``out`` exists)."""
    missing = []
    folder = out.absolute()
    # (why) stops at a '..' (out=a/../run): which folder that names is the kernel's to say
    while not folder.exists() and folder != folder.parent and folder.name != "..":
        missing.append(folder)
        folder = folder.parent
    return missing


def run(
    experiment: Experiment,
    *,
    resume: bool | str = False,
    progress: bool = True,
    optimizer_state: bool = True,
) -> dict[str, Any]:
    """Train ``experiment`` and evaluate the best checkpoint on the test split.

    ``resume`` and ``optimizer_state`` are passed to :meth:`sciml.train.Trainer.fit`.

    Returns a dict with ``test`` metrics, ``best_checkpoint`` and ``n_parameters``.
    """
    import torch

    from . import data as sd
    from .models import Normalized
    from .operator import family_class, load
    from .train import TrainConfig, Trainer

    _check_trainable(experiment.model)
    _check_out_folder(experiment.out, "out")
    spec = experiment.data
    if not Path(spec.path).exists():
        # (why) sd.open said only "nope.h5: no such file", naming neither the key nor where a
        # relative path is looked up
        raise ConfigError(
            f"data.path: expected an HDF5 file, got {spec.path}, which does not exist (a "
            f"relative path is looked up in the current folder, {Path.cwd()}, then in the "
            "experiment file's folder)"
        )
    ds = sd.open(spec.path)
    splits = _splits(ds, spec, Path(experiment.out) / "splits.json", resume=bool(resume))
    # (why) float32 data read as float32, as before; a float64 field is read in float64 for the
    # Normalized model to centre: rounded to float32 first, a field 1e4 +- 1e-2 was encoded
    # 0.07 std off (float32's spacing at 1e4 is 1e-3)
    wide = {"float64_inputs": spec.normalize}
    train_view = build_views(spec, samples=list(splits.train), training=True, **wide)
    val_view = build_views(spec, samples=list(splits.val), **wide) if splits.val else None
    test_view = build_views(spec, samples=list(splits.test), **wide) if splits.test else None

    config = config_from_dict(TrainConfig, experiment.train, where="train")
    # Seed before building the model so its initial weights are a function of the seed alone
    # (the same in a single process and on every torchrun rank).
    torch.manual_seed(config.seed)
    model = _build_model(experiment.model, family_class)
    _check_static_channels(model, spec)
    if spec.normalize:
        in_mean, in_std, out_mean, out_std = _channel_stats(train_view, list(splits.train), spec)
        model = Normalized.wrap(
            model, in_mean=in_mean, in_std=in_std, out_mean=out_mean, out_std=out_std,
            out_channel_dim=-1 if spec.view == "points" else None,  # values at points: (.., C)
            float64_inputs=train_view[0]["input"].dtype == torch.float64,
        )  # fmt: skip
    loss_fn = _loss(experiment.loss)
    _check_model_fits(model, train_view, spec, loss_fn)
    # Under torchrun every rank runs this function; only rank 0 writes files and evaluates.
    rank = int(os.environ.get("RANK", "0"))
    main_rank = rank == 0
    if spec.augment is not None:
        unmoved = train_view[0]
        train_view = augment_view(train_view, spec.augment, seed=config.seed + 1)
        try:
            # (why) a symmetry that cannot move the items (2D maps on 1D data) failed at the
            # first training batch, in the DataLoader, naming no key of the file. Item 0's map
            # is drawn from (seed, epoch, index): reading it draws nothing from a shared RNG
            train_view[0]
        except (ValueError, RuntimeError, IndexError, KeyError, TypeError) as exc:
            shapes = ", ".join(
                f"{key} {tuple(unmoved[key].shape)}"
                for key in ("input", "target")
                if isinstance(unmoved.get(key), torch.Tensor)
            )
            raise ConfigError(
                f"data.augment: {spec.augment!r} cannot move the items of data.view {spec.view} "
                f"({shapes}): {exc.args[0] if isinstance(exc, KeyError) else exc}"
            ) from exc
    out = Path(experiment.out)
    # the run folder and the missing parents this call creates, innermost first
    made = _missing_folders(out) if main_rank else []
    if main_rank:
        out.mkdir(parents=True, exist_ok=True)
    # (why) only where there is a checkpoint to continue: without one the run starts afresh
    if main_rank and resume and any((out / name).exists() for name in ("last", "best")):
        _warn_changed_since_recorded(experiment, out / "experiment.json")
    try:
        if main_rank:
            atomic_write_text(
                out / "experiment.json", json.dumps(config_to_dict(experiment), indent=2) + "\n"
            )
            splits.save(out / "splits.json")
        trainer = Trainer(
            model,
            train_view,
            val_data=val_view,
            loss=loss_fn,
            config=config,
            monitor=experiment.monitor,
            mode=experiment.mode,
            out_dir=out,
            metadata={"data": config_to_dict(spec), "splits": str(out / "splits.json")},
            progress=progress,
        )
        result = trainer.fit(resume=resume, optimizer_state=optimizer_state)
    except BaseException:
        # (why) a model that does not fit the data fails at the first step, after the run
        # folder, experiment.json, splits.json and empty metrics were written: a folder this
        # call made and that holds no checkpoint is removed, so nothing half-made is left
        if made and not (out / "last").exists() and not any(out.glob("ckpt-*")):
            shutil.rmtree(out, ignore_errors=True)
            # (why) out=a/b/run with a/ missing left a/b/ behind; only the parents this call
            # made are removed, and only while empty (another process may have written there)
            for parent in made[1:]:
                try:
                    parent.rmdir()
                except OSError:
                    break
        raise
    if not main_rank:
        return {"interrupted": bool(result.interrupted), "train_loss": result.train_loss}
    best_dir = out / "best" if (out / "best").exists() else out / "last"
    best = load(best_dir)
    metrics: dict[str, Any] = {"interrupted": bool(result.interrupted)}
    if test_view is not None:
        metrics["test"] = evaluate(best, test_view)
    metrics["best_checkpoint"] = str(best_dir)
    metrics["n_parameters"] = best.num_parameters()
    metrics["train_loss"] = result.train_loss
    atomic_write_text(out / "test_metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def evaluate(model: Any, view: Any, *, batch_size: int = 32) -> dict[str, float]:
    """Relative L2 (mean over samples and worst sample) and MSE of ``model`` on ``view``, with
    the Trainer's own metric objects. ``model`` maps raw inputs to raw outputs."""
    import torch
    from torch.utils.data import DataLoader

    from .train import MSE, LpLoss, predict

    rel_l2, mse = LpLoss(reduction="none"), MSE(reduction="none")
    model.eval()
    rel, sq = [], []
    with torch.no_grad():
        for batch in DataLoader(view, batch_size=batch_size, shuffle=False):
            pred = predict(model, batch)
            rel.append(rel_l2(pred, batch["target"]))
            sq.append(mse(pred, batch["target"]))
    rel_all, sq_all = torch.cat(rel), torch.cat(sq)
    return {
        "rel_l2": float(rel_all.mean()),
        "rel_l2_max": float(rel_all.max()),
        "mse": float(sq_all.mean()),
        "n_samples": int(rel_all.numel()),
    }
