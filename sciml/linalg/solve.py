"""``sciml.linalg.solve``: one entry for every method and every matrix type, and a SciPy-style one.

    x, result = solve(A, b, method=CG(), rtol=1e-6)      # or method="cg"
    x, result = solve(A, b, method=PCG(AMG()))            # or method="amg"
    x, result = solve(A, b, method=DeepConjugateDirection(sciml.load("dcdm-poisson3d")))

``A`` may be a ``scipy.sparse`` matrix or ``scipy.sparse.linalg.LinearOperator``, a dense
NumPy array, a torch sparse (CSR, CSC, COO, BSR, BSC) or dense tensor (integer entries are taken
as float64), a :class:`StencilOperator` or a :class:`Poisson` problem. ``b`` may be a NumPy array or a torch tensor of shape ``(n,)``; x comes back as the
same kind (a tensor on b's device), in A's dtype.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, overload

import numpy as np
import torch

from .._scalars import is_int, is_real
from ._operator import (
    NULL_TOL,
    LinearOperator,
    as_operator,
    check_real,
    from_scipy_linear_operator,
    null_basis,
    null_residual,
    numpy_to_torch,
    project_out,
)
from ._problem import _dot, _norm
from .krylov import CG, PCG, FlexibleCG, Method, run
from .poisson import Poisson
from .preconditioners import AMG, Jacobi, Preconditioner, SymmetricGaussSeidel
from .result import SolveResult, Status

__all__ = ["solve", "scipy_solver"]

#: the methods :func:`solve` and :func:`scipy_solver` take by name, with the names of
#: ``sciml solve --method`` (read-only; the objects are frozen, so sharing them is safe). Any
#: other method, or one with options (``CG(dot_dtype=...)``, ``FlexibleCG(M, k=8)``, DCDM, which
#: needs a network), is passed as the object.
METHODS: Mapping[str, Method] = MappingProxyType(
    {
        "cg": CG(),
        "jacobi": PCG(Jacobi()),
        "sgs": PCG(SymmetricGaussSeidel()),
        "amg": PCG(AMG()),
    }
)


def _spelled(obj: Any) -> str:
    """A method or preconditioner as the call that builds it, its defaults left out and a
    preconditioner passed first, as the docs write them: ``PCG(AMG())`` (the dataclass repr
    spells every field: ``PCG(preconditioner=AMG(cycle='V'), dot_dtype=torch.float64)``)."""
    args = [
        _spelled(value) if isinstance(value, Preconditioner) else f"{f.name}={value!r}"
        for f in dataclasses.fields(obj)
        if (value := getattr(obj, f.name)) != f.default
    ]
    return f"{type(obj).__name__}({', '.join(args)})"


_SPELLED = {name: _spelled(method) for name, method in METHODS.items()}  # for error messages


def _method(method: Any) -> Method:
    """``method`` as a method object: ``None`` is CG, a name is looked up in :data:`METHODS`."""
    if method is None:
        return CG()
    if isinstance(method, Method):
        return method
    names = ", ".join(f"{k!r} ({_SPELLED[k]})" for k in METHODS)
    if isinstance(method, str):
        if method in METHODS:
            return METHODS[method]
        hint = ""
        if method.lower() in METHODS:
            hint = f"; names are lower case: {method.lower()!r}"
        elif method.lower() == "dcdm":
            hint = (
                "; DCDM needs a network: method=DeepConjugateDirection(sciml.load("
                "'dcdm-poisson3d'))"
            )
        raise ValueError(
            f"method: unknown name {method!r}; expected one of {names}, or a method object such "
            f"as FlexibleCG(Jacobi(), k=8) or DeepConjugateDirection(model){hint}"
        )
    raise TypeError(
        f"method: expected a method object such as CG(), PCG(Jacobi()) or "
        f"DeepConjugateDirection(model), or one of the names {names}, got {method!r}"
    )


# (why) overloads: x comes back of b's kind; with only the union a caller's type checker
# rejected `x.numpy()` or `x.astype(...)` without narrowing first
@overload
def solve(
    A: Any,
    b: np.ndarray,
    *,
    method: Method | str | None = ...,
    x0: np.ndarray | torch.Tensor | None = ...,
    rtol: float = ...,
    maxiter: int | None = ...,
    stagnation_window: int | None = ...,
    null_space: np.ndarray | None = ...,
    check_symmetry: bool = ...,
    callback: Callable[[int, float], Any] | None = ...,
    iterate_callback: Callable[[np.ndarray | torch.Tensor], Any] | None = ...,
    keep_iterates: bool = ...,
    problem: Poisson | None = ...,
) -> tuple[np.ndarray, SolveResult]: ...
@overload
def solve(
    A: Any,
    b: torch.Tensor,
    *,
    method: Method | str | None = ...,
    x0: np.ndarray | torch.Tensor | None = ...,
    rtol: float = ...,
    maxiter: int | None = ...,
    stagnation_window: int | None = ...,
    null_space: np.ndarray | None = ...,
    check_symmetry: bool = ...,
    callback: Callable[[int, float], Any] | None = ...,
    iterate_callback: Callable[[np.ndarray | torch.Tensor], Any] | None = ...,
    keep_iterates: bool = ...,
    problem: Poisson | None = ...,
) -> tuple[torch.Tensor, SolveResult]: ...
def solve(
    A: Any,
    b: np.ndarray | torch.Tensor,
    *,
    method: Method | str | None = None,
    x0: np.ndarray | torch.Tensor | None = None,
    rtol: float = 1e-6,
    maxiter: int | None = None,
    stagnation_window: int | None = 100,
    null_space: np.ndarray | None = None,
    check_symmetry: bool = True,
    callback: Callable[[int, float], Any] | None = None,
    iterate_callback: Callable[[np.ndarray | torch.Tensor], Any] | None = None,
    keep_iterates: bool = False,
    problem: Poisson | None = None,
) -> tuple[np.ndarray | torch.Tensor, SolveResult]:
    """Solve the SPD (or SPSD) system ``A x = b``.

    Args:
        A: ``(n, n)`` matrix or operator (see module docstring).
        b: right-hand side ``(n,)``.
        method: a method object, ``CG()`` by default, or the name of one in :data:`METHODS`:
            ``"cg"`` (``CG()``), ``"jacobi"`` (``PCG(Jacobi())``), ``"sgs"``
            (``PCG(SymmetricGaussSeidel())``) or ``"amg"`` (``PCG(AMG())``), as on the command
            line; another string raises ``ValueError`` listing these.
        x0: initial guess ``(n,)``, zeros by default.
        rtol: stop when ``||b - A x_k|| / ||b|| <= rtol``: a finite number > 0 (inf, NaN
            or <= 0 raise ``ValueError``).
        maxiter: iteration cap, ``10 n`` by default.
        stagnation_window: stop with ``Status.STAGNATED`` when the best residual does not
            improve by 1% in the last ``max(stagnation_window, k // 2)`` iterations at
            iteration k, unless the A-norm of the error still falls there (by over 0.1% of
            its fall since x0, and not 10x faster in the second half: a divergence); an int
            >= 1, or None (never).
        null_space: ``(k, n)`` orthonormal basis of the null space of a singular A (taken from
            a Poisson stencil automatically, and from ``problem`` when A annihilates it). Its
            component is removed from b (reported as ``result.null_space_component``) and from
            x, giving the minimum-norm solution. A basis that A does not annihilate raises
            ``ValueError``.
        check_symmetry: probe ``u.Av == v.Au`` with two random vectors first (2 matvecs) and
            refuse a non-symmetric A with ``Status.NOT_SPD``.
        callback: called as ``callback(iteration, relative_residual)``, k = 0 .. iterations.
        iterate_callback: called with a copy of each iterate ``x_k``, k = 1 .. iterations, of
            b's kind (SciPy's ``callback(xk)``; for a singular A before the null space is
            projected out of it).
        keep_iterates: keep every iterate in ``result.iterates`` (for tests and plots).
        problem: the :class:`Poisson` grid behind a plain matrix, for learned methods; by
            default the method's own (``DeepConjugateDirection(model, problem=P)``).

    Returns:
        ``(x, result)``: x of b's kind and shape, a NumPy array for a NumPy b (or a list),
        else a tensor on b's device; its dtype is the one the solve ran in, A's (a float32 A
        and a float64 b give a float32 x, a float64 A and a float32 b a float64 x; a NumPy x
        is float32 for a bfloat16 A, which NumPy has not).
        ``result`` a :class:`SolveResult`. A solve that did not converge is not an exception:
        check ``result.status``.
    """
    method = _method(method)
    _warn_if_differentiated(A=A, b=b, x0=x0)
    if problem is None:
        # (why) the grid given to the method (DeepConjugateDirection(model, problem=P)) is the
        # problem too: beside a bare all-Neumann matrix b kept its constant part, which the
        # method cannot reduce, and the solve ended STAGNATED where problem=P converged
        problem = getattr(method, "problem", None)
    op = as_operator(A, problem=problem)
    # (why) anything but a tensor is read as an array (a list b got a tensor x back)
    was_numpy = not isinstance(b, torch.Tensor)
    bt = _as_vector(b, op, "b")
    # b in float64: the true-residual checks measure against it (less its null-space part,
    # removed below, for a singular A), not against its rounding to A's dtype
    b64 = bt if bt.dtype == torch.float64 else _as_vector(b, op, "b", torch.float64)
    xt = torch.zeros_like(bt) if x0 is None else _as_vector(x0, op, "x0")
    if maxiter is None:
        maxiter = 10 * op.n
    elif not is_int(maxiter):
        # (why) int() truncated: maxiter=True ran 1 iteration, 2.7 ran 2
        raise TypeError(
            f"maxiter: expected an int >= 0 (0: only check x0), or None for 10 n, got {maxiter!r}"
        )
    maxiter = int(maxiter)
    _check_real(rtol, "rtol", "> 0")
    if not 0 < rtol < math.inf:
        # (why) rtol=inf returned x0 as CONVERGED without solving (every residual meets it);
        # scipy_solver's atol=inf, which means that in SciPy, passes _ANY_RESIDUAL instead
        raise ValueError(
            f"rtol: expected a finite real number > 0 (a relative residual to reach), got {rtol!r}"
        )
    if maxiter < 0:
        raise ValueError(f"maxiter must be >= 0 (0: only check x0), got {maxiter}")
    _check_window(stagnation_window)

    # (why) a tensor x stayed on A's device: a CUDA b with a SciPy A got a CPU x back
    b_device = None if was_numpy else b.device

    def out(x: torch.Tensor) -> np.ndarray | torch.Tensor:
        if not was_numpy:
            return x.to(b_device)
        # (why) NumPy has no bfloat16: a bfloat16 A with a NumPy b solved and then failed with
        # 'Got unsupported ScalarType BFloat16'; float32 holds every bfloat16 value exactly
        return (x.float() if x.dtype == torch.bfloat16 else x).cpu().numpy()

    scale = 1.0  # b, x0 and the iterates are solved as multiplied by it (see _rhs_scale)
    on_iterate = None
    if iterate_callback is not None:

        def on_iterate(x: torch.Tensor) -> None:
            iterate_callback(out(x.detach().clone() if scale == 1.0 else x / scale))

    bad = [name for name, v in (("b", bt), ("x0", xt)) if not bool(torch.isfinite(v).all())]
    if not op.finite:
        bad.append("A")
    if bad:
        # (why) one residual, as every result has (k = 0 .. iterations): the list was empty
        result = SolveResult(
            Status.NAN_INPUT,
            0,
            [math.nan],
            message=f"non-finite (NaN or inf) values in {', '.join(bad)}",
        )
        if callback is not None:  # k = 0 .. iterations, as for a solve that iterates
            callback(0, math.nan)
        return out(torch.full_like(bt, float("nan"))), result
    if check_symmetry:
        message = _symmetry_probe(op, bt)
        if message:
            # (why) the residual of the x0 returned: the result had none (residuals[-1] raised
            # IndexError) and a NaN true residual, which `sciml solve` printed as JSON's NaN
            rel = _start_residual(op, b64, xt)
            if callback is not None:
                callback(0, rel)
            return out(xt), SolveResult(Status.NOT_SPD, 0, [rel], rel, message=message)

    if null_space is not None:
        _check_basis_shape(null_space, op.n)
        if (worst := null_residual(op, null_space)) > NULL_TOL:
            raise ValueError(
                f"null_space: expected null vectors of A (||A z|| ~ 0), got ||A z|| / ||A r|| = "
                f"{worst:.2e} for a basis vector z against a random unit r"
            )
        _check_orthonormal(null_basis(null_space, bt.device))
        # the method sees it too (a deflated coarse solve drops it); a copy: A may be the user's
        op = copy.copy(op)
        op.null_space = np.atleast_2d(np.asarray(null_space))
    scale = _rhs_scale(b64, op.dtype, getattr(method, "dot_dtype", torch.float64))
    if scale != 1.0:
        b64, xt = b64 * scale, xt * scale
        bt = b64.to(bt.dtype)
    removed = 0.0
    if op.null_space is not None:
        basis_t = null_basis(op.null_space, bt.device)
        bnorm = _norm(b64, torch.float64)
        b64 = project_out(b64, basis_t)
        left = _norm(b64, torch.float64)
        # a b inside the null space leaves only rounding noise, and CG on noise breaks down
        # (p.Ap ~ 0): its range part is 0, so is the minimum-norm solution
        if left <= _PROJECTION_NOISE * bnorm:
            b64.zero_()
            left = 0.0
        removed = float(np.sqrt(max(bnorm**2 - left**2, 0.0))) / max(bnorm, 1e-300)
        bt = b64.to(bt.dtype)
    x, result = run(
        method,
        op,
        bt,
        xt,
        rtol=rtol,
        maxiter=maxiter,
        stagnation_window=stagnation_window,
        callback=callback,
        keep_iterates=keep_iterates,
        on_iterate=on_iterate,
        b64=b64,
    )
    if scale != 1.0:
        x = x / scale
        result.iterates = [v / scale for v in result.iterates]
    # (why) they stayed on A's device while x came back on b's (a NumPy b: CPU tensors)
    result.iterates = _to_callers_device(
        result.iterates, torch.device("cpu") if was_numpy else b_device
    )
    if op.null_space is not None:  # run returned x less its null-space component
        result.null_space_component = removed
        if removed > 1e-8:
            result.message += (
                f"; b had a null-space component of relative size {removed:.2e}, which was "
                "removed (b is not in the range of A: the least-squares solution is returned)"
            )
    return out(x), result


def _to_callers_device(iterates: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """The iterates moved where x goes: b's device (a no-op for those already there)."""
    return [v.to(device) for v in iterates]


_warned_grad = False  # _warn_if_differentiated warns once per process


def _warn_if_differentiated(**inputs: Any) -> None:
    """Warn, once, where A, b or x0 is a tensor that requires grad (outside ``no_grad``).

    (why) x then carries an autograd graph through every iteration: memory grows with the
    iterations, the gradient with respect to b is that of the unrolled iteration (A^-1 g only
    once it has converged) and the one with respect to A is not -A^-T g x^T (measured: 6% off
    on a converged float64 4 x 4 solve; see docs/linalg.md, "Gradients")
    """
    global _warned_grad
    if _warned_grad or not torch.is_grad_enabled():
        return
    names = [k for k, v in inputs.items() if isinstance(v, torch.Tensor) and v.requires_grad]
    if not names:
        return
    _warned_grad = True
    warnings.warn(
        f"solve: {' and '.join(names)} {'requires' if len(names) == 1 else 'require'} grad, "
        "but solve is not meant to be differentiated: x carries the graph of every "
        "iteration, its gradient with respect to A is not the true one (-A^-T g x^T) and the "
        "one with respect to b only approaches A^-1 g as the solve converges. Pass detached "
        "tensors (b.detach()) or call it under torch.no_grad(); for gradients use the "
        "adjoint: solve A^T w = g, then dL/db = w and dL/dA = -w x^T (docs/linalg.md, "
        "'Gradients'). This warning is shown once.",
        UserWarning,
        stacklevel=3,
    )


#: relative size below which what is left of b after removing its null-space component is
#: rounding noise (the float64 projection leaves ~1e-15 of a constant b, measured up to n = 1e7)
_PROJECTION_NOISE = 1e3 * float(torch.finfo(torch.float64).eps)


def _rhs_scale(b: torch.Tensor, dtype: torch.dtype, dot_dtype: torch.dtype) -> float:
    """1.0, or the power of two ``s`` that brings ``max |b|`` into ``[1, 2)`` where it lies
    outside the range the solve can take: ``2^(e / 4)`` (e the exponent range of the dot
    dtype, whose norms square the entries of residuals down to ``rtol |b|``) and ``2^(e / 2)``
    of A's dtype (the vectors themselves).

    (why) the squares underflowed or overflowed: CG(dot_dtype=torch.float32) on a b of 1e-19
    said CONVERGED at a true residual of 1e-4 (reported 0.0), on 1e19 NONFINITE at iteration
    0; float64 on 1e-170 answered 'b = 0, so x = 0'. A x = b is linear and a power of two
    scales every operation exactly, so within range nothing changes (s = 1) and outside it
    the solve is that of b in range, scaled back exactly.
    """
    big = float(b.detach().abs().max()) if b.numel() else 0.0  # (why) see _dot
    if not 0.0 < big < math.inf:
        return 1.0
    _, e = math.frexp(big)  # big = m 2^e, 0.5 <= m < 1

    def exponents(dt: torch.dtype) -> int:  # 128 for float32, 1024 for float64
        return math.frexp(torch.finfo(dt).max)[1]

    limit = min(exponents(dot_dtype) // 4, exponents(dtype) // 2)
    return 1.0 if -limit <= e <= limit else math.ldexp(1.0, 1 - e)


def _start_residual(op: LinearOperator, b64: torch.Tensor, x: torch.Tensor) -> float:
    """``||b - A x|| / ||b||`` in float64 (see :meth:`LinearOperator.apply64`); for b = 0, 0
    where A x = 0 too, else inf."""
    bnorm = _norm(b64, torch.float64)
    rnorm = _norm(b64 - op.apply64(x), torch.float64)
    if bnorm == 0.0:
        return 0.0 if rnorm == 0.0 else math.inf
    return rnorm / bnorm


def _check_real(value: Any, name: str, bound: str) -> None:
    """A TypeError unless ``value`` is a real number (a bool is not: rtol=True solved to 1.0)."""
    if not is_real(value):
        raise TypeError(f"{name}: expected a real number {bound}, got {value!r}")


def _check_window(window: Any) -> None:
    """``stagnation_window``: None or an int >= 1.

    (why) a window of 0 or less crashed the first iteration ('min() arg is an empty sequence':
    the window ``max(window, k // 2)`` is then 0 at k = 0 and 1), and a bool or a float ran as
    a window of that many iterations
    """
    if window is None:
        return
    ok = is_int(window)
    if not ok or window < 1:
        raise (ValueError if ok else TypeError)(
            f"stagnation_window: expected an int >= 1 (iterations without 1% progress), or "
            f"None to never stop for stagnation, got {window!r}"
        )


def _check_basis_shape(basis: Any, n: int) -> None:
    """A ValueError unless ``basis`` is ``(k, n)`` or one vector ``(n,)``.

    (why) a basis of another length failed inside A's matvec (SciPy's 'matmul: dimension
    mismatch', torch's 'size mismatch'), an error that did not name null_space
    """
    shape = tuple(np.shape(basis))
    if not 1 <= len(shape) <= 2 or shape[-1] != n:
        raise ValueError(
            f"null_space: expected a basis of shape (k, {n}) (orthonormal rows), or one "
            f"vector ({n},), got shape {shape}"
        )


def _check_orthonormal(basis: torch.Tensor) -> None:
    gram = basis @ basis.T
    worst = float(
        (gram - torch.eye(basis.shape[0], dtype=gram.dtype, device=gram.device)).abs().max()
    )
    if worst > 1e-6:
        raise ValueError(
            f"null_space: expected orthonormal rows (Z Z^T = I), got max |Z Z^T - I| = {worst:.2e}; "
            "orthonormalise the basis first, e.g. Z = np.linalg.qr(Z.T)[0].T"
        )


def _as_vector(
    v: Any, op: LinearOperator, name: str, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``v`` checked, as a ``(n,)`` tensor on A's device in ``dtype`` (A's by default)."""
    if isinstance(v, torch.Tensor):
        t = v
    else:
        a = np.asarray(v)
        if a.dtype.kind not in "biufc":
            raise TypeError(f"{name}: expected a numeric vector, got an array of dtype {a.dtype}")
        check_real(a.dtype, name)
        t = numpy_to_torch(a)
    if t.dim() != 1 or t.shape[0] != op.n:
        hint = ""
        if t.dim() == 2 and t.numel() == op.n and op.n in t.shape:
            # (why) a column (n, 1), as SciPy's cg and scipy_solver take it, was told to "solve
            # one right-hand side at a time (a block of them is not supported)": it is one
            hint = f"; flatten this one {'column' if t.shape[1] == 1 else 'row'} to ({op.n},)"
        elif t.dim() == 2 and op.n in t.shape:
            # the Krylov recurrences are per right-hand side (their step lengths are scalars)
            hint = "; solve one right-hand side at a time (a block of them is not supported)"
        elif t.dim() != 1:
            hint = f"; flatten it to ({op.n},), in the order of A's unknowns"
        raise ValueError(
            f"{name}: expected a vector of shape ({op.n},), got {tuple(t.shape)}{hint}"
        )
    check_real(t.dtype, name)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t.to(device=op.device, dtype=dtype or op.dtype).clone()


def _symmetry_probe(op: LinearOperator, b: torch.Tensor) -> str:
    g = torch.Generator(device="cpu").manual_seed(1234)
    u = torch.randn(op.n, generator=g, dtype=torch.float64).to(device=b.device, dtype=b.dtype)
    v = torch.randn(op.n, generator=g, dtype=torch.float64).to(device=b.device, dtype=b.dtype)
    Au, Av = op(u), op(v)
    dt = torch.float64
    lhs, rhs = _dot(u, Av, dt), _dot(v, Au, dt)
    scale = _norm(u, dt) * _norm(Av, dt) + _norm(v, dt) * _norm(Au, dt)
    tol = 1e3 * float(torch.finfo(b.dtype).eps) * max(1.0, np.sqrt(op.n) / 10)
    if abs(lhs - rhs) > tol * scale:
        return (
            f"A is not symmetric: u.Av = {lhs:.6e} but v.Au = {rhs:.6e} for random u, v; "
            "CG-type methods need a symmetric positive definite A"
        )
    return ""


def scipy_solver(method: Method | str, **options: Any) -> Callable[..., tuple[np.ndarray, int]]:
    """A function with the signature of ``scipy.sparse.linalg.cg`` that runs ``method`` (an
    object, or a name in :data:`METHODS` as for :func:`solve`)::

        dcdm = scipy_solver(DeepConjugateDirection(model), problem=poisson(shape))
        x, info = dcdm(A, b, rtol=1e-6, maxiter=100)

    As SciPy's: ``b`` and ``x0`` of shape ``(n,)`` or ``(n, 1)`` (x comes back ``(n,)``), the
    stop at ``||b - A x_k|| <= max(rtol ||b||, atol)``, ``callback(xk)`` after every
    iteration, and ``M``, a matrix or ``scipy.sparse.linalg.LinearOperator`` approximating
    ``A^-1``, for a method without a preconditioner of its own (``CG()``, ``PCG()``,
    ``FlexibleCG()``). ``options`` go to :func:`solve` (``problem=``, ``stagnation_window=``).
    ``docs/linalg.md`` lists where it differs from SciPy.

    ``info`` follows SciPy: 0 converged, ``> 0`` the iteration count when it did not converge,
    ``< 0`` breakdown / bad input (-1 not SPD, -2 non-finite values, -3 stagnated). The
    returned function's ``last_result`` attribute holds the full :class:`SolveResult`.
    """
    method = _method(method)
    # (why) an option the call sets too (rtol=, maxiter=, ...) was taken here, and every call
    # then failed with "solve() got multiple values for keyword argument 'rtol'"; a misspelt
    # one failed at the call as well
    for name in options:
        if name in _CALL_ARGS:
            raise TypeError(f"scipy_solver: {name}= is not an option here: {_CALL_ARGS[name]}")
        if name not in _SOLVE_OPTIONS:
            raise TypeError(
                f"scipy_solver: unknown option {name}=; options go to solve(): "
                f"{', '.join(f'{o}=' for o in _SOLVE_OPTIONS)}"
            )

    def cg_like(
        A: Any,
        b: np.ndarray,
        x0: np.ndarray | None = None,
        *,
        rtol: float = 1e-5,
        atol: float = 0.0,
        maxiter: int | None = None,
        M: Any = None,
        callback: Callable[[np.ndarray], Any] | None = None,
    ) -> tuple[np.ndarray, int]:
        b = _column_to_vector(np.asarray(b))
        x0 = None if x0 is None else _column_to_vector(np.asarray(x0))
        _check_real(rtol, "rtol", ">= 0")
        _check_real(atol, "atol", ">= 0")
        # (why) SciPy's cg refuses a negative atol; a NaN one was dropped here. A NaN rtol was
        # refused by solve() as if the user had passed it there, a negative one ran as 0
        for name, tol in (("rtol", rtol), ("atol", atol)):
            if not tol >= 0:
                raise ValueError(f"{name}: expected a real number >= 0, got {tol!r}")
        if not (rtol > 0 or atol > 0):
            raise ValueError(
                f"rtol and atol: expected rtol > 0 or atol > 0, got rtol={rtol}, atol={atol}; no "
                "residual meets that (SciPy's cg runs all maxiter iterations)"
            )
        bnorm = _safe_norm(b)
        eff = max(rtol, atol / bnorm) if bnorm > 0 else 1.0  # b = 0: x = 0 at any tolerance
        # an inf tolerance (SciPy: x0 back, info 0) as the finite one every residual meets
        eff = min(eff, _ANY_RESIDUAL)
        x, result = solve(
            A,
            b,
            method=method if M is None else _with_scipy_m(method, M),
            x0=x0,
            rtol=eff,
            maxiter=maxiter,
            iterate_callback=callback,
            **options,
        )
        cg_like.last_result = result
        codes = {
            Status.CONVERGED: 0,
            Status.MAXITER: max(result.iterations, 1),
            Status.NOT_SPD: -1,
            Status.NAN_INPUT: -2,
            Status.NONFINITE: -2,
            Status.STAGNATED: -3,
        }
        return x, codes[result.status]

    cg_like.last_result = None
    return cg_like


#: solve()'s arguments that the function scipy_solver returns sets itself, with where they go
_CALL_ARGS = {
    "rtol": "pass it to each call, as to SciPy's cg: solver(A, b, rtol=...)",
    "maxiter": "pass it to each call, as to SciPy's cg: solver(A, b, maxiter=...)",
    "x0": "pass it to each call, as to SciPy's cg: solver(A, b, x0)",
    "iterate_callback": "pass callback= to each call, as to SciPy's cg: solver(A, b, callback=f)",
}
#: the options scipy_solver passes on to solve(): the rest of its keyword arguments
_SOLVE_OPTIONS = tuple(
    name
    for name in inspect.signature(solve).parameters
    if name not in ("A", "b", "method", *_CALL_ARGS)
)


#: the rtol scipy_solver passes for SciPy's rtol=inf or atol=inf: any finite relative residual
#: meets it, as any residual meets inf there (solve() refuses an inf rtol from a user)
_ANY_RESIDUAL = sys.float_info.max


def _safe_norm(v: np.ndarray) -> float:
    """``||v||`` computed on ``v / max |v|``: np.linalg.norm squares the entries, which gave 0
    for a b of 1e-181 (scipy_solver then took b as 0 and returned x0) and overflowed for 1e181."""
    if not v.size or not np.issubdtype(v.dtype, np.number):
        return float(np.linalg.norm(v))
    big = float(np.abs(v).max())
    if not 0.0 < big < math.inf:
        return big
    return float(np.linalg.norm(v / big)) * big


def _column_to_vector(v: np.ndarray) -> np.ndarray:
    """SciPy takes b and x0 as ``(n,)`` or ``(n, 1)``."""
    return v.reshape(-1) if v.ndim == 2 and v.shape[1] == 1 else v


@dataclass(frozen=True)
class _ScipyM(Preconditioner):
    """SciPy's ``M``: a matrix or LinearOperator approximating ``A^-1``, applied as ``M @ r``."""

    M: Any

    def setup(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        from scipy.sparse.linalg import aslinearoperator

        try:
            m = aslinearoperator(self.M)
        except TypeError:
            hint = "wrap a function f as LinearOperator(A.shape, matvec=f)"
            if isinstance(self.M, Preconditioner):
                # (why) M=Jacobi() was told to wrap a function
                hint = f"a sciml preconditioner goes to the method: PCG({_spelled(self.M)})"
            raise TypeError(
                "M: expected a matrix or scipy.sparse.linalg.LinearOperator approximating A^-1 "
                f"(as SciPy's cg), got {type(self.M).__name__}; {hint}"
            ) from None
        if m.shape != (A.n, A.n):
            raise ValueError(f"M: expected shape ({A.n}, {A.n}) as A, got {m.shape}")
        op = from_scipy_linear_operator(m)  # checks M is real
        return lambda r: op(r.double()).to(r.dtype)


def _with_scipy_m(method: Method, M: Any) -> Method:
    if type(method) in (CG, PCG, FlexibleCG) and getattr(method, "preconditioner", None) is None:
        if type(method) is FlexibleCG:
            return dataclasses.replace(method, preconditioner=_ScipyM(M))
        return PCG(_ScipyM(M), dot_dtype=method.dot_dtype)
    raise ValueError(
        "M: only CG(), PCG() or FlexibleCG() without a preconditioner of their own take SciPy's "
        f"M, got M beside {type(method).__name__}(...); give the preconditioner to the method "
        "object instead"
    )
