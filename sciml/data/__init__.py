"""HDF5 PDE data: sciml's own layout, PDEBench, The Well, Poseidon NetCDF; torch views on top.

```
write / Writer  -->  file.h5 (sciml layout)      validate / check  -->  list of problems
open(path)      -->  H5Dataset (any layout)      .read, .read_static, .to_xarray()
Windows / AllPairs / SnapshotPairs / StaticPairs / PointSamples  -->  dicts of tensors
split, Normalizer, ShardedSampler
```
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING

# (why) the HDF5 core needs h5py and numpy only, and is imported here; the torch views load on
# first use (PEP 562), so `sciml info FILE.h5` and `sciml data validate` run without torch.
# `split` and `validate` stay eager: they are also the names of submodules, and a submodule
# imported before the lazy name was asked for would leave the module where the function belongs.
from ._errors import DataFormatError
from .dataset import H5Dataset, describe, open
from .split import Split, split
from .validate import check, validate
from .writer import Writer, write

if TYPE_CHECKING:
    from .normalize import Normalizer
    from .points import PointSamples
    from .sampler import ShardedSampler
    from .views import AllPairs, SnapshotPairs, StaticPairs, Windows

_LAZY = {
    "Normalizer": "normalize",
    "PointSamples": "points",
    "ShardedSampler": "sampler",
    "AllPairs": "views",
    "SnapshotPairs": "views",
    "StaticPairs": "views",
    "Windows": "views",
}
_MODULES = frozenset(_LAZY.values())  # sciml.data.views etc.: the eager imports bound them too


def __getattr__(name: str):
    if name in _MODULES:
        return _import_module(f".{name}", __name__)  # the import binds it on this module
    if name in _LAZY:
        value = getattr(_import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES))


__all__ = [
    "AllPairs",
    "DataFormatError",
    "H5Dataset",
    "Normalizer",
    "PointSamples",
    "ShardedSampler",
    "SnapshotPairs",
    "Split",
    "StaticPairs",
    "Windows",
    "Writer",
    "check",
    "describe",
    "open",
    "split",
    "validate",
    "write",
]
