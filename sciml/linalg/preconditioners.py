"""Preconditioners for :class:`~sciml.linalg.PCG` and :class:`~sciml.linalg.FlexibleCG`:
Jacobi, symmetric Gauss-Seidel and algebraic multigrid (pyamg)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._operator import LinearOperator, null_basis, project_out

__all__ = ["Preconditioner", "Jacobi", "SymmetricGaussSeidel", "AMG"]


class Preconditioner:
    """A preconditioner: ``setup(A)`` returns ``z = M^{-1} r`` for ``r: (n,)``."""

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        """Prepare the preconditioner for ``A`` (called once per solve, timed as ``setup_s``).

        Args:
            A: the system matrix.

        Returns:
            The function ``r -> z = M^{-1} r`` for residuals ``r: (n,)``, giving ``z: (n,)`` in
            ``r``'s dtype and on its device.
        """
        raise NotImplementedError


def _check_diagonal(d: np.ndarray, name: str) -> None:
    """Refuse a diagonal entry that is not > 0 (both preconditioners divide by it: a zero gave
    inf, then NaN iterates), naming the first such row."""
    bad = np.flatnonzero(~(d > 0))
    if bad.size:
        i = int(bad[0])
        more = f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""
        if d[i] == 0:
            what = (
                "a zero diagonal is an unknown that nothing couples to (e.g. a fluid cell "
                "enclosed by solid cells): remove it from the system, or use CG() or PCG(AMG()), "
                "which do not divide by the diagonal"
            )
        else:
            what = "A is not SPD (is its sign flipped, -A?); CG-type methods need an SPD A"
        raise ValueError(
            f"{name}: expected a positive diagonal (A symmetric positive definite), got "
            f"A[{i}, {i}] = {float(d[i]):.3g}{more}; {what}"
        )


@dataclass(frozen=True)
class Jacobi(Preconditioner):
    """``z = D^{-1} r`` with D the diagonal of A."""

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        """Invert the diagonal of ``A`` once; the returned ``r -> D^{-1} r`` maps ``(n,)`` to
        ``(n,)`` on ``A``'s device.

        Raises:
            TypeError: ``A`` does not expose its diagonal (see :meth:`LinearOperator.diagonal`).
            ValueError: a diagonal entry is not ``> 0``; the message names the first such row.
        """
        d = A.diagonal().to(device=A.device, dtype=A.dtype)
        # (why) in float64: NumPy has no bfloat16, and a bfloat16 stencil failed here with
        # 'Got unsupported ScalarType BFloat16'
        _check_diagonal(d.detach().cpu().double().numpy(), "Jacobi")
        inv = 1.0 / d
        return lambda r: inv.to(r.dtype) * r


@dataclass(frozen=True)
class SymmetricGaussSeidel(Preconditioner):
    """Symmetric Gauss-Seidel: ``M = (D + L) D^{-1} (D + U)``, one forward and one backward
    triangular sweep per application (SciPy, on the CPU)."""

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        """Split the assembled ``A`` into its triangles ``D + L`` and ``D + U``; the returned
        ``r -> M^{-1} r`` maps ``(n,)`` to ``(n,)`` by two SciPy triangular solves in float64 on
        the CPU, cast back to ``r``'s dtype and device.

        Raises:
            TypeError: the matrix of ``A`` is not available (see
                :meth:`LinearOperator.to_scipy`).
            ValueError: a diagonal entry is not ``> 0``; the message names the first such row.
        """
        import scipy.sparse as sp
        from scipy.sparse.linalg import spsolve_triangular

        a = A.to_scipy()
        lower = sp.tril(a, format="csr")
        upper = sp.triu(a, format="csr")
        d = a.diagonal()
        _check_diagonal(d, "SymmetricGaussSeidel")

        def apply(r: torch.Tensor) -> torch.Tensor:
            y = spsolve_triangular(lower, r.detach().cpu().double().numpy(), lower=True)
            z = spsolve_triangular(upper, d * y, lower=False)
            return torch.from_numpy(z).to(device=r.device, dtype=r.dtype)

        return apply


_CYCLES = ("V", "W", "F", "AMLI")


@dataclass(frozen=True)
class AMG(Preconditioner):
    """One V-cycle of smoothed-aggregation algebraic multigrid (pyamg, optional extra) with
    symmetric Gauss-Seidel smoothing, so the preconditioner is SPD. The hierarchy is built at
    the start of every solve (``SolveResult.setup_s`` reports the time).

    Args:
        cycle: pyamg's cycle type, one cycle per application: ``"V"`` (the default), ``"W"``,
            ``"F"`` or ``"AMLI"``.
    """

    cycle: str = "V"

    def __post_init__(self) -> None:
        # (why) pyamg reads the cycle only in a multilevel cycle: 'X' failed mid-solve there
        # ("Unrecognized cycle type") and ran silently where the hierarchy had one level
        if not isinstance(self.cycle, str) or self.cycle.upper() not in _CYCLES:
            raise ValueError(
                f"cycle: expected one of 'V', 'W', 'F', 'AMLI' (pyamg's cycle types), got "
                f"{self.cycle!r}"
            )

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        """Build pyamg's smoothed-aggregation hierarchy of the assembled ``A`` (constant
        near-null-space vector). Where A is singular with the constant on some connected part
        of it (an all-Neumann grid or region), the coarsest solve is the exact inverse on the
        complement of that null space and 0 along it, so the cycle stays positive
        semi-definite; the returned ``r -> M^{-1} r`` maps ``(n,)`` to ``(n,)`` by one
        ``cycle`` in float64 on the CPU, cast back to ``r``'s dtype and device.

        Raises:
            ImportError: pyamg is not installed.
            TypeError: the matrix of ``A`` is not available (see
                :meth:`LinearOperator.to_scipy`).
        """
        try:
            import pyamg
        except ImportError:
            raise ImportError(
                "AMG needs pyamg: pip install 'sciml[amg]' (or pip install pyamg)"
            ) from None
        a = A.to_scipy()
        negative = np.flatnonzero(a.diagonal() < 0)
        if negative.size:
            # (why) pyamg built a negative definite cycle for -A, and the solve ended NOT_SPD
            # with "r.Mr = -7.4 <= 0: the preconditioner is not SPD", blaming the preconditioner;
            # zeros are taken (an unknown coupled to nothing, see _check_diagonal)
            i = int(negative[0])
            more = f" (and {negative.size - 1} more rows)" if negative.size > 1 else ""
            raise ValueError(
                f"AMG: expected a diagonal >= 0 (A symmetric positive semi-definite), got "
                f"A[{i}, {i}] = {float(a.diagonal()[i]):.3g}{more}; A is not SPD (is its sign "
                "flipped, -A?); CG-type methods need an SPD A"
            )
        if a.dtype != np.float64:
            # (why) the cycle runs in float64 (below), and pyamg refuses a float32 hierarchy
            # with a float64 vector: a float32 SciPy matrix raised its TypeError ('arguments
            # A, x, and b must have the same dtype')
            a = a.astype(np.float64)
        ml = pyamg.smoothed_aggregation_solver(
            a,
            B=np.ones((a.shape[0], 1)),
            presmoother=("gauss_seidel", {"sweep": "symmetric"}),
            postsmoother=("gauss_seidel", {"sweep": "symmetric"}),
        )
        # (why) pyamg's coarse solve is pinv with SciPy's cutoff (about n eps of the largest
        # eigenvalue): of a singular A's coarse matrix it kept the rounding-level eigenvalue of
        # the constant in about 1 setup in 3 (pyamg's setup is random) and amplified a residual's
        # null-space part by ~1e16, so on a bare all-Neumann matrix with b outside its range
        # PCG(AMG()) ended NOT_SPD at iteration 0 (r.Mr = -3.8e15 on 10x11) where CG stagnates
        null = _coarse_null_space(ml, a)
        if null is not None:
            ml.coarse_solver = pyamg.multilevel.coarse_grid_solver(
                _semidefinite_solve(ml.levels[-1].A, null)
            )
        m = ml.aspreconditioner(cycle=self.cycle)
        null = None if A.null_space is None else null_basis(A.null_space, torch.device("cpu"))

        def apply(r: torch.Tensor) -> torch.Tensor:
            z = torch.from_numpy(np.ascontiguousarray(m.matvec(r.detach().cpu().double().numpy())))
            if null is not None:
                # (why) on a singular A the cycle amplifies the rounding-level null-space part
                # of r (the coarse solve of a singular coarse matrix): z's null-space part was
                # up to 1.4e8 times the rest for float32-rounded residuals (38 Neumann grids with
                # obstacles). Rounded to float32 with it, the rest was lost: float32 PCG(AMG())
                # ended NOT_SPD on 0-4 of those 38 grids per run (pyamg's setup is random), some
                # at iteration 1 with x = 0. In float64 too, r's rounding-level constant part
                # times it made r.Mr or p.Ap <= 0 once r was small (NOT_SPD on 4 of 30 random
                # Neumann grids at rtol 1e-10). Removed here in float64, before the cast (here,
                # not in PCG for every preconditioner: that cost 1.2x (float64) to 1.7x
                # (float32) per PCG(Jacobi()) iteration on the CPU, 384^2 and 64^3, for float32
                # Jacobi iteration counts within 1% at rtol 1e-4 to 1e-6)
                z = project_out(z, null)
            return z.to(device=r.device, dtype=r.dtype)

        return apply


#: max |A w| / max (|A| |w|) at or below which the prolonged coarse constant w of a connected
#: part of the coarsest matrix is a null vector of A. Measured, 3 setups each of 40 grids (10x11
#: to 256^2 and 48x40x32, with and without 10% random obstacles, spacing 1 and (1, 0.01, 1)):
#: rounding leaves at most 1.4e-15 on all-Neumann ones, a part touching a Dirichlet wall 3.9e-3
#: or more
_NULL_RATIO = 1e-11


def _coarse_null_space(ml, a) -> np.ndarray | None:
    """Orthonormal rows spanning the null space of the coarsest matrix of ``ml`` that comes
    from a null space of ``a`` (the constant of a connected part), or None.

    Smoothed aggregation keeps pyamg's candidate B (the constant) exactly: ``P B_c = B`` where
    ``A B = 0``, so ``B_c`` restricted to a connected part of the coarsest matrix is a null
    vector of it exactly when its prolongation is one of ``a``; that is tested on the fine grid,
    where rounding cannot pass for an eigenvalue (on the coarsest matrix it can: a 1 x 1 one
    holds only rounding).
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    coarse = sp.csr_matrix(ml.levels[-1].A)
    coarse.eliminate_zeros()
    count, labels = connected_components(coarse, directed=False)
    b = np.asarray(ml.levels[-1].B, dtype=np.float64)[:, 0]
    w = sp.csc_matrix((b, (np.arange(b.size), labels)), shape=(b.size, count))  # (n_c, parts)
    for level in reversed(ml.levels[:-1]):
        w = sp.csc_matrix(level.P @ w)  # (n_fine, parts)
    a = sp.csr_matrix(a)
    residual = sp.csc_matrix(a @ w)
    scale = sp.csc_matrix(abs(a) @ abs(w))
    null = [
        part
        for part in range(count)
        if _column_max(residual, part) <= _NULL_RATIO * _column_max(scale, part)
    ]
    if not null:
        return None
    basis = np.zeros((len(null), b.size))
    for row, part in enumerate(null):
        basis[row, labels == part] = b[labels == part]
        basis[row] /= np.linalg.norm(basis[row])
    return basis


def _column_max(m, j: int) -> float:
    """``max |m[:, j]|`` of a CSC matrix (0 for an empty column)."""
    values = m.data[m.indptr[j] : m.indptr[j + 1]]
    return float(np.abs(values).max()) if values.size else 0.0


def _semidefinite_solve(coarse, null: np.ndarray) -> Callable[..., np.ndarray]:
    """pyamg's coarse solve ``(A_c, b) -> x`` for a singular coarsest matrix with the null
    space ``null`` (``Z``, orthonormal rows): the inverse of ``A_c + lambda Z^T Z``, with lambda
    the largest eigenvalue of A_c. It is A_c's inverse off the null space (the pseudo-inverse,
    its null space given rather than guessed from rounding) and ``1 / lambda`` along it, so the
    cycle is SPD even where it is the coarse solve alone (a matrix of 10 unknowns or fewer)."""
    import scipy.linalg

    dense = coarse.toarray() if hasattr(coarse, "toarray") else np.asarray(coarse)
    complement = scipy.linalg.null_space(null)  # (n_c, n_c - k), orthonormal columns
    values, vectors = np.linalg.eigh(complement.T @ dense @ complement)  # nonsingular
    top = float(values[-1]) if values.size and values[-1] > 0 else 1.0
    basis = np.concatenate([complement @ vectors, null.T], axis=1)  # (n_c, n_c)
    scales = np.concatenate([values, np.full(len(null), top)])
    # (why) an exact 0 (a null vector the test above did not find) is left out, as pinv does
    inverse = (
        basis * np.divide(1.0, scales, out=np.zeros_like(scales), where=scales != 0)
    ) @ basis.T

    def solve(_A, b: np.ndarray) -> np.ndarray:
        return inverse @ b

    return solve
