"""Collocation points in a box: uniform, Latin hypercube, Sobol, grids, and residual-based
resampling.

All samplers return ``(n, d)`` tensors of points in the box ``lower <= p <= upper``; the
random ones take a ``torch.Generator`` (or a seed) so that runs are repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from .._scalars import is_int
from ._checks import check_bool, check_float_dtype, check_float_points, is_count, is_flag, is_number

__all__ = ["Box", "uniform", "latin_hypercube", "sobol", "grid", "resample_by_residual"]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``[lower_j, upper_j]`` in ``d`` dimensions (for PINNs on ``(x, t)``,
    ``Box((0, 0), (2 * pi, 1))``).

    Args:
        lower: the lower corner, one bound per dimension (stored as a tuple of floats).
        upper: the upper corner, as long as ``lower`` and above it in every dimension.
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def __post_init__(self) -> None:
        # (why) Box('01', '23') was the box [0, 2] x [1, 3] (float of each character), Box(0, 1)
        # failed with "'int' object is not iterable", and True counted as 1
        bounds = []
        for name in ("lower", "upper"):
            v = getattr(self, name)
            if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
                raise TypeError(
                    f"expected {name} as a sequence of numbers, one per dimension (e.g. (0, 0)), "
                    f"got {v!r}"
                )
            v = tuple(v)
            if not all(is_number(b) for b in v):
                raise TypeError(f"expected {name} to hold real numbers, got {v!r}")
            bounds.append(tuple(float(b) for b in v))
        lo, hi = bounds
        if len(lo) != len(hi) or not lo:
            raise ValueError(
                f"expected lower and upper bounds of the same non-zero length, got "
                f"{len(lo)} and {len(hi)}"
            )
        if not all(math.isfinite(v) for v in lo + hi):
            # (why) an inf bound gave inf points; a nan one passed the check below (every
            # comparison with nan is False)
            raise ValueError(f"expected finite bounds, got lower={lo} and upper={hi}")
        if any(h <= lo_ for lo_, h in zip(lo, hi)):
            raise ValueError(f"expected lower < upper in every dimension, got {lo} and {hi}")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @property
    def dim(self) -> int:
        """The number of dimensions ``d`` (``len(lower)``)."""
        return len(self.lower)

    def scale(self, unit: torch.Tensor) -> torch.Tensor:
        """Map points ``(n, d)`` of the unit cube (floating-point) into the box."""
        # (why) integer points got integer bounds: Box((0,), (2.5,)).scale(ones) gave 2
        check_float_points("Box.scale", "unit", unit)
        # (why) points (n, 1) for a 2-d box broadcast against both bounds: every point's one
        # coordinate was used for x and t alike, (n, 2) points on the box's diagonal, silently
        if unit.ndim == 0 or unit.shape[-1] != self.dim:
            raise ValueError(
                f"expected unit-cube points (..., {self.dim}) for a {self.dim}-d box, got shape "
                f"{tuple(unit.shape)}"
            )
        lo = torch.tensor(self.lower, dtype=unit.dtype, device=unit.device)
        hi = torch.tensor(self.upper, dtype=unit.dtype, device=unit.device)
        # (why) lo + 1 * (hi - lo) rounds past hi for about one box in nine, and a float32
        # Latin hypercube coordinate can round up to exactly 1
        return (lo + unit * (hi - lo)).clamp(lo, hi)


def _check_seed(seed: int | torch.Generator | None) -> None:
    # (why) int(seed) took 1.5 and True for 1 and '3' for 3: other seeds than the ones given,
    # the same draws for different ones, silently
    if not (seed is None or isinstance(seed, torch.Generator) or is_int(seed)):
        raise TypeError(f"expected an int seed, a torch.Generator or None, got {seed!r}")


def _gen(seed: int | torch.Generator | None) -> torch.Generator | None:
    _check_seed(seed)
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def _check_n(n: int) -> None:
    # (why) 1e3 failed inside torch (rand, randperm, linspace, multinomial) with an argument
    # list, and True drew one point
    if not is_int(n):
        raise TypeError(f"expected an int number of points, got {n!r}")
    if n < 1:
        raise ValueError(f"expected a positive number of points, got {n}")


def uniform(
    n: int,
    box: Box,
    *,
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n`` independent uniform points in ``box``: ``(n, d)`` of the floating ``dtype``."""
    _check_n(n)
    check_float_dtype("uniform", dtype)
    return box.scale(torch.rand(n, box.dim, generator=_gen(seed), dtype=dtype))


def latin_hypercube(
    n: int,
    box: Box,
    *,
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Latin hypercube sample: along every axis each of the ``n`` equal strata holds exactly one
    point (stratum ``k`` of axis ``j`` is ``[k/n, (k+1)/n)`` of the unit interval, the last one
    closed), the strata are matched across axes by independent random permutations. ``(n, d)``
    of the floating ``dtype``: drawn in float64 (the same points in every ``dtype``, to
    rounding), each point rounded into its own stratum. A ValueError where ``dtype`` has no
    number in some stratum (bfloat16 holds 128 numbers in ``[0.5, 1)``: not one per stratum
    of 1000)."""
    _check_n(n)
    check_float_dtype("latin_hypercube", dtype)
    g = _gen(seed)
    perms, cols = [], []
    for _ in range(box.dim):
        # (why) in float64: perm + rand in float32 rounds the fraction away near perm ~ 1e5
        # (spacing 2^-7), a point landed in the next stratum and 227 of 1e5 strata were empty
        # (in float16, 130 of 1000; perm itself is rounded in bfloat16 past 256)
        perm = torch.randperm(n, generator=g)
        perms.append(perm)
        cols.append((perm + torch.rand(n, generator=g, dtype=torch.float64)) / n)
    pts = box.scale(torch.stack(cols, dim=1))
    return _rounded_into_strata(pts, torch.stack(perms, dim=1), box, dtype)


def _stratum(p: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, n: int) -> torch.Tensor:
    """The stratum ``floor(n (p - lo) / (hi - lo))`` of each coordinate of ``p`` (float64), the
    upper bound in the last."""
    return torch.floor((p.double() - lo) / (hi - lo) * n).long().clamp(0, n - 1)


def _rounded_into_strata(
    pts: torch.Tensor, strata: torch.Tensor, box: Box, dtype: torch.dtype
) -> torch.Tensor:
    """``pts`` (float64, in ``box``) rounded to ``dtype``, each coordinate moved by one step of
    ``dtype`` back into its stratum ``strata`` where the rounding took it across a bound. (why)
    a point within half a step of a bound rounds either way: cast alone, float32 lost 108 of
    1e5 strata."""
    n = pts.shape[0]
    lo = torch.tensor(box.lower, dtype=torch.float64)
    hi = torch.tensor(box.upper, dtype=torch.float64)
    lo_d, hi_d = lo.to(dtype), hi.to(dtype)
    p = pts.to(dtype).clamp(lo_d, hi_d)
    inf = torch.tensor(math.inf, dtype=dtype)
    for _ in range(2):  # (why) a step can overshoot a bound itself: check once more
        k = _stratum(p, lo, hi, n)
        if bool((k == strata).all()):
            return p
        p = torch.where(k < strata, torch.nextafter(p, inf), p)
        p = torch.where(k > strata, torch.nextafter(p, -inf), p).clamp(lo_d, hi_d)
    bad = (_stratum(p, lo, hi, n) != strata).any(dim=0).nonzero()
    if not bad.numel():
        return p
    j = int(bad[0])
    width = (box.upper[j] - box.lower[j]) / n
    big = max(abs(box.lower[j]), abs(box.upper[j]))
    spacing = float(torch.finfo(dtype).eps) * big
    raise ValueError(
        f"latin_hypercube expected a dtype with a number in each of the n={n} strata of axis "
        f"{j} (width {width:.3g}), got {dtype}, whose numbers near {big:g} are up to {spacing:.3g} "
        "apart: draw fewer points, or in float32 (or float64)"
    )


def sobol(
    n: int,
    box: Box,
    *,
    scramble: bool = True,
    seed: int | torch.Generator | None = None,
    skip: int = 0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The first ``n`` points (after ``skip``) of a (scrambled) Sobol sequence in ``box``
    (``torch.quasirandom.SobolEngine``): low discrepancy, best with ``n`` a power of two.
    ``(n, d)`` of the floating ``dtype``. A ``torch.Generator`` ``seed`` supplies the
    scrambling seed (one draw)."""
    _check_n(n)
    # (why) an integer dtype truncated every coordinate (silently: points at the corners)
    check_float_dtype("sobol", dtype)
    check_bool("sobol", "scramble", scramble)
    _check_seed(seed)
    if not is_count(skip):  # (why) 1.5 failed in fast_forward with torch's argument list
        raise TypeError(f"expected an int skip (points to skip), got {skip!r}")
    if skip < 0:  # (why) fast_forward(-1) corrupted the engine: repeated points, silently
        raise ValueError(f"expected skip >= 0 points, got {skip}")
    if isinstance(seed, torch.Generator):
        # (why) SobolEngine takes only an int: a Generator, as the other samplers take,
        # failed in its manual_seed
        seed = int(torch.randint(2**62, (), generator=seed, device=seed.device))
    elif seed is not None:
        seed = int(seed)  # (why) a NumPy int failed in its manual_seed: 'an integer is required'
    engine = torch.quasirandom.SobolEngine(box.dim, scramble=scramble, seed=seed)
    if skip:
        engine.fast_forward(int(skip))
    return box.scale(engine.draw(n, dtype=torch.float64).to(dtype))


def grid(
    sizes: Sequence[int],
    box: Box,
    *,
    endpoint: Sequence[bool] | bool = True,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A tensor-product grid, ``sizes[j]`` points along axis ``j`` (first axis slowest), as
    ``(prod(sizes), d)`` of the floating ``dtype``. ``endpoint=False`` on an axis leaves out
    the upper bound, as a periodic axis should."""
    check_float_dtype("grid", dtype)
    # (why) an int failed in len() ("object of type 'int' has no len()"); endpoint='no' was
    # read as the flags ['n', 'o'] and endpoint=0 failed in list()
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise TypeError(f"expected sizes as a sequence of ints, one per axis, got {sizes!r}")
    sizes = list(sizes)
    if is_flag(endpoint):
        ends = [bool(endpoint)] * box.dim
    elif isinstance(endpoint, (str, bytes)) or not isinstance(endpoint, Iterable):
        raise TypeError(f"expected endpoint as a bool or one bool per axis, got {endpoint!r}")
    else:
        ends = list(endpoint)
        if not all(is_flag(e) for e in ends):
            raise TypeError(f"expected endpoint as a bool or one bool per axis, got {endpoint!r}")
    if len(sizes) != box.dim:
        raise ValueError(f"expected {box.dim} grid sizes for a {box.dim}-d box, got {sizes}")
    if len(ends) != box.dim:
        # (why) zip stopped at the shorter list: a grid of fewer dimensions than the box
        raise ValueError(f"expected a bool or one endpoint flag per axis ({box.dim}), got {ends}")
    axes = []
    for s, lo, hi, end in zip(sizes, box.lower, box.upper, ends):
        _check_n(s)
        if end:  # linspace ends exactly on hi; lo + h (s - 1) can land an ulp outside the box
            axes.append(torch.linspace(lo, hi, s, dtype=torch.float64))
        else:
            axes.append(lo + (hi - lo) / s * torch.arange(s, dtype=torch.float64))
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1).to(dtype)


def resample_by_residual(
    candidates: torch.Tensor,
    residual: torch.Tensor,
    n: int,
    *,
    power: float = 1.0,
    floor: float = 1.0,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` of the ``candidates`` with probability growing with the residual (RAD,
    Wu et al. 2023): ``p_i ∝ |r_i|^power / mean_j |r_j|^power + floor``.

    ``floor`` keeps a share of uniformly drawn points (``floor = 0``: purely by residual,
    large ``floor``: close to uniform). Drawn without replacement when ``n <= len(candidates)``.

    Args:
        candidates: ``(m, d)`` floating-point points, typically a dense uniform or Sobol set.
        residual: ``(m,)`` or ``(m, 1)`` PDE residual at the candidates (detached).
        n: how many points to keep.
        power: the exponent on ``|r_i|``.
        floor: the uniform share added to the normalised weights.
        seed: an integer seed, a ``torch.Generator``, or None for the global generator.

    Returns:
        ``(n, d)``.
    """
    _check_n(n)
    check_float_points("resample_by_residual", "candidates", candidates)
    r = residual.detach().reshape(-1).abs().to(torch.float64)
    if r.shape[0] != candidates.shape[0]:
        raise ValueError(
            f"expected one residual per candidate point, got {r.shape[0]} residuals for "
            f"{candidates.shape[0]} points"
        )
    if not r.shape[0]:
        raise ValueError(
            f"expected at least one candidate point, got candidates {tuple(candidates.shape)}"
        )
    # (why) a nan power or floor passed 'power < 0 or floor < 0': the weights' mean was nan,
    # and the draw fell back to uniform, silently; an infinite floor was refused as weights
    # that are 'not finite and positive; set floor > 0'
    if not (0 <= power < math.inf and 0 <= floor < math.inf):
        raise ValueError(
            f"expected a finite power >= 0 and a finite floor >= 0, got {power} and {floor}"
        )
    finite = torch.isfinite(r)
    if not finite.all():
        # (why) a nan made mean(|r|^power) nan, and the weights fell back to uniform silently
        where = torch.nonzero(~finite).reshape(-1)[:5].tolist()
        raise ValueError(
            f"expected finite residuals, got {int((~finite).sum())} non-finite (at indices "
            f"{where}, at most 5 shown); check the model and the residual for nan / inf "
            "before resampling"
        )
    # (why) the weights depend only on |r_i| / max|r|: |r|^power of 1e-200 underflowed to 0
    # (uniform weights) and of 1e200 overflowed (refused)
    top = r.max()
    w = (r / top if top > 0 else r) ** power
    mean = w.mean()
    w = (w / mean if mean > 0 else torch.zeros_like(w)) + floor
    if not torch.all(torch.isfinite(w)) or w.sum() <= 0:
        raise ValueError("residual weights are not finite and positive; set floor > 0")
    replace = n > candidates.shape[0]
    positive = int((w > 0).sum())
    if not replace and positive < n:
        # (why) torch.multinomial without replacement then fills the draw with weight-0 points
        # (the same ones for every seed), not by residual
        raise ValueError(
            f"only {positive} of the {w.shape[0]} candidates have weight > 0 (floor={floor}), "
            f"fewer than the n={n} points to draw without replacement; set floor > 0 or draw "
            f"fewer points"
        )
    idx = torch.multinomial(w.cpu(), n, replacement=replace, generator=_gen(seed))
    return candidates[idx.to(candidates.device)]
