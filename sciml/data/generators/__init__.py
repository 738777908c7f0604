"""Classical PDE solvers that generate sciml data sets.

Each generator solves a PDE with a classical numerical method and returns what
:func:`sciml.data.write` stores; :func:`generate` runs one by name and writes the HDF5 file
(``sciml data generate NAME --n N --resolution R --out F``). The array-returning solvers
(:func:`solve_darcy`, :func:`solve_burgers`, :func:`solve_navier_stokes`, :func:`sample_grf`) can
be called directly.

=================  ==========================================================================
name               PDE and method
=================  ==========================================================================
``grf``            Gaussian random field ``N(0, sigma^2 (-Lap + tau^2)^-alpha)``, spectral
``darcy``          ``-div(a grad u) = f`` on the unit square, 5-point FD + sparse direct solve
``burgers``        ``u_t + (u^2/2)_x = nu u_xx`` periodic, pseudo-spectral + ETDRK4
``navier_stokes``  2D vorticity form on the torus, pseudo-spectral, Crank-Nicolson + Heun
=================  ==========================================================================

``antiderivative``: ``u(x) = int_0^x v``, ``v`` an RBF-kernel GRF on [0, 1] (fine-grid trapezoid).
``nonlinear_ode`` (``s' = -s^2 + u``) and ``pendulum`` (``s1' = s2, s2' = -sin s1 + u``): RK4;
``diffusion_reaction`` (``s_t = D s_xx + k s^2 + u(x)``): central differences + Crank-Nicolson.
``lotka_volterra`` (``x' = a x - b x y, y' = d x y - c y`` from random initial states): DOP853.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..._scalars import is_real
from ..._version import __version__
from .._errors import DataFormatError
from ..writer import write
from .antiderivative import generate_antiderivative, sample_rbf_grf
from .burgers import generate_burgers, solve_burgers
from .darcy import generate_darcy, sample_darcy_coefficient, solve_darcy
from .deeponet_odes import generate_nonlinear_ode, generate_pendulum, solve_forced_ode
from .diffusion_reaction import generate_diffusion_reaction, solve_diffusion_reaction
from .grf import generate_grf, grf_spectrum, grf_variance, sample_grf
from .lotka_volterra import generate_lotka_volterra
from .navier_stokes import (
    fno_forcing,
    fno_forcing_symmetries,
    generate_navier_stokes,
    solve_navier_stokes,
)
from .prose_ode import generate_prose_ode
from .recipe import generate_from_recipe, load_recipe

__all__ = [
    "GENERATORS",
    "SMALL_RUNS",
    "generate",
    "generator_options",
    "validate_options",
    "load_recipe",
    "generate_from_recipe",
    "sample_grf",
    "grf_spectrum",
    "grf_variance",
    "solve_darcy",
    "sample_darcy_coefficient",
    "solve_burgers",
    "solve_navier_stokes",
    "fno_forcing",
    "fno_forcing_symmetries",
    "sample_rbf_grf",
    "solve_forced_ode",
    "solve_diffusion_reaction",
]

GeneratorFn = Callable[..., dict[str, Any]]

#: Read-only mapping name -> generator ``fn(n, resolution, *, seed, **options) -> write kwargs``.
GENERATORS: Mapping[str, GeneratorFn] = types.MappingProxyType(
    {
        "grf": generate_grf,
        "darcy": generate_darcy,
        "burgers": generate_burgers,
        "navier_stokes": generate_navier_stokes,
        "antiderivative": generate_antiderivative,
        "nonlinear_ode": generate_nonlinear_ode,
        "pendulum": generate_pendulum,
        "prose-ode": generate_prose_ode,
        "diffusion_reaction": generate_diffusion_reaction,
        "lotka_volterra": generate_lotka_volterra,
    }
)

#: ``n`` and ``resolution`` of a run that finishes in about a second on one CPU core.
SMALL_RUNS: Mapping[str, Mapping[str, int]] = types.MappingProxyType(
    {
        "grf": {"n": 16, "resolution": 64},
        "darcy": {"n": 4, "resolution": 33},
        "burgers": {"n": 8, "resolution": 256},
        "navier_stokes": {"n": 4, "resolution": 32},
        "antiderivative": {"n": 16, "resolution": 100},
        "nonlinear_ode": {"n": 16, "resolution": 100},
        "pendulum": {"n": 16, "resolution": 100},
        "prose-ode": {"n": 15, "resolution": 192},
        "diffusion_reaction": {"n": 8, "resolution": 50},
        "lotka_volterra": {"n": 16, "resolution": 51},
    }
)


# The revision of a generator's law that its files record (``revision`` in
# ``generator_settings``): the last fix that changed what these settings produce, so that
# ``generate(reuse=True)`` neither hands back a file drawn from an older law nor refuses one that
# the fix left unchanged. A file without the record is revision 1.
#   grf, darcy 2: GRF modes normalised on the box (the variance was L^d times too large for
#                 L != 1): grf with length != 1 and log-normal Darcy changed; piecewise-constant
#                 Darcy (the sign of the field, which halved exactly) and grf on the unit box
#                 did not, bit for bit.
def _revision(name: str, settings: Mapping[str, Any]) -> int:
    """The revision recorded for generator ``name`` run with ``settings`` (defaults included)."""
    if name == "grf" and settings.get("length") != 1:
        return 2
    if name == "darcy" and settings.get("coefficient") == "lognormal":
        return 2
    return 1


def _lookup(name: str) -> GeneratorFn:
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; available: {sorted(GENERATORS)}")
    return GENERATORS[name]


def generator_options(name: str) -> dict[str, Any]:
    """Options of generator ``name`` (besides ``n``, ``resolution``, ``seed``) and their defaults."""
    sig = inspect.signature(_lookup(name))
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "seed"
    }


def _coerce(name: str, key: str, value: Any, hint: Any) -> Any:
    """Convert strings (CLI, YAML's ``1e-3``) to the option's annotated number type."""
    if not isinstance(value, str):
        return value
    kinds = typing.get_args(hint) or (hint,)
    for kind in (int, float):
        if kind in kinds:
            try:
                return kind(value)
            except ValueError:
                continue
    if bool in kinds and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value.lower() == "none" and type(None) in kinds:
        return None
    if str in kinds or typing.get_origin(hint) is typing.Literal:
        return value
    kind = hint.__name__ if isinstance(hint, type) else str(hint)  # float, not <class 'float'>
    raise ValueError(f"generator {name!r}: option {key}={value!r} is not a valid {kind}")


def validate_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check option names of generator ``name`` and convert string values to the option's type.

    Raises:
        ValueError: an unknown generator or option (the message lists the valid ones), or a
            string that does not parse as the option's type.
    """
    fn = _lookup(name)
    valid = generator_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"generator {name!r} got unknown option(s) {unknown}; valid options: {sorted(valid)}"
        )
    hints = typing.get_type_hints(fn)
    out = {k: _coerce(name, k, v, hints.get(k, Any)) for k, v in options.items()}
    for key, value in out.items():
        # (why) NaN passes every generator's `x > 0` check and inf most of them; both then
        # failed deep in a solver ('cannot convert float NaN to integer') or wrote NaN data
        real = is_real(value)
        if real and not math.isfinite(value):
            raise ValueError(
                f"generator {name!r}: option {key}={value!r}: expected a finite number"
            )
    return out


def _whole(value: Any) -> bool:
    """An integer or a float with an integral value (YAML's ``1.2e3``), not a bool or a string."""
    return is_real(value) and math.isfinite(value) and int(value) == value


def _check_sizes(n: Any, resolution: Any, seed: Any) -> None:
    """Refuse ``n``, ``resolution`` or ``seed`` that are not whole numbers in range.

    (why) ``int(n) != n`` let ``n = True`` run as 1 sample and told a string ``n`` apart only
    by int()'s "invalid literal for int() with base 10: 'abc'"; a negative seed reached NumPy's
    "expected non-negative integer"; and a recipe was checked only when it ran."""
    if not (_whole(n) and n >= 1 and _whole(resolution) and resolution >= 2):
        raise ValueError(
            f"expected integers n >= 1 and resolution >= 2, got n={n!r}, resolution={resolution!r}"
        )
    if not (_whole(seed) and seed >= 0):
        raise ValueError(f"expected an integer seed >= 0, got seed={seed!r}")


def generate(
    name: str,
    *,
    n: int,
    resolution: int,
    out: str | os.PathLike[str],
    seed: int = 0,
    overwrite: bool = False,
    reuse: bool = False,
    **options: Any,
) -> Path:
    """Run generator ``name`` for ``n`` samples at grid ``resolution`` and write ``out`` (HDF5).

    ``options`` are the generator's keyword options (see :func:`generator_options`); an unknown
    option raises ``ValueError`` naming the valid ones. The file's attrs record ``pde``,
    ``generator`` (the module), ``generator_settings`` (every option, defaults included, with
    ``n``, ``resolution`` and ``seed``) and ``sciml_version``.

    Missing folders of ``out`` are created once the data are computed.

    ``reuse``: if ``out`` is a file this generator wrote with the same settings (``n``,
    ``resolution``, ``seed`` and every option, defaults included; options left to the generator,
    ``None``, are not compared) and the same revision of the generator's law for these settings
    (recorded as ``revision``; raised when a fix changes what these settings produce), return it
    without computing anything. A file made with other settings is replaced only with
    ``overwrite``; otherwise ``FileExistsError`` names the settings that differ.

    Returns:
        the path of the written file.
    """
    fn = _lookup(name)
    valid = generator_options(name)
    options = validate_options(name, options)
    _check_sizes(n, resolution, seed)
    revision = _revision(name, {**valid, **options})
    if reuse and Path(out).exists():
        wanted = {"n": int(n), "resolution": int(resolution), "seed": int(seed), **valid, **options}
        wanted["revision"] = revision
        try:
            differ = _differing_settings(Path(out), fn.__module__, wanted)
        except DataFormatError as e:  # truncated or damaged: regenerated with overwrite
            if not overwrite:
                raise FileExistsError(
                    f"{out}: exists but cannot be read ({e}); pass overwrite=True to replace it"
                ) from e
            differ = ["unreadable"]
        if not differ:
            return Path(out)
        if not overwrite:
            raise FileExistsError(
                f"{out}: made with other settings ({'; '.join(differ)}); pass overwrite=True "
                "to replace it"
            )
    data = fn(int(n), int(resolution), seed=int(seed), **options)
    settings = {"n": int(n), "resolution": int(resolution), "seed": int(seed), **valid, **options}
    settings["revision"] = revision
    settings.update(data.pop("resolved", {}))  # e.g. the time step a generator chose
    attrs = {
        **data.pop("attrs", {}),
        "generator": fn.__module__,
        "generator_settings": settings,
        "sciml_version": __version__,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # as the Trainer makes its out_dir
    return Path(write(out, **data, attrs=attrs, overwrite=overwrite))


def _differing_settings(path: Path, module: str, wanted: dict[str, Any]) -> list[str]:
    """``"key: recorded -> wanted"`` for every setting of ``wanted`` (``None`` values skipped)
    that the generator's record in ``path`` does not match; the generator counts as a setting."""
    from .. import open as open_data

    attrs = open_data(path).attrs
    recorded = {"revision": 1, **(attrs.get("generator_settings") or {})}
    wanted = json.loads(json.dumps(wanted))  # as stored: tuples become lists
    out = (
        [f"generator: {attrs.get('generator')} -> {module}"]
        if attrs.get("generator") != module
        else []
    )
    out += [
        f"{k}: {recorded.get(k)!r} -> {v!r}"
        for k, v in wanted.items()
        if v is not None and recorded.get(k) != v
    ]
    return out
