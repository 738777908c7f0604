"""Frozen config dataclasses <-> plain JSON dicts, strictly.

Every operator is built from one frozen dataclass. These helpers turn such a config into a
JSON-serialisable dict and back, checking field names and value types, so a config written by
one sciml version and read by another fails loudly rather than silently dropping a field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

from .errors import ConfigError

__all__ = ["config_to_dict", "config_from_dict", "check_json_fields"]


def config_to_dict(config: Any) -> dict[str, Any]:
    """Return the config as a JSON-serialisable dict (nested dataclasses become dicts,
    tuples become lists)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ConfigError(f"expected a dataclass instance, got {type(config).__name__}")
    return {f.name: _to_json(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # (why) a NumPy scalar (np.float32(0.1) from an array, np.int64(8) from a sweep) passes every
    # config's own checks, so refusing it here failed a run only at its first save
    numpy_scalar = type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0
    if numpy_scalar and value.dtype.kind in "biuf":
        return value.item()
    raise ConfigError(
        f"config value {value!r} of type {type(value).__name__} is not JSON-serialisable; "
        "use bool, int, float, str, None, tuples, dicts or nested dataclasses"
    )


def config_from_dict(cls: type, data: dict[str, Any], *, where: str = "config") -> Any:
    """Build dataclass ``cls`` from ``data``. Unknown or missing-without-default fields and
    values of the wrong type raise :class:`ConfigError` naming the field, as the dotted key
    from ``where`` (``where=""``: from the top, ``data.inputs: ...`` for a file's reader to
    lead with the file's name)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{_at(where)}expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{_at(where)}unknown field(s) {unknown} for {cls.__name__}; "
            f"valid fields are {sorted(fields)}"
        )
    missing = sorted(
        name
        for name, f in fields.items()
        if name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise ConfigError(
            f"{_at(where)}missing required field(s) {missing} for {cls.__name__}; "
            f"valid fields are {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, _key(where, name))
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a custom __init__ or __post_init__ rejecting the arguments
        raise ConfigError(f"{_at(where)}cannot build {cls.__name__}: {exc}") from None
    except ValueError as exc:  # __post_init__ validation
        message = str(exc)
        name, sep, rest = message.partition(": ")
        if sep and name in fields:
            # (why) "data: split: ..." beside "data.inputs: ...": one dotted key per field
            raise ConfigError(f"{_key(where, name)}: {rest}") from None
        raise ConfigError(f"{_at(where)}{message}") from None


def _key(where: str, name: str) -> str:
    """The dotted key of field ``name`` under ``where`` (``name`` itself at the top)."""
    return f"{where}.{name}" if where else name


def _at(where: str) -> str:
    """The ``where: `` a message leads with (nothing at the top)."""
    return f"{where}: " if where else ""


def check_json_fields(config: Any) -> None:
    """A TypeError naming the first field of the config dataclass ``config`` whose value a saved
    checkpoint could not be read back with: :func:`config_from_dict` applies the field's type to
    the value's JSON form (a bool in an int or float field, 1.0 in an int tuple).

    (why) each config's own checks let such values through (``True == 1``, ``int(1.0) == 1.0``):
    the model built, trained and saved, and only ``sciml.load`` of its checkpoint refused it.
    Called at the end of the families' ``__post_init__``, after their range checks.

    Each field then holds the value a checkpoint loads back (lists as tuples, an int in a float
    field as a float). (why) a list stayed a list: the config compared unequal to the one its
    checkpoint loads, could not be hashed, and a caller's later edit of the list changed the
    config of a model already built (it then saved a config its weights do not fit).
    """
    hints = typing.get_type_hints(type(config))
    name = type(config).__name__
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        tp = hints[f.name]
        if typing.get_origin(tp) in (Union, types.UnionType) and value is not None:
            # (why) an optional field's value is checked against its one type, so the error
            # names the entry at fault rather than "matches none of X | None"
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = options[0] if len(options) == 1 else tp
        try:
            try:
                data = _to_json(value)
            except ConfigError as exc:  # (why) its message names the value, not the field
                raise ConfigError(f"{name}.{f.name}: {exc}") from None
            settled = _coerce(tp, data, f"{name}.{f.name}")
        except ConfigError as exc:
            raise TypeError(
                f"{exc} (a config holds values of its fields' types, so that a saved checkpoint "
                "loads back)"
            ) from None
        if settled != value or type(settled) is not type(value):
            object.__setattr__(config, f.name, settled)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return _coerce(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if set(args) == {int, float}:
            # (why) "'a' matches none of int | float" spoke Python's types, not the file's
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        raise ConfigError(f"{where}: {value!r} matches none of {tp}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return config_from_dict(tp, value, where=where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} entries, got {len(value)}")
        if not args:
            return tuple(value)
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return (
            [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
            if args
            else list(value)
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value
