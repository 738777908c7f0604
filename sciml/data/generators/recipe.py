"""YAML recipes for full-size data sets (``datasets/*.yaml``).

A recipe names a generator and its settings::

    generator: navier_stokes
    n: 1200
    resolution: 256
    seed: 0
    options: {nu: 1.0e-3, T: 50, dt: 1.0e-4, subsample: 4}
    out: navier_stokes_nu1e-3.h5

:func:`generate_from_recipe` runs it through :func:`sciml.data.generators.generate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["load_recipe", "generate_from_recipe"]

_KEYS = {"generator", "n", "resolution", "seed", "options", "out", "description"}


def load_recipe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a recipe: known keys, a known generator, valid options (not run)."""
    from ..._yaml import load_yaml
    from . import _check_sizes, validate_options

    path = Path(path)
    recipe = load_yaml(path.read_text())
    if not isinstance(recipe, dict):
        raise ValueError(f"{path}: expected a YAML mapping, got {type(recipe).__name__}")
    unknown = sorted(set(recipe) - _KEYS)
    missing = sorted({"generator", "n", "resolution", "out"} - set(recipe))
    if unknown or missing:
        raise ValueError(
            f"{path}: unknown keys {unknown}, missing keys {missing}; a recipe has {sorted(_KEYS)}"
        )
    recipe["options"] = validate_options(recipe["generator"], recipe.get("options") or {})
    recipe.setdefault("seed", 0)
    try:
        _check_sizes(recipe["n"], recipe["resolution"], recipe["seed"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return recipe


def generate_from_recipe(
    path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    **overrides: Any,
) -> Path:
    """Generate the data set described by recipe ``path``; ``out`` and ``overrides`` (``n``,
    ``resolution``, ``seed`` or generator options) replace the recipe's values."""
    from . import generate

    recipe = load_recipe(path)
    settings = {"n": recipe["n"], "resolution": recipe["resolution"], "seed": recipe["seed"]}
    options = dict(recipe["options"])
    for key, value in overrides.items():
        (settings if key in settings else options)[key] = value
    return generate(
        recipe["generator"],
        out=out if out is not None else recipe["out"],
        overwrite=overwrite,
        **settings,
        **options,
    )
