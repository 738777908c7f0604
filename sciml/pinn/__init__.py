"""Physics-informed neural networks: autograd derivatives, collocation sampling, constraints,
Adam + L-BFGS training, and Lagrangian PINNs for transport-dominated PDEs.

See ``docs/pinn.md``.
"""

from . import derivatives, reference, sampling
from .constraints import (
    HardConstraint,
    HardInitialCondition,
    PeriodicEmbedding,
    periodic_penalty,
    soft_penalty,
)
from .derivatives import chunked, divergence, grad, grads, laplacian, partial, time_derivative
from .lagrangian import LagrangianPINN, periodic_interp
from .networks import MLP, PINN
from .problems import Burgers, Convection, ConvectionDiffusion, PeriodicProblem
from .sampling import Box, grid, latin_hypercube, resample_by_residual, sobol, uniform
from .training import AdaptiveWeights, LossWeights, PINNFitResult, PINNTrainConfig, fit

__all__ = [
    "derivatives",
    "reference",
    "sampling",
    "grad",
    "grads",
    "partial",
    "laplacian",
    "divergence",
    "time_derivative",
    "chunked",
    "Box",
    "uniform",
    "latin_hypercube",
    "sobol",
    "grid",
    "resample_by_residual",
    "PeriodicEmbedding",
    "HardConstraint",
    "HardInitialCondition",
    "soft_penalty",
    "periodic_penalty",
    "MLP",
    "PINN",
    "LagrangianPINN",
    "periodic_interp",
    "PeriodicProblem",
    "Convection",
    "ConvectionDiffusion",
    "Burgers",
    "PINNTrainConfig",
    "LossWeights",
    "AdaptiveWeights",
    "PINNFitResult",
    "fit",
]
