"""sciml: neural operators and neural differential equations in PyTorch.

One operator interface (:class:`Operator`, :func:`load`), HDF5 PDE data (:mod:`sciml.data`),
one Trainer (:mod:`sciml.train`) and model families in :mod:`sciml.models`.
"""

from . import data, layers, models, train
from ._version import __version__
from .errors import CheckpointError, ConfigError, SciMLError
from .operator import Operator, load, registered_families

__all__ = [
    "__version__",
    "Operator",
    "load",
    "registered_families",
    "data",
    "layers",
    "models",
    "train",
    "SciMLError",
    "ConfigError",
    "CheckpointError",
]
