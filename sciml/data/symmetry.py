"""Symmetries of periodic grid problems: exact lattice maps, the group they generate, augmentation.

A :class:`GridSymmetry` acts on a field ``u`` sampled on a periodic ``N_1 x ... x N_d`` grid of
the unit torus as

    (g u)(x) = sign * u(A x + b)   (mod 1),

with ``A`` a signed permutation matrix (axis swaps and reflections), ``b`` a shift in periods and
``sign`` = +-1 (-1 for a pseudo-scalar such as 2-D vorticity under an orientation-reversing map,
or for an odd symmetry). On the grid it is an exact re-indexing: no interpolation, so ``b * N``
must be an integer on every axis. If a solution operator ``G`` of a PDE commutes with ``g``
(``G(g u) = g G(u)``) and the input distribution is invariant under ``g``, then ``(g u, g G(u))``
is another exact training pair: :class:`RandomSymmetry` draws one per sample (data augmentation),
:func:`group_average` averages a model over the group (exact equivariance at test time).

Vector fields. A velocity ``v = (v_1, ..., v_d)`` stored as ``d`` channels (sciml's layout keeps
one scalar field per component, ``u_x``, ``u_y``) is not a set of scalars: the map moves its
components too, ``(g v)(x) = A^T v(A x + b)`` (output component ``a`` is input component
``|axes[a]| - 1``, negated where ``axes[a] < 0``). Pass the channels of each vector as
``vectors=[(i_x, i_y)]`` (to :class:`GridSymmetry`, :class:`RandomSymmetry`,
:class:`Augmented`, :func:`group_average`). ``sign`` does not multiply vector components: it says
how the *scalar* channels transform (``det A`` for a pseudo-scalar such as 2-D vorticity), and
with that convention ``curl(g v) = g(curl v)`` -- the velocity of a flow whose vorticity the
group maps to solutions is mapped to solutions, and stays divergence-free. Channels not listed in
``vectors`` are treated as scalars (``sign * u(A x + b)``), as before vector support: a velocity
passed without ``vectors`` is moved but its components are neither swapped nor negated, which is
physically wrong for any map but a translation.

Coefficients. ``sign`` multiplies every scalar channel, which is right for the state and for a
source that transforms as it does (the vorticity forcing ``f`` of Navier-Stokes), but not for a
coefficient beside it: under the odd symmetry ``u -> -u`` of a linear PDE (``sign=-1``) a wave
speed ``c`` or a diffusivity stays positive. Pass such channels as ``keep_sign=[i]``: they are
moved, ``c(A x + b)``, and never negated (a static field appended to a view's input is such a
channel when it is a coefficient).

Composition: ``(g * h)(u) = g(h(u))``, i.e. ``A = A_h A_g``, ``b = A_h b_g + b_h``,
``sign = sign_g sign_h``; :func:`generate_group` closes a set of generators under it.

The Navier-Stokes data of the FNO paper (forcing ``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))``,
isotropic Gaussian initial vorticity) has 8 such maps up to the shifts along ``(1, -1)``, which are
symmetries too:
:func:`sciml.data.generators.fno_forcing_symmetries`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, SupportsIndex

import torch
from torch.utils.data import Dataset

from .._scalars import is_int

__all__ = [
    "Augmented",
    "ChannelGroups",
    "GridSymmetry",
    "RandomSymmetry",
    "generate_group",
    "group_average",
]

# (why) public: a caller's own wrapper annotates with it. It is the type of GridSymmetry's and
# group_average's `vectors`, and of each entry of RandomSymmetry's (per tensor) and Augmented's
# (per key). Not Sequence[Sequence[int]]: that refused to a type checker a (k, d) integer
# array or tensor (an ndarray is no Sequence, an np.int64 no int), which the runtime takes.
ChannelGroups = Iterable[Iterable[SupportsIndex]]
"""The channel groups of vector fields, one group per vector, each the channel indices of its
``d`` components in grid-axis order: ``[(0, 1)]`` for ``(u_x, u_y, p)``. Any iterable of
iterables of integers: a list of tuples, or a ``(k, d)`` integer array or tensor."""


def _channel_groups(vectors: object, what: str) -> list[tuple[int, ...]]:
    """``vectors`` as a list of channel-index tuples, one per vector field, or a ValueError.

    (why) a flat ``(0, 1)`` (one vector's channels without the enclosing list) failed deep inside
    with ``TypeError: 'int' object is not iterable``, and a float index was truncated silently.
    """
    groups = []
    try:
        if isinstance(vectors, (str, bytes)):
            raise TypeError
        for group in vectors:  # lists or tuples, or a (k, d) integer array or tensor
            if isinstance(group, (str, bytes)):
                raise TypeError
            groups.append(tuple(operator.index(c) for c in group))
    except TypeError:
        raise ValueError(
            f"{what}: expected a list of channel groups, one per vector field, each a "
            f"tuple of integer channel indices, e.g. [(0, 1)] (not (0, 1)), got "
            f"{vectors!r}"
        ) from None
    return groups


def _per_tensor(
    given: Sequence[Any] | None,
    n: int,
    name: str,
    parse: Callable[[Any, str], Any],
    unit: str,
    default: Any = None,
) -> list[Any]:
    """``given`` (one entry per tensor, each read by ``parse``) checked to have ``n`` entries;
    None: ``default`` (a fresh empty list where None) for every tensor."""
    if given is None:
        return [[] if default is None else default for _ in range(n)]
    out = [parse(v, f"{name}[{i}] (one list of {unit} per tensor)") for i, v in enumerate(given)]
    if len(out) != n:
        raise ValueError(
            f"expected {name} to have one entry per tensor ({n}), got {len(out)}: {out}"
        )
    return out


def _channel_list(channels: Iterable[SupportsIndex], what: str) -> list[int]:
    """``channels`` (an iterable of channel indices) as a list of ints, or a ValueError."""
    try:
        if isinstance(channels, (str, bytes)):
            raise TypeError
        return [operator.index(c) for c in channels]
    except TypeError:
        raise ValueError(
            f"{what}: expected a list of integer channel indices, e.g. [2], got {channels!r}"
        ) from None


@dataclass(frozen=True)
class GridSymmetry:
    """``(g u)(x) = sign * u(A x + b)`` on the periodic unit grid (module docstring).

    Args:
        axes: ``A`` as a signed permutation: output axis ``a`` reads input axis
            ``p = abs(axes[a]) - 1``, reversed where the entry is negative (1-based so that axis 0
            can carry a sign): ``y_p = sign(axes[a]) x_a + b_p``. E.g. ``(2, 1)`` swaps x and y,
            ``(-1, -2)`` is the point reflection ``x -> -x``.
        shift: ``b`` in periods, indexed by input axis: ``Fraction`` or ``int`` entries, stored
            as fractions reduced mod 1 (``b_p * N_p`` must be an integer when the map is applied).
            A float is read at its exact binary value: 0.25 is 1/4, but 0.1 is not 1/10 (use
            ``Fraction(1, 10)`` or :meth:`GridSymmetry.translation`).
        sign: +1 or -1, multiplies the field.
    """

    axes: tuple[int, ...]
    shift: tuple[Fraction | int, ...]  # Fractions once made (__post_init__)
    sign: int = 1

    def __post_init__(self) -> None:
        d = len(self.axes)
        if sorted(abs(a) for a in self.axes) != list(range(1, d + 1)):
            raise ValueError(
                f"axes must be a signed permutation of 1..{d} (1-based, negative = reversed), "
                f"got {self.axes}"
            )
        if len(self.shift) != d:
            raise ValueError(f"shift needs {d} entries (one per axis), got {self.shift}")
        if self.sign not in (1, -1):
            raise ValueError(f"sign must be +1 or -1, got {self.sign}")
        object.__setattr__(self, "shift", tuple(Fraction(s) % 1 for s in self.shift))

    @classmethod
    def identity(cls, ndim: int) -> GridSymmetry:
        return cls(tuple(range(1, ndim + 1)), (Fraction(0),) * ndim)

    @classmethod
    def translation(cls, shift: Sequence[float | Fraction]) -> GridSymmetry:
        """``u(x + b)``; floats are read as exact fractions of small denominator."""
        return cls(
            tuple(range(1, len(shift) + 1)),
            tuple(Fraction(s).limit_denominator(1 << 20) for s in shift),
        )

    @property
    def ndim(self) -> int:
        return len(self.axes)

    def matrix(self) -> list[list[int]]:
        """``A`` as a list of rows (row = input axis, column = output axis)."""
        d = self.ndim
        a = [[0] * d for _ in range(d)]
        for col, ax in enumerate(self.axes):
            a[abs(ax) - 1][col] = 1 if ax > 0 else -1
        return a

    def __mul__(self, other: GridSymmetry) -> GridSymmetry:
        """``(self * other)(u) = self(other(u))``."""
        if other.ndim != self.ndim:
            raise ValueError(f"cannot compose a {self.ndim}-D and a {other.ndim}-D symmetry")
        a_g, a_h = self.matrix(), other.matrix()
        d = self.ndim
        a = [[sum(a_h[i][k] * a_g[k][j] for k in range(d)) for j in range(d)] for i in range(d)]
        axes = tuple(next((i + 1) * a[i][j] for i in range(d) if a[i][j]) for j in range(d))
        b = tuple(
            sum((a_h[i][k] * self.shift[k] for k in range(d)), Fraction(0)) + other.shift[i]
            for i in range(d)
        )
        return GridSymmetry(axes, b, self.sign * other.sign)

    def __call__(
        self,
        u: torch.Tensor,
        *,
        vectors: ChannelGroups = (),
        keep_sign: Iterable[SupportsIndex] = (),
    ) -> torch.Tensor:
        """Apply to ``u: (..., N_1, ..., N_d)`` (the last ``d`` dims are the grid); same shape
        out when ``A`` maps each axis to one of the same length.

        ``vectors``: channel indices (on the axis before the grid, ``u: (..., channels,
        *grid)``) of each vector field's ``d`` components, in grid-axis order, e.g. ``[(0, 1)]``
        for ``(u_x, u_y, p)``; they transform as ``A^T v(A x + b)`` (module docstring), every
        other channel as ``sign * u(A x + b)``. ``keep_sign``: channel indices of coefficients
        (a wave speed beside the state), moved as ``u(A x + b)`` without ``sign``.
        """
        d = self.ndim
        if u.ndim < d:
            raise ValueError(f"expected u with at least {d} grid dims, got shape {tuple(u.shape)}")
        out = self._move(u)
        vectors = _channel_groups(vectors, "vectors")  # (why) `not` of an array is ambiguous
        keep = _channel_list(keep_sign, "keep_sign")
        if not vectors and not keep:
            return out if self.sign == 1 else -out
        perm, factor = self._components(vectors, u.shape, d, keep)
        ch = u.ndim - d - 1
        factor = torch.as_tensor(factor, dtype=out.dtype, device=out.device)
        return out.index_select(ch, perm.to(out.device)) * factor.view(-1, *(1,) * d)

    def _components(
        self,
        vectors: Sequence[tuple[int, ...]],
        shape: torch.Size,
        d: int,
        keep_sign: Sequence[int] = (),
    ) -> tuple[torch.Tensor, list[int]]:
        """Per output channel: the input channel it reads and its factor (``sign`` for scalars,
        ``+-1`` from ``A`` for vector components, 1 for ``keep_sign`` channels)."""
        if len(shape) < d + 1:
            what = f"vectors={list(vectors)}" if vectors else f"keep_sign={list(keep_sign)}"
            raise ValueError(
                f"{what} needs a channel axis before the {d} grid dims, "
                f"(..., channels, *grid), got shape {tuple(shape)}"
            )
        n_c = shape[len(shape) - d - 1]
        perm, factor = list(range(n_c)), [self.sign] * n_c
        seen: set[int] = set()
        for group in vectors:  # validated by _channel_groups
            if len(group) != d or any(not -n_c <= c < n_c for c in group):
                raise ValueError(
                    f"expected each entry of vectors to name the {d} channels (of {n_c}) of one "
                    f"vector's components in grid-axis order, got {list(group)} in vectors="
                    f"{[list(v) for v in vectors]}"
                )
            group = [c % n_c for c in group]
            if seen & set(group) or len(set(group)) != d:
                raise ValueError(
                    f"vectors={[list(v) for v in vectors]} uses a channel twice; each channel "
                    "is a component of at most one vector"
                )
            seen |= set(group)
            for a, ax in enumerate(self.axes):  # (g v)_a = sign(axes[a]) v_{|axes[a]| - 1}
                perm[group[a]] = group[abs(ax) - 1]
                factor[group[a]] = 1 if ax > 0 else -1
        for c in keep_sign:
            if not -n_c <= c < n_c or c % n_c in seen:
                why = "a vector component" if -n_c <= c < n_c else f"not among the {n_c} channels"
                raise ValueError(
                    f"expected keep_sign to name scalar channels of the {n_c}, got channel {c} "
                    f"in keep_sign={list(keep_sign)}, {why}"
                )
            factor[c % n_c] = 1
        return torch.tensor(perm), factor

    def _move(self, u: torch.Tensor) -> torch.Tensor:
        """``u(A x + b)`` on the grid, each channel alike (no sign)."""
        d = self.ndim
        grid = u.shape[u.ndim - d :]
        lead = u.ndim - d
        out = u.permute(*range(lead), *(lead + abs(a) - 1 for a in self.axes))
        for i, a in enumerate(self.axes):
            n = out.shape[lead + i]
            if n != grid[i]:
                raise ValueError(
                    f"{self} maps grid axis {abs(a) - 1} (size {n}) onto axis {i} "
                    f"(size {grid[i]}); it needs those axes to have the same size"
                )
            step = self.shift[abs(a) - 1] * n
            if step.denominator != 1:
                raise ValueError(
                    f"shift {self.shift[abs(a) - 1]} of axis {abs(a) - 1} is not a multiple of "
                    f"the grid spacing 1/{n}; an exact grid symmetry needs shift * N to be an "
                    "integer"
                )
            idx = torch.arange(n, device=u.device)
            idx = ((-idx if a < 0 else idx) + int(step)) % n
            out = out.index_select(lead + i, idx)
        return out


def generate_group(generators: Sequence[GridSymmetry], limit: int = 1024) -> list[GridSymmetry]:
    """All products of ``generators`` (identity first); raises if more than ``limit`` (e.g. a
    shift of large denominator generating a huge cyclic group)."""
    if not generators:
        raise ValueError("expected at least one generator")
    group = [GridSymmetry.identity(generators[0].ndim)]
    seen = set(group)
    frontier = list(group)
    while frontier:
        new = []
        for g in frontier:
            for h in generators:
                gh = g * h
                if gh not in seen:
                    seen.add(gh)
                    group.append(gh)
                    new.append(gh)
                    if len(group) > limit:
                        raise ValueError(f"the generators give more than {limit} elements")
        frontier = new
    return group


class RandomSymmetry:
    """Data augmentation: one random group element (and random grid shifts along
    ``shift_directions``) per sample, applied to every tensor of the sample alike.

    Args:
        elements: the group (e.g. from :func:`generate_group`); drawn uniformly.
        shift_directions: integer lattice directions ``d`` along which every translation
            ``k d / N`` (``k = 0 .. N-1``) is also a symmetry (the continuous shift group sampled on
            the grid); composed after the element.
        generator: torch generator for the draws (reproducible augmentation).
    """

    def __init__(
        self,
        elements: Sequence[GridSymmetry],
        *,
        shift_directions: Sequence[Sequence[int]] = (),
        generator: torch.Generator | None = None,
    ) -> None:
        if not elements:
            raise ValueError("expected at least one group element")
        self.elements = list(elements)
        d = self.elements[0].ndim
        try:  # (why) int() truncated a direction 0.5 to 0: a shift by nothing, silently
            self.shift_directions = [tuple(operator.index(a) for a in v) for v in shift_directions]
        except TypeError:
            raise TypeError(
                f"shift_directions: expected integer lattice directions such as [(1, 0)], got "
                f"{shift_directions!r}"
            ) from None
        if any(len(v) != d for v in self.shift_directions):
            raise ValueError(f"shift_directions need {d} entries each, got {shift_directions}")
        self.generator = generator

    def __getstate__(self) -> dict:
        # A torch.Generator sent to spawn DataLoader workers goes through shared memory and
        # kills them ("unable to resize file"); its state travels as plain bytes instead.
        state = self.__dict__.copy()
        g = state.pop("generator")
        state["generator_state"] = (
            None if g is None else (str(g.device), g.get_state().numpy().tobytes())
        )
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        saved = state.pop("generator_state")
        self.__dict__.update(state)
        self.generator = None
        if saved is not None:
            device, raw = saved
            self.generator = torch.Generator(device=device)
            self.generator.set_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8))

    def __call__(
        self,
        *fields: torch.Tensor,
        vectors: Iterable[ChannelGroups] | None = None,
        generator: torch.Generator | None = None,
        keep_sign: Iterable[Iterable[SupportsIndex]] | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """``fields``: tensors ``(batch, channels, *grid)`` with the same batch and grid; returns
        them transformed, sample ``i`` of every tensor by the same map.

        ``generator``: draw the maps from this generator for this call, in place of the one
        given at construction (:class:`Augmented` with a ``seed`` passes one per item).

        ``vectors``: one entry per tensor, the channel groups of its vector fields
        (:meth:`GridSymmetry.__call__`), e.g. ``vectors=[[(0, 1)], [(0, 1)]]`` for an input
        and a target ``(u_x, u_y)``; ``None``: every channel is a scalar. ``keep_sign``: one
        entry per tensor, its coefficient channels that ``sign`` does not multiply, e.g.
        ``[[1], []]`` for an input ``(u, c)`` and a target ``(u,)``.
        """
        if not fields:
            raise ValueError("expected at least one tensor")
        vectors = _per_tensor(
            vectors, len(fields), "vectors", _channel_groups, "channel groups", default=()
        )
        keep = _per_tensor(keep_sign, len(fields), "keep_sign", _channel_list, "channels")
        d = self.elements[0].ndim
        b, grid = fields[0].shape[0], fields[0].shape[-d:]
        for f in fields:
            if f.ndim < d + 1 or f.shape[0] != b or f.shape[-d:] != grid:
                raise ValueError(
                    f"expected tensors (batch, ..., *grid) with batch {b} and grid {tuple(grid)}, "
                    f"got shape {tuple(f.shape)}"
                )
        sizes = []
        for v in self.shift_directions:
            n = {grid[a] for a in range(d) if v[a]}
            if len(n) != 1:
                raise ValueError(
                    f"shift direction {v} moves along axes of sizes {sorted(n)}; grid shifts "
                    f"k * d / N need those axes to have one size N, got grid {tuple(grid)}"
                )
            sizes.append(n.pop())
        gen = self.generator if generator is None else generator
        which = torch.randint(len(self.elements), (b,), generator=gen)
        ks = [torch.randint(n, (b,), generator=gen) for n in sizes]
        outs = [torch.empty_like(f) for f in fields]
        for i in range(b):
            g = self.elements[int(which[i])]
            for v, n, k in zip(self.shift_directions, sizes, ks, strict=True):
                g = GridSymmetry.translation([Fraction(int(k[i]) * c, n) for c in v]) * g
            for f, o, v, k in zip(fields, outs, vectors, keep, strict=True):
                o[i] = g(f[i], vectors=v, keep_sign=k)
        return tuple(outs)


class Augmented(Dataset):
    """A map-style data set whose items get a random symmetry each time they are read: wrap the
    training set of :class:`sciml.train.Trainer` with it.

    Args:
        dataset: items are dicts of tensors ``(channels, *grid)`` (e.g. :class:`SnapshotPairs`).
        augment: a :class:`RandomSymmetry`.
        keys: the fields moved together (default ``"input"`` and ``"target"``); other fields
            (coordinates, parameters) are passed through unchanged.
        vectors: key -> channel groups of the vector fields in that field (see
            :meth:`GridSymmetry.__call__`), e.g. ``{"input": [(0, 1)], "target": [(0, 1)]}``
            for :class:`SnapshotPairs` of ``inputs=targets=["u_x", "u_y"]``; for time-flattened
            :class:`Windows` (channel ``t * C + c``) list every step's group. Keys not given
            hold scalars only.
        keep_sign: key -> channels that ``sign`` does not multiply, the coefficients: e.g.
            ``{"input": [1]}`` for a view of ``u`` with ``static_fields=["c"]`` (a wave speed,
            appended as the input's last channel) under ``u -> -u``. A static field that
            transforms as the state (the Navier-Stokes forcing ``f``) is not listed.

        seed: draw the map of item ``i`` in epoch ``e`` (:meth:`set_epoch`, which the
            :class:`~sciml.train.Trainer` calls before each epoch) from a generator seeded with
            ``(seed, e, i)``: the maps are a function of the seed, the epoch and the index alone,
            so a resumed run draws those of an uninterrupted one, whatever the number of
            ``DataLoader`` workers or data-parallel ranks (reading an item twice in one epoch
            gives the same map). None (default): ``augment``'s own stream, as below.

    A view of :mod:`sciml.data` with a ``normalizer`` gives encoded items: they are decoded,
    moved and encoded again, since a per-channel encoding does not commute with a map that
    negates a channel of nonzero mean or swaps vector components of different statistics.

    Without ``seed``, in ``DataLoader`` worker processes each worker gets a copy of ``augment``;
    if it has its own generator, that copy is reseeded from the worker's seed
    (``get_worker_info().seed``, which ``torch.manual_seed`` in the main process fixes), so
    workers do not repeat each other's maps.
    """

    def __init__(
        self,
        dataset,
        augment: RandomSymmetry,
        keys: Sequence[str] = ("input", "target"),
        *,
        vectors: Mapping[str, ChannelGroups] | None = None,
        seed: int | None = None,
        keep_sign: Mapping[str, Iterable[SupportsIndex]] | None = None,
    ) -> None:
        if seed is not None and not (is_int(seed) and seed >= 0):
            error = ValueError if is_int(seed) else TypeError
            raise error(f"Augmented: expected seed as an int >= 0 or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.epoch = 0
        self.dataset, self.augment, self.keys = dataset, augment, tuple(keys)
        vectors, keep_sign = dict(vectors or {}), dict(keep_sign or {})
        for what, given in (("vectors", vectors), ("keep_sign", keep_sign)):
            unknown = sorted(set(given) - set(self.keys))
            if unknown:
                raise ValueError(
                    f"Augmented: {what} names {unknown}, which are not among the moved keys "
                    f"{list(self.keys)}; expected a subset of keys"
                )
        self.vectors = [_channel_groups(vectors.get(k, ()), f"vectors[{k!r}]") for k in self.keys]
        self.keep_sign = [
            _channel_list(keep_sign.get(k, ()), f"keep_sign[{k!r}]") for k in self.keys
        ]
        self._worker: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """With a ``seed``: draw the maps of epoch ``epoch`` from now on (without one: no
        effect). The :class:`~sciml.train.Trainer` calls it before each epoch."""
        self.epoch = operator.index(epoch)

    def __getitem__(self, i: int) -> dict:
        generator = None
        if self.seed is not None:
            # (why) the stream of one generator depends on every draw before: a resumed run
            # (a fresh stream) or another number of workers or ranks drew other maps
            k = operator.index(i) % len(self)  # (why) item -1 draws item n - 1's map
            generator = torch.Generator().manual_seed(_item_seed(self.seed, self.epoch, k))
        info = torch.utils.data.get_worker_info()
        if (
            generator is None
            and info is not None
            and self._worker != info.id
            and self.augment.generator is not None
        ):
            self._worker = info.id  # first item in this worker process: its own stream
            self.augment.generator = torch.Generator().manual_seed(info.seed)
        item = dict(self.dataset[i])
        missing = [k for k in self.keys if k not in item]
        if missing:
            raise KeyError(f"Augmented: item {i} has no field(s) {missing}; it has {sorted(item)}")
        # (why) a view's normalizer encodes each channel by its own mean and std, which does not
        # commute with a map that negates a channel of nonzero mean or swaps vector components
        # of different statistics: moved encoded, a pair was no pair of the problem (8.7 std off
        # for (u_x, u_y) of std 2 and 0.5 under a transpose). Moved in physical units instead.
        norm = getattr(self.dataset, "normalizer", None)
        names = getattr(self.dataset, "_channel_names", dict)() if norm is not None else {}
        tensors = {k: torch.as_tensor(item[k]) for k in self.keys}
        physical = dict(tensors)
        for k in names.keys() & physical.keys():
            channels, dim = names[k]
            physical[k] = norm.decode(physical[k].double(), channels, channel_dim=dim)
        moved = self.augment(
            *(physical[k][None] for k in self.keys),
            vectors=self.vectors,
            generator=generator,
            keep_sign=self.keep_sign,
        )
        for k, v in zip(self.keys, moved, strict=True):
            v = v[0]
            if k in names:
                v = norm.encode(v, names[k][0], channel_dim=names[k][1]).to(tensors[k].dtype)
            item[k] = v
        return item


def _item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed mixed from ``(seed, epoch, index)`` (``numpy.random.SeedSequence``)."""
    import numpy as np

    state = np.random.SeedSequence([seed, epoch, int(index)]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def group_average(
    model: torch.nn.Module,
    u: torch.Tensor,
    elements: Sequence[GridSymmetry],
    *,
    vectors: ChannelGroups = (),
    out_vectors: ChannelGroups | None = None,
    keep_sign: Iterable[SupportsIndex] = (),
    out_keep_sign: Iterable[SupportsIndex] = (),
) -> torch.Tensor:
    """``mean_g g^-1 model(g u)`` over ``elements`` (a group): exactly equivariant to it.

    ``u: (batch, channels, *grid)``; ``len(elements)`` forward passes. The inverse of each element
    is found in the group itself, so ``elements`` must be closed (e.g. from :func:`generate_group`).
    ``vectors`` / ``out_vectors``: channel groups of the vector fields of ``u`` / of the model's
    output (default: those of ``u``), see :meth:`GridSymmetry.__call__`. ``keep_sign`` /
    ``out_keep_sign``: the coefficient channels of ``u`` (a wave speed beside the state) / of
    the output (default: none), which ``sign`` does not multiply.
    """
    # (why) read once: each element's g(...) iterated them again, so a one-shot iterable (a
    # generator, zip(...)), which the hint admits, moved its vectors in the first pass only
    vectors = _channel_groups(vectors, "vectors")
    out_vectors = vectors if out_vectors is None else _channel_groups(out_vectors, "out_vectors")
    keep = _channel_list(keep_sign, "keep_sign")
    out_keep = _channel_list(out_keep_sign, "out_keep_sign")
    group = list(elements)
    if not group:
        raise ValueError("elements is empty; pass a group of GridSymmetry (generate_group)")
    ident = GridSymmetry.identity(group[0].ndim)
    total = None
    for g in group:
        inv = next((h for h in group if h * g == ident), None)
        if inv is None:
            raise ValueError(f"{g} has no inverse in elements; pass a group (generate_group)")
        y = inv(
            model(g(u, vectors=vectors, keep_sign=keep)), vectors=out_vectors, keep_sign=out_keep
        )
        total = y if total is None else total + y
    return total / len(group)
