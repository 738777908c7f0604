"""Discrete Poisson operators on 2D / 3D grids: CSR matrices and a matrix-free stencil.

The grid has ``shape = (n_1, ..., n_d)`` cells (d = 2 or 3). Cells where ``solid`` is True are
not unknowns; the ``n`` fluid cells are the unknowns, numbered in C order of the grid. The
operator is the negative Laplacian with unit spacing (a spacing h divides it by ``h**2``)::

    (A x)_i = sum_{j ~ i, j fluid} (x_i - x_j) + (#Dirichlet faces of i) * x_i

i.e. the 5-point (2D) / 7-point (3D) stencil. With one spacing ``h_a`` per axis (an anisotropic
grid) each term along axis ``a``, a coupling or a Dirichlet face, is divided by ``h_a**2``::

    (A u)_c = sum_a [ (2 u_c - u_{c - e_a} - u_{c + e_a}) / h_a**2 ]    (interior cell c)

A neighbour outside the domain is a wall: a Dirichlet wall (value 0 outside) adds 1 to the
diagonal, a Neumann wall (zero flux) adds nothing. A solid neighbour is always a Neumann wall
(zero flux through the solid), as in the pressure projection of incompressible flow. With Dirichlet walls on both ends of every axis and no solid
cells this is the Kronecker sum of the 1D matrices ``tridiag(-1, 2, -1)``.

When no wall is Dirichlet the matrix is singular with the constant vector (on each connected fluid
region) as its null space; :attr:`Poisson.null_space` returns it and the solvers project it out.
"""

from __future__ import annotations

import enum
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._scalars import is_int, is_real
from ._tf32 import conv_tf32

__all__ = ["Wall", "Poisson", "poisson", "StencilOperator"]


class Wall(enum.Enum):
    """Boundary condition on a face of the domain."""

    DIRICHLET = "dirichlet"
    NEUMANN = "neumann"


WallSpec = Wall | Sequence[Wall] | Sequence[Sequence[Wall]]


def _walls(spec: WallSpec, dim: int) -> tuple[tuple[Wall, Wall], ...]:
    """Normalise a wall spec to ((lo, hi),) * dim."""
    if isinstance(spec, Wall):
        return tuple((spec, spec) for _ in range(dim))
    # (why) a string was split into its letters ("got ('d', 'i', 'r', ...)"), None failed
    # with "'NoneType' object is not iterable"
    kinds = "Wall.DIRICHLET or Wall.NEUMANN"
    if isinstance(spec, str) or not isinstance(spec, Iterable):
        raise TypeError(f"walls: expected {kinds}, or one (lo, hi) pair per axis, got {spec!r}")
    spec = tuple(spec)
    if len(spec) != dim:
        raise ValueError(
            f"walls: expected one Wall, or one (lo, hi) pair per axis ({dim} pairs), got {spec!r}"
        )
    out = []
    for axis, pair in enumerate(spec):
        if isinstance(pair, Wall):
            pair = (pair, pair)
        if isinstance(pair, str) or not isinstance(pair, Iterable):
            raise TypeError(f"walls[{axis}]: expected {kinds}, or a (lo, hi) pair, got {pair!r}")
        pair = tuple(pair)
        if len(pair) != 2 or not all(isinstance(w, Wall) for w in pair):
            raise ValueError(
                f"walls[{axis}]: expected {kinds}, or a (lo, hi) pair of them, got {pair!r}"
            )
        out.append(pair)
    return tuple(out)


@dataclass(frozen=True, eq=False)
class Poisson:
    """A discrete Poisson problem on a grid; build with :func:`poisson`.

    Attributes:
        shape: grid cells per axis, ``(n_1, ..., n_d)``.
        walls: ``((lo, hi), ...)`` boundary condition per axis.
        fluid: boolean array of ``shape``, True where the cell is an unknown.
        spacing: grid spacing h, the matrix scaled by ``1 / h**2``; or a tuple ``(h_1, ...,
            h_d)``, one per axis, each axis's couplings and Dirichlet faces scaled by
            ``1 / h_a**2``.
    """

    shape: tuple[int, ...]
    walls: tuple[tuple[Wall, Wall], ...]
    fluid: np.ndarray
    spacing: float | tuple[float, ...] = 1.0

    @property
    def dim(self) -> int:
        """Number of spatial dims ``d``, ``len(shape)``."""
        return len(self.shape)

    @property
    def n(self) -> int:
        """Number of unknowns (fluid cells)."""
        return int(self.fluid.sum())

    @property
    def singular(self) -> bool:
        """True when no wall is Dirichlet (the constant vector is in the null space)."""
        return all(w is Wall.NEUMANN for pair in self.walls for w in pair)

    def _spacings(self) -> tuple[float, ...]:
        """The spacing of each axis, ``(h_1, ..., h_d)``."""
        if isinstance(self.spacing, tuple):
            return self.spacing
        return (self.spacing,) * self.dim

    def _axis_groups(self) -> list[tuple[float, list[int]]]:
        """``(h, axes)`` for each distinct spacing, in axis order: the terms of one spacing
        are summed before the division by ``h**2``, so a scalar spacing (or a tuple of equal
        ones) rounds as it always has."""
        groups: dict[float, list[int]] = {}
        for axis, h in enumerate(self._spacings()):
            groups.setdefault(h, []).append(axis)
        return list(groups.items())

    def _unit_counts(self) -> list[np.ndarray]:
        """Per axis, each cell's fluid neighbours plus Dirichlet faces along that axis (its
        diagonal at unit spacing), float64 arrays of ``shape`` (solid cells not zeroed)."""
        padded = np.pad(self.fluid, 1, constant_values=False)
        counts = []
        for axis in range(self.dim):
            diag = np.zeros(self.shape)
            for side, step in ((0, -1), (1, 1)):
                neighbour = np.roll(padded, -step, axis=axis)[
                    tuple(slice(1, -1) for _ in range(self.dim))
                ]
                diag += neighbour
                if self.walls[axis][side] is Wall.DIRICHLET:
                    edge = [slice(None)] * self.dim
                    edge[axis] = 0 if side == 0 else -1
                    diag[tuple(edge)] += 1.0
            counts.append(diag)
        return counts

    def diagonal(self) -> np.ndarray:
        """Diagonal of A on the grid (0 in solid cells), float64 array of ``shape``."""
        counts = self._unit_counts()
        diag = np.zeros(self.shape)
        for h, axes in self._axis_groups():
            diag = diag + sum(counts[a] for a in axes) / h**2
        return np.where(self.fluid, diag, 0.0)

    @property
    def null_space(self) -> np.ndarray | None:
        """Unit vectors spanning the null space, ``(k, n)``, one per connected fluid region; or
        None when a Dirichlet wall makes A nonsingular (each region touching a Dirichlet wall
        is nonsingular, a region that does not is counted)."""
        from scipy import ndimage

        labels, count = ndimage.label(self.fluid)
        labels = labels[self.fluid]
        # a region is singular when no cell of it has a Dirichlet contribution: its unit-spacing
        # diagonal (whole numbers, exact) is its fluid degree
        diag = sum(self._unit_counts())[self.fluid]
        deg = self._fluid_degree()[self.fluid]
        vectors = []
        for k in range(1, count + 1):
            region = labels == k
            if np.array_equal(diag[region], deg[region]):
                v = region.astype(np.float64)
                vectors.append(v / np.linalg.norm(v))
        return np.stack(vectors) if vectors else None

    def _fluid_degree(self) -> np.ndarray:
        padded = np.pad(self.fluid, 1, constant_values=False).astype(np.float64)
        inner = tuple(slice(1, -1) for _ in range(self.dim))
        deg = np.zeros(self.shape)
        for axis in range(self.dim):
            for step in (-1, 1):
                deg += np.roll(padded, step, axis=axis)[inner]
        return deg

    def to_scipy(self):
        """A as a ``scipy.sparse.csr_array`` of shape ``(n, n)``, float64."""
        import scipy.sparse as sp

        index = -np.ones(self.shape, dtype=np.int64)
        index[self.fluid] = np.arange(self.n)
        rows, cols, vals = [], [], []
        for axis, h in enumerate(self._spacings()):
            lo = [slice(None)] * self.dim
            hi = [slice(None)] * self.dim
            lo[axis] = slice(0, -1)
            hi[axis] = slice(1, None)
            a, b = index[tuple(lo)], index[tuple(hi)]
            both = (a >= 0) & (b >= 0)
            rows += [a[both], b[both]]
            cols += [b[both], a[both]]
            vals.append(np.full(2 * int(both.sum()), -1.0 / h**2))
        rows = np.concatenate(rows)
        cols = np.concatenate(cols)
        off = sp.coo_array((np.concatenate(vals), (rows, cols)), shape=(self.n, self.n))
        # (why) the diagonal as COO entries, not sp.diags_array, which SciPy 1.11 added
        # (pyproject.toml allows 1.10)
        i = np.arange(self.n)
        diag = sp.coo_array((self.diagonal()[self.fluid], (i, i)), shape=(self.n, self.n))
        return (off + diag).tocsr()

    def to_torch(
        self, *, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        """A as a torch sparse CSR tensor of shape ``(n, n)``."""
        a = self.to_scipy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            return torch.sparse_csr_tensor(
                torch.from_numpy(a.indptr.astype(np.int64)),
                torch.from_numpy(a.indices.astype(np.int64)),
                torch.from_numpy(a.data),
                size=a.shape,
            ).to(dtype=dtype, device=device)

    def stencil(
        self, *, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> StencilOperator:
        """A as a matrix-free :class:`StencilOperator` (a convolution)."""
        return StencilOperator(self, dtype=dtype, device=device)

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Scatter vectors ``(..., n)`` to grids ``(..., *shape)`` with zeros in solid cells."""
        mask = torch.as_tensor(self.fluid, device=x.device)
        if bool(self.fluid.all()):
            return x.reshape(*x.shape[:-1], *self.shape)
        out = x.new_zeros(*x.shape[:-1], *self.shape)
        out[..., mask] = x
        return out

    def from_grid(self, u: torch.Tensor) -> torch.Tensor:
        """Gather grids ``(..., *shape)`` to vectors ``(..., n)`` (fluid cells, C order)."""
        if bool(self.fluid.all()):
            return u.reshape(*u.shape[: u.dim() - self.dim], -1)
        mask = torch.as_tensor(self.fluid, device=u.device)
        return u[..., mask]


def poisson(
    shape: Sequence[int],
    *,
    walls: WallSpec = Wall.NEUMANN,
    solid: np.ndarray | torch.Tensor | None = None,
    spacing: float | Sequence[float] = 1.0,
) -> Poisson:
    """Describe the 5-point (2D) or 7-point (3D) Poisson problem on a grid.

    Args:
        shape: cells per axis, 2 or 3 entries.
        walls: one :class:`Wall` for every face, or a ``(lo, hi)`` pair (or one Wall) per axis.
        solid: optional boolean mask of ``shape``, True in solid (obstacle) cells; they are not
            unknowns and their faces are Neumann walls.
        spacing: grid spacing h (A is scaled by 1 / h**2), or one per axis ``(h_1, ...,
            h_d)`` for an anisotropic grid (each axis's terms scaled by ``1 / h_a**2``).

    Example:
        >>> P = poisson((32, 32, 32), walls=Wall.NEUMANN)
        >>> A = P.to_scipy()                       # (32768, 32768) csr_array
        >>> op = P.stencil()                       # same matvec, as a convolution
    """
    # (why) int() truncated: (4.7, 4) built a 4 x 4 grid, (True, 4) a 1 x 4 one
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Iterable):
        raise TypeError(f"shape: expected 2 or 3 ints (cells per axis), got {shape!r}")
    shape = tuple(shape)
    if not all(is_int(s) for s in shape):
        raise TypeError(f"shape: expected 2 or 3 ints (cells per axis), got {shape!r}")
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"shape: expected 2 or 3 positive sizes, got {shape}")
    if solid is None:
        fluid = np.ones(shape, dtype=bool)
    else:
        solid = solid.cpu().numpy() if isinstance(solid, torch.Tensor) else np.asarray(solid)
        if solid.shape != shape:
            raise ValueError(f"solid: expected a mask of shape {shape}, got {solid.shape}")
        fluid = ~solid.astype(bool)
        if not fluid.any():
            raise ValueError("solid: every cell is solid, so there are no unknowns")
    return Poisson(shape, _walls(walls, len(shape)), fluid, _spacing(spacing, len(shape)))


def _spacing(spacing: Any, dim: int) -> float | tuple[float, ...]:
    """A checked spacing: a float, or a tuple of ``dim`` floats (one per axis)."""
    # (why) a per-axis tuple was refused as 'spacing: expected a finite number > 0'
    if isinstance(spacing, Iterable) and not isinstance(spacing, (str, bytes)):
        given = tuple(spacing)
        if len(given) != dim:
            raise ValueError(
                f"spacing: expected one number, or one per axis ({dim} numbers for a "
                f"{dim}-D grid), got {len(given)}: {spacing!r}"
            )
        return tuple(_one_spacing(h, f"spacing[{axis}]", dim) for axis, h in enumerate(given))
    return _one_spacing(spacing, "spacing", dim)


def _one_spacing(h: Any, name: str, dim: int) -> float:
    # (why) NaN passed 'spacing <= 0' (a NaN matrix), inf gave a zero matrix, True ran as 1.0
    if not is_real(h):
        raise TypeError(f"{name}: expected a finite number > 0, got {h!r}")
    if not 0 < h < math.inf:
        raise ValueError(f"{name}: expected a finite number > 0, got {h!r}")
    # (why) A is scaled by 1 / h^2: spacing=1e-200 passed and every matrix failed with Python's
    # 'float division by zero' (h^2 underflows to 0), 1e200 with 'Numerical result out of range'
    if not _in_range(h, dim, torch.float64):
        raise ValueError(
            f"{name}: expected a spacing h whose 1 / h^2 (the scale of A) keeps A's entries "
            f"normal float64 numbers, about 1e-154 < h < 1e154, got {h!r}"
        )
    return float(h)


def _in_range(h: float, dim: int, dtype: torch.dtype) -> bool:
    """Whether ``1 / h^2`` and the largest entry of A, ``2 dim / h^2`` (Dirichlet walls on every
    side), are normal numbers of ``dtype`` (of its real part, for a complex one). Checked per
    axis for a per-axis spacing, it bounds A's largest entry ``sum_a 2 / h_a^2`` too."""
    try:
        square = float(h) ** 2
    except OverflowError:
        return False
    if not square > 0.0:
        return False
    scale = 1.0 / square
    info = torch.finfo(dtype.to_real() if dtype.is_complex else dtype)
    return info.tiny <= scale and 2 * dim * scale <= info.max


class StencilOperator:
    """Matrix-free Poisson matvec as a convolution; runs wherever torch runs (CPU, CUDA).

    ``op(x)`` with ``x: (n,)`` or ``(batch, n)`` returns ``A x`` of the same shape;
    ``op.grid_matvec(u)`` works on grids ``(batch, *shape)`` with zeros in solid cells::

        (A u) = diag * u - conv(u, K)      K: the 3^d kernel with ones at the 2d face neighbours

    The neighbour sum only sees fluid values because solid cells hold zeros and the domain is
    zero-padded; Dirichlet and Neumann walls differ only in ``diag``.
    """

    def __init__(
        self,
        problem: Poisson,
        *,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
        conv: bool | None = None,
    ) -> None:
        if not isinstance(dtype, torch.dtype) or not (dtype.is_floating_point or dtype.is_complex):
            # (why) an integer stencil truncated 1 / h^2 (spacing 0.3: 11, not 11.1) and its
            # solve failed in torch.finfo
            raise TypeError(
                f"dtype: expected a floating dtype such as torch.float64, got {dtype!r}"
            )
        if not all(_in_range(h, problem.dim, dtype) for h in problem._spacings()):
            # (why) a float32 stencil at spacing 1e-20 (1 / h^2 = 1e40) failed in its first
            # matvec with torch's 'value cannot be converted to type float without overflow', at
            # 1e-19 its diagonal was inf (NOT_SPD), at 1e20 subnormal (Jacobi's 1 / d was inf)
            raise ValueError(
                f"dtype: A's entries at spacing {_spacing_text(problem.spacing)} (1 / h^2 to "
                "2 dim / h^2) "
                f"are outside the normal range of {str(dtype).removeprefix('torch.')}; use "
                "torch.float64"
            )
        self.problem = problem
        self.shape = (problem.n, problem.n)
        self.dtype = dtype
        self.device = torch.device(device)
        d = problem.dim
        kernel = torch.zeros((3,) * d, dtype=dtype)
        for axis, h in enumerate(problem._spacings()):
            for k in (0, 2):
                idx = [1] * d
                idx[axis] = k
                kernel[tuple(idx)] = 1.0 / h**2
        self._kernel = kernel.reshape(1, 1, *kernel.shape).to(self.device)
        self._diag = torch.as_tensor(problem.diagonal(), dtype=dtype, device=self.device)
        self._mask = torch.as_tensor(problem.fluid, dtype=dtype, device=self.device)
        self._conv = F.conv2d if d == 2 else F.conv3d
        # cuDNN runs the 3^d convolution fast; on CPU a single-channel convolution is slow and the
        # same neighbour sum from 2d shifted slices of the padded grid is several times faster.
        self._conv_choice = None if conv is None else bool(conv)

    @property
    def use_conv(self) -> bool:
        """Whether the neighbour sum is a convolution: the ``conv=`` given (or set here), else
        on CUDA only. :meth:`to` keeps a choice made, and chooses again by device otherwise."""
        return self.device.type == "cuda" if self._conv_choice is None else self._conv_choice

    @use_conv.setter
    def use_conv(self, value: bool) -> None:
        self._conv_choice = bool(value)

    @property
    def null_space(self) -> np.ndarray | None:
        """The problem's null-space basis, ``(k, n)`` unit vectors, or None (see
        :attr:`Poisson.null_space`)."""
        return self.problem.null_space

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> StencilOperator:
        """The same operator on another device / in another dtype; an explicit ``conv=`` is
        kept, a default one is chosen again for the new device."""
        # (why) conv was not passed on: StencilOperator(P, conv=True).to(dtype=torch.float32)
        # went back to the shift sum on the CPU
        return StencilOperator(
            self.problem,
            dtype=dtype or self.dtype,
            device=device or self.device,
            conv=self._conv_choice,
        )

    def diagonal(self) -> torch.Tensor:
        """Diagonal of A as a vector ``(n,)``."""
        return self.problem.from_grid(self._diag)

    def grid_matvec(self, u: torch.Tensor) -> torch.Tensor:
        """``A u`` for grids ``u: (batch, *shape)`` (solid cells must hold 0); same shape out."""
        # cuDNN may run a float32 convolution in TF32 (10-bit mantissa, about 1e-3 relative
        # error in A u), and torch allows that by default; a Krylov solve needs the matvec to
        # float32 precision, so float32 on CUDA takes the shift sum unless TF32 is turned off.
        tf32 = u.is_cuda and u.dtype == torch.float32 and conv_tf32()
        if self.use_conv and not tf32:
            nb = self._conv(u.unsqueeze(1), self._kernel.to(u.dtype), padding=1).squeeze(1)
        else:
            nb = self._shift_sum(u)  # (batch, *shape)
        return (self._diag.to(u.dtype) * u - nb) * self._mask.to(u.dtype)

    def _shift_sum(self, u: torch.Tensor) -> torch.Tensor:
        """The neighbour sum ``sum_a (u_{c - e_a} + u_{c + e_a}) / h_a**2``."""
        d = self.problem.dim
        p = F.pad(u, (1, 1) * d)
        inner = [slice(None)] + [slice(1, -1)] * d
        out = None
        for h, axes in self.problem._axis_groups():
            total = None
            for axis in axes:
                for sl in (slice(None, -2), slice(2, None)):
                    idx = list(inner)
                    idx[axis + 1] = sl
                    term = p[tuple(idx)]
                    total = term if total is None else total + term
            total = total / h**2
            out = total if out is None else out + total
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for ``x: (n,)`` or ``(batch, n)``."""
        if x.shape[-1] != self.problem.n:
            raise ValueError(
                f"expected a vector with {self.problem.n} entries (the fluid cells), "
                f"got shape {tuple(x.shape)}"
            )
        squeeze = x.dim() == 1
        u = self.problem.to_grid(x.reshape(-1, x.shape[-1]))
        y = self.problem.from_grid(self.grid_matvec(u))
        return y[0] if squeeze else y

    matvec = __call__


def _spacing_text(spacing: float | tuple[float, ...]) -> str:
    if isinstance(spacing, tuple):
        return "(" + ", ".join(f"{h:g}" for h in spacing) + ")"
    return f"{spacing:g}"
