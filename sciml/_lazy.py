"""Package attributes that load on first use (PEP 562), shared by the lazy ``__init__`` files."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping
from importlib import import_module


def lazy_attributes(
    package: str, names: Mapping[str, str], modules: Collection[str] = ()
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``.

    Each key of ``names`` is the attribute of that name of the submodule it maps to, imported on
    first access and then kept on the package (later accesses are plain lookups); each entry of
    ``modules`` is a submodule that resolves as an attribute (its import binds it on the package,
    as an eager ``from . import x`` would have)."""

    def __getattr__(name: str) -> object:
        if name in modules:
            return import_module(f".{name}", package)
        if name in names:
            value = getattr(import_module(f".{names[name]}", package), name)
            vars(sys.modules[package])[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names) | set(modules))

    return __getattr__, __dir__
