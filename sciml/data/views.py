"""PyTorch views of an :class:`~sciml.data.H5Dataset`: each item is a dict of tensors.

Grid functions are ``(channels, *spatial)`` per item (a ``DataLoader`` adds the batch axis):

* :class:`Windows` -- ``n_in`` input steps -> ``n_out`` output steps, sliding over trajectories
  (``n_in = n_out = 1``: single-step pairs);
* :class:`AllPairs` -- every ``(t_i, t_j)``, ``j >= i``, with lead time ``t = t_j - t_i``;
* :class:`SnapshotPairs` -- fixed step ``i`` -> fixed step ``j`` (Burgers ``u(0) -> u(T)``);
* :class:`StaticPairs` -- static field(s) -> static field(s) (Darcy ``a -> u``);
* :class:`~sciml.data.points.PointSamples` -- DeepONet-style ``(points, channels)`` targets.

Every view takes ``samples`` (e.g. ``split.train``), ``space`` (spatial subsampling: an int
stride or one slice per axis) and a :class:`~sciml.data.Normalizer` applied before tensors are
made; all but ``PointSamples`` (whose items always carry their points) take ``with_coords`` to
add ``"x"``: grid coordinates ``(dim, *spatial)``. The time-dependent views
(``Windows``, ``AllPairs``, ``SnapshotPairs``) and ``PointSamples`` take ``static_fields``:
static fields (a wave speed, a forcing, a coefficient) appended to every item's ``"input"`` as
its last channels, read with the same ``space`` and normalised by the normalizer's statistics of
their names. The window index is arithmetic on a few integers, computed once; views pickle
without any open HDF5 handle.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from torch.utils.data import Dataset

from .dataset import H5Dataset, SpaceSel
from .normalize import Normalizer, _read_dtype


def _count(owner: str, name: str, value: object, minimum: int | None) -> int:
    """``value`` as an int, refusing floats, bools, NaN and anything below ``minimum``: a
    fractional or zero step would otherwise be truncated or divide by zero far from here."""
    bad = isinstance(value, bool) or not isinstance(value, Integral)
    if bad or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{owner}: expected {name} an integer{bound}, got {value!r}")
    return int(value)


def _names(owner: str, what: str, names: Sequence[str] | None, default: list[str]) -> list[str]:
    """A non-empty list of channel names (``None``: ``default``); a bare string is refused, as
    ``list("uv")`` would silently read the channels ``u`` and ``v``."""
    if isinstance(names, str):
        raise ValueError(
            f"{owner}: expected {what} a list of field names, got the string {names!r}"
        )
    out = default if names is None else list(names)
    if not out:
        raise ValueError(f"{owner}: expected at least one name in {what}, got {names!r}")
    return out


class _View(Dataset):
    def __init__(
        self,
        ds: H5Dataset,
        *,
        samples: Sequence[int] | np.ndarray | None,
        space: SpaceSel,
        normalizer: Normalizer | None,
        with_coords: bool,
    ):
        self.ds = ds
        self.samples = ds._samples(slice(None) if samples is None else samples)
        if self.samples.size == 0:
            raise ValueError(
                f"{ds.path}: {type(self).__name__} expected at least one sample, got "
                f"samples={samples!r} (an empty split? split(n, sizes) rounds small parts to 0)"
            )
        self.space = ds._space(space)
        kept = ds._out_spatial(self.space)
        if 0 in kept:
            raise ValueError(
                f"{ds.path}: {type(self).__name__} expected a spatial selection that keeps at "
                f"least one point per axis, got space={space!r}, which keeps "
                f"{dict(zip(ds.spatial_dims, kept))} of {ds.spatial_shape}"
            )
        self.normalizer = normalizer
        self.with_coords = with_coords
        self.static_fields: list[str] = []
        self._dtypes: dict[tuple[bool, tuple[str, ...]], np.dtype] = {}
        # (why) set by sciml.experiment.build_views for a Normalized model: without a
        # normalizer, inputs come as the file stores them (float64 kept) and targets in float32;
        # the model centres a float64 input before rounding it (see _read)
        self._float64_inputs = False
        self._x: torch.Tensor | None = None
        if with_coords:
            self._coords()  # fails now (coordinates that vary per sample), not in a worker

    def __len__(self) -> int:
        """One item per sample; :class:`Windows` and :class:`AllPairs` have more."""
        return len(self.samples)

    def _check_normalizer(self, names: Sequence[str]) -> None:
        """Refuse now a normalizer without statistics for some of ``names``: it raised
        ``KeyError`` only when the first item was read (in a ``DataLoader`` worker)."""
        if self.normalizer is not None:
            view = f"{self.ds.path}: {type(self).__name__}"
            # (why) once each: inputs + targets repeat every field by default (SnapshotPairs),
            # and the message listed ['u', 'v', 'u', 'v'], "without ['v', 'v']"
            names = list(dict.fromkeys(names))
            self.normalizer._require(names, op="encode", view=view)

    def _set_static(self, static_fields: Sequence[str]) -> None:
        """Check ``static_fields`` now (not in a ``DataLoader`` worker) and keep them."""
        view = f"{self.ds.path}: {type(self).__name__}"
        if isinstance(static_fields, str):  # (why) list("ab") would read the fields 'a', 'b'
            raise ValueError(
                f"{view} expected static_fields a list of static field names, got the string "
                f"{static_fields!r} -- pass [{static_fields!r}]"
            )
        names = [] if static_fields is None else list(static_fields)
        bad = [n for n in names if n not in self.ds.static_field_names]
        if bad:
            timed = [n for n in bad if n in self.ds.field_names]
            hint = (
                f"; {timed} are time-dependent: they go in fields / inputs, which give them at "
                "each step"
                if timed
                else ""
            )
            raise ValueError(
                f"{view} expected static_fields among the file's static fields "
                f"{self.ds.static_field_names}, got {bad}{hint}"
            )
        self.static_fields = names

    def _static(self, s: int) -> np.ndarray:
        """The static input channels of sample ``s``, normalised: ``(S, *spatial)``."""
        a = self._read(s, None, self.static_fields, static=True)
        return self._norm(a, self.static_fields, 0)

    def _read(
        self, s: int, steps: int | slice | None, names: Sequence[str], *, static: bool = False
    ) -> np.ndarray:
        """Channels ``names`` of sample ``s`` on the view's grid: ``(t, C, *spatial)`` at
        ``steps``, or ``(C, *spatial)`` for static ones.

        Float32, or float64 where the file stores float64 and a normalizer encodes them (or,
        with ``_float64_inputs``, a Normalized model will): (why) read as float32 first, a
        field 1e4 + 1e-2 noise lost ~1e-3 to rounding before it was centred, an error of 0.06
        in units of its std in every encoded value.
        """
        dtype: np.dtype = np.dtype(np.float32)
        if self.normalizer is not None or self._float64_inputs:
            key = (static, tuple(names))
            if key not in self._dtypes:
                self._dtypes[key] = _read_dtype(self.ds, names, static=static)
            dtype = self._dtypes[key]
        if static:
            return self.ds._read_static(s, names, self.space, dtype)[0]
        return self.ds._read(s, steps, names, self.space, dtype)[0]

    def _norm(self, a: np.ndarray, names: Sequence[str], channel_dim: int = 1) -> np.ndarray:
        """``a`` encoded by the normalizer (if any), as float32."""
        if self.normalizer is None:
            return a
        encoded = self.normalizer.encode(a, names, channel_dim=channel_dim)
        return np.ascontiguousarray(encoded, dtype=np.float32)

    def _channel_names(self) -> dict[str, tuple[list[str], int]]:
        """Item key -> (the channel name of each entry along its channel axis, that axis).

        :class:`~sciml.data.symmetry.Augmented` decodes an item of a view with a normalizer by
        them before it moves the item, and encodes it after: (why) moved after the
        per-channel encoding, a pair was no pair of the problem where the map negates a channel
        of nonzero mean or swaps vector components of different statistics. ``{}``: nothing
        to decode (no normalizer, or items that are not all on the grid).
        """
        return {}

    def _coords(self) -> torch.Tensor:
        if self._x is None:
            pts = self.ds.grid_points(self.space)  # (*spatial, dim)
            self._x = torch.from_numpy(np.moveaxis(pts, -1, 0).copy())  # (dim, *spatial)
        return self._x

    def _finish(self, item: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self._float64_inputs:  # only the input is for the model to centre
            item["target"] = item["target"].float()
        if self.with_coords:
            item["x"] = self._coords()
        return item

    def _lead(self, s: int, i: int, j: int) -> torch.Tensor:
        t = np.asarray(self.ds.time)
        row = t[s] if t.ndim == 2 else t
        return torch.tensor(float(row[j] - row[i]), dtype=torch.float32)

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {type(self).__name__} of length {n}")
        return i % n


class Windows(_View):
    """Sliding windows over trajectories.

    Item ``k`` is sample ``samples[k // n_starts]`` starting at step ``(k % n_starts) * stride``;
    it covers steps ``t0, t0 + dt, ..., t0 + (n_in + n_out - 1) * dt``.

    Returns dicts with ``"input"`` ``(n_in * C, *spatial)`` and ``"target"``
    ``(n_out * C, *spatial)`` when ``flatten_time`` (time-major: channel ``t * C + c``), else
    ``(n_in, C, *spatial)`` / ``(n_out, C, *spatial)``; ``"t"`` (lead time of the first target
    step after the last input step) with ``with_time``; ``"x"`` with ``with_coords``.

    With ``S`` ``static_fields`` the input is ``(n_in * C + S, *spatial)``: the window, then
    the static fields (the layout ``model.rollout(u0, steps, static=...)`` builds, and
    :class:`~sciml.models.MgNO`'s ``static_channels`` marks); unflattened, every input step
    carries them after its states, ``(n_in, C + S, *spatial)``. Targets hold no static fields.

    Args:
        ds: the data set; it needs time-dependent fields (a static-only file is refused: use
            :class:`StaticPairs`).
        n_in: input steps per window, an int >= 1.
        n_out: output steps per window, an int >= 1.
        stride: steps of the file between consecutive window starts, an int >= 1.
        dt: temporal subsampling -- steps of the file between consecutive frames of a window,
            an int >= 1. A window spans ``(n_in + n_out - 1) * dt + 1`` steps; a file with
            fewer is refused.
        fields: a list of time-dependent field names, in channel order (default: all of
            them); a bare string or an unknown name is refused when the view is made.
        static_fields: static field names appended to the input (see above), e.g. a wave
            speed or a forcing; a bare string, an unknown or a time-dependent name is refused
            when the view is made.
        samples: sample indices (a negative one counts from the end; ``None``: every sample),
            e.g. ``split.train``; a boolean mask, an out-of-range index or an empty selection
            is refused.
        space: spatial subsampling: an int stride for every axis, or one slice (or int
            stride) per spatial axis, with steps >= 1 (``None``: the whole grid).
        flatten_time: merge the time axis into the channels (see above); ``False`` keeps
            ``(n_in, C, *spatial)``.
        normalizer: applied per channel, by field name, to the values before tensors are made;
            it needs statistics for every name in ``fields`` and ``static_fields`` (a missing
            one raises ``KeyError`` when the view is made).
        with_coords: add ``"x"``: ``(dim, *spatial)`` float32 coordinates of the selected grid
            points.
        with_time: add ``"t"``: the 0-d float32 lead time ``time[last input + dt] - time[last
            input]`` from the last input frame to the first target frame (from the sample's own
            row where the file stores time per sample).
    """

    def __init__(
        self,
        ds: H5Dataset,
        n_in: int = 1,
        n_out: int = 1,
        stride: int = 1,
        *,
        dt: int = 1,
        fields: Sequence[str] | None = None,
        static_fields: Sequence[str] = (),
        samples: Sequence[int] | np.ndarray | None = None,
        space: SpaceSel = None,
        flatten_time: bool = True,
        normalizer: Normalizer | None = None,
        with_coords: bool = False,
        with_time: bool = False,
    ):
        super().__init__(
            ds, samples=samples, space=space, normalizer=normalizer, with_coords=with_coords
        )
        if ds.n_steps is None:
            raise ValueError(f"{ds.path}: Windows need time-dependent fields; use StaticPairs")
        n_in, n_out, stride, dt = (
            _count("Windows", k, v, 1)
            for k, v in (("n_in", n_in), ("n_out", n_out), ("stride", stride), ("dt", dt))
        )
        self.n_in, self.n_out, self.stride, self.dt = n_in, n_out, stride, dt
        self.fields = _names("Windows", "fields", fields, ds.field_names)
        ds._channels(self.fields, static=False)  # fail now on unknown names
        self._set_static(static_fields)
        self._check_normalizer(self.fields + self.static_fields)
        self.flatten_time, self.with_time = flatten_time, with_time
        span = (n_in + n_out - 1) * dt + 1
        self.n_starts = 0 if ds.n_steps < span else (ds.n_steps - span) // stride + 1
        if self.n_starts == 0:
            raise ValueError(
                f"{ds.path}: n_steps={ds.n_steps} is too short for n_in={n_in}, n_out={n_out}, "
                f"dt={dt} (needs {span} steps)"
            )

    def __len__(self) -> int:
        return len(self.samples) * self.n_starts

    def _channel_names(self) -> dict[str, tuple[list[str], int]]:
        if self.flatten_time:  # channel t * C + c, then the static fields
            return {
                "input": (self.fields * self.n_in + self.static_fields, 0),
                "target": (self.fields * self.n_out, 0),
            }
        return {"input": (self.fields + self.static_fields, 1), "target": (self.fields, 1)}

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        k = self._index(k)
        s = int(self.samples[k // self.n_starts])
        t0 = (k % self.n_starts) * self.stride
        stop = t0 + (self.n_in + self.n_out - 1) * self.dt + 1
        block = self._read(s, slice(t0, stop, self.dt), self.fields)
        block = self._norm(block, self.fields)  # (n_in + n_out, C, *spatial)
        x, y = block[: self.n_in], block[self.n_in :]
        if self.flatten_time:
            x = x.reshape(-1, *x.shape[2:])
            y = y.reshape(-1, *y.shape[2:])
        if self.static_fields:
            st = self._static(s)  # (S, *spatial)
            if not self.flatten_time:
                st = np.broadcast_to(st, (self.n_in, *st.shape))
            x = np.concatenate([x, st], axis=0 if self.flatten_time else 1)
        item = {"input": torch.from_numpy(x), "target": torch.from_numpy(y)}
        if self.with_time:
            last_in = t0 + (self.n_in - 1) * self.dt
            item["t"] = self._lead(s, last_in, last_in + self.dt)
        return self._finish(item)


class AllPairs(_View):
    """Every pair of steps ``(t_i, t_j)``, ``j >= i``, for time-conditioned operators.

    Returns ``"input"`` ``(C, *spatial)`` at step ``i``, ``"target"`` ``(C, *spatial)`` at
    step ``j`` and ``"t"`` = ``time[j] - time[i]`` (a 0-d float tensor). With ``S``
    ``static_fields`` the input is ``(C + S, *spatial)``, the static fields last (scOT's
    Wave-Gauss / Wave-Layer input ``(u(t_i), c)``; scOT also appends ``c`` to its labels,
    sciml's target holds the states only).

    Item ``k`` is sample ``samples[k // P]`` and pair ``k % P`` of the ``P`` pairs, ordered by
    ``i`` and then ``j``.

    Args:
        ds: the data set; it needs time-dependent fields (a static-only file is refused).
        dt: use only every ``dt``-th step, steps ``0, dt, 2 dt, ...`` (temporal subsampling),
            an int >= 1.
        max_lead: largest ``j - i`` in (subsampled) steps, an int >= 0; ``None``: no limit.
        include_self: include ``j == i`` (lead time 0).
        fields: a list of time-dependent field names, in channel order (default: all of
            them); a bare string or an unknown name is refused when the view is made.
        static_fields: static field names appended to the input (see above); a bare string,
            an unknown or a time-dependent name is refused when the view is made.
        samples: sample indices (a negative one counts from the end; ``None``: every sample),
            e.g. ``split.train``; a boolean mask, an out-of-range index or an empty selection
            is refused.
        space: spatial subsampling: an int stride for every axis, or one slice (or int
            stride) per spatial axis, with steps >= 1 (``None``: the whole grid).
        normalizer: applied per channel, by field name, to the values before tensors are made;
            it needs statistics for every name in ``fields`` and ``static_fields`` (a missing
            one raises ``KeyError`` when the view is made).
        with_coords: add ``"x"``: ``(dim, *spatial)`` float32 coordinates of the selected grid
            points.
    """

    def __init__(
        self,
        ds: H5Dataset,
        *,
        dt: int = 1,
        max_lead: int | None = None,
        include_self: bool = True,
        fields: Sequence[str] | None = None,
        static_fields: Sequence[str] = (),
        samples: Sequence[int] | np.ndarray | None = None,
        space: SpaceSel = None,
        normalizer: Normalizer | None = None,
        with_coords: bool = False,
    ):
        super().__init__(
            ds, samples=samples, space=space, normalizer=normalizer, with_coords=with_coords
        )
        if ds.n_steps is None:
            raise ValueError(f"{ds.path}: AllPairs need time-dependent fields")
        dt = _count("AllPairs", "dt", dt, 1)
        if max_lead is not None:
            max_lead = _count("AllPairs", "max_lead", max_lead, 0)
        self.fields = _names("AllPairs", "fields", fields, ds.field_names)
        ds._channels(self.fields, static=False)
        self._set_static(static_fields)
        self._check_normalizer(self.fields + self.static_fields)
        steps = np.arange(0, ds.n_steps, dt)
        i, j = np.triu_indices(len(steps), k=0 if include_self else 1)
        if max_lead is not None:
            keep = (j - i) <= max_lead
            i, j = i[keep], j[keep]
        self.pairs = np.stack([steps[i], steps[j]], axis=1).astype(np.int64)  # (P, 2)
        if len(self.pairs) == 0:
            raise ValueError(
                f"{ds.path}: n_steps={ds.n_steps} gives no pairs with dt={dt}, "
                f"max_lead={max_lead}, include_self={include_self}: a pair j > i needs 2 "
                "(subsampled) steps and max_lead >= 1"
            )

    def __len__(self) -> int:
        return len(self.samples) * len(self.pairs)

    def _channel_names(self) -> dict[str, tuple[list[str], int]]:
        return {"input": (self.fields + self.static_fields, 0), "target": (self.fields, 0)}

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        k = self._index(k)
        s = int(self.samples[k // len(self.pairs)])
        i, j = (int(v) for v in self.pairs[k % len(self.pairs)])
        block = self._read(s, slice(i, j + 1, max(j - i, 1)), self.fields)
        block = self._norm(block, self.fields)  # (1 or 2, C, *spatial)
        x = block[0]
        if self.static_fields:
            x = np.concatenate([x, self._static(s)], axis=0)  # (C + S, *spatial)
        item = {
            "input": torch.from_numpy(x),
            "target": torch.from_numpy(block[-1]),
            "t": self._lead(s, i, j),
        }
        return self._finish(item)


class _Pairs(_View):
    """Base of :class:`SnapshotPairs` and :class:`StaticPairs`: one item per sample, channels
    ``inputs`` -> channels ``targets``, each normalised by its names."""

    def _set_names(
        self,
        inputs: Sequence[str] | None,
        targets: Sequence[str] | None,
        default: list[str],
        *,
        static: bool,
    ) -> None:
        owner = type(self).__name__
        self.inputs = _names(owner, "inputs", inputs, default)
        self.targets = _names(owner, "targets", targets, default)
        self.ds._channels(self.inputs + self.targets, static=static)  # fail now on unknown names
        self._check_normalizer(self.inputs + self.targets + self.static_fields)

    def _channel_names(self) -> dict[str, tuple[list[str], int]]:
        return {"input": (self.inputs + self.static_fields, 0), "target": (self.targets, 0)}

    def _pair(self, x: np.ndarray, y: np.ndarray) -> dict[str, torch.Tensor]:
        """The item of ``x: (C_in, *spatial)`` and ``y: (C_out, *spatial)``, normalised."""
        return {
            "input": torch.from_numpy(self._norm(x, self.inputs, 0)),
            "target": torch.from_numpy(self._norm(y, self.targets, 0)),
        }


class SnapshotPairs(_Pairs):
    """Field(s) at step ``in_step`` -> field(s) at step ``out_step``, one item per sample.

    Returns ``"input"`` ``(C_in, *spatial)``, ``"target"`` ``(C_out, *spatial)`` and, with
    ``lead_time=True`` (the default), ``"t"`` (``time[out_step] - time[in_step]``). Steps may be
    negative (``-1``: last step). The lead time of a fixed pair is the same for every item, so
    models that are not time-conditioned (FNO, T1, MgNO) want ``lead_time=False``: the Trainer
    passes ``t`` to the model whenever an item has it.

    ``out_step`` must not come before ``in_step`` when ``lead_time=True``: a time-conditioned
    model is trained on lead times ``t >= 0`` (as :class:`AllPairs` and :class:`Windows` give
    them) and a negative ``t`` is an input it never saw. With ``lead_time=False`` a backward pair
    (``SnapshotPairs(ds, -1, 0, lead_time=False)``: final state -> initial state, an inverse
    problem) is allowed; its items carry no ``"t"``.

    ``static_fields``: static field names appended to the input, which is then
    ``(C_in + S, *spatial)`` with the static fields last (a coefficient beside ``u(0)``); the
    normalizer needs their statistics too. A bare string, an unknown or a time-dependent name is
    refused when the view is made.
    """

    def __init__(
        self,
        ds: H5Dataset,
        in_step: int = 0,
        out_step: int = -1,
        *,
        inputs: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
        static_fields: Sequence[str] = (),
        samples: Sequence[int] | np.ndarray | None = None,
        space: SpaceSel = None,
        normalizer: Normalizer | None = None,
        with_coords: bool = False,
        lead_time: bool = True,
    ):
        super().__init__(
            ds, samples=samples, space=space, normalizer=normalizer, with_coords=with_coords
        )
        self.lead_time = lead_time
        self.in_step = ds._steps(_count("SnapshotPairs", "in_step", in_step, None)).start
        self.out_step = ds._steps(_count("SnapshotPairs", "out_step", out_step, None)).start
        if lead_time and self.out_step < self.in_step:
            # a negative lead time reached time-conditioned models silently
            raise ValueError(
                f"{ds.path}: SnapshotPairs expected out_step at or after in_step with "
                f"lead_time=True, got in_step={in_step}, out_step={out_step} (steps "
                f"{self.in_step} -> {self.out_step} of {ds.n_steps}: lead time "
                f"{self._lead(int(self.samples[0]), self.in_step, self.out_step).item():g}); swap them, or pass "
                "lead_time=False for a backward (inverse) map without a lead time"
            )
        self._set_static(static_fields)
        self._set_names(inputs, targets, ds.field_names, static=False)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        s = int(self.samples[self._index(k)])
        x = self._read(s, self.in_step, self.inputs)[0]
        y = self._read(s, self.out_step, self.targets)[0]
        item = self._pair(x, y)
        if self.static_fields:
            static = torch.from_numpy(self._static(s))
            item["input"] = torch.cat([item["input"], static])  # (C_in + S, *spatial)
        if self.lead_time:
            item["t"] = self._lead(s, self.in_step, self.out_step)
        return self._finish(item)


class StaticPairs(_Pairs):
    """Static map: static field(s) ``inputs`` -> static field(s) ``targets`` (Darcy ``a -> u``).

    Returns ``"input"`` ``(C_in, *spatial)`` and ``"target"`` ``(C_out, *spatial)``.
    """

    def __init__(
        self,
        ds: H5Dataset,
        inputs: Sequence[str],
        targets: Sequence[str],
        *,
        samples: Sequence[int] | np.ndarray | None = None,
        space: SpaceSel = None,
        normalizer: Normalizer | None = None,
        with_coords: bool = False,
    ):
        super().__init__(
            ds, samples=samples, space=space, normalizer=normalizer, with_coords=with_coords
        )
        self._set_names(inputs, targets, [], static=True)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        s = int(self.samples[self._index(k)])
        both = self._read(s, None, self.inputs + self.targets, static=True)
        x, y = both[: len(self.inputs)], both[len(self.inputs) :]
        return self._finish(self._pair(x, y))
