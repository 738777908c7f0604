"""sciml: neural operators and neural differential equations in PyTorch.

One operator interface (:class:`Operator`, :func:`load`), HDF5 PDE data (:mod:`sciml.data`),
one Trainer (:mod:`sciml.train`), model families in :mod:`sciml.models`, layers in
:mod:`sciml.layers`, PINNs in :mod:`sciml.pinn`, neural ODEs/SDEs in :mod:`sciml.de`, linear
solvers with learned search directions in :mod:`sciml.linalg`, symbolic ODE systems in
:mod:`sciml.symbolic`, shipped pretrained surrogates and their model cards in
:mod:`sciml.pretrained`; :func:`export` turns a model into a ``torch.export`` program that runs
without sciml.
"""

from . import data, de, layers, linalg, models, pinn, pretrained, symbolic, train
from ._export import export
from ._version import __version__
from .errors import CheckpointError, ConfigError, SciMLError
from .operator import Operator, load, registered_families

__all__ = [
    "__version__",
    "Operator",
    "load",
    "export",
    "registered_families",
    "data",
    "de",
    "linalg",
    "pinn",
    "pretrained",
    "symbolic",
    "layers",
    "models",
    "train",
    "SciMLError",
    "ConfigError",
    "CheckpointError",
]
