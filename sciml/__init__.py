"""sciml: neural operators and neural differential equations in PyTorch.

One operator interface (:class:`Operator`, :func:`load`), HDF5 PDE data (:mod:`sciml.data`),
one Trainer (:mod:`sciml.train`), model families in :mod:`sciml.models`, layers in
:mod:`sciml.layers`, PINNs in :mod:`sciml.pinn`, neural ODEs/SDEs in :mod:`sciml.de`, linear
solvers with learned search directions in :mod:`sciml.linalg`, symbolic ODE systems in
:mod:`sciml.symbolic`, shipped pretrained surrogates and their model cards in
:mod:`sciml.pretrained`; :func:`export` turns a model into a ``torch.export`` program that runs
without sciml.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes as _lazy_attributes
from ._version import __version__
from .errors import CheckpointError, ConfigError, SciMLError

if TYPE_CHECKING:
    from . import data, de, layers, linalg, models, pinn, pretrained, symbolic, train
    from ._export import export
    from .operator import Operator, load, registered_families

# (why) everything below loads on first use (PEP 562). Imported eagerly, `import sciml` took
# 4.1 s: torch, h5py, and sciml.de pulling torchdiffeq -> scipy.integrate (0.67 s) alone; every
# spawn DataLoader worker and every `sciml --help` paid it. `sciml.load` / `registered_families`
# import the modules that register families themselves (operator._import_builtin_families).
# the subpackages, and sciml.operator: the eager imports bound it too
_MODULES = (
    "data",
    "de",
    "layers",
    "linalg",
    "models",
    "operator",
    "pinn",
    "pretrained",
    "symbolic",
    "train",
)
_LAZY = {
    "Operator": "operator",
    "load": "operator",
    "registered_families": "operator",
    "export": "_export",
}


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, _MODULES)


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
