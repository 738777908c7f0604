"""``typing.get_type_hints`` resolves the annotations of every public callable of the modules
whose annotations named a type imported only under ``TYPE_CHECKING`` (``NameError`` before), and
``import sciml.data`` still does not import xarray for it."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest
from _fresh import run_fresh_python

# each module, with the callable whose annotation raised NameError
MODULES = {
    "sciml.data.dataset": "H5Dataset.to_xarray",
    "sciml.data._xarray": "to_xarray",
    "sciml.pinn.networks": "PINN.loss_terms",
}


def public_callables(module_name: str) -> dict[str, object]:
    """Functions and classes defined in the module (``__all__``, else names without ``_``), and
    the methods, properties, ``__init__`` and ``__call__`` the classes define."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if n[0] != "_"]
    found: dict[str, object] = {}
    for name in names:
        obj = getattr(module, name)
        if getattr(obj, "__module__", None) != module_name:
            continue  # imported from elsewhere
        if inspect.isfunction(obj):
            found[name] = obj
        elif inspect.isclass(obj):
            found[name] = obj
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in ("__init__", "__call__"):
                    continue
                func = member.fget if isinstance(member, property) else member
                func = getattr(func, "__func__", func)  # classmethod / staticmethod
                if inspect.isfunction(func):
                    found[f"{name}.{attr}"] = func
    return found


@pytest.mark.parametrize("module_name", MODULES)
def test_get_type_hints_resolves_every_public_callable(module_name):
    found = public_callables(module_name)
    assert MODULES[module_name] in found, sorted(found)  # the walk reached the one that failed
    failed = {}
    for qual, obj in found.items():
        try:
            typing.get_type_hints(obj)
        except Exception as exc:  # noqa: BLE001 -- collect every failure, not the first
            failed[qual] = f"{type(exc).__name__}: {exc}"
    assert not failed, failed


def test_the_resolved_hints_are_the_annotated_classes():
    """The names that failed resolve to the classes they name, not to stand-ins."""
    import xarray as xr

    from sciml.data._xarray import to_xarray
    from sciml.data.dataset import H5Dataset
    from sciml.pinn.networks import PINN
    from sciml.pinn.problems import PeriodicProblem

    assert typing.get_type_hints(H5Dataset.to_xarray)["return"] is xr.Dataset
    assert typing.get_type_hints(to_xarray) == {"ds": H5Dataset, "return": xr.Dataset}
    assert typing.get_type_hints(PINN.loss_terms)["problem"] is PeriodicProblem


def test_import_sciml_data_does_not_import_xarray_and_the_hint_then_does():
    """xarray (about 1.2 s) is imported when the hint is resolved, not by ``import sciml.data``."""
    code = """
        import sys, typing
        import sciml.data
        from sciml.data.dataset import H5Dataset
        before = "xarray" in sys.modules
        hint = typing.get_type_hints(H5Dataset.to_xarray)["return"]
        print(before, f"{hint.__module__}.{hint.__qualname__}")
    """
    assert run_fresh_python(code).split() == ["False", "xarray.core.dataset.Dataset"]


def test_the_xarray_stand_in_survives_copy_and_pickle():
    """copy and pickle make the stand-in without ``__init__`` and ask it for ``__setstate__``:
    its ``__getattr__`` read ``self._name`` there and recursed (RecursionError). A copy still
    resolves to xarray's own classes."""
    import copy
    import pickle

    import xarray as xr

    from sciml.data import dataset

    for clone in (
        copy.copy(dataset.xr),
        copy.deepcopy(dataset.xr),
        pickle.loads(pickle.dumps(dataset.xr)),
    ):
        assert clone.Dataset is xr.Dataset
        assert clone.DataArray is xr.DataArray
