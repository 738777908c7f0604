"""Subdomain deflation: a piecewise-constant coarse space removed exactly from every iteration.

A sciml extension of the conjugate-direction methods (CG, :class:`FlexibleCG`, DCDM), not part
of the DCDM paper. The unknowns are grouped into aggregates (blocks of ``block^d`` grid cells, or
any labelling); ``Z`` is the ``n x m`` matrix of aggregate indicators and ``E = Z^T A Z`` the
Galerkin coarse matrix (Nicolaides 1987, "Deflation of conjugate gradients with applications to
boundary value problems"). The iteration starts from the coarse solution and keeps every search
direction A-orthogonal to ``range(Z)``:

    x0 += Z E^-1 Z^T r0                       (so Z^T r = 0 from then on)
    p  -= Z E^-1 Z^T A p                      (each new direction, after the k-term recurrence)

With a fixed aggregate size the effective condition number depends on the cells per aggregate,
not on the grid size, so the iteration count of deflated CG stops growing with the grid; a
learned direction (DCDM) then only has to handle the error inside an aggregate, which a network
with a fixed receptive field can. Cost per iteration: one more matvec, one aggregate sum (two
below float64, see :meth:`_Deflator.project`) and two dense triangular solves with the ``m x m``
Cholesky factor of ``E`` (built once per solve).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._scalars import is_int
from ._operator import LinearOperator, null_basis, project_out
from .poisson import Poisson

__all__ = ["Deflation"]


@dataclass(frozen=True, eq=False)
class Deflation:
    """A piecewise-constant coarse space for deflated Krylov methods.

    Pass it as ``FlexibleCG(..., deflation=Deflation(8))`` or
    ``DeepConjugateDirection(model, deflation=Deflation(8))``.

    Args:
        block: cells per aggregate along each axis of the grid (the last aggregate of an axis
            may be smaller). Needs the grid: a Poisson stencil, or ``solve(..., problem=...)``.
        labels: instead of ``block``: the aggregate of every unknown, an ``(n,)`` integer array;
            unknowns labelled ``-1`` are in no aggregate. Works for any matrix.
        max_coarse: refuse coarse spaces larger than this (``E`` is factored dense:
            ``8 m^2`` bytes).
    """

    block: int | None = 8
    labels: np.ndarray | None = None
    max_coarse: int = 16384

    def __post_init__(self) -> None:
        # (why) block=2.5 failed mid-solve in np.ravel_multi_index, True ran as 1
        if self.labels is None and self.block is not None and not is_int(self.block):
            raise TypeError(
                f"block: expected an int >= 1 (cells per aggregate along each axis), or labels, "
                f"got {self.block!r}"
            )
        if not is_int(self.max_coarse):
            raise TypeError(f"max_coarse: expected an int >= 1, got {self.max_coarse!r}")
        if self.max_coarse < 1:
            raise ValueError(f"max_coarse: expected an int >= 1, got {self.max_coarse}")
        object.__setattr__(self, "max_coarse", int(self.max_coarse))
        if is_int(self.block):
            object.__setattr__(self, "block", int(self.block))
        if self.labels is None and (self.block is None or self.block < 1):
            raise ValueError(f"block must be an integer >= 1 (or give labels), got {self.block}")

    def aggregates(
        self, A: LinearOperator, problem: Poisson | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The aggregate of each unknown, ``(n,)`` in ``0 .. m-1`` (-1: none), and for blocks
        each unknown's block coordinates ``(n, d)`` (None for labels); ``problem`` is the grid
        of the unknowns (default: the one ``A`` carries)."""
        coords = None
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != (A.n,) or not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(
                    f"labels: expected an integer array of shape ({A.n},), got "
                    f"{labels.dtype} of shape {labels.shape}"
                )
        else:
            problem = problem if problem is not None else A.problem
            if problem is None:
                raise ValueError(
                    f"Deflation(block={self.block}) needs the grid of the unknowns: give A as a "
                    "Poisson stencil, pass solve(..., problem=...), or give labels instead"
                )
            if problem.n != A.n:
                raise ValueError(
                    f"Deflation: the grid has {problem.n} unknowns but A is {A.n} x {A.n}"
                )
            cells = np.stack(np.nonzero(problem.fluid), axis=1)  # (n, d), C order = unknowns
            coords = cells // self.block
            labels = np.ravel_multi_index(coords.T, _coarse_shape(problem.shape, self.block))
        used = labels >= 0
        ids, inverse = np.unique(labels[used], return_inverse=True)
        out = np.full(A.n, -1, dtype=np.int64)
        out[used] = inverse
        m = int(ids.size)
        if m == 0:
            raise ValueError("Deflation: no unknown is in an aggregate")
        if m > self.max_coarse:
            raise ValueError(
                f"Deflation: {m} aggregates but max_coarse={self.max_coarse} (E is factored "
                f"dense, {8 * m * m / 2**30:.1f} GiB); use a larger block or raise max_coarse"
            )
        return out, coords

    def setup(self, A: LinearOperator, problem: Poisson | None = None) -> _Deflator:
        """Build ``Z`` and the Cholesky factor of ``E = Z^T A Z`` for the operator ``A``.

        ``E`` comes from the assembled matrix when ``A`` has one (SciPy or torch sparse), and
        from ``3^d`` matvecs on ``A``'s device for a matrix-free stencil with block aggregates
        (:func:`probe_coarse_matrix`), so a GPU solve assembles nothing on the CPU.
        """
        labels, coords = self.aggregates(A, problem)
        m = int(labels.max()) + 1
        if coords is not None and A.scipy is None and A.tensor is None:
            E = probe_coarse_matrix(A, labels, coords)
        else:
            try:
                A.to_scipy()  # (kept on A: _galerkin_scipy reads it)
            except TypeError:
                # (why) to_scipy's own message blamed 'this preconditioner'
                raise TypeError(
                    "Deflation(labels=...) needs the assembled matrix to form Z^T A Z: pass A "
                    "as a scipy.sparse matrix, a torch sparse tensor or a Poisson stencil, or "
                    "use block aggregates, Deflation(block), with solve(..., problem=...)"
                ) from None
            E = torch.from_numpy(_galerkin_scipy(A, labels, m)).to(A.device)
        E = 0.5 * (E + E.T)
        # E_ii = z_i^T A z_i is rounding noise when aggregate i is a null vector of A (one
        # aggregate over a whole all-Neumann grid, or over a component an obstacle cuts off); if
        # all are, there is nothing to deflate, and the Cholesky test below would blame A
        tau = _aggregate_scale(A, labels, m)
        # (why) rounding in A's own dtype: a float32 stencil or matrix whose 1 / h^2 is not
        # exact leaves |E_ii| up to 0.9 eps * tau (measured over 800 Neumann grids and
        # spacings), far above 1e-10 * tau: spacing 0.37 was blamed on A again ('not positive
        # semi-definite'), spacing 0.3 deflated the null vector
        tol = max(1e-10, 16 * float(torch.finfo(A.dtype).eps))
        if bool((np.abs(E.diagonal().detach().cpu().numpy()) <= tol * tau).all()):
            raise ValueError(
                f"Deflation: every one of the {m} aggregate(s) is a null-space vector of A "
                "(Z^T A Z is zero up to rounding: e.g. one aggregate covers the whole grid of "
                "an all-Neumann problem), so there is nothing to deflate; use a smaller block "
                "or solve without deflation"
            )
        # a singular A (all-Neumann walls) makes E singular with the same constant null vector;
        # the right-hand sides E sees (Z^T r, Z^T A p) are orthogonal to it, so a tiny shift
        # only adds a multiple of the null vector, which is in A's null space as well
        scale = float(E.diagonal().abs().max())
        E.diagonal().add_(1e-12 * scale)
        L, info = torch.linalg.cholesky_ex(E)
        if int(info) != 0:
            raise ValueError(
                "Deflation: the coarse matrix Z^T A Z is not positive semi-definite, so A is "
                "not symmetric positive (semi-)definite"
            )
        index = torch.from_numpy(labels).to(A.device)
        null = None if A.null_space is None else null_basis(A.null_space, A.device)
        return _Deflator(A, index, m, L, null)


def _aggregate_scale(A: LinearOperator, labels: np.ndarray, m: int) -> np.ndarray:
    """``sum |A_jj|`` over each aggregate: the scale a rounding-level ``E_ii`` is judged against.

    An operator without a diagonal (a ``scipy.sparse.linalg.LinearOperator`` or a bare matvec
    with ``problem=``, whose ``E`` is probed) uses ``||A g|| / ||g||`` for a Gaussian ``g`` per
    unknown instead (one matvec; about the diagonal for a stencil: sqrt(20) against 4 in 2D).
    """
    used = labels >= 0
    try:
        diag = np.abs(A.diagonal().detach().to("cpu", torch.float64).numpy())
    except TypeError:
        # (why) these operators could be deflated before this check existed; asking for the
        # diagonal raised "does not expose its diagonal (needed by Jacobi)"
        g = torch.randn(A.n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        Ag = A(g.to(dtype=A.dtype, device=A.device)).to(torch.float64)
        diag = np.full(A.n, float(torch.linalg.vector_norm(Ag)) / float(g.norm()))
    return np.bincount(labels[used], weights=diag[used], minlength=m)


def _coarse_shape(shape: tuple[int, ...], block: int) -> tuple[int, ...]:
    return tuple(-(-s // block) for s in shape)


def _galerkin_scipy(A: LinearOperator, labels: np.ndarray, m: int) -> np.ndarray:
    """``Z^T A Z`` (dense float64) from the assembled matrix."""
    import scipy.sparse as sp

    used = np.flatnonzero(labels >= 0)
    Z = sp.csr_array((np.ones(used.size), (used, labels[used])), shape=(A.n, m))
    return np.asarray((Z.T @ (A.to_scipy() @ Z)).toarray(), dtype=np.float64)


def probe_coarse_matrix(A: LinearOperator, labels: np.ndarray, coords: np.ndarray) -> torch.Tensor:
    """``E = Z^T A Z`` for block aggregates from ``3^d`` matvecs (on ``A``'s device, in float64
    where ``A`` allows it, see :meth:`LinearOperator.apply64`).

    Colour the blocks by their coordinates modulo 3. ``A`` applied to the indicator of all
    blocks of one colour, summed over each block ``i``, is ``sum_j E[i, j]`` over the blocks
    ``j`` of that colour; when A couples cells at most one block apart (any 5-, 7-, 9- or
    27-point stencil), only blocks within one block of ``i`` in every
    direction are coupled to it, and exactly one of those has each colour, so every entry is
    read off once.

    Args:
        labels: ``(n,)`` block index (0 .. m-1) of every unknown.
        coords: ``(n, d)`` block coordinates of every unknown.
    """
    d = coords.shape[1]
    m = int(labels.max()) + 1
    dev = A.device
    block_coords = np.zeros((m, d), dtype=np.int64)
    block_coords[labels] = coords
    extent = block_coords.max(axis=0) + 2  # room for the +1 neighbours
    colours = np.ravel_multi_index((coords % 3).T, (3,) * d)
    lab = torch.from_numpy(labels).to(dev)
    col = torch.from_numpy(colours).to(dev)
    sums = torch.zeros(3**d, m, dtype=torch.float64, device=dev)
    for c in range(3**d):
        v = (col == c).to(A.dtype)
        if bool(v.any()):
            # (why) in float64 where A has it (a stencil rebuilt from its grid): a float32
            # stencil whose 1 / h^2 is inexact has rows that do not sum to 0, and on an
            # all-Neumann grid E came out indefinite along the constant, beyond the shift
            # below ('A is not SPD' at spacings 0.37, 2.7, 0.015 on 16^2 to 32^3)
            sums[c].index_add_(0, lab, A.apply64(v))
    where = -np.ones(int(np.prod(extent)), dtype=np.int64)
    where[np.ravel_multi_index(block_coords.T, extent)] = np.arange(m)
    rows, cols, cs = [], [], []
    for offset in np.ndindex(*(3,) * d):
        nb = block_coords + (np.asarray(offset) - 1)
        ok = (nb >= 0).all(axis=1)
        j = np.full(m, -1, dtype=np.int64)
        j[ok] = where[np.ravel_multi_index(nb[ok].T, extent)]
        ok &= j >= 0
        rows.append(np.flatnonzero(ok))
        cols.append(j[ok])
        cs.append(np.ravel_multi_index((nb[ok] % 3).T, (3,) * d))
    r, c, k = (torch.from_numpy(np.concatenate(a)).to(dev) for a in (rows, cols, cs))
    E = torch.zeros(m, m, dtype=torch.float64, device=dev)
    E[r, c] = sums[k, r]
    return E


class _Deflator:
    """The set-up coarse space of one solve."""

    def __init__(
        self,
        A: LinearOperator,
        index: torch.Tensor,
        m: int,
        L: torch.Tensor,
        null: torch.Tensor | None = None,
    ) -> None:
        self.A = A
        self.m = m
        self.L = L
        self.null = null  # (k, n) orthonormal null space of a singular A, float64
        self.all = bool((index >= 0).all())
        self.used = None if self.all else torch.nonzero(index >= 0)[:, 0]
        self.index = index if self.all else index[self.used]
        ones = torch.ones(self.index.shape[0], dtype=torch.float64, device=index.device)
        self.sizes = torch.zeros(m, dtype=torch.float64, device=index.device)
        self.sizes.index_add_(0, self.index, ones)  # unknowns per aggregate

    def _coarse(self, v: torch.Tensor) -> torch.Tensor:
        """``E^-1 Z^T v`` (float64)."""
        v = v.to(torch.float64)
        g = torch.zeros(self.m, dtype=torch.float64, device=v.device)
        g.index_add_(0, self.index, v if self.all else v[self.used])
        return torch.cholesky_solve(g[:, None], self.L)[:, 0]

    def _prolong(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``Z y`` as a vector like ``like``, less its null-space component (if A is singular)."""
        if self.all:
            c = y[self.index]
        else:
            c = torch.zeros(like.shape, dtype=torch.float64, device=like.device)
            c[self.used] = y[self.index]
        if self.null is not None:
            # the shifted singular E amplifies the rounding-level null component of Z^T r by
            # 1e12 into a large constant in y, which swamped a float32 correction; it is in A's
            # null space, so removing it (in float64) changes no residual
            c = project_out(c, self.null)
        return c.to(like.dtype)

    def start(self, x: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x + Z E^-1 Z^T r`` and its residual (orthogonal to every aggregate)."""
        c = self._prolong(self._coarse(r), x)
        return x + c, r - self.A(c)

    def project(self, d: torch.Tensor, Ad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``d - Z E^-1 Z^T A d`` and A times it (A-orthogonal to every aggregate), the latter
        below float64 less its aggregate means, which are rounding:
        ``Z^T A (d - Z E^-1 Z^T A d) = 0``."""
        c = self._prolong(self._coarse(Ad), d)
        Ad = Ad - self.A(c)
        # in float64 the rounding left in Z^T A d is ~1e-16, below any rtol the iteration
        # reaches, and the sums cost 1.3-1.8x a float32 matvec on the CPU (256^2, 64^3)
        return d - c, Ad if Ad.dtype == torch.float64 else self._zero_sums(Ad)

    def _zero_sums(self, v: torch.Tensor) -> torch.Tensor:
        """``v`` less its mean on each aggregate (in float64), so that ``Z^T v = 0``.

        (why) Every residual update ``r -= alpha A d`` should keep ``Z^T r = 0``, and the
        deflated directions cannot reduce a ``Z^T r`` that rounding left: in float32 it built
        up until the updated residual levelled off (1.1e-7 on 64^2 at rtol 1e-7, 172 iterations
        to a window stagnation at a true residual of 1.2e-6; with this and the re-deflation
        at residual replacement, 84 iterations to 5.8e-7)."""
        w = v.to(torch.float64)
        part = w if self.all else w[self.used]
        sums = torch.zeros(self.m, dtype=torch.float64, device=v.device)
        sums.index_add_(0, self.index, part)
        part = part - (sums / self.sizes)[self.index]
        if self.all:
            return part.to(v.dtype)
        w = w.clone()
        w[self.used] = part
        return w.to(v.dtype)
