"""Sparse SPD linear systems: Poisson operators, Krylov solvers, the deep conjugate-direction
method (DCDM) and SciPy interop.

    from sciml.linalg import poisson, Wall, solve, CG, PCG, AMG, DeepConjugateDirection
    P = poisson((64, 64, 64), walls=Wall.NEUMANN, solid=mask)
    x, result = solve(P.stencil(), b, method=DeepConjugateDirection(sciml.load("dcdm-poisson3d")))
"""

from ._operator import LinearOperator, as_operator
from .dcdm import (
    DCDMConfig,
    DCDMNet,
    DeepConjugateDirection,
    RitzSampler,
    dcdm_loss,
    lanczos,
    train_dcdm,
)
from .deflation import Deflation
from .krylov import (
    AMG,
    CG,
    PCG,
    FlexibleCG,
    Jacobi,
    Preconditioner,
    SolveResult,
    Status,
    SymmetricGaussSeidel,
)
from .poisson import Poisson, StencilOperator, Wall, poisson
from .solve import scipy_solver, solve

__all__ = [
    "poisson",
    "Poisson",
    "Wall",
    "StencilOperator",
    "LinearOperator",
    "as_operator",
    "solve",
    "scipy_solver",
    "Status",
    "SolveResult",
    "CG",
    "PCG",
    "FlexibleCG",
    "Deflation",
    "Preconditioner",
    "Jacobi",
    "SymmetricGaussSeidel",
    "AMG",
    "DCDMConfig",
    "DCDMNet",
    "DeepConjugateDirection",
    "lanczos",
    "RitzSampler",
    "dcdm_loss",
    "train_dcdm",
]
