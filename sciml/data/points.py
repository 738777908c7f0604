"""DeepONet-style point samples: an input function on the grid, targets at query points."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .dataset import H5Dataset, SpaceSel
from .normalize import Normalizer
from .views import _count, _names, _View


class PointSamples(_View):
    """Branch input on the grid, target values at ``n_points`` query points per item.

    Returns ``"input"`` ``(C_in, *spatial)`` (the function sampled at the grid "sensors"),
    ``"x"`` ``(points, dim)`` query coordinates and ``"target"`` ``(points, C_out)``.

    Each name in ``inputs`` / ``targets`` is a static field, or a time-dependent field read at
    ``in_step`` / ``out_step`` (e.g. Burgers ``u(0) -> u(T)``; Darcy ``a -> u``); one list
    holds one kind. ``static_fields`` appends static fields to the branch input after the
    ``inputs``, ``(C_in + S, *spatial)``, as the time-dependent views do (a wave speed ``c``
    beside ``u(in_step)``: ``inputs=["u"], static_fields=["c"]``); they are read with the same
    ``space`` and normalised by the normalizer's statistics of their names, and a bare string,
    an unknown or a time-dependent name is refused when the view is made. Points are
    drawn without replacement from a generator seeded by ``(seed, epoch, index)``: the same
    item gives the same points until :meth:`set_epoch` changes the epoch. ``n_points=None``
    takes every grid point in grid order. The epoch lives in shared memory, so ``DataLoader``
    workers that outlive an epoch (``persistent_workers=True``) see :meth:`set_epoch` too.
    """

    def __init__(
        self,
        ds: H5Dataset,
        *,
        inputs: Sequence[str],
        targets: Sequence[str],
        static_fields: Sequence[str] = (),
        n_points: int | None = None,
        in_step: int = 0,
        out_step: int = -1,
        seed: int = 0,
        samples: Sequence[int] | np.ndarray | None = None,
        space: SpaceSel = None,
        normalizer: Normalizer | None = None,
    ):
        super().__init__(ds, samples=samples, space=space, normalizer=normalizer, with_coords=False)
        self.inputs = _names("PointSamples", "inputs", inputs, [])
        self.targets = _names("PointSamples", "targets", targets, [])
        steps = []
        for names, step, what in (
            (self.inputs, in_step, "in_step"),
            (self.targets, out_step, "out_step"),
        ):
            static = [n in ds.static_field_names for n in names]
            if any(static) and not all(static):
                fixed = [n for n, st in zip(names, static) if st]
                hint = (
                    f": pass the static ones in static_fields={fixed}, which appends them to "
                    "the input after the time-dependent ones"
                    if what == "in_step"
                    else ""
                )
                raise ValueError(f"{ds.path}: {names} mixes static and time-dependent fields{hint}")
            ds._channels(names, static=static[0])  # fail now on unknown names
            # a bad step failed only when the first item was read
            steps.append(
                None if static[0] else ds._steps(_count("PointSamples", what, step, None)).start
            )
        self.in_step, self.out_step = steps
        self._set_static(static_fields)
        self._check_normalizer(self.inputs + self.targets + self.static_fields)
        x = ds.grid_points(self.space)  # (*spatial, dim), or (n_points, dim) for a cloud
        # (why) not reshape(-1, dim): a series without spatial axes has dim 0, ambiguous to -1
        self.x_all = x.reshape(int(np.prod(x.shape[:-1])), x.shape[-1])
        if n_points is not None:
            n_points = _count("PointSamples", "n_points", n_points, 1)
        if n_points is not None and not 0 < n_points <= len(self.x_all):
            raise ValueError(f"n_points={n_points} must be in [1, {len(self.x_all)}]")
        # a negative seed or epoch failed inside numpy only when an item was read
        self.n_points, self.seed = n_points, _count("PointSamples", "seed", seed, 0)
        # persistent workers hold their own copy of the view: a plain int set here after they
        # started never reached them, and every epoch drew the first epoch's points
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        """The epoch that seeds the query points (``(seed, epoch, index)``): 0 until
        :meth:`set_epoch` sets it. Read-only; shared with ``DataLoader`` workers."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Draw new query points: items read from now on use the generator seeded by
        ``(seed, epoch, index)``, in this process and in its ``DataLoader`` workers. ``epoch``:
        an int >= 0 (1.5 is refused, not read as 1)."""
        self._epoch.fill_(_count("PointSamples", "epoch", epoch, 0))

    def _get(self, s: int, names: list[str], step: int | None) -> np.ndarray:
        if step is None:
            return self._read(s, None, names, static=True)
        return self._read(s, step, names)[0]  # (C, *spatial)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        k = self._index(k)
        s = int(self.samples[k])
        u = self._norm(self._get(s, self.inputs, self.in_step), self.inputs, 0)
        if self.static_fields:
            u = np.concatenate([u, self._static(s)], axis=0)  # (C_in + S, *spatial)
        y = self._get(s, self.targets, self.out_step)
        y = y.reshape(len(self.targets), -1).T  # (all points, C_out)
        x = self.x_all
        if self.n_points is not None:
            rng = np.random.default_rng((self.seed, self.epoch, k))
            pick = np.sort(rng.choice(len(x), size=self.n_points, replace=False))
            x, y = x[pick], y[pick]
        y = self._norm(np.ascontiguousarray(y), self.targets, -1)
        return {
            "input": torch.from_numpy(np.ascontiguousarray(u)),
            "x": torch.from_numpy(np.ascontiguousarray(x)),
            "target": torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),
        }
