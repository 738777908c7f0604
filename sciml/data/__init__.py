"""HDF5 PDE data: sciml's own layout, PDEBench, The Well, Poseidon NetCDF; torch views on top.

```
write / Writer  -->  file.h5 (sciml layout)      validate / check  -->  list of problems
open(path)      -->  H5Dataset (any layout)      .read, .read_static, .to_xarray()
Windows / AllPairs / SnapshotPairs / StaticPairs / PointSamples  -->  dicts of tensors
split, Normalizer, ShardedSampler
```
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes as _lazy_attributes

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


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, _MODULES)


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
