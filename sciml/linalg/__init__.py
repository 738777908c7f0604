"""Sparse SPD linear systems: Poisson operators, Krylov solvers, the deep conjugate-direction
method (DCDM) and SciPy interop.

    from sciml.linalg import poisson, Wall, solve, CG, PCG, AMG, DeepConjugateDirection
    P = poisson((64, 64, 64), walls=Wall.NEUMANN, solid=mask)
    x, result = solve(P.stencil(), b, method=DeepConjugateDirection(sciml.load("dcdm-poisson3d")))
"""

import sys
import types
from typing import TYPE_CHECKING

from .._lazy import lazy_attributes as _lazy_attributes

if TYPE_CHECKING:
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
    from .krylov import CG, PCG, FlexibleCG
    from .poisson import Poisson, StencilOperator, Wall, poisson
    from .preconditioners import AMG, Jacobi, Preconditioner, SymmetricGaussSeidel
    from .result import SolveResult, Status
    from .solve import scipy_solver, solve

# (why) every module here imports torch, and `sciml --help` builds the `sciml solve` parser from
# sciml.linalg._cli: the names load on first use (PEP 562) so the help needs no torch. _NAMES is
# the one table of them, by module; __all__ (below) stays a literal list because the API reference
# (griffe) reads it without running this file (from list(_LAZY) it got no names at all):
# test_linalg_names checks that the two agree
_NAMES = {
    "_operator": ("LinearOperator", "as_operator"),
    "dcdm": (
        "DCDMConfig",
        "DCDMNet",
        "DeepConjugateDirection",
        "RitzSampler",
        "dcdm_loss",
        "lanczos",
        "train_dcdm",
    ),
    "deflation": ("Deflation",),
    "krylov": ("CG", "PCG", "FlexibleCG"),
    "poisson": ("Poisson", "StencilOperator", "Wall", "poisson"),
    "preconditioners": ("AMG", "Jacobi", "Preconditioner", "SymmetricGaussSeidel"),
    "result": ("SolveResult", "Status"),
    "solve": ("scipy_solver", "solve"),
}
_LAZY = {name: module for module, names in _NAMES.items() for name in names}
# names that are also submodules' names: importing sciml.linalg.poisson binds the module on this
# package, where the function belongs (an eager `from .poisson import poisson` rebinds it; a lazy
# package would keep the module), so the binding of those modules is refused below
_SHADOWED = frozenset({"poisson", "solve"})
# the eager imports bound the first three; preconditioners and result hold what krylov.py held
_MODULES = frozenset({"dcdm", "deflation", "krylov", "preconditioners", "result"})


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, _MODULES)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the submodule stays in sys.modules; the name is the function's
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
