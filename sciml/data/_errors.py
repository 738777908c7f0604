"""The one error type of ``sciml.data``: it always names the file, the key and what was expected."""

from __future__ import annotations

import os

from ..errors import SciMLError


class DataFormatError(SciMLError, ValueError):
    """A file does not hold what its layout promises (or cannot be read at all).

    The message always starts with the file path, then names the HDF5 key (when one applies),
    what was expected and what was found, e.g.
    ``/p/f.h5: dataset 'fields/u' has shape (4, 10, 32), expected (n_samples=4, n_steps=11, 32)``.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, *, key: str | None = None):
        self.path = str(path)
        self.key = key
        prefix = f"{self.path}: " if key is None else f"{self.path}: key '{key}': "
        super().__init__(prefix + message)


def shape_str(shape: tuple[int, ...]) -> str:
    """``(4, 10, 32)`` -- tuples printed the same way everywhere."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"
