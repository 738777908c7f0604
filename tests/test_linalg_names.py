"""sciml.linalg.solve(method=NAME): the command line's method names in Python."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from sciml.linalg import (
    AMG,
    CG,
    PCG,
    Jacobi,
    Status,
    SymmetricGaussSeidel,
    Wall,
    poisson,
    scipy_solver,
    solve,
)


@pytest.mark.parametrize(
    "name, method",
    [
        ("cg", CG()),
        ("jacobi", PCG(Jacobi())),
        ("sgs", PCG(SymmetricGaussSeidel())),
        ("amg", PCG(AMG())),
    ],
)
def test_a_method_name_runs_the_method_the_cli_names_so(name, method):
    """``solve(A, b, method="jacobi")`` took only objects (TypeError); a name is now the object
    that ``sciml solve --method`` runs under it: the same residual history, and x agrees with a
    sparse direct solve."""
    if name == "amg":
        pytest.importorskip("pyamg")  # the amg extra
    P = poisson((10, 13), walls=Wall.DIRICHLET)
    A = P.to_scipy()
    b = np.random.default_rng(3).standard_normal(P.n)
    x, res = solve(A, b, method=name, rtol=1e-10)
    _, ref = solve(A, b, method=method, rtol=1e-10)
    assert res.status is Status.CONVERGED and res.iterations == ref.iterations
    # (pyamg's setup draws random vectors: two AMG hierarchies differ by rounding)
    assert res.residuals == pytest.approx(ref.residuals, rel=0 if name != "amg" else 1e-3)
    np.testing.assert_allclose(x, sla.spsolve(A.tocsc(), b), rtol=0, atol=1e-8)
    # scipy_solver takes the names too, with SciPy's M beside "cg" as beside CG()
    x, info = scipy_solver(name)(A, b, rtol=1e-10)
    assert info == 0
    np.testing.assert_allclose(x, sla.spsolve(A.tocsc(), b), rtol=0, atol=1e-8)
    # SciPy's M on a matrix whose diagonal varies (on the grid's constant one Jacobi is CG)
    # (why) sp.diags: diags_array is SciPy 1.11's, pyproject.toml allows 1.10
    A = sp.csr_array(A + sp.diags(np.random.default_rng(4).uniform(0.0, 5e3, P.n)))
    inverse_diagonal = sp.csr_array(sp.diags(1.0 / A.diagonal()))
    if name != "cg":  # a method with a preconditioner of its own refuses a second one
        with pytest.raises(ValueError, match=r"M: only CG\(\), PCG\(\) or FlexibleCG\(\)"):
            scipy_solver(name)(A, b, M=inverse_diagonal)
        return
    cg = scipy_solver(name)
    x, info = cg(A, b, rtol=1e-10, M=inverse_diagonal)
    _, jacobi = solve(A, b, method=PCG(Jacobi()), rtol=1e-10)  # the same M, as sciml's own
    assert info == 0 and cg.last_result.iterations == jacobi.iterations
    assert cg.last_result.residuals == pytest.approx(jacobi.residuals, rel=1e-8)
    np.testing.assert_allclose(x, sla.spsolve(A.tocsc(), b), rtol=0, atol=1e-8)


def test_the_cli_offers_every_name_solve_takes():
    from sciml.linalg._cli import METHODS as cli
    from sciml.linalg.solve import METHODS

    assert set(METHODS) | {"dcdm"} == set(cli)


def test_the_public_names_are_the_lazy_names():
    """sciml.linalg's names load on first use from one table (_NAMES, by module) beside the
    literal __all__ that the API reference reads: the two list the same names (four lived
    outside the table before), each resolves to the object of the module the table names, and
    dir() lists them."""
    import importlib

    import sciml.linalg as la

    assert len(la.__all__) == len(set(la.__all__))
    assert set(la.__all__) == set(la._LAZY)
    for name, module in la._LAZY.items():
        assert getattr(la, name) is getattr(importlib.import_module(f"sciml.linalg.{module}"), name)
    assert set(la.__all__) <= set(dir(la))


def test_the_submodules_export_what_the_package_lists():
    """The DCDM names (and every other) are listed three times: in the submodule's __all__, in
    sciml.linalg's lazy table and in its literal __all__ (which griffe reads without running the
    file, so neither can be built from the other). The lists agree: every name a submodule
    exports is the package's object of that name, and together they are the package's names;
    krylov.py still exports what it held before the split (the preconditioners and the result
    record moved to modules of their own)."""
    import importlib

    import sciml.linalg as la

    exported = set()
    for name in la._NAMES:
        module = importlib.import_module(f"sciml.linalg.{name}")
        exported |= set(module.__all__)
        for public in module.__all__:
            assert getattr(module, public) is getattr(la, public), (name, public)
    assert exported == set(la.__all__)
    krylov = importlib.import_module("sciml.linalg.krylov")
    assert set(krylov.__all__) == {
        "Status",
        "SolveResult",
        "Preconditioner",
        "Jacobi",
        "SymmetricGaussSeidel",
        "AMG",
        "CG",
        "PCG",
        "FlexibleCG",
    }


def test_the_spelled_names_build_the_methods_they_name():
    """The error messages spell each name's method as the call that builds it (derived from
    METHODS, so a new name cannot be left out): evaluated, each spelling is that method."""
    import sciml.linalg as la
    from sciml.linalg.solve import _SPELLED, METHODS

    assert _SPELLED == {
        "cg": "CG()",
        "jacobi": "PCG(Jacobi())",
        "sgs": "PCG(SymmetricGaussSeidel())",
        "amg": "PCG(AMG())",
    }
    public = {name: getattr(la, name) for name in la.__all__}
    for name, spelled in _SPELLED.items():
        assert eval(spelled, public) == METHODS[name], name


def test_an_unknown_method_name_lists_the_names():
    P = poisson((6, 6), walls=Wall.DIRICHLET)
    b = np.ones(P.n)
    names = r"'cg' \(CG\(\)\), 'jacobi' \(PCG\(Jacobi\(\)\)\), 'sgs' .*, 'amg' \(PCG\(AMG\(\)\)\)"
    with pytest.raises(ValueError, match=rf"method: unknown name 'pcg'; expected one of {names}"):
        solve(P, b, method="pcg")
    with pytest.raises(ValueError, match=r"unknown name 'CG'.*names are lower case: 'cg'"):
        solve(P, b, method="CG")
    with pytest.raises(ValueError, match=r"DCDM needs a network: method=DeepConjugateDirection"):
        solve(P, b, method="dcdm")
    with pytest.raises(ValueError, match=r"unknown name 'bicgstab'"):
        scipy_solver("bicgstab")
    with pytest.raises(TypeError, match=rf"or one of the names {names}, got <class"):
        solve(P, b, method=CG)  # the class, not an object
