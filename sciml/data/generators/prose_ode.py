"""The ODE systems of PROSE (Liu, Zhang & Schaeffer 2023): ``prose-ode``.

Fifteen systems (the paper's "chaotic_ode_all" set): Thomas, Lorenz, Aizawa, Chen-Lee, Dadras,
Rossler, Halvorsen, Fabrikant-Rabinovich, Sprott B, Sprott-Linz F, four-wing, Lorenz-96 in 4 and
5 dimensions, the forced Duffing oscillator (made autonomous by ``u_0 = t``) and the double
pendulum. Each sample:

1. draws each parameter uniformly within ``+-param_range`` (10%) of its nominal value, rounded
   to the 3 significant digits of the token encoding (so the stored equation is exact); a range
   that could reach a magnitude below 1e-8, which the encoding cannot write, is refused;
2. draws ``u(0) ~ U[-2, 2]^d`` and integrates ``du/dt = f(u)`` on ``resolution`` uniform times
   of ``[0, t_final]`` with SciPy's LSODA (switches to BDF when the problem turns stiff;
   ``rtol = atol = 1e-9``), redrawing when the solver fails or ``|u| > 1e3``;
3. adds noise ``sigma * eps``, ``eps ~ N(0, I)``, with ``sigma = noise ||u|| / ||eps||`` (2%
   relative noise in the 2-norm over the trajectory) as the ``noisy_u_i`` fields;
4. writes the symbolic input the model sees: the skeleton (constants -> ``<C>``) of the system,
   with one term added (probability ``add_prob``) or deleted (``delete_prob``).

Stored (sciml layout, no spatial axes): fields ``u_0 ... u_{D-1}`` and ``noisy_u_0 ...``
``(n, resolution)`` (``D = 5``, zero beyond a system's dimension); params ``system``, ``dim``,
``perturbation`` (-1 deleted, 0 none, +1 added), ``initial_state`` ``(n, 5)`` (float64
``u(0)``, exact, unlike the float32 fields); attributes ``systems`` (names by index),
``equations`` and ``input_skeletons`` (one space-separated token string per sample, see
:mod:`sciml.symbolic`). The first ``n_input`` times (64 of 192 on ``[0, 6]``: ``t < 2``) are the
model's input, the remaining ones (128) its output. Read back with :func:`load_prose_ode`.

Against the authors' generator (github.com/felix-lyx/prose): 12 systems are the same; Aizawa
here has the standard ``-(x^2 + y^2)(1 + e z)`` terms, the double pendulum the physical
``2 u_3^2 cos(u_0 - u_1)`` term (theirs: ``u_3^2``, which does not conserve energy), Chen-Lee's
``b`` is drawn like every parameter (theirs: fixed at -10); see ``docs/generators.md``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..._scalars import is_int, is_real
from ...symbolic import encode, round_sig, skeleton, state_symbols

__all__ = ["SYSTEMS", "ODESystem", "generate_prose_ode", "load_prose_ode", "integrate"]

MAX_DIM = 5
F = sp.Float
#: smallest nonzero constant that :func:`sciml.symbolic.encode` writes (its default exponents)
_SMALLEST_CONSTANT = 1e-8


@dataclass(frozen=True)
class ODESystem:
    """One family ``du/dt = f(u; p)``: ``build(p, u)`` returns the sympy right-hand sides."""

    name: str
    dim: int
    nominal: dict[str, float]
    build: Callable[[dict[str, sp.Float], tuple[sp.Symbol, ...]], list[sp.Expr]]

    def equations(self, params: dict[str, float]) -> list[sp.Expr]:
        """The right-hand sides for ``params`` (rounded to 3 significant digits)."""
        p = {k: F(round_sig(v)) for k, v in params.items()}
        return self.build(p, state_symbols(self.dim))

    def sample_params(self, rng: np.random.Generator, rel: float = 0.1) -> dict[str, float]:
        return {
            k: round_sig(rng.uniform(v - rel * abs(v), v + rel * abs(v)))
            for k, v in self.nominal.items()
        }


def _lorenz96(n: int):
    def build(p, u):
        return [
            (u[(i + 1) % n] - u[(i - 2) % n]) * u[(i - 1) % n] - u[i] + p["F"] for i in range(n)
        ]

    return build


def _double_pendulum(p, u):
    # equal masses and lengths l; a = -3 g / l, b = -g / l, c = 4 g / l
    g, ell = p["g"], p["l"]
    a, b, c = F(round_sig(-3 * g / ell)), F(round_sig(-g / ell)), F(round_sig(4 * g / ell))
    den = 3 - sp.cos(2 * u[0] - 2 * u[1])
    d = u[0] - u[1]
    return [
        u[2],
        u[3],
        (
            a * sp.sin(u[0])
            + b * sp.sin(u[0] - 2 * u[1])
            - 2 * sp.sin(d) * (u[3] ** 2 + u[2] ** 2 * sp.cos(d))
        )
        / den,
        sp.sin(d) * (4 * u[2] ** 2 + c * sp.cos(u[0]) + 2 * u[3] ** 2 * sp.cos(d)) / den,
    ]


_SYSTEMS = [
    ODESystem("thomas", 3, {"b": 0.17}, lambda p, u: [
        sp.sin(u[1]) - p["b"] * u[0], sp.sin(u[2]) - p["b"] * u[1], sp.sin(u[0]) - p["b"] * u[2],
    ]),
    ODESystem("lorenz", 3, {"sigma": 10.0, "rho": 28.0, "beta": 8 / 3}, lambda p, u: [
        p["sigma"] * u[1] - p["sigma"] * u[0],
        p["rho"] * u[0] - u[0] * u[2] - u[1],
        u[0] * u[1] - p["beta"] * u[2],
    ]),
    ODESystem(
        "aizawa", 3, {"a": 0.95, "b": 0.7, "c": 0.6, "d": 3.5, "e": 0.25, "f": 0.1},
        lambda p, u: [
            u[0] * u[2] - p["b"] * u[0] - p["d"] * u[1],
            p["d"] * u[0] + u[1] * u[2] - p["b"] * u[1],
            p["c"] + p["a"] * u[2] - F(round_sig(1 / 3)) * u[2] ** 3 - u[0] ** 2 - u[1] ** 2
            - p["e"] * u[0] ** 2 * u[2] - p["e"] * u[1] ** 2 * u[2] + p["f"] * u[2] * u[0] ** 3,
        ],
    ),
    ODESystem("chen_lee", 3, {"a": 5.0, "b": -10.0, "d": -0.38}, lambda p, u: [
        p["a"] * u[0] - u[1] * u[2],
        p["b"] * u[1] + u[0] * u[2],
        p["d"] * u[2] + F(round_sig(1 / 3)) * u[0] * u[1],
    ]),
    ODESystem("dadras", 3, {"a": 1.25, "b": 1.15, "c": 0.75, "d": 0.8, "e": 4.0}, lambda p, u: [
        F(0.5) * u[1] - p["a"] * u[0] + p["b"] * u[1] * u[2],
        p["c"] * u[1] - F(0.5) * u[0] * u[2] + F(0.5) * u[2],
        p["d"] * u[0] * u[1] - p["e"] * u[2],
    ]),
    ODESystem("rossler", 3, {"a": 0.1, "b": 0.1, "c": 14.0}, lambda p, u: [
        -u[1] - u[2], u[0] + p["a"] * u[1], p["b"] + u[0] * u[2] - p["c"] * u[2],
    ]),
    ODESystem("halvorsen", 3, {"a": -0.35}, lambda p, u: [
        p["a"] * u[0] - u[1] - u[2] - F(0.25) * u[1] ** 2,
        p["a"] * u[1] - u[2] - u[0] - F(0.25) * u[2] ** 2,
        p["a"] * u[2] - u[0] - u[1] - F(0.25) * u[0] ** 2,
    ]),
    ODESystem("fabrikant", 3, {"alpha": -1.96, "gamma": 0.1}, lambda p, u: [
        u[1] * u[2] - u[1] + u[1] * u[0] ** 2 + p["gamma"] * u[0],
        3 * u[0] * u[2] + u[0] - u[0] ** 3 + p["gamma"] * u[1],
        p["alpha"] * u[2] - 2 * u[0] * u[1] * u[2],
    ]),
    ODESystem("sprott_b", 3, {"a": 0.4, "b": 1.2, "c": 1.0}, lambda p, u: [
        p["a"] * u[1] * u[2], u[0] - p["b"] * u[1], p["c"] - u[0] * u[1],
    ]),
    ODESystem("sprott_linz_f", 3, {"a": 0.5}, lambda p, u: [
        u[1] + u[2], p["a"] * u[1] - u[0], u[0] ** 2 - u[2],
    ]),
    ODESystem("four_wing", 3, {"a": 0.2, "b": 0.01, "c": -0.4}, lambda p, u: [
        p["a"] * u[0] + u[1] * u[2],
        p["b"] * u[0] + p["c"] * u[1] - u[0] * u[2],
        -u[2] - u[0] * u[1],
    ]),
    ODESystem("lorenz96_4d", 4, {"F": 8.0}, _lorenz96(4)),
    ODESystem("lorenz96_5d", 5, {"F": 8.0}, _lorenz96(5)),
    ODESystem(
        "duffing", 3, {"alpha": -1.0, "beta": -5.0, "gamma": 8.0, "delta": -0.02, "omega": 0.5},
        lambda p, u: [
            sp.Integer(1),
            u[2],
            p["delta"] * u[2] + p["alpha"] * u[1] + p["beta"] * u[1] ** 3
            + p["gamma"] * sp.cos(p["omega"] * u[0]),
        ],
    ),
    ODESystem("double_pendulum", 4, {"g": 9.81, "l": 1.0}, _double_pendulum),
]  # fmt: skip

#: name -> :class:`ODESystem`, in the order of the stored ``system`` index
SYSTEMS: dict[str, ODESystem] = {s.name: s for s in _SYSTEMS}


def _numpy_rhs(system: list[sp.Expr], dim: int) -> Callable[[float, np.ndarray], np.ndarray]:
    # docstring_limit=0: lambdify otherwise prints the whole system into the generated function's
    # docstring (sympy's str of every equation, about a tenth of the generator's time); the
    # function's code, hence every number it computes, is the same
    fn = sp.lambdify([state_symbols(dim)], list(system), modules="numpy", docstring_limit=0)
    shape = (dim,)

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        out = np.array(fn(y), dtype=np.float64)
        # called thousands of times per solve: the broadcast against ones (x * 1.0 == x bit for
        # bit) is only needed when the system does not give one value per state component
        return out if out.shape == shape else out * np.ones(dim)

    return rhs


def integrate(
    system: list[sp.Expr],
    u0: np.ndarray,
    t: np.ndarray,
    *,
    method: str = "LSODA",
    rtol: float = 1e-9,
    atol: float = 1e-9,
) -> np.ndarray | None:
    """Solve ``du/dt = f(u)``, ``u(t[0]) = u0`` with SciPy and return ``u(t)`` ``(len(t), d)``,
    or None when the solver fails or the solution leaves ``|u| <= 1e3``."""
    try:
        from scipy.integrate import solve_ivp
    except ImportError as err:  # pragma: no cover - scipy is a test dependency
        raise ImportError(
            "the prose-ode generator needs SciPy (a dependency of sciml, missing or broken "
            "here): pip install scipy"
        ) from err
    dim = len(u0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LSODA reports failed attempts; we check the status
        try:
            sol = solve_ivp(
                _numpy_rhs(system, dim), (t[0], t[-1]), np.asarray(u0, float), method=method,
                t_eval=t, rtol=rtol, atol=atol,
            )  # fmt: skip
        except (ValueError, ArithmeticError):
            return None
    if sol.status != 0 or sol.y.shape[1] != len(t) or not np.all(np.isfinite(sol.y)):
        return None
    if np.max(np.abs(sol.y)) > 1e3:
        return None
    return sol.y.T


def _top_terms(expr: sp.Expr) -> list[sp.Expr]:
    return list(expr.args) if expr.is_Add else [expr]


def _monomial(term: sp.Expr) -> sp.Expr:
    """``term`` without its numeric coefficient."""
    return term.as_coeff_Mul()[1]


def perturb(
    system: list[sp.Expr], mode: int, rng: np.random.Generator
) -> tuple[list[sp.Expr], int]:
    """Add (``mode = 1``) or delete (``mode = -1``) one additive term of one equation.

    An added term is ``c``, ``c u_j`` or ``c u_j u_k`` not already in the equation; a deleted
    term is taken from an equation with at least two terms. Returns the system and the mode
    actually applied (0 when no term can be deleted, e.g. the double pendulum).
    """
    dim = len(system)
    u = state_symbols(dim)
    out = list(system)
    if mode == 1:
        candidates = [sp.Integer(1), *u, *(u[j] * u[k] for j in range(dim) for k in range(j, dim))]
        i = int(rng.integers(dim))
        present = {_monomial(t) for t in _top_terms(out[i])}
        fresh = [m for m in candidates if m not in present]
        m = fresh[int(rng.integers(len(fresh)))]
        out[i] = out[i] + F(1.0) * m
        return out, 1
    if mode == -1:
        choices = [i for i in range(dim) if len(_top_terms(out[i])) >= 2]
        if not choices:
            return out, 0
        i = choices[int(rng.integers(len(choices)))]
        terms = _top_terms(out[i])
        drop = int(rng.integers(len(terms)))
        out[i] = sp.Add(*(t for k, t in enumerate(terms) if k != drop))
        return out, -1
    return out, 0


def _check_param_range(param_range: float, names: list[str]) -> None:
    """Refuse a range that can draw a parameter the token encoding cannot write.

    A parameter ``v`` is drawn from ``v (1 +- param_range)``: its magnitude reaches
    ``(1 - param_range) |v|``, which must stay at or above the smallest constant ``encode`` writes
    (below it the term would vanish from the stored equation, so ``encode`` raises mid-run);
    ``param_range >= 1`` also reaches 0 and flips signs. Derived constants (the double
    pendulum's multiples of ``g / l``, at least ``9.81 (1 - r) / 2``) then stay above it too.
    """
    if not param_range >= 0:
        raise ValueError(f"expected param_range >= 0 (a relative half-width), got {param_range}")
    # the parameter of smallest magnitude among the chosen systems sets the bound
    v, key, name = min((abs(v), k, n) for n in names for k, v in SYSTEMS[n].nominal.items())
    limit = 1.0 - _SMALLEST_CONSTANT / v
    if param_range >= limit:
        which = "all systems" if len(set(names)) == len(SYSTEMS) else f"systems {names}"
        flips = ", and a range of 1 or more reaches 0 and flips signs" if param_range >= 1 else ""
        raise ValueError(
            f"expected param_range < {limit:.10g} for {which}, got {param_range}: "
            f"{name}'s parameter {key} (nominal magnitude {v:g}) would reach "
            f"{max(1.0 - param_range, 0.0) * v:.3g}, below {_SMALLEST_CONSTANT:g}, the smallest "
            f"constant the token encoding writes{flips}; use a smaller param_range"
        )


def generate_prose_ode(
    n: int,
    resolution: int,
    *,
    seed: int = 0,
    systems: str = "all",
    t_final: float = 6.0,
    n_input: int = 64,
    noise: float = 0.02,
    param_range: float = 0.1,
    add_prob: float = 0.15,
    delete_prob: float = 0.15,
) -> dict[str, Any]:
    """``n`` samples cycling through ``systems`` (``"all"`` or comma-separated names of
    :data:`SYSTEMS`) on ``resolution`` times of ``[0, t_final]`` (192 in the paper: 64 input +
    128 output). See the module docstring for what is stored."""
    # (why) n = 0 returned a data set of no samples, and resolution 1 was named only through
    # n_input ('expected 0 < n_input < resolution')
    if not (is_int(n) and n >= 1 and is_int(resolution) and resolution >= 2):
        raise ValueError(
            f"expected integers n >= 1 and resolution >= 2, got n={n}, resolution={resolution}"
        )
    names = list(SYSTEMS) if systems == "all" else [s.strip() for s in systems.split(",")]
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown or not names:
        raise ValueError(f"unknown system(s) {unknown}; available: {list(SYSTEMS)}")
    # (why) t_final = 0 failed in solve_ivp ("'list' object has no attribute 'shape'"); a negative
    # one integrated backward in time, where the chaotic systems blow up, so every sample
    # redrew 100 times (minutes) before a RuntimeError; a negative noise level was taken as is
    if not (is_real(t_final) and math.isfinite(t_final) and t_final > 0):
        raise ValueError(f"expected a finite t_final > 0, got {t_final}")
    if not (is_real(noise) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"expected a finite noise level >= 0, got {noise}")
    # (why) is_int: n_input=5.5 was stored as the attribute 5.5 and read back as 5
    if not (is_int(n_input) and 0 < n_input < resolution):
        raise ValueError(
            f"expected an integer 0 < n_input < resolution, got {n_input=}, {resolution=}"
        )
    # (why) written as `not (... >= 0 ...)`: a NaN passed `< 0` and reached numpy's bare
    # 'Probabilities contain NaN'
    if not (add_prob >= 0 and delete_prob >= 0 and add_prob + delete_prob <= 1):
        raise ValueError(f"expected probabilities with sum <= 1, got {add_prob=}, {delete_prob=}")
    _check_param_range(param_range, names)
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, t_final, resolution)
    index = {name: k for k, name in enumerate(SYSTEMS)}
    u = np.zeros((n, resolution, MAX_DIM))
    noisy = np.zeros_like(u)
    init = np.zeros((n, MAX_DIM))
    sys_id, dims, modes = np.zeros(n), np.zeros(n), np.zeros(n)
    equations, skeletons = [], []
    for i in range(n):
        spec = SYSTEMS[names[i % len(names)]]
        for _ in range(100):
            system = spec.equations(spec.sample_params(rng, param_range))
            u0 = rng.uniform(-2, 2, spec.dim)
            traj = integrate(system, u0, t)
            if traj is not None:
                break
        else:  # pragma: no cover - never seen with the nominal ranges
            raise RuntimeError(f"{spec.name}: 100 draws in a row failed to integrate")
        u[i, :, : spec.dim] = traj
        init[i, : spec.dim] = u0
        eps = rng.standard_normal(traj.shape)
        noisy[i, :, : spec.dim] = traj + noise * np.linalg.norm(traj) / np.linalg.norm(eps) * eps
        mode = int(rng.choice([0, 1, -1], p=[1 - add_prob - delete_prob, add_prob, delete_prob]))
        shown, mode = perturb(system, mode, rng)
        equations.append(" ".join(encode(system)))
        skeletons.append(" ".join(skeleton(encode(shown))))
        sys_id[i], dims[i], modes[i] = index[spec.name], spec.dim, mode
    fields = {f"u_{k}": u[..., k].astype(np.float32) for k in range(MAX_DIM)}
    fields.update({f"noisy_u_{k}": noisy[..., k].astype(np.float32) for k in range(MAX_DIM)})
    return {
        "fields": fields,
        "time": t,
        "params": {"system": sys_id, "dim": dims, "perturbation": modes, "initial_state": init},
        "attrs": {
            "pde": "prose-ode",
            "equation": "du/dt = f(u; p), f from the PROSE ODE families (see 'systems')",
            "systems": list(SYSTEMS),
            "n_input": n_input,
            "equations": equations,
            "input_skeletons": skeletons,
            "units": {name: "dimensionless" for name in fields},
        },
    }


def load_prose_ode(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``prose-ode`` file into numpy arrays and token lists.

    Returns a dict with ``t`` ``(T,)``, ``u`` / ``noisy_u`` ``(n, T, 5)``, ``dim``, ``system``,
    ``perturbation`` ``(n,)``, ``initial_state`` ``(n, 5)``, ``equations`` / ``input_skeletons`` (lists of token lists),
    ``systems`` (names) and ``n_input``.
    """
    import h5py

    with h5py.File(path, "r") as f:
        t = f["time"][()]
        u = np.stack([f[f"fields/u_{k}"][()] for k in range(MAX_DIM)], axis=-1)
        noisy = np.stack([f[f"fields/noisy_u_{k}"][()] for k in range(MAX_DIM)], axis=-1)
        out = {k: f[f"params/{k}"][()].astype(np.int64) for k in ("system", "dim", "perturbation")}
        out["initial_state"] = f["params/initial_state"][()]
        attrs = {k: f.attrs[k] for k in ("equations", "input_skeletons", "systems", "n_input")}
    decode = lambda v: json.loads(v) if isinstance(v, str) else v  # noqa: E731
    return {
        "t": t,
        "u": u,
        "noisy_u": noisy,
        **out,
        "equations": [s.split(" ") for s in decode(attrs["equations"])],
        "input_skeletons": [s.split(" ") for s in decode(attrs["input_skeletons"])],
        "systems": decode(attrs["systems"]),
        "n_input": int(attrs["n_input"]),
    }
