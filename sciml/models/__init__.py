"""Model families. Importing this package registers every built-in family with sciml.load."""

from .deeponet import DeepONet, DeepONetConfig, FourierFeatures, HardZero, MLPSpec
from .fno import FNO, FNOConfig
from .mgno import MgNO, MgNOConfig
from .neural_ode import NODE, NODEConfig
from .normalized import Normalized, NormalizedConfig
from .pod_deeponet import PODDeepONet, PODDeepONetConfig
from .prose import PROSE, PROSEConfig
from .scot import ScOT, ScOTConfig
from .t1 import T1, T1Config

__all__ = [
    "FNO",
    "FNOConfig",
    "T1",
    "T1Config",
    "MgNO",
    "MgNOConfig",
    "DeepONet",
    "DeepONetConfig",
    "MLPSpec",
    "FourierFeatures",
    "HardZero",
    "PODDeepONet",
    "PODDeepONetConfig",
    "ScOT",
    "ScOTConfig",
    "PROSE",
    "PROSEConfig",
    "Normalized",
    "NormalizedConfig",
    "NODE",
    "NODEConfig",
]
