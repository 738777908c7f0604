"""HDF5 PDE data: sciml's own layout, PDEBench, The Well, Poseidon NetCDF; torch views on top.

```
write / Writer  -->  file.h5 (sciml layout)      validate / check  -->  list of problems
open(path)      -->  H5Dataset (any layout)      .read, .read_static, .to_xarray()
Windows / AllPairs / SnapshotPairs / StaticPairs / PointSamples  -->  dicts of tensors
split, Normalizer, ShardedSampler
```
"""

from ._errors import DataFormatError
from .dataset import H5Dataset, describe, open
from .normalize import Normalizer
from .points import PointSamples
from .sampler import ShardedSampler
from .split import Split, split
from .validate import check, validate
from .views import AllPairs, SnapshotPairs, StaticPairs, Windows
from .writer import Writer, write

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
