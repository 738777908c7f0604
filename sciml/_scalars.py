"""Predicates for scalar arguments, shared by every subpackage's input checks (no torch import).

(why) ``True`` passes ``isinstance(v, int)`` and every range check (``True >= 1``), so a bool
given for a count or a size ran as 1; NumPy's integers and floats are accepted as Python's
(``numbers`` registers them)."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["is_int", "is_real"]


def is_int(value: Any) -> bool:
    """An integer (NumPy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number (an int or a float, NumPy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
