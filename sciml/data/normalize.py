r"""Per-channel normalisation, fitted in one streaming pass and applied to every split alike.

For channel :math:`c`, ``encode`` computes :math:`(u_c - \mu_c) / \sigma_c` and ``decode`` the
inverse, with :math:`\mu_c, \sigma_c` the mean and (population) standard deviation over every
sample, step and grid point of the fitting samples, of the values as the file stores them (a
float64 field is read in float64). Statistics are accumulated in float64 with Chan et al.'s
pairwise update, one ``(steps, channels, *spatial)`` block at a time, so fitting never holds more
than one block in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from .._io import atomic_write_text
from .dataset import H5Dataset

Array = TypeVar("Array", np.ndarray, torch.Tensor)

# Largest block read at once while fitting (bytes, in the dtype read).
_BLOCK_BYTES = 64 * 1024 * 1024


def _check_stats(mean: Mapping[str, float], std: Mapping[str, float]) -> None:
    bad = [f"mean[{k!r}]={v!r}" for k, v in mean.items() if not np.isfinite(v)]
    bad += [f"std[{k!r}]={v!r}" for k, v in std.items() if not (np.isfinite(v) and v > 0)]
    if bad:
        # encode divided by a zero std (inf) or carried a NaN mean into every value silently
        raise ValueError(
            f"Normalizer expected a finite mean and a finite std > 0 per channel, got "
            f"{', '.join(bad)}; fit it on finite data (Normalizer.fit gives a constant channel "
            "std 1) or set these statistics by hand"
        )


class _Moments:
    """Running count / mean / M2 per channel (Chan, Golub & LeVeque pairwise merge)."""

    def __init__(self, n_channels: int):
        self.count = 0
        self.mean = np.zeros(n_channels)
        self.m2 = np.zeros(n_channels)

    def add(self, block: np.ndarray, channel_axis: int) -> None:
        axes = tuple(a for a in range(block.ndim) if a != channel_axis)
        b = block.astype(np.float64)
        n_b = block.size // block.shape[channel_axis]
        mean_b = b.mean(axis=axes)
        shape = [1] * b.ndim
        shape[channel_axis] = -1
        m2_b = ((b - mean_b.reshape(shape)) ** 2).sum(axis=axes)
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n_b / n)
        self.count = n


def _read_dtype(ds: H5Dataset, names: Sequence[str], *, static: bool) -> np.dtype:
    """float64 when any of ``names`` is stored in float64, else float32 (exact for float16)."""
    stored = [ds._stored_dtype(n, static=static) for n in names]
    return np.dtype(np.result_type(np.float32, *stored))


def _finite(ds: H5Dataset, block: np.ndarray, names: Sequence[str], s: int, t0: int | None):
    """Refuse NaN / Inf in ``block`` ``(t or 1, c, *spatial)``: only a file opened with
    ``check_finite=False`` gets here with them, and they made a NaN mean."""
    if ds.check_finite or np.isfinite(block).all():
        return
    first = tuple(int(v) for v in np.argwhere(~np.isfinite(block))[0])
    t, c = first[:2]
    where = f"sample {s}" if t0 is None else f"sample {s}, step {t0 + t}"
    raise ValueError(
        f"{ds.path}: Normalizer.fit expected finite values, got {block[first]} in "
        f"channel '{names[c]}' ({where}; the file was opened with check_finite=False); fit on "
        "samples without them (samples=...), or leave the channel out (fields=...)"
    )


def _narrow(x: np.ndarray | torch.Tensor) -> bool:
    """A floating dtype narrower than float32 (float16, bfloat16, float8)."""
    if isinstance(x, torch.Tensor):
        return x.is_floating_point() and x.element_size() < 4
    return x.dtype.kind == "f" and x.dtype.itemsize < 4


def _widen(x: Array, like: Array) -> Array:
    """``x`` in float32 where it is narrower: (why) bfloat16 arithmetic with the mean rounded
    to bfloat16 gave (0.31 - 0.3) / 0.01 as 0.0 instead of 1.0."""
    if not _narrow(x):
        return x
    return x.to(like.dtype) if isinstance(x, torch.Tensor) else x.astype(like.dtype)


def _as_input(y: Array, x: Array) -> Array:
    """``y`` rounded once back to ``x``'s dtype where :func:`_widen` widened it."""
    if not _narrow(x):
        return y
    return y.to(x.dtype) if isinstance(x, torch.Tensor) else y.astype(x.dtype)


class Normalizer:
    """Per-channel mean / std keyed by channel name.

    Args:
        mean: channel name -> mean.
        std: channel name -> standard deviation.
        n_spatial: number of spatial axes of the data; the default channel axis of
            :meth:`encode` is ``-(n_spatial + 1)``, i.e. ``(..., c, *spatial)``.
    """

    def __init__(self, mean: Mapping[str, float], std: Mapping[str, float], *, n_spatial: int):
        if set(mean) != set(std):
            raise ValueError(f"mean has channels {list(mean)}, std has {list(std)}")
        if not mean:  # (why) encode then failed with ZeroDivisionError (channels % 0)
            raise ValueError(
                "Normalizer expected at least one channel's mean and std, got none (fitted "
                "with fields=[] and static_fields=[]?)"
            )
        self.mean = {k: float(v) for k, v in mean.items()}
        self.std = {k: float(v) for k, v in std.items()}
        _check_stats(self.mean, self.std)
        if isinstance(n_spatial, bool) or not isinstance(n_spatial, Integral) or n_spatial < 0:
            # (why) int() read 1.5 as 1 and took -1, which put the channel axis on axis 0
            raise ValueError(f"Normalizer expected n_spatial an integer >= 0, got {n_spatial!r}")
        self.n_spatial = int(n_spatial)

    @property
    def names(self) -> list[str]:
        """The channels it normalises, in the order of ``mean`` (a new list each call)."""
        return list(self.mean)

    @classmethod
    def fit(
        cls,
        ds: H5Dataset,
        *,
        samples: Sequence[int] | np.ndarray | None = None,
        fields: Sequence[str] | None = None,
        static_fields: Sequence[str] | None = None,
        min_std: float = 1e-8,
    ) -> Normalizer:
        """Statistics of ``fields`` / ``static_fields`` over ``samples`` (fit on the training
        split only), in one pass that reads at most ~64 MiB at a time.

        A channel whose standard deviation is at most ``min_std`` times the magnitude of its mean
        (a constant field, up to rounding; a stored constant gives exactly 0) gets std 1, so it
        is only centred: dividing by a vanishing std would blow up any other value of it (a test
        sample's) and rounds to 0 in float16, giving NaN. The bound is relative: a field that
        merely lives on a small scale (std 1e-9 in SI units) is scaled like any other (an
        absolute 1e-8 left it unscaled, std 1). The other side of that choice: a field that
        should be 0 but holds solver round-off (mean and std ~1e-17) is scaled by ~1e17 too;
        drop such a channel, or set its statistics by hand.

        Values are read in the precision the file stores (float64 fields in float64: reading
        them as float32, as the views once did too, moved the std of a field 1e4 +- 1e-2 by
        4e-4 to 1e-3).
        A NaN or Inf in the fitted samples raises a ``ValueError`` naming the channel, sample and
        step, also when the file was opened with ``check_finite=False`` (it gave the channel a
        NaN mean).
        """
        # checked as the views check them: a boolean mask was read as the samples 0 and 1
        samples = ds._samples(slice(None) if samples is None else samples)
        if samples.size == 0:
            raise ValueError(
                f"{ds.path}: Normalizer.fit expected at least one sample, got none (an empty "
                "split? split(n, sizes) rounds small parts to 0)"
            )
        for what, names in (("fields", fields), ("static_fields", static_fields)):
            if isinstance(names, str):  # (why) list("uv") fitted the channels 'u' and 'v'
                raise ValueError(
                    f"{ds.path}: Normalizer.fit expected {what} a list of field names, got the "
                    f"string {names!r} -- pass [{names!r}]"
                )
        fields = ds.field_names if fields is None else list(fields)
        static_fields = ds.static_field_names if static_fields is None else list(static_fields)
        if both := [n for n in fields if n in set(static_fields)]:
            # (why) one dict holds both kinds: the static field's statistics replaced the
            # field's, and the views then encoded the field with them
            raise ValueError(
                f"{ds.path}: Normalizer.fit expected channel names that are not both a field and "
                f"a static field (its statistics are keyed by name), got {both} in fields and "
                "static_fields; leave one out (fields=... or static_fields=...)"
            )
        mean: dict[str, float] = {}
        std: dict[str, float] = {}
        if fields:
            ds._channels(fields, static=False)  # unknown names fail before any read
            dtype = _read_dtype(ds, fields, static=False)
            mom = _Moments(len(fields))
            snapshot = dtype.itemsize * len(fields) * int(np.prod(ds.spatial_shape))
            per_read = max(1, _BLOCK_BYTES // max(snapshot, 1))
            for s in samples:
                for t0 in range(0, ds.n_steps, per_read):
                    block = ds._read(int(s), slice(t0, t0 + per_read), fields, None, dtype)[0]
                    _finite(ds, block, fields, int(s), t0)
                    mom.add(block, channel_axis=1)  # (t, c, *spatial)
            cls._store(fields, mom, mean, std, min_std)
        if static_fields:
            ds._channels(static_fields, static=True)
            dtype = _read_dtype(ds, static_fields, static=True)
            mom = _Moments(len(static_fields))
            for s in samples:
                block = ds._read_static(int(s), static_fields, None, dtype)  # (1, c, *sp)
                _finite(ds, block, static_fields, int(s), None)
                mom.add(block, channel_axis=1)
            cls._store(static_fields, mom, mean, std, min_std)
        return cls(mean, std, n_spatial=len(ds.spatial_shape))

    @staticmethod
    def _store(names, mom: _Moments, mean: dict, std: dict, min_std: float) -> None:
        sd = np.sqrt(mom.m2 / max(mom.count, 1))
        for k, name in enumerate(names):
            mean[name] = float(mom.mean[k])
            std[name] = float(sd[k]) if sd[k] > min_std * abs(mom.mean[k]) else 1.0

    # -- apply ----------------------------------------------------------------------------------
    def _require(
        self,
        names: Sequence[str],
        *,
        op: Literal["encode", "decode"],
        view: str | None = None,
    ) -> None:
        """Raise ``KeyError`` unless there are statistics for every one of ``names``.

        ``op``: the method that will use them (a view encodes its items). ``view``: the data view
        that is given this normaliser (its file and class, e.g. ``"run.h5: Windows"``), which
        then is what expected them; else the normaliser's own ``op`` was asked for channels it
        has no statistics for.

        (why) ``op`` is required: its default ``""`` would have made the message read
        ``Normalizer. expected ...`` for a caller that named neither.
        """
        missing = [n for n in names if n not in self.mean]
        if not missing:
            return
        fit = "fit one with these fields (Normalizer.fit(ds, fields=..., static_fields=...))"
        if view is not None:
            raise KeyError(
                f"{view} expected a normalizer with statistics for {list(names)}, got one "
                f"without {missing} (it has {self.names}); {fit}"
            )
        raise KeyError(
            f"Normalizer.{op} expected channel names it has statistics for ({self.names}), got "
            f"names={list(names)}, of which {missing} have none; pass names among those it "
            f"has, or {fit}"
        )

    def _stats(
        self,
        x: Array,
        names: Sequence[str] | None,
        channel_dim: int | None,
        op: Literal["encode", "decode"],
    ):
        if isinstance(names, str):  # (why) list("uv") used the statistics of 'u' and 'v'
            raise ValueError(
                f"Normalizer.{op} expected names a list of channel names, got the string "
                f"{names!r} -- pass [{names!r}]"
            )
        names = self.names if names is None else list(names)
        self._require(names, op=op)
        dim = -(self.n_spatial + 1) if channel_dim is None else channel_dim
        if isinstance(dim, bool) or not isinstance(dim, Integral) or not -x.ndim <= dim < x.ndim:
            # (why) taken modulo x.ndim, a channel axis past the array wrapped around: (h, w)
            # with n_spatial=2 was encoded along w as channels u, v, u, v, ..., without an error
            if channel_dim is not None:
                raise ValueError(
                    f"Normalizer.{op} expected channel_dim an integer axis of x in "
                    f"[{-x.ndim}, {x.ndim}), got {channel_dim!r} for shape {tuple(x.shape)}"
                )
            raise ValueError(
                f"Normalizer.{op} expected x (..., c, *spatial) with at least "
                f"{self.n_spatial + 1} dims (n_spatial={self.n_spatial}), got shape "
                f"{tuple(x.shape)}; add the channel axis, or pass channel_dim"
            )
        dim = int(dim) % x.ndim
        n_c = x.shape[dim]
        if n_c % len(names):
            raise ValueError(
                f"channel axis {dim} of shape {tuple(x.shape)} has {n_c} entries, expected a "
                f"multiple of {len(names)} channels {names}"
            )
        # Time-flattened windows (n_in * C channels, time-major) repeat the C statistics.
        reps = n_c // len(names)
        mu = np.tile([self.mean[n] for n in names], reps)
        sd = np.tile([self.std[n] for n in names], reps)
        shape = [1] * x.ndim
        shape[dim] = n_c
        if isinstance(x, torch.Tensor):
            # (why) in an integer tensor's dtype a std 0.5 was truncated to 0: encode gave inf
            tdtype = x.dtype if x.is_floating_point() or x.is_complex() else torch.float32
            tdtype = torch.float32 if _narrow(x) else tdtype
            return (
                torch.as_tensor(mu, dtype=tdtype, device=x.device).reshape(shape),
                torch.as_tensor(sd, dtype=tdtype, device=x.device).reshape(shape),
            )
        dtype = np.float32 if x.dtype.kind != "f" or _narrow(x) else x.dtype
        return mu.astype(dtype).reshape(shape), sd.astype(dtype).reshape(shape)

    def encode(
        self, x: Array, names: Sequence[str] | None = None, *, channel_dim: int | None = None
    ) -> Array:
        """``(x - mean) / std`` per channel; ``x``: ``(..., c, *spatial)`` by default, or any
        shape with the channels on ``channel_dim`` (``(points, c)``: ``channel_dim=-1``).

        float16 / bfloat16 input is computed in float32 and rounded once to its dtype (as is
        :meth:`decode`); an integer one gives float32."""
        mu, sd = self._stats(x, names, channel_dim, "encode")
        return _as_input((_widen(x, mu) - mu) / sd, x)

    def decode(
        self, x: Array, names: Sequence[str] | None = None, *, channel_dim: int | None = None
    ) -> Array:
        """Inverse of :meth:`encode`: ``x * std + mean``."""
        mu, sd = self._stats(x, names, channel_dim, "decode")
        return _as_input(_widen(x, mu) * sd + mu, x)

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"mean": {name: float}, "std": {name: float}, "n_spatial": int}``, JSON-ready."""
        return {"mean": dict(self.mean), "std": dict(self.std), "n_spatial": self.n_spatial}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], *, source: str = "state") -> Normalizer:
        """The normaliser of a :meth:`state_dict`, checked as the constructor checks it
        (``source``: what it was read from, for the error message)."""
        keys = ("mean", "n_spatial", "std")
        if not isinstance(state, Mapping) or not set(keys) <= set(state):
            # (why) a splits.json read here raised KeyError: 'mean', which named no file
            found = f"keys {sorted(state)}" if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"{source}: expected a JSON object with keys {', '.join(map(repr, keys))} (a "
                f"file written by Normalizer.save), got {found}"
            )
        return cls(state["mean"], state["std"], n_spatial=state["n_spatial"])

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`state_dict` as JSON to ``path`` (atomically; floats round-trip
        exactly) and return the path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.state_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Normalizer:
        """Read a file written by :meth:`save`; a non-finite mean or a std <= 0 is refused."""
        return cls.from_state_dict(json.loads(Path(path).read_text()), source=str(path))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}: {self.mean[k]:.4g}±{self.std[k]:.4g}" for k in self.names)
        return f"Normalizer({body})"
