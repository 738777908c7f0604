"""Model families. Importing this package registers every built-in family with sciml.load."""

from .fno import FNO, FNOConfig

__all__ = ["FNO", "FNOConfig"]
