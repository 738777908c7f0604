"""Batches: how data set items become a batch, and what the model computes on one.

A batch is a dict of tensors: ``"input"``, ``"target"`` and optionally ``"x"``, ``"t"`` (see
:mod:`sciml.train.trainer`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import default_collate


def predict(model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """``model(batch["input"], x=batch["x"], t=batch["t"])``, passing ``x`` / ``t`` only if present.

    A model whose prediction needs more of the batch than ``input``, ``x`` and ``t`` (PROSE's
    symbol input, say) defines ``predict_batch(batch) -> prediction`` and that is used instead,
    so validation and evaluation see the same prediction as training.
    """
    custom = getattr(model, "predict_batch", None)
    if callable(custom):
        return custom(batch)
    kwargs = {k: batch[k] for k in ("x", "t") if batch.get(k) is not None}
    return model(batch["input"], **kwargs)


class _LossModule(nn.Module):
    """``forward(batch) -> loss``: the unit DDP wraps, so that a model's own ``training_loss``
    (which may call the model several times) also runs under DDP's gradient synchronisation."""

    def __init__(self, model: nn.Module, loss_fn: Callable) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return batch_loss(self.model, batch, self.loss_fn)


def batch_loss(model: nn.Module, batch: Mapping[str, Any], loss_fn: Callable) -> torch.Tensor:
    """The model's ``training_loss(batch, loss_fn)`` if it has one, else the default loss."""
    custom = getattr(model, "training_loss", None)
    if custom is not None:
        return custom(batch, loss_fn)
    return loss_fn(predict(model, batch), batch["target"])


def _split_batch(
    batch: dict[str, Any], n: int, size: int | None
) -> list[tuple[dict[str, Any], int]]:
    """``batch`` (``n`` samples) as chunks of at most ``size`` samples: every tensor whose dim 0
    is the batch, and every list or tuple of ``n`` entries (what ``default_collate`` makes of
    strings and other non-tensor item fields), is sliced; anything else is shared."""
    if size is None or size >= n:
        return [(batch, n)]

    def per_sample(v: Any) -> bool:
        # (why) lists too: a collated list of names went whole into every chunk, so a
        # training_loss reading it saw n names beside `size` inputs
        if isinstance(v, torch.Tensor):
            return bool(v.ndim) and len(v) == n
        return isinstance(v, (list, tuple)) and len(v) == n

    return [
        (
            {k: v[i : i + size] if per_sample(v) else v for k, v in batch.items()},
            min(size, n - i),
        )
        for i in range(0, n, size)
    ]


def _collate(items: list[Any]) -> dict[str, Any]:
    if isinstance(items[0], tuple) and len(items[0]) == 2:
        items = [{"input": a, "target": b} for a, b in items]
    if not isinstance(items[0], Mapping) or "input" not in items[0] or "target" not in items[0]:
        raise TypeError(
            "expected data set items to be dicts with 'input' and 'target' (and optionally 'x', "
            f"'t'), got {type(items[0]).__name__}"
            + (f" with keys {sorted(items[0])}" if isinstance(items[0], Mapping) else "")
        )
    return default_collate(items)
