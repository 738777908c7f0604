"""Exceptions raised by sciml. Each message says what was expected, what was found, and where."""

from __future__ import annotations

__all__ = ["SciMLError", "ConfigError", "CheckpointError"]


class SciMLError(Exception):
    """Base class of sciml's own errors."""


class ConfigError(SciMLError, ValueError):
    """A config (model, training or experiment) has unknown fields or values of the wrong type."""


class CheckpointError(SciMLError, OSError):
    """A checkpoint is missing, of another family, truncated or tampered with."""
