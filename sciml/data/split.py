"""Explicit, recorded train / validation / test splits over samples (trajectories)."""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text

_PARTS = ("train", "val", "test")


def _index(value: Any) -> int:
    """``value`` as an int: ints and numpy integers, not bools, floats or strings."""
    if isinstance(value, bool):  # (why) operator.index(True) is 1
        raise TypeError
    return operator.index(value)


@dataclass(frozen=True)
class Split:
    """Sample indices of each part. Splits are over whole samples, never over windows of one
    trajectory, so no trajectory leaks from training into evaluation.

    A ``Split`` is checked when made (also by :meth:`load`): every index in ``[0, n)``, none
    twice, no part sharing one with another. A hand-edited or mismatched ``splits.json`` whose
    test part overlapped train was used as it was.

    Attributes:
        train: indices of the training samples (sorted in a split made by :func:`split`).
        val: indices of the validation samples.
        test: indices of the test samples.
        n: the number of samples of the data set split; every index lies in ``[0, n)``.
        seed: the shuffle seed :func:`split` was given (``None``: file order, or not
            recorded); kept as a record, not used.
    """

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    n: int
    seed: int | None = None

    def __post_init__(self) -> None:
        # (why) numpy integers (np.flatnonzero(mask), split(n, seed=np.int64(3))) made a Split
        # that save() could not write ("Object of type int64 is not JSON serializable"), and
        # an index array compared ambiguously in ==
        try:
            parts = {k: tuple(_index(i) for i in getattr(self, k)) for k in _PARTS}
            n = _index(self.n)
            seed = None if self.seed is None else _index(self.seed)
        except TypeError:
            raise TypeError(
                f"Split: expected integer sample indices, n and seed, got train={self.train!r}, "
                f"val={self.val!r}, test={self.test!r}, n={self.n!r}, seed={self.seed!r}"
            ) from None
        for k, v in parts.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "seed", seed)
        seen: dict[int, str] = {}
        for name in ("train", "val", "test"):
            for i in getattr(self, name):
                if not 0 <= i < self.n:
                    raise ValueError(
                        f"Split: expected {name} indices in [0, n={self.n}), got {i}; a split "
                        "of another (larger) file? make one for this file with split(len(ds))"
                    )
                if i in seen:
                    raise ValueError(
                        f"Split: expected disjoint parts without repeats, got sample {i} in "
                        f"{seen[i]} and in {name}; a sample in two parts leaks from training "
                        "into evaluation -- make the split with split(n, sizes, seed=...)"
                    )
                seen[i] = name

    def to_dict(self) -> dict[str, Any]:
        """``{"n", "seed", "train", "val", "test"}`` with index lists, JSON-ready."""
        return {
            "n": self.n,
            "seed": self.seed,
            "train": list(self.train),
            "val": list(self.val),
            "test": list(self.test),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "split") -> Split:
        """The split of a :meth:`to_dict` (``seed`` may be absent), checked when made
        (``source``: what it was read from, for the error message)."""
        keys = ("n", "test", "train", "val")
        if not isinstance(d, dict) or not set(keys) <= set(d):
            # (why) a normaliser file read here raised KeyError: 'train', which named no file
            found = f"keys {sorted(d)}" if isinstance(d, dict) else type(d).__name__
            raise ValueError(
                f"{source}: expected a JSON object with keys {', '.join(map(repr, keys))} (a "
                f"file written by Split.save, e.g. sciml train's splits.json), got {found}"
            )
        # (why) not int(): it read a hand-edited index 0.7 as sample 0, true as 1, '3' as 3 and
        # n 10.9 as 10; the Split refuses what is no integer
        bad = [k for k in _PARTS if not isinstance(d[k], list)]
        if bad:
            raise ValueError(
                f"{source}: expected {bad[0]!r} a list of sample indices, got "
                f"{type(d[bad[0]]).__name__} {d[bad[0]]!r}"
            )
        try:
            return cls(**{k: tuple(d[k]) for k in _PARTS}, n=d["n"], seed=d.get("seed"))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{source}: {exc}") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically) and return the path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Split:
        """Read a file written by :meth:`save` (``sciml train``'s ``splits.json``), checked
        as any split is."""
        return cls.from_dict(json.loads(Path(path).read_text()), source=str(path))


def split(
    n: int | Any,
    sizes: Sequence[float] | Sequence[int] = (0.8, 0.1, 0.1),
    *,
    seed: int | None = 0,
) -> Split:
    """Split ``n`` samples (or ``len(dataset)``) into train / val / test index lists.

    Args:
        n: number of samples, or anything with ``len``.
        sizes: fractions (floats summing to at most 1; each part gets ``round(fraction * n)``
            samples, the train part takes the rounding remainder when they sum to 1, and the
            test part when train is empty; where the rounded parts would need one sample more
            than ``n``, the part rounded up most gives it back) or counts (ints), two or three
            entries.
        seed: shuffle with this seed; ``None`` keeps file order (first train, then val, test).

    The parts are disjoint, sorted, and cover ``range(n)`` when the sizes sum to 1 (or ``n``).
    They are a function of ``(n, sizes, seed)`` alone: the same arguments give the same parts in
    every process (NumPy's ``default_rng(seed).permutation(n)``, stable within a NumPy version).
    They are **not** stable when the file grows: a file of ``n + 1`` samples gets another
    permutation, and some of the first ``n`` samples change part (1000 -> 1001 samples, sizes
    0.8/0.1/0.1: 3.0% on average over seeds 0-19, up to 5.1%). To keep a split, save it
    (:meth:`Split.save`; ``sciml train`` writes ``splits.json``) and :meth:`Split.load` it rather
    than splitting again.
    """
    if isinstance(n, bool) or not (isinstance(n, Integral) or hasattr(n, "__len__")):
        # (why) len(10.0) failed with "object of type 'float' has no len()", and True was 1
        raise TypeError(
            f"split: expected n an integer >= 0 or a data set (anything with len), got "
            f"{type(n).__name__} {n!r}"
        )
    n = int(n) if isinstance(n, Integral) else len(n)
    if n < 0:  # (why) split(-3) made a Split of n=-3, which save() wrote
        raise ValueError(f"split: expected n an integer >= 0, got {n}")
    sizes = list(sizes) + [0] * (3 - len(sizes))
    # (why) not `s < 0`: NaN passed it and failed in round() ("cannot convert float NaN")
    if len(sizes) != 3 or not all(s >= 0 for s in sizes):
        raise ValueError(f"sizes must be 2 or 3 non-negative numbers, got {sizes}")
    if all(isinstance(s, (int, np.integer)) for s in sizes):
        counts = [int(s) for s in sizes]
    else:
        if sum(sizes) > 1 + 1e-9:
            raise ValueError(f"fractions {sizes} sum to {sum(sizes)} > 1")
        counts = [int(round(s * n)) for s in sizes]
        if abs(sum(sizes) - 1) < 1e-9:
            counts[0] = n - counts[1] - counts[2]
            if counts[0] < 0:
                # (0, 0.5, 0.5) of 7 rounds to 4 + 4: train got -1, and order[:-1] handed it 6
                # samples that overlapped test; the last part gives back the excess instead
                counts[2] += counts[0]
                counts[0] = 0
        excess = sum(counts) - n  # at most 1: each part rounds up by at most half a sample
        if excess > 0:
            # (why) (0.3, 0.3, 0.3) of 5 rounded to 2 + 2 + 2 and was refused ("need 6 samples,
            # only 5 exist") though the fractions sum to 0.9; the part rounded up most (the
            # later one on a tie) gives the sample back
            over = sorted(range(3), key=lambda k: (counts[k] - sizes[k] * n, k), reverse=True)
            for k in over[:excess]:
                counts[k] -= 1
    if sum(counts) > n:
        raise ValueError(f"split sizes {counts} need {sum(counts)} samples, only {n} exist")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    a, b = counts[0], counts[0] + counts[1]
    parts = [
        tuple(sorted(int(i) for i in p)) for p in (order[:a], order[a:b], order[b : b + counts[2]])
    ]
    return Split(*parts, n=n, seed=seed)
