"""One matvec interface over SciPy sparse matrices, torch sparse / dense tensors and stencils."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .poisson import Poisson, StencilOperator

__all__ = ["LinearOperator", "as_operator"]


class LinearOperator:
    """What the solvers see: ``matvec(x: (n,)) -> (n,)`` on torch tensors, plus what is known.

    Attributes:
        n: size of the square system.
        dtype, device: where the iteration runs.
        problem: the :class:`Poisson` grid behind the matrix, if known (lets a learned solver
            map vectors to grids).
        null_space: ``(k, n)`` orthonormal null-space basis, or None.
        scipy: the matrix as ``scipy.sparse`` CSR, if available without assembling.
        matvec64: ``A x`` with x, A's entries and the sums in float64, for an A in a lower
            precision (see :meth:`apply64`), or None where A has only its own dtype.
        rounded_check: the dtype below float64 that :meth:`apply64` had to compute in (A
            returned no float64 product), once it has; None while every product was float64.
    """

    def __init__(
        self,
        matvec: Callable[[torch.Tensor], torch.Tensor],
        n: int,
        *,
        dtype: torch.dtype,
        device: torch.device,
        problem: Poisson | None = None,
        null_space: np.ndarray | None = None,
        scipy: Any = None,
        diagonal: Callable[[], torch.Tensor] | None = None,
        finite: bool = True,
        matvec64: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.matvec = matvec
        self.matvec64 = matvec64
        self.n = n
        self.dtype = dtype
        self.device = device
        self.problem = problem
        self.null_space = null_space
        self.scipy = scipy
        self._diagonal = diagonal
        self.finite = finite
        self.tensor: torch.Tensor | None = None
        self.rounded_check: torch.dtype | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.matvec(x)

    def apply64(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` in float64 for ``x: (n,)``: x, A's entries and the sums in float64 where A
        allows it (SciPy and torch matrices, their entries cast; a stencil rebuilt in float64
        from its grid, so its ``1 / h^2`` is not rounded to A's dtype; a
        ``scipy.sparse.linalg.LinearOperator`` given the float64 x, where it returns a float64
        product), else ``A x`` in A's own dtype, cast (a matvec without ``matvec64``, a SciPy
        operator that returns its own dtype), recorded in :attr:`rounded_check`.

        The solvers' true-residual checks use it: a float32 ``A x`` rounds by ``eps |A| |x|``,
        as large as the residual itself near float32's floor (measured: float32 residuals
        0.82-1.19x the float64 ones), so the check could pass a residual above rtol.
        """
        if self.dtype == torch.float64:
            return self(x.to(torch.float64))
        if self.matvec64 is None:
            y = self(x.to(self.dtype))
        else:
            y = self.matvec64(x.to(torch.float64))
        if y.dtype != torch.float64:
            self.rounded_check = y.dtype
        return y.to(torch.float64)

    def diagonal(self) -> torch.Tensor:
        """The diagonal of A, a tensor ``(n,)``.

        Raises:
            TypeError: the diagonal is not known (a ``scipy.sparse.linalg.LinearOperator`` or a
                bare matvec was wrapped).
        """
        if self._diagonal is None:
            raise TypeError("this operator does not expose its diagonal (needed by Jacobi)")
        return self._diagonal()

    def to_scipy(self):
        """The matrix as ``scipy.sparse`` CSR (assembled from the grid for a stencil)."""
        if self.scipy is None and self.problem is not None:
            self.scipy = self.problem.to_scipy()
        if self.scipy is None and self.tensor is not None:
            self.scipy = _torch_to_scipy(self.tensor)
        if self.scipy is None:
            raise TypeError(
                "this preconditioner needs the assembled matrix; pass a scipy.sparse matrix, "
                "a torch sparse tensor or a Poisson stencil"
            )
        return self.scipy


def as_operator(A: Any, *, problem: Poisson | None = None) -> LinearOperator:
    """Wrap ``A`` (scipy sparse matrix or ``scipy.sparse.linalg.LinearOperator``, numpy array,
    torch sparse/dense tensor, :class:`StencilOperator`, :class:`Poisson`, or an existing
    :class:`LinearOperator`) as a :class:`LinearOperator`.

    ``problem`` beside a plain matrix gives the grid (for learned methods) and, where ``A``
    annihilates it, the problem's null space: a matrix on that grid with other walls (say
    Dirichlet, so nonsingular) keeps its own, and b is not projected."""
    if problem is not None and not isinstance(problem, Poisson):
        # (why) it failed on problem.n ("'StencilOperator' object has no attribute 'n'")
        hint = "; pass its grid, .problem" if isinstance(problem, StencilOperator) else ""
        raise TypeError(
            "problem: expected a Poisson grid such as poisson(shape, walls=...), got "
            f"{type(problem).__name__}{hint}"
        )
    op = _as_operator(A, problem)
    # (why) a complex stencil (StencilOperator takes complex dtypes) or LinearOperator passed
    # where a complex matrix is refused: its solve ran on complex vectors whose dot products
    # dropped the imaginary part (torch's "Casting complex values to real" warning)
    check_real(op.dtype, "A")
    if problem is not None:
        if op is A:
            # (why) the caller's own LinearOperator: setting the problem and its null space on
            # it changed later calls without problem= (lanczos of it, another solve)
            op = copy.copy(op)
        if problem.n != op.n:
            raise ValueError(f"problem has {problem.n} unknowns but A is {op.n} x {op.n}")
        op.problem = problem
        if op.null_space is None:
            basis = problem.null_space
            if basis is not None and null_residual(op, basis) <= NULL_TOL:
                op.null_space = basis
    return op


#: largest ``||A z|| / ||A r||`` (z a basis vector, r a random unit vector) for z to count as
#: a null vector; a Poisson matrix gives ~1e-16 (1e-7 in float32), one with a Dirichlet wall
#: on the constants 1e-2 or more
NULL_TOL = 1e-4


def null_residual(op: LinearOperator, basis: np.ndarray) -> float:
    """``max_z ||A z|| / ||A r||`` over the rows ``z`` of ``basis`` (unit vectors), ``r`` a
    random unit vector: about 0 when ``basis`` spans null vectors of A."""
    z = torch.as_tensor(np.atleast_2d(basis), dtype=op.dtype, device=op.device)
    r = torch.randn(op.n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scale = float(op((r / r.norm()).to(dtype=op.dtype, device=op.device)).norm())
    worst = max(float(op(v / v.norm()).norm()) for v in z)
    return worst / max(scale, 1e-300)


def null_basis(basis: Any, device: torch.device) -> torch.Tensor:
    """A null-space basis ``(k, n)`` (or one vector) as a float64 tensor on ``device``: the
    projections run in float64 (in float32 a sum over 1e6 entries left 4e-4 of a constant)."""
    return torch.as_tensor(np.atleast_2d(basis), dtype=torch.float64, device=device)


def project_out(v: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``v`` less its components along the orthonormal rows of ``basis`` (``(k, n)``), both
    float64."""
    # a summed product rather than a matvec: pairwise summation keeps the error ~eps at any n
    return v - basis.T @ (basis * v).sum(dim=1)


def _as_operator(A: Any, problem: Poisson | None) -> LinearOperator:
    if isinstance(A, LinearOperator):
        return A
    if isinstance(A, Poisson):
        A = A.stencil()
    if isinstance(A, StencilOperator):
        stencil64: list[StencilOperator] = []

        def stencil_matvec64(x: torch.Tensor) -> torch.Tensor:
            if not stencil64:  # built at the first check only (n-sized diagonal and mask)
                stencil64.append(A.to(dtype=torch.float64))
            return stencil64[0](x)

        return LinearOperator(
            A,
            A.problem.n,
            dtype=A.dtype,
            device=A.device,
            problem=A.problem,
            null_space=A.problem.null_space,
            diagonal=A.diagonal,
            matvec64=stencil_matvec64,
        )
    if isinstance(A, np.ndarray):  # a dense matrix, as scipy.sparse.linalg.cg takes it
        if A.dtype.kind not in "biufc":
            raise TypeError(f"A: expected a numeric matrix, got an array of dtype {A.dtype}")
        A = numpy_to_torch(A)
    try:
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla
    except ImportError:  # scipy is an optional extra; without it only torch inputs work
        sp = spla = None

    if spla is not None and isinstance(A, spla.LinearOperator):
        return from_scipy_linear_operator(A, problem)
    if sp is not None and sp.issparse(A):
        A = A.tocsr()
        _check_square(A.shape)
        check_real(A.dtype, "A")
        if not A.has_canonical_format:
            # (why) a CSR with duplicate entries (legal: they are summed) gave pyamg a broken
            # hierarchy: PCG(AMG()) on a 6x5 Dirichlet matrix stored as two halves of each entry
            # ran to maxiter=300, x 7e-3 off, where the summed one converges in 6 iterations;
            # and pyamg sorted the caller's indices in place. A summed copy, the caller's
            # matrix untouched
            A = A.copy()
            A.sum_duplicates()
        if A.dtype != np.float64 and A.dtype != np.float32:
            A = A.astype(np.float64)
        dtype = torch.float64 if A.dtype == np.float64 else torch.float32

        def matvec(x: torch.Tensor) -> torch.Tensor:
            # a float32 matrix times a float64 x: SciPy upcasts the entries and sums in float64
            return torch.from_numpy(A @ x.detach().cpu().numpy()).to(x.device)

        return LinearOperator(
            matvec,
            A.shape[0],
            dtype=dtype,
            device=torch.device("cpu"),
            problem=problem,
            scipy=A,
            diagonal=lambda: torch.from_numpy(A.diagonal()),
            finite=bool(np.isfinite(A.data).all()),
            matvec64=matvec,
        )
    if isinstance(A, torch.Tensor):
        _check_square(tuple(A.shape))
        check_real(A.dtype, "A")
        if A.layout in (torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc):
            A = A.to_sparse_coo()  # torch has no matvec for these layouts
        if not A.is_floating_point():
            A = A.to(torch.float64)  # as for an integer scipy matrix
        if A.layout == torch.sparse_coo:
            A = A.coalesce()
        values = A.values() if A.layout in (torch.sparse_coo, torch.sparse_csr) else A

        def diagonal() -> torch.Tensor:
            if A.layout == torch.strided:
                return A.diagonal()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return _sparse_diagonal(A)

        op = LinearOperator(
            lambda x: A @ x,
            A.shape[0],
            dtype=A.dtype,
            device=A.device,
            problem=problem,
            diagonal=diagonal,
            finite=bool(torch.isfinite(values).all()),
            matvec64=lambda x: _as_float64(A) @ x,
        )
        op.tensor = A
        return op
    hint = ""
    if callable(A):
        # (why) a bare function is not taken: nothing says its size, dtype or device, nor
        # whether it is symmetric; the message named only what is taken, not how to wrap it
        hint = (
            "; wrap a matvec function f as sciml.linalg.LinearOperator(f, n, "
            "dtype=torch.float64, device='cpu') (f on torch tensors (n,)) or "
            "scipy.sparse.linalg.LinearOperator((n, n), matvec=f) (f on NumPy arrays)"
        )
    raise TypeError(
        "A: expected a scipy.sparse matrix or LinearOperator, a numpy array, a torch sparse or "
        f"dense tensor, a StencilOperator or a Poisson problem, got {type(A).__name__}{hint}"
    )


def numpy_to_torch(a: np.ndarray) -> torch.Tensor:
    """A tensor holding a native-byte-order C copy of ``a``: ``torch.from_numpy`` refuses
    big-endian arrays and negative strides (``v[::-1]``)."""
    return torch.from_numpy(np.array(a, dtype=a.dtype.newbyteorder("="), order="C"))


def from_scipy_linear_operator(A: Any, problem: Poisson | None = None) -> LinearOperator:
    """A ``scipy.sparse.linalg.LinearOperator``: its matvec on the CPU, nothing else known (no
    diagonal for Jacobi, no matrix for SGS / AMG)."""
    _check_square(A.shape)
    dtype = np.dtype(A.dtype) if A.dtype is not None else np.dtype(np.float64)
    check_real(dtype, "A")
    npdtype = np.float32 if dtype == np.float32 else np.float64

    def matvec(x: torch.Tensor) -> torch.Tensor:
        y = np.asarray(A.matvec(x.detach().cpu().numpy()), dtype=npdtype).reshape(-1)
        return torch.from_numpy(y).to(x.device)

    def matvec64(x: torch.Tensor) -> torch.Tensor:
        # (why) a float32 operator given a float64 x: SciPy's own (aslinearoperator of a float32
        # matrix) and a plain `A @ v` return a float64 product, so the true-residual checks need
        # not round A x to float32 (measured: 48^2 Dirichlet, CG at rtol 5e-7 said CONVERGED at
        # 4.89e-7 where ||b - A x|| / ||b|| is 5.32e-7); one that returns float32 is kept as it
        # is and recorded (LinearOperator.rounded_check)
        y = np.asarray(A.matvec(x.detach().cpu().numpy())).reshape(-1)
        y = y if y.dtype == np.float64 else y.astype(np.float32)
        return torch.from_numpy(y).to(x.device)

    return LinearOperator(
        matvec,
        A.shape[0],
        dtype=torch.float32 if npdtype is np.float32 else torch.float64,
        device=torch.device("cpu"),
        problem=problem,
        matvec64=matvec64 if npdtype is np.float32 else None,
    )


def _as_float64(A: torch.Tensor) -> torch.Tensor:
    """A float64 copy of a dense, CSR or coalesced COO ``A``, sharing a sparse one's indices
    (``A.to(float64)`` copied them too: measured 11x a matvec for CSR, against 3x)."""
    if A.dtype == torch.float64:
        return A
    if A.layout == torch.sparse_csr:
        return torch.sparse_csr_tensor(
            A.crow_indices(), A.col_indices(), A.values().double(), A.shape
        )
    if A.layout == torch.sparse_coo:
        return torch.sparse_coo_tensor(A.indices(), A.values().double(), A.shape, is_coalesced=True)
    return A.to(torch.float64)


def _torch_to_scipy(A: torch.Tensor):
    import scipy.sparse as sp

    if A.layout == torch.strided:
        return sp.csr_array(A.detach().cpu().double().numpy())
    coo = A.detach().cpu().to_sparse_coo().coalesce()
    i, j = coo.indices().numpy()
    return sp.csr_array((coo.values().double().numpy(), (i, j)), shape=tuple(A.shape))


def _sparse_diagonal(A: torch.Tensor) -> torch.Tensor:
    coo = A.to_sparse_coo().coalesce()
    i, j = coo.indices()
    out = torch.zeros(A.shape[0], dtype=A.dtype, device=A.device)
    on = i == j
    out[i[on]] = coo.values()[on]
    return out


def check_real(dtype: Any, name: str) -> None:
    """Refuse a complex dtype (numpy or torch): casting it to real drops the imaginary part and
    the solve would 'converge' to the answer of another system."""
    if (
        dtype.is_complex
        if isinstance(dtype, torch.dtype)
        else np.issubdtype(dtype, np.complexfloating)
    ):
        raise TypeError(
            f"{name}: expected real values, got complex dtype {dtype}; sciml.linalg solves real "
            "SPD systems: write a Hermitian system as the real one [[Re A, -Im A], [Im A, Re A]] "
            "[Re x; Im x] = [Re b; Im b], or use scipy.sparse.linalg.cg"
        )


def _check_square(shape: tuple[int, ...]) -> None:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"A: expected a square matrix (n, n), got shape {tuple(shape)}")
