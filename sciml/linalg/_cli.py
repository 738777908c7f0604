"""``sciml solve``: solve a sparse SPD system from files with any sciml.linalg method."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

__all__ = ["METHODS", "add_parser", "run"]

# the command line's names: those of solve(method=NAME) (sciml.linalg.solve.METHODS), and dcdm,
# which needs a network (--model)
METHODS = ("cg", "jacobi", "sgs", "amg", "dcdm")


def add_parser(sub) -> None:
    s = sub.add_parser(
        "solve", help="solve A x = b (a .npz, .mtx or .mtx.gz matrix, or a Poisson grid)"
    )
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--matrix",
        help="A: a scipy.sparse.save_npz file (.npz) or a Matrix Market file (.mtx or .mtx.gz)",
    )
    src.add_argument("--poisson", help="a Neumann-walled Poisson grid, e.g. 64x64x64")
    s.add_argument(
        "--spacing",
        help="--poisson: the grid spacing h (A scaled by 1 / h^2), or one per axis, e.g. 1.0,0.5 "
        "(default: 1)",
    )
    s.add_argument("--rhs", help=".npy file with b (default: Gaussian noise, seed 0)")
    s.add_argument("--grid", help="grid shape of --matrix for dcdm, e.g. 64x64x64")
    s.add_argument(
        "--solid",
        metavar="MASK.npy",
        help="--poisson / --grid: obstacles, a boolean array of the grid's shape saved by np.save, "
        "True in solid cells (not unknowns; their faces are Neumann walls)",
    )
    s.add_argument(
        "--method",
        choices=sorted(METHODS),
        default="cg",
        help="cg (default), jacobi / sgs / amg (PCG with that preconditioner), dcdm (needs the grid)",
    )
    s.add_argument(
        "--model", help="dcdm: the network, a checkpoint or shipped name (default: dcdm-poisson3d)"
    )
    s.add_argument(
        "--k", type=int,
        help="dcdm: directions kept for A-orthogonalisation (default: the paper's 2; 16 took "
        "11-12x fewer iterations than CG at 64^3-128^3, benchmarks/README.md)",
    )  # fmt: skip
    s.add_argument(
        "--deflate", type=int, default=None, metavar="B",
        help="cg, dcdm: deflate a coarse space of BxBxB-cell aggregates (sciml extension, "
        "needs the grid; docs/linalg.md)",
    )  # fmt: skip
    s.add_argument(
        "--rtol",
        type=float,
        default=1e-6,
        help="stop at ||b - A x|| / ||b|| <= RTOL (default: 1e-6)",
    )
    s.add_argument("--maxiter", type=int, default=None, help="iteration cap (default: 10 n)")
    s.add_argument("--out", help="write x to this .npy file")
    s.set_defaults(handler=run)


def _shape(text: str, option: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not 2 <= len(shape) <= 3 or min(shape) < 1:
        raise ValueError(f"{option}: expected a grid shape such as 64x64x64, got {text!r}")
    return shape


def _spacing(text: str, dim: int) -> float | tuple[float, ...]:
    """``--spacing``: one number, or ``dim`` comma-separated ones (one per axis), each finite
    and > 0; a one-line error naming the flag otherwise."""
    expected = (
        f"--spacing: expected one number, or {dim} comma-separated ones (one per axis of the "
        f"{dim}-D grid, e.g. {','.join(['1.0', '0.5', '0.25'][:dim])})"
    )
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{expected}, got {text!r}") from None
    if len(values) not in (1, dim):
        raise ValueError(f"{expected}, got {len(values)} numbers: {text!r}")
    if not all(0 < h < math.inf for h in values):  # NaN fails this too
        raise ValueError(f"--spacing: expected finite numbers > 0 (grid spacings), got {text!r}")
    return values[0] if len(values) == 1 else values


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_matrix(path: str):
    """A from a ``scipy.sparse.save_npz`` file or a Matrix Market file (plain or gzip-compressed),
    or a one-line error naming the file."""
    import zipfile

    import scipy.sparse as sp

    if Path(path).is_dir():
        # (why) it said 'expected a .npz file' after .mtx files were taken too
        raise ValueError(f"--matrix: expected {_MATRIX_KINDS} file, got the folder {path!r}")
    if not Path(path).is_file():
        raise ValueError(f"--matrix: no such file: {path!r}")
    with open(path, "rb") as f:
        magic = f.read(len(_MATRIX_MARKET))
    if magic.lower() == _MATRIX_MARKET.lower():
        # (why) the format SuiteSparse and the Matrix Market collection ship matrices in: it was
        # refused as 'not an .npz archive'
        return _load_matrix_market(path)
    if magic.startswith(_GZIP):
        # (why) the Matrix Market collection serves .mtx.gz files, which scipy.io.mmread reads:
        # they were refused as 'not an .npz archive nor a Matrix Market file'
        return _load_gzip_matrix(path)
    if not zipfile.is_zipfile(path):  # np.load would call it 'pickled data'
        raise ValueError(
            f"--matrix: expected {_MATRIX_FILES}, {path!r} is not an .npz archive, nor a Matrix "
            "Market file, plain or gzip-compressed"
        )
    try:
        return sp.load_npz(path)
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"--matrix: expected a sparse matrix saved by scipy.sparse.save_npz, could not read "
            f"{path!r}: {_first_line(exc)}"
        ) from None


#: the first bytes of a Matrix Market file (its header line, in any case)
_MATRIX_MARKET = b"%%MatrixMarket"
#: the first bytes of a gzip file
_GZIP = b"\x1f\x8b"
#: what --matrix reads, for its errors
_MATRIX_KINDS = "a .npz, .mtx or .mtx.gz"
_MATRIX_FILES = (
    "a sparse matrix saved by scipy.sparse.save_npz (.npz), a Matrix Market file (.mtx) or a "
    "gzip-compressed one (.mtx.gz)"
)


def _load_gzip_matrix(path: str):
    """A from a gzip-compressed Matrix Market file, or a one-line error naming the file (and
    saying what to do with a .tar.gz, in which SuiteSparse ships its matrices)."""
    import gzip

    try:
        with gzip.open(path, "rb") as f:
            head = f.read(512)
    except (OSError, EOFError) as exc:
        raise ValueError(
            f"--matrix: expected a gzip-compressed Matrix Market file (.mtx.gz), could not read "
            f"{path!r}: {_first_line(exc)}"
        ) from None
    if head[: len(_MATRIX_MARKET)].lower() != _MATRIX_MARKET.lower():
        tar = head[257:262] == b"ustar"  # a tar header's magic
        what = "a tar archive: extract its .mtx file first" if tar else "not a Matrix Market file"
        raise ValueError(
            f"--matrix: expected {_MATRIX_FILES}, {path!r} is gzip-compressed but {what}"
        )
    return _load_matrix_market(path, gzip.open)


def _load_matrix_market(path: str, opener=open):
    """A from a Matrix Market file (``scipy.io.mmread``: coordinate or array, symmetric storage
    expanded) as CSR, or a one-line error naming the file; ``opener`` opens it (``gzip.open``
    for an .mtx.gz)."""
    import scipy.io
    import scipy.sparse as sp

    try:
        with opener(path, "rb") as f:
            matrix = scipy.io.mmread(f)
    except (ValueError, OSError, EOFError, IndexError) as exc:
        raise ValueError(
            f"--matrix: expected a Matrix Market matrix, could not read {path!r}: "
            f"{_first_line(exc)}"
        ) from None
    return sp.csr_array(matrix)


def _load_rhs(path: str) -> np.ndarray:
    """b from a ``np.save`` file, or a one-line error naming the file."""
    return _load_npy(path, "--rhs", "a vector")


def _load_npy(path: str, flag: str, what: str) -> np.ndarray:
    """An array from a ``np.save`` file, or a one-line error naming ``flag`` and the file."""
    if Path(path).is_dir():
        raise ValueError(f"{flag}: expected a .npy file, got the folder {path!r}")
    if not Path(path).is_file():
        raise ValueError(f"{flag}: no such file: {path!r}")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":  # np.load takes anything else for an .npz or a pickle
        kind = "an .npz archive" if magic.startswith(b"PK") else "not a .npy file"
        raise ValueError(f"{flag}: expected {what} saved by np.save (.npy), {path!r} is {kind}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(
            f"{flag}: expected {what} saved by np.save (.npy), could not read {path!r}: "
            f"{_first_line(exc)}"
        ) from None


def _load_solid(path: str, shape: tuple[int, ...], grid: str) -> np.ndarray:
    """The ``--solid`` mask: a boolean (or 0 / 1 integer) array of the grid's ``shape`` from a
    ``np.save`` file, or a one-line error naming the flag; ``grid`` names the grid's flag."""
    what = "a boolean mask (True in solid cells)"
    mask = _load_npy(path, "--solid", what)
    if mask.dtype != bool and not (
        mask.dtype.kind in "iu" and np.isin(mask, (0, 1)).all()
    ):  # (why) a float or a 0..255 image would be cast to bool, every nonzero solid
        kind = "integers other than 0 and 1" if mask.dtype.kind in "iu" else f"dtype {mask.dtype}"
        raise ValueError(f"--solid: expected {what}, bool or 0 / 1 integers, got {kind}")
    if mask.shape != shape:
        raise ValueError(
            f"--solid: expected a mask of the grid's shape {shape} ({grid}), got shape {mask.shape}"
        )
    if mask.all():
        raise ValueError(f"--solid: every cell of {path!r} is solid, so there are no unknowns")
    return mask.astype(bool)


def run(args: argparse.Namespace) -> int:
    from .. import linalg as la
    from .._io import atomic_write, file_in_the_way
    from ..operator import load

    poisson, solve = la.poisson, la.solve

    # (why) options the chosen method or source does not use were dropped without a word:
    # '--method cg --k 16' ran plain CG, '--model nope' solved and exited 0
    unused = [f for f, v in (("--model", args.model), ("--k", args.k)) if v is not None]
    if unused and args.method != "dcdm":
        raise ValueError(f"{', '.join(unused)}: only for --method dcdm, got --method {args.method}")
    # (why) the solvers' own checks name their parameters ("rtol: ...", "maxiter must be",
    # "k (directions kept)", "block must be"), not the flags, and some run after the setup
    if not (math.isfinite(args.rtol) and args.rtol > 0):
        raise ValueError(f"--rtol expects a finite number > 0 (the relative residual to reach), "
                         f"got {args.rtol}")  # fmt: skip
    for flag, value, least, what in (
        ("--maxiter", args.maxiter, 0, "an iteration cap (0: only check x0)"),
        ("--k", args.k, 1, "the number of directions kept"),
        ("--deflate", args.deflate, 1, "the aggregates' block size B"),
    ):
        if value is not None and value < least:
            raise ValueError(f"{flag} expects {what}, an integer >= {least}, got {value}")
    if args.grid and args.poisson:
        raise ValueError(
            f"--grid gives the grid of a --matrix; --poisson {args.poisson} is its own grid"
        )
    out = None
    if args.out:  # np.save's name (".npy" added), checked before the solve
        out = Path(args.out if str(args.out).endswith(".npy") else f"{args.out}.npy")
        for path in dict.fromkeys((Path(args.out), out)):
            # (why) a folder named 'x' got x.npy written beside it; one named 'x.npy' failed
            # after the solve, naming atomic_write's temporary file
            if path.is_dir():
                raise ValueError(
                    f"expected --out to name the .npy file to write, got the folder {path}"
                )
        # (why) a missing folder failed only after the solve ("[Errno 2] ... cannot create its
        # temporary file"), where export and data generate make it: it is made at writing, and
        # a file in its place is refused here
        above = file_in_the_way(out.absolute().parent)
        if above is not None:
            raise ValueError(f"expected --out in a folder, got {args.out}, where {above} is a file")
    if args.spacing is not None and not args.poisson:
        # (why) a --matrix carries its own scaling; --grid only lays its unknowns out
        raise ValueError(
            f"--spacing: only for --poisson (a --matrix is assembled already), got --spacing "
            f"{args.spacing} beside --matrix {args.matrix}"
        )
    if args.solid is not None and not (args.poisson or args.grid):
        raise ValueError(
            "--solid: the obstacles of a grid, for --poisson or beside --matrix with --grid, got "
            "--matrix without --grid"
        )
    problem = None
    if args.poisson:
        shape = _shape(args.poisson, "--poisson")
        spacing = 1.0 if args.spacing is None else _spacing(args.spacing, len(shape))
        solid = None
        if args.solid is not None:
            solid = _load_solid(args.solid, shape, f"--poisson {args.poisson}")
        try:
            problem = poisson(shape, spacing=spacing, solid=solid)
        except ValueError as exc:
            # (why) poisson's range check (1 / h^2 a normal float64) names 'spacing[i]'
            raise ValueError(re.sub(r"^spacing(\[\d+\])?", "--spacing", str(exc))) from None
        A = problem.to_scipy()
    else:
        A = _load_matrix(args.matrix)
        if args.grid:
            shape = _shape(args.grid, "--grid")
            solid = None
            if args.solid is not None:
                solid = _load_solid(args.solid, shape, f"--grid {args.grid}")
            problem = poisson(shape, solid=solid)
            n, m = A.shape
            if n == m and problem.n != n:
                # (why) the solve's own check said 'problem has 25 unknowns but A is 30 x 30',
                # naming neither flag
                cells = "cells" if solid is None else f"fluid cells (with --solid {args.solid})"
                raise ValueError(
                    f"--grid {args.grid} has {problem.n} {cells} (unknowns) but --matrix "
                    f"{args.matrix} is {n} x {n}: give the grid A was assembled on"
                )
    b = _load_rhs(args.rhs) if args.rhs else np.random.default_rng(0).standard_normal(A.shape[0])
    deflation = None
    if args.deflate is not None:
        if args.method not in ("cg", "dcdm"):
            raise ValueError(
                f"--deflate works with --method cg or dcdm, got --method {args.method}"
            )
        if problem is None:
            raise ValueError("--deflate needs the grid: give --poisson or --grid")
        deflation = la.Deflation(args.deflate)
    method = args.method  # a name solve() takes, except dcdm and deflated cg
    if args.method == "dcdm":
        if problem is None:
            raise ValueError("--method dcdm needs the grid: give --poisson or --grid")
        model = load(args.model or "dcdm-poisson3d")
        if not isinstance(model, la.DCDMNet):
            # (why) another family's network failed at its first forward with its own shape
            # error ("FNO expected u of shape (batch, 1, 2 spatial dims)"), naming no --model
            inner = getattr(model, "inner", None)
            kind = type(model).__name__
            family = getattr(model, "family", None)
            if inner is not None:  # a Normalized wrapper: the wrapped network is what it is
                kind, family = f"{type(inner).__name__} in {kind}", getattr(inner, "family", None)
            raise ValueError(
                "--model: --method dcdm expects a DCDM network (family 'dcdm', as "
                f"dcdm-poisson3d), got {args.model} ({kind}, family {family!r})"
            )
        method = la.DeepConjugateDirection(
            model.float(),
            k=2 if args.k is None else args.k,
            problem=problem,
            deflation=deflation,
        )
    elif deflation is not None:
        method = la.FlexibleCG(deflation=deflation)
    x, result = solve(A, b, method=method, rtol=args.rtol, maxiter=args.maxiter, problem=problem)
    if result.status is la.Status.NAN_INPUT:  # bad input files: an error, no all-NaN x written
        raise ValueError(result.message)
    if out is not None:  # written whole or not at all
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda f: np.save(f, x))
    record = {
        "status": result.status.value,
        "iterations": result.iterations,
        "true_residual": result.true_residual,
        "time_s": round(result.time_s, 4),
        "message": result.message,
    }
    if out is not None:  # (why) --out y writes y.npy (np.save's naming): say which file
        record["out"] = str(out)
    print(json.dumps(record))
    return 0 if result.converged else 1
