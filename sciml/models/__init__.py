"""Model families. Importing this package registers every built-in family with sciml.load."""

from .deeponet import DeepONet, DeepONetConfig
from .fno import FNO, FNOConfig
from .normalized import Normalized, NormalizedConfig

__all__ = ["FNO", "FNOConfig", "Normalized", "NormalizedConfig"]
__all__ += ["DeepONet", "DeepONetConfig"]
