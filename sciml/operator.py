"""The common operator interface: every sciml model is an :class:`Operator`.

An operator is a ``torch.nn.Module`` built from one frozen, JSON-serialisable config dataclass.
That single fact lets the same code save, load, train, evaluate and list every model family::

    model = FNO(FNOConfig(in_channels=1, out_channels=1, modes=(12, 12)))
    model.save_pretrained("runs/fno")        # config.json + model.safetensors
    same = sciml.load("runs/fno")            # -> FNO, bit-identical outputs

Checkpoint format (a directory):

* ``config.json``: ``{"format": "sciml.operator", "format_version": 1, "family": ..., "config":
  {...}, "sciml_version": ..., "weights": {"file": "model.safetensors", "sha256": ..., "dtype":
  ...}, "metadata": {...}}``; ``weights.strides`` (``{name: [strides]}``, only where some tensor
  is not row-major, e.g. after ``model.to(memory_format=torch.channels_last)``) records the
  layout that loading puts back, so that outputs are bit-identical.
* ``model.safetensors``: the state dict. Nothing is ever unpickled. The SHA-256 recorded in
  ``config.json`` is checked before the weights are read, so a truncated or edited weights file
  is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from ._config import config_from_dict, config_to_dict
from ._io import atomic_write_text, metadata_json, resolve_lazy, save_safetensors, tmp_path
from ._version import __version__
from .errors import CheckpointError, ConfigError
from .layers._complex import COMPLEX_OF, ComplexCasts

__all__ = ["Operator", "load", "registered_families", "family_class"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "sciml.operator"
FORMAT_VERSION = 1

_REGISTRY: dict[str, type[Operator]] = {}

T = TypeVar("T", bound="Operator")


class Operator(ComplexCasts):
    """Base class of every sciml model.

    Subclasses name their family and config class at definition::

        @dataclass(frozen=True)
        class MyConfig:
            width: int = 32

        class MyOperator(Operator, family="my-operator"):
            config_class = MyConfig

            def __init__(self, config: MyConfig):
                super().__init__(config)
                ...

            def forward(self, u, *, x=None, t=None): ...

    Dtype casts (``model.to(torch.float64)``, ``.double()``, ``.float()``) move complex
    parameters (spectral weights) to the complex dtype of that precision; plain
    ``nn.Module`` casts would drop their imaginary parts or skip them
    (:mod:`sciml.layers._complex`).

    Attributes:
        family: the registered family name, written into every checkpoint.
        config_class: the frozen dataclass the operator is built from.
        config: the instance of ``config_class`` this operator was built from.
        resolution_invariant: True when the same function sampled at two resolutions gives
            consistent outputs (tests check the claim).
    """

    family: ClassVar[str]
    config_class: ClassVar[type]
    # (why) declared: inferred from the `is_dataclass` check in __init__, it was
    # `DataclassInstance | type[DataclassInstance]`, and a user's type checker rejected
    # `model.config.width`; each family narrows it to its own config class
    config: Any
    resolution_invariant: ClassVar[bool] = False

    def __init_subclass__(cls, *, family: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if family is None:
            return
        previous = _REGISTRY.get(family)
        if previous is not None and previous.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"operator family {family!r} is already registered by "
                f"{previous.__module__}.{previous.__qualname__}"
            )
        cls.family = family
        _REGISTRY[family] = cls

    def __init__(self, config: Any) -> None:
        super().__init__()
        expected = getattr(type(self), "config_class", None)
        if expected is None:
            raise TypeError(f"{type(self).__name__} must define a config_class")
        if not isinstance(config, expected):
            raise TypeError(
                f"{type(self).__name__} expects a {expected.__name__}, "
                f"got {type(config).__name__}; use {type(self).__name__}.from_config(dict) "
                "to build from a dict"
            )
        if not dataclasses.is_dataclass(config) or not type(config).__dataclass_params__.frozen:
            raise TypeError(f"{expected.__name__} must be a frozen dataclass")
        self.config = config

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls: type[T], config: Mapping[str, Any] | Any) -> T:
        """Build the operator from its config dataclass or from a plain dict (strictly checked)."""
        if isinstance(config, Mapping):
            config = config_from_dict(cls.config_class, dict(config), where=cls.__name__)
        return cls(config)

    def config_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict."""
        return config_to_dict(self.config)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (complex parameters count twice: real and imaginary)."""
        total = 0
        for p in self.parameters():
            if trainable_only and not p.requires_grad:
                continue
            total += p.numel() * (2 if p.is_complex() else 1)
        return total

    # ------------------------------------------------------------------ save / load
    def save_pretrained(
        self, directory: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed).

        Each file is written to a temporary name and moved into place, weights first, so an
        interrupted save never leaves a config that points at half-written weights.
        """
        directory = Path(directory)
        state = _unique_state(self)
        dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in state.values()})
        strides = _saved_strides(self, state)
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "sciml_version": __version__,
            "config": self.config_dict(),
            "weights": {"file": WEIGHTS_FILE, "sha256": "", "dtypes": dtypes},
            "metadata": dict(metadata or {}),
        }
        if strides:
            record["weights"]["strides"] = strides
        # (why) checked before any file is touched: metadata that JSON cannot hold failed after
        # the new weights had replaced the old ones, and the old checkpoint no longer loaded
        metadata_json(record)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:  # it or a parent is a file
            path = [*reversed(directory.parents), directory]
            file = next((p for p in path if p.exists() and not p.is_dir()), directory)
            raise type(exc)(
                exc.errno,
                f"{directory}: expected a folder to save the checkpoint in (or a path to make "
                f"one at), but {file} is a file; save to another path",
            ) from None
        weights_path = directory / WEIGHTS_FILE
        with tmp_path(weights_path) as tmp:
            save_safetensors(state, tmp, metadata={"format": "pt", "family": self.family})
            record["weights"]["sha256"] = _sha256(tmp)
            os.replace(tmp, weights_path)
        atomic_write_text(directory / CONFIG_FILE, json.dumps(record, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(
        cls: type[T], path: str | os.PathLike, *, map_location: str | torch.device = "cpu"
    ) -> T:
        """Load an operator saved by :meth:`save_pretrained`.

        Called on a family class (``FNO.from_pretrained``) the checkpoint must hold that family;
        called on :class:`Operator` any registered family is returned.
        """
        record, directory = read_checkpoint_record(path)
        family = record["family"]
        target = family_class(family, where=str(directory))
        if cls is not Operator and not issubclass(target, cls):
            raise CheckpointError(
                f"{directory}: checkpoint holds family {family!r}, but {cls.__name__}.from_pretrained "
                f"expects {getattr(cls, 'family', cls.__name__)!r}; use sciml.load({str(directory)!r}) "
                "to load whatever family it holds"
            )
        device = _usable_device(map_location)
        where = f"{directory / CONFIG_FILE}: config"
        written_by = record.get("sciml_version")
        try:
            config = config_from_dict(target.config_class, record["config"], where=where)
            try:
                model = target(config)
            except ConfigError as exc:  # a wrapper's inner config (Normalized), checked here
                raise ConfigError(f"{directory / CONFIG_FILE}: {exc}") from None
        except ConfigError as exc:
            if written_by is None or written_by == __version__:
                raise
            # (why) the usual cause of an unknown field is a checkpoint from another sciml
            raise ConfigError(
                f"{exc} (the checkpoint was written by sciml {written_by}, this is sciml "
                f"{__version__}; a field this version does not know needs the sciml that wrote it)"
            ) from None
        _load_weights(model, directory, record, device)
        model.eval()
        return model


def load(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Operator:
    """Load any sciml operator from a checkpoint directory (or a shipped pretrained name).

    A directory laid out as the public Poseidon checkpoints are (HF ``config.json`` +
    ``model.safetensors`` / ``pytorch_model.bin``) loads as :class:`sciml.models.ScOT`.

    Example:
        >>> model = sciml.load("runs/darcy/best")
    """
    _usable_device(map_location)  # for every route below (a Poseidon directory, a shipped name)
    p = Path(path)
    if not p.exists():
        from . import pretrained

        if pretrained.is_registered(str(path)):
            return pretrained.load(str(path), map_location=map_location)
        raise CheckpointError(
            f"no checkpoint at {p.resolve()} (looked for {CONFIG_FILE} there), and "
            f"{pretrained.unknown_name_message(str(path))}"
        )
    from .pretrained import poseidon

    if poseidon.is_poseidon_checkpoint(p):  # a public Poseidon / scOT directory (HF layout)
        return poseidon.load_poseidon(p, map_location=map_location)
    return Operator.from_pretrained(p, map_location=map_location)


def registered_families() -> dict[str, type[Operator]]:
    """Family name -> operator class: each built-in family, and any other defined yet (a copy)."""
    _import_builtin_families()
    return dict(_REGISTRY)


def family_class(family: str, *, where: str = "") -> type[Operator]:
    """The operator class registered under ``family``."""
    _import_builtin_families()
    try:
        return _REGISTRY[family]
    except KeyError:
        prefix = f"{where}: " if where else ""
        raise CheckpointError(
            f"{prefix}unknown operator family {family!r}; registered families: {sorted(_REGISTRY)}"
        ) from None


def read_checkpoint_record(path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """Read and check ``config.json`` of a checkpoint directory. Returns (record, directory)."""
    directory = Path(path)
    if directory.is_file() and directory.name == CONFIG_FILE:
        directory = directory.parent
    config_path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory}: not a checkpoint directory (expected a folder with {CONFIG_FILE})"
        )
    if not config_path.is_file():
        inside = [d for d in ("best", "last") if (directory / d / CONFIG_FILE).is_file()]
        hint = (  # a Trainer's run folder holds its checkpoints as best/ and last/
            f"; this looks like a training run folder: load {directory / inside[0]}"
            + (f" or {directory / inside[1]}" if len(inside) > 1 else "")
            if inside
            else ""
        )
        raise CheckpointError(
            f"{config_path}: missing; a sciml checkpoint holds {CONFIG_FILE} and "
            f"{WEIGHTS_FILE}{hint}"
        )
    try:
        record = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(
            f'{config_path}: not a sciml operator checkpoint (expected "format": "{FORMAT}")'
        )
    if record.get("format_version") != FORMAT_VERSION:
        version = record.get("format_version")
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise CheckpointError(
            f"{config_path}: format_version {version!r} is not supported (this sciml "
            f"{__version__} reads version {FORMAT_VERSION})"
            + (
                f"; it was written by sciml {record.get('sciml_version', '(unrecorded)')}: "
                "load it with that version or a newer one"
                if newer
                else ""
            )
        )
    for key, kind, what in (
        ("family", str, "a string"),
        ("config", dict, "an object"),
        ("weights", dict, "an object"),
    ):
        if key not in record:
            raise CheckpointError(f"{config_path}: missing key {key!r}")
        if not isinstance(record[key], kind):
            raise CheckpointError(
                f"{config_path}: expected {key!r} to be {what}, got {record[key]!r}"
            )
    weights = record["weights"]
    file = weights.get("file", WEIGHTS_FILE)
    # (why) the weights must lie in the checkpoint's own folder: a config.json naming
    # "../other/model.safetensors" or an absolute path would read a file the folder does not hold
    if not isinstance(file, str) or not file or Path(file).name != file or file in (".", ".."):
        raise CheckpointError(
            f"{config_path}: weights.file must be a file name inside {directory} "
            f"(e.g. {WEIGHTS_FILE!r}), got {file!r}"
        )
    digest = weights.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64:
        raise CheckpointError(
            f"{config_path}: weights.sha256 must be the 64-hex-digit SHA-256 of {file}, got "
            f"{digest!r}; the weights cannot be checked (re-save the model with save_pretrained)"
        )
    return record, directory


def _load_weights(
    model: Operator, directory: Path, record: dict[str, Any], map_location: Any
) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = record["weights"]
    path = directory / weights.get("file", WEIGHTS_FILE)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file")
    digest = _sha256(path)
    if digest != weights.get("sha256"):
        raise CheckpointError(
            f"{path}: SHA-256 {digest[:16]}... does not match {str(weights.get('sha256'))[:16]}... "
            f"recorded in {CONFIG_FILE}; the weights file is truncated or was modified after saving"
        )
    try:
        # (why) read on the CPU: a device problem is then never reported as a damaged file,
        # and the model (built on the CPU) is moved once below
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    expected = model.state_dict()
    state = _restore_complex(state, expected)
    missing = sorted(set(expected) - set(state) - _aliased_keys(model) - optional_state_keys(model))
    unexpected = sorted(set(state) - set(expected) - obsolete_state_keys(model))
    unset = _unset_fields(model.config, record["config"])
    # (why) a config.json without a field builds the model with its default, so a field lost
    # in editing read as "the weights were saved from another config" with no hint at it
    hint = (
        f"; {CONFIG_FILE}'s config does not set {', '.join(unset)}: the defaults were used, "
        "set the values the model was saved with"
        if unset
        else ""
    )
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit the {type(model).__name__} that {CONFIG_FILE}'s config "
            f"builds: missing {missing[:5]}{' ...' if len(missing) > 5 else ''} "
            f"({len(missing)}), unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''} ({len(unexpected)}){hint}"
        )
    wrong = _shape_mismatches(state, expected)
    if wrong:
        raise CheckpointError(
            f"{path}: {len(wrong)} tensor(s) do not have the shapes {CONFIG_FILE}'s config "
            f"builds: {', '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}; the weights were "
            f"saved from another config than {CONFIG_FILE} holds{hint}"
        )
    damaged = _saved_state_errors(model, state)
    if damaged:
        raise CheckpointError(f"{path}: {'; '.join(damaged)}")
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(dtypes) == 1:  # also casts what was not saved (non-persistent buffers)
        _cast_real_dtype(model, dtypes.pop())
    # (why) always, not only for mixed real dtypes: the cast above takes complex tensors to the
    # complex dtype of the real one, and the complex64 spectral weights of a float64 model came
    # back complex128; each saved tensor comes back in the dtype it was saved in
    _cast_each_as_saved(model, state)
    model.to(map_location)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # (why) a value a module refuses that the checks above missed
        raise CheckpointError(f"{path}: {exc}") from None
    if result.unexpected_keys:  # an obsolete key its module's load hook did not consume
        raise CheckpointError(
            f"{path}: weights do not fit {type(model).__name__}: unexpected "
            f"{sorted(result.unexpected_keys)[:5]}"
        )
    _restore_strides(model, weights.get("strides"), directory / CONFIG_FILE)


def _shape_mismatches(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> list[str]:
    """``"name saved (..), built (..)"`` for each tensor of ``state`` whose shape differs from
    the same-named one of ``expected`` (names only one side holds are not compared)."""
    return [
        f"{name} saved {tuple(tensor.shape)}, built {tuple(expected[name].shape)}"
        for name, tensor in state.items()
        if name in expected and tuple(tensor.shape) != tuple(expected[name].shape)
    ]


def _unset_fields(config: Any, data: Any, prefix: str = "") -> list[str]:
    """``name=default`` for each field of the config dataclass ``config`` (nested ones too)
    that the saved dict ``data`` does not set."""
    out = []
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        if not isinstance(data, Mapping) or f.name not in data:
            out.append(f"{prefix}{f.name}={value!r}")
        elif dataclasses.is_dataclass(value):
            out += _unset_fields(value, data[f.name], f"{prefix}{f.name}.")
    return out


def obsolete_state_keys(model: nn.Module) -> set[str]:
    """State-dict keys that older checkpoints of ``model`` hold and its modules still accept.

    A submodule lists them, relative to itself, in an attribute ``obsolete_state_keys`` (a
    class attribute, as PROSE's time embeddings' ``("freq",)``, a constant that was once saved;
    or one set per instance where the keys depend on the configuration, as a
    :class:`~sciml.layers.VCycle`'s dead weights of levels without pre-smoothing) and consumes
    them in its ``_load_from_state_dict``; the loader then lets exactly those keys through and
    refuses every other key the model does not list.
    """
    return {
        f"{prefix}.{key}" if prefix else key
        for prefix, module in model.named_modules()
        for key in getattr(module, "obsolete_state_keys", ())
    }


def _saved_state_errors(model: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Messages naming the keys of ``state`` that ``model.load_state_dict`` would refuse in a
    module's ``_load_from_state_dict`` (the damaged iteration of a NeuralODE), found before
    loading: a submodule that checks saved values defines ``_saved_state_errors(state, prefix)``.

    (why) load_state_dict raised torch's RuntimeError 'Error(s) in loading state_dict', after
    copying every other tensor: the loaders raise a CheckpointError naming the file instead.
    """
    return [
        error
        for prefix, module in model.named_modules()
        if hasattr(module, "_saved_state_errors")
        for error in module._saved_state_errors(state, f"{prefix}." if prefix else "")
    ]


def optional_state_keys(model: nn.Module) -> set[str]:
    """State-dict keys of ``model`` that checkpoints written before they were saved lack.

    A submodule lists them, relative to itself, in an attribute ``optional_state_keys`` (the
    training iteration of :class:`~sciml.de.NeuralODE` and :class:`~sciml.de.NeuralSDE`,
    ``("iteration",)``) and gives them their value of a fresh module in its
    ``_load_from_state_dict`` when a checkpoint lacks them; the loaders then let exactly those
    keys be missing and refuse every other missing key.
    """
    return {
        f"{prefix}.{key}" if prefix else key
        for prefix, module in model.named_modules()
        for key in getattr(module, "optional_state_keys", ())
    }


def _usable_device(map_location: str | torch.device) -> torch.device:
    """``map_location`` as a device this process can place tensors on, or a ValueError saying
    why not (CUDA asked for where there is none raised safetensors' 'pin_memory=True requires
    a CUDA or other accelerator backend')."""
    try:
        device = torch.device(map_location)
        torch.empty(0, device=device)
    except (RuntimeError, TypeError, AssertionError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"expected map_location a torch device this process can use, such as 'cpu' (or "
            f"'cuda:0' where torch.cuda.is_available()), got {map_location!r}: {reason}"
        ) from None
    if device.type == "meta":
        # (why) load_state_dict into meta tensors is a no-op (a warning per tensor): the model
        # came back with none of the checkpoint's weights, and no error
        raise ValueError(
            f"expected map_location a device that holds values, such as 'cpu', got "
            f"{map_location!r}: meta tensors hold none of the checkpoint's weights; for a model "
            "without weights build it from its config under `with torch.device('meta'):`"
        )
    return device


def _cast_real_dtype(model: nn.Module, dtype: torch.dtype) -> None:
    """Cast real floating tensors to ``dtype`` and complex ones to the matching complex dtype
    (``Module.to(dtype)`` would drop imaginary parts)."""
    complex_dtype = COMPLEX_OF.get(dtype)

    def cast(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point():
            return t.to(dtype)
        if t.is_complex() and complex_dtype is not None:
            return t.to(complex_dtype)
        return t

    model._apply(cast)


def _cast_each_as_saved(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Give each floating / complex parameter and buffer of ``model`` the dtype of the saved
    tensor of its name (load_state_dict copies into the model's dtype: a float64 layer of a
    model saved in float64 and float32 was rounded to float32). Parameters keep their identity,
    so tied weights stay tied."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    for name, tensor in tensors:
        saved = state.get(name)
        if saved is None or saved.dtype == tensor.dtype:
            continue
        if saved.is_complex() == tensor.is_complex() and (
            saved.is_floating_point() or saved.is_complex()
        ):
            tensor.data = tensor.data.to(saved.dtype)


def _dense_layout(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """Whether ``stride`` lays out a tensor of ``shape`` with no gaps and no overlaps (a
    permutation of the row-major layout: channels_last, a transpose), so that
    ``torch.empty_strided(shape, stride)`` holds exactly its elements."""
    expected = 1
    for d in sorted((d for d in range(len(shape)) if shape[d] != 1), key=lambda d: stride[d]):
        if stride[d] != expected:
            return False
        expected *= shape[d]
    return True


def _saved_strides(model: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, list[int]]:
    """``name -> strides`` for each saved tensor of ``model`` laid out other than row-major
    (``model.to(memory_format=torch.channels_last)``), which the file stores row-major.

    (why) a model loaded in the default layout computed other outputs in the last bits:
    convolutions pick their kernels and summation order by the layout of input and weight (an
    FNO saved channels_last was 4e-8 to 6e-8 off after loading, torch.equal False)."""
    tensors = model.state_dict(keep_vars=True)
    out = {}
    for name in state:
        t = tensors[name]
        stride, shape = tuple(t.stride()), tuple(t.shape)
        row_major = torch.empty(shape, device="meta").stride()
        if t.numel() > 1 and stride != row_major and _dense_layout(shape, stride):
            out[name] = list(stride)
    return out


def _restore_strides(model: nn.Module, strides: Any, where: Path) -> None:
    """Give each tensor named in ``strides`` (from :func:`_saved_strides`) its saved layout;
    parameters keep their identity."""
    if strides is None:
        return
    tensors = model.state_dict(keep_vars=True)
    if not isinstance(strides, dict):
        raise CheckpointError(
            f"{where}: weights.strides must map tensor names to strides, got {strides!r}"
        )
    for name, stride in strides.items():
        t = tensors.get(name)
        ok = (
            t is not None
            and isinstance(stride, list)
            and all(type(s) is int for s in stride)
            and len(stride) == t.dim()
            and _dense_layout(tuple(t.shape), tuple(stride))
        )
        if not ok:
            shape = None if t is None else tuple(t.shape)
            raise CheckpointError(
                f"{where}: weights.strides[{name!r}] = {stride!r} is not a layout of the "
                f"model's tensor {name!r} (shape {shape}); expected the strides of a dense "
                "tensor of that shape, as save_pretrained writes them"
            )
        t.data = torch.empty_strided(t.shape, stride, dtype=t.dtype, device=t.device).copy_(t)


def _unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with tied tensors stored once (safetensors refuses shared storage)."""
    seen: dict[tuple, str] = {}
    state = {}
    for name, tensor in model.state_dict().items():
        # (why) strides and dtype too: a transposed view of a square weight shares its storage,
        # offset and shape but holds other values, and was dropped as a copy of the weight
        key = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tensor.stride(),
            tensor.dtype,
            # (why) a lazily conjugated / negated view (w.conj()) shares all of the above
            tensor.is_conj(),
            tensor.is_neg(),
        )
        if key in seen and tensor.numel() > 0:
            continue
        seen[key] = name
        state[name] = _storable(tensor.detach()).contiguous().cpu()
    return state


def _storable(t: torch.Tensor) -> torch.Tensor:
    """``t``, or for complex128 and complex32 (which safetensors cannot store) its real pairs:
    float64 / float16 with a trailing axis of 2 (:func:`_restore_complex` reads them back)."""
    t = resolve_lazy(t)  # (why) view_as_real refuses a lazily conjugated view
    return torch.view_as_real(t) if t.dtype in (torch.complex128, torch.complex32) else t


def _restore_complex(
    state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Complex tensors that :func:`_storable` wrote as real pairs, back as complex, where the
    model's ``expected`` tensor of that name is complex."""
    out = dict(state)
    for name, t in state.items():
        want = expected.get(name)
        if (
            want is not None
            and want.is_complex()
            and t.is_floating_point()
            and tuple(t.shape) == (*want.shape, 2)
        ):
            out[name] = torch.view_as_complex(t.contiguous())
    return out


def _aliased_keys(model: nn.Module) -> set[str]:
    return set(model.state_dict()) - set(_unique_state(model))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _import_builtin_families() -> None:
    # Importing a family's module registers it. (why) `import sciml` no longer imports its
    # subpackages, so every module that defines a built-in family is imported here: sciml.models
    # (fno, t1, mgno, deeponet, pod_deeponet, scot, prose, node, normalized) and the DCDM network
    # of sciml.linalg, which a fresh `sciml.load` of a "dcdm" checkpoint could not find otherwise.
    from . import models  # noqa: F401
    from .linalg import dcdm  # noqa: F401
