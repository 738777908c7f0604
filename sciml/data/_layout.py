"""What a layout reader tells the data set: where every channel lives and how its axes map.

Every supported layout (sciml's own, PDEBench's three, The Well, Poseidon's NetCDF) is reduced to
a :class:`LayoutSpec`: one :class:`Source` per scalar channel plus coordinates, time stamps,
parameters, boundary conditions and attributes, all read once when the file is opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Role of one stored axis: "n" sample, "t" time, "s0", "s1", ... spatial axis k, or an int: a
# fixed index into that axis (a channel / vector component / singleton axis).
AxisRole = str | int


@dataclass(frozen=True)
class Source:
    """Where one scalar channel lives.

    ``key`` is the HDF5 dataset path; for per-sample groups it holds ``{sample}``, replaced by
    the sample's group name. ``axes`` gives the role of every stored axis, in stored order.
    Missing roles are broadcast: a field that does not vary over samples has no ``"n"`` axis.
    Roles that are present always appear in the order n, t, s0, s1, ... so that a selection
    reads straight into a ``(t, *spatial)`` block without transposes.
    """

    key: str
    axes: tuple[AxisRole, ...]

    def dataset_key(self, sample_key: str | None) -> str:
        return self.key.format(sample=sample_key) if "{sample}" in self.key else self.key

    def selection(
        self, sample: int, steps: slice | None, space: tuple[slice, ...]
    ) -> tuple[int | slice, ...]:
        """The h5py / numpy selection for one sample; per-sample groups ignore the sample."""
        sel: list[int | slice] = []
        for role in self.axes:
            if isinstance(role, int):
                sel.append(role)
            elif role == "n":
                sel.append(sample)
            elif role == "t":
                sel.append(steps if steps is not None else slice(None))
            else:
                sel.append(space[int(role[1:])])
        return tuple(sel)

    def kept_shape_mask(self, n_space: int, timed: bool) -> tuple[bool, ...]:
        """For the block ``(t?, *spatial)``: which of its axes this source stores."""
        roles = {r for r in self.axes if isinstance(r, str)}
        mask = [("t" in roles)] if timed else []
        return tuple(mask + [f"s{k}" in roles for k in range(n_space)])


@dataclass
class LayoutSpec:
    """Everything :class:`~sciml.data.H5Dataset` needs to know about one file."""

    layout: str
    n_samples: int
    n_steps: int | None
    spatial_shape: tuple[int, ...]
    spatial_dims: tuple[str, ...]
    fields: dict[str, Source]
    static_fields: dict[str, Source] = field(default_factory=dict)
    coords: dict[str, np.ndarray] = field(default_factory=dict)
    time: np.ndarray | None = None
    params: dict[str, np.ndarray] = field(default_factory=dict)
    # name -> dims of a parameter's axes after the sample axis, where the layout knows them
    # (The Well's time-varying scalars: ("time",)); others get dims of their own in to_xarray
    param_dims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # axis -> dims of a coordinate that varies per sample and / or time step, e.g.
    # ("time", "x") for (n_steps, n_x); a 2-D coordinate not listed varies per sample
    coord_dims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    boundary_conditions: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    sample_keys: list[str] | None = None
    points: bool = False

    def all_keys(self) -> list[str]:
        """Every distinct dataset key (per-sample keys expanded), for in-memory loading."""
        keys: list[str] = []
        for src in [*self.fields.values(), *self.static_fields.values()]:
            if "{sample}" in src.key:
                keys.extend(src.dataset_key(s) for s in self.sample_keys or [])
            else:
                keys.append(src.key)
        return list(dict.fromkeys(keys))
