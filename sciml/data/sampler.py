"""Rank-sharded sampling (``DistributedSampler`` semantics, usable without a process group)."""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral

import numpy as np
import torch
from torch.utils.data import Sampler


def _dist_default(rank: int | None, world_size: int | None) -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank() if rank is None else rank
        world_size = dist.get_world_size() if world_size is None else world_size
    return (0 if rank is None else rank), (1 if world_size is None else world_size)


def _nonneg(name: str, value: object) -> int:
    # a negative n gave the index list [0], a fractional one was truncated, a negative seed or
    # epoch failed inside numpy with "expected non-negative integer"
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"ShardedSampler: expected {name} an integer >= 0, got {value!r}")
    return int(value)


class ShardedSampler(Sampler[int]):
    """Indices ``0..n-1`` for one rank: each epoch one permutation shared by every rank (same
    ``seed`` + ``epoch``), dealt out round-robin, so ranks never overlap.

    The dealing, padding and dropping are those of ``torch.utils.data.DistributedSampler``
    (``shuffle=False`` gives the same indices); the shuffled order is NumPy's, not torch's.

    Args:
        n: data set length.
        shuffle: permute each epoch (call :meth:`set_epoch`).
        seed: base seed, identical on every rank.
        rank: this process's rank; default from ``torch.distributed`` when initialised, else 0.
        world_size: number of ranks; default from ``torch.distributed`` when initialised, else 1.
        drop_last: drop the tail so every rank gets ``n // world_size`` indices.
        pad: when not dropping, repeat leading indices so every rank gets the same count (what
            DDP needs to keep ranks in step); ``pad=False`` gives uneven shards that cover every
            index exactly once (evaluation).
    """

    def __init__(
        self,
        n: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
        pad: bool = True,
    ):
        self.n = _nonneg("n", n)
        rank, world_size = _dist_default(rank, world_size)
        # (why) rank="0" (an environment variable) failed in the comparison below, and
        # world_size=2.5 was taken until iteration sliced with it
        self.rank = _nonneg("rank", rank)
        if isinstance(world_size, bool) or not isinstance(world_size, Integral) or world_size < 1:
            raise ValueError(
                f"ShardedSampler: expected world_size an integer >= 1, got {world_size!r}"
            )
        self.world_size = int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, world_size={self.world_size})")
        self.shuffle, self.drop_last, self.pad = shuffle, drop_last, pad
        self.seed = _nonneg("seed", seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` (an int >= 0) from the next iteration on.

        Call it with the same value on every rank before each epoch, as with
        ``DistributedSampler``; without it every epoch repeats one order. ``shuffle=False``
        ignores the epoch.
        """
        self.epoch = _nonneg("epoch", epoch)

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            order = np.arange(self.n)
        else:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
        if self.drop_last:
            return order[: self.n - self.n % self.world_size]
        if self.pad and self.n % self.world_size and self.n:
            extra = self.world_size - self.n % self.world_size
            order = np.concatenate([order, np.resize(order, extra)])
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self._order()[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        # arithmetic: the DataLoader asks often, and a permutation of n costs O(n)
        n, w = self.n, self.world_size
        if self.drop_last:
            return n // w
        if self.pad and n:
            return -(-n // w)
        return len(range(self.rank, n, w))
