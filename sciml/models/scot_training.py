"""Training and evaluating Poseidon-style operators: loss, metric, fine-tuning recipe, rollouts.

* :class:`PoseidonLoss`: relative L1 per channel group, averaged over groups (the scOT loss)::

      L = 1/G sum_g  mean|pred_g - y_g| / (mean|y_g| + eps)        (means over batch and space)

* :func:`relative_l1`: the Poseidon metric per sample, ``sum|pred - y| / sum|y|`` over channels
  and space; :func:`evaluate_direct` reports its median (and mean) over a test set.
* :class:`FineTuneRecipe`: AdamW with separate learning rates for the embedding / recovery,
  the time-conditioning of the norms and the body, no weight decay on biases, norms and logit
  scales, under the trainer's (cosine) schedule.
* :func:`evaluate_autoregressive`: ``u(t_0) -> u(t_k)`` in ``k`` steps of the model vs truth.

Training pairs come from :class:`sciml.data.AllPairs` (every ``(t_i, t_j)``, ``j >= i``, lead
time ``t_j - t_i``), Poseidon's all-to-all strategy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .._scalars import is_real
from ..layers._checks import check_int
from ..layers.conditional_norm import ConditionalLayerNorm

__all__ = [
    "PoseidonLoss",
    "relative_l1",
    "FineTuneRecipe",
    "param_groups",
    "evaluate_direct",
    "evaluate_autoregressive",
]


def _groups(channels: int, slices: Sequence[int] | None) -> list[tuple[int, int]]:
    if slices is None:
        return [(0, channels)]
    s = list(slices)
    if len(s) < 2 or s[0] != 0 or s[-1] != channels or any(a >= b for a, b in zip(s, s[1:])):
        raise ValueError(
            f"channel_slices must rise strictly from 0 to the {channels} channels, got {s}"
        )
    return list(zip(s, s[1:]))


class PoseidonLoss(nn.Module):
    """Relative Lp loss per channel group (see module doc); ``p`` 1 (default) or 2 (squared).

    Args:
        channel_slices: group boundaries, e.g. ``[0, 1, 3, 4]`` for (rho), (u, v), (p);
            None: all channels form one group.
    """

    def __init__(
        self, channel_slices: Sequence[int] | None = None, *, p: int = 1, eps: float = 1e-10
    ):
        super().__init__()
        # (why) p=True passed "in (1, 2)" as 1, a NaN eps turned every loss into NaN
        if not is_real(p) or p not in (1, 2):
            raise ValueError(f"PoseidonLoss: expected p as 1 (L1) or 2 (squared L2), got {p!r}")
        if not is_real(eps) or not 0 <= eps < math.inf:
            raise ValueError(f"PoseidonLoss: expected eps as a finite float >= 0, got {eps!r}")
        p = int(p)
        self.channel_slices = None if channel_slices is None else list(channel_slices)
        self.p, self.eps = p, eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``pred``, ``target``: ``(batch, channels, *spatial)``; returns a scalar."""
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        err = (pred - target).abs() if self.p == 1 else (pred - target) ** 2
        ref = target.abs() if self.p == 1 else target**2
        terms = [
            err[:, a:b].mean() / (ref[:, a:b].mean() + self.eps)
            for a, b in _groups(pred.shape[1], self.channel_slices)
        ]
        return torch.stack(terms).mean()


def relative_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample relative L1 error ``sum|pred - y| / sum|y|`` over channels and space: ``(batch,)``
    (a zero target counts as ``1e-10``, as in Poseidon's metric). ``pred`` and ``target``:
    ``(batch, channels, *spatial)``, of one shape."""
    if pred.shape != target.shape:
        # (why) they broadcast: a 3-channel prediction against a 1-channel target summed the
        # target's error three times (1.5 where each channel's is 0.5), a target batch of 1 was
        # compared with every sample, without an error
        raise ValueError(
            f"relative_l1 expected pred and target of one shape (batch, channels, *spatial), "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    err = (pred - target).abs().flatten(1).sum(1)
    ref = target.abs().flatten(1).sum(1)
    return err / torch.where(ref == 0, torch.full_like(ref, 1e-10), ref)


# ---------------------------------------------------------------------------- fine-tuning
_EMBEDDING_PREFIXES = ("embed.", "recovery.", "pos")


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    lr_embedding: float | None = None,
    lr_time: float | None = None,
    weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """AdamW parameter groups for fine-tuning a :class:`~sciml.models.ScOT`.

    * ``embedding``: patch embedding, position embedding and patch recovery (the parts that see
      the new PDE's channels; also inside a :class:`~sciml.models.Normalized` wrapper),
      learning rate ``lr_embedding`` (default ``lr``);
    * ``time``: the Linear(1, dim) maps of the time-conditioned norms, ``lr_time`` (default
      ``lr``); parameters of norms inside the embedding stay in ``embedding``;
    * ``body`` / ``body_no_decay``: everything else at ``lr``; biases, 1-D parameters (norm
      weights, layer scales, attention biases) and logit scales get no weight decay.

    Empty groups are dropped; each group carries a ``name``.
    """
    time_params: set[int] = set()
    for m in model.modules():
        if isinstance(m, ConditionalLayerNorm):
            time_params.update(id(p) for p in m.parameters())
    groups: dict[str, list[nn.Parameter]] = {
        "embedding": [],
        "time": [],
        "body": [],
        "body_no_decay": [],
    }
    # (why) a Normalized wrapper (sciml train's model) names its operator's parameters
    # "inner.embed...": matched against the bare prefixes, the embedding group came out empty
    # and lr_embedding was silently not applied
    _, wrapper = _unwrap(model)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.removeprefix(wrapper).startswith(_EMBEDDING_PREFIXES):
            groups["embedding"].append(p)
        elif id(p) in time_params:
            groups["time"].append(p)
        elif p.ndim <= 1 or name.endswith(("bias", "logit_scale")):
            groups["body_no_decay"].append(p)
        else:
            groups["body"].append(p)
    settings = {
        "embedding": (lr if lr_embedding is None else lr_embedding, weight_decay),
        "time": (lr if lr_time is None else lr_time, 0.0),
        "body": (lr, weight_decay),
        "body_no_decay": (lr, 0.0),
    }
    return [
        {"name": k, "params": v, "lr": settings[k][0], "weight_decay": settings[k][1]}
        for k, v in groups.items()
        if v
    ]


@dataclass(frozen=True)
class FineTuneRecipe:
    """Poseidon's fine-tuning optimiser: separate learning rates per :func:`param_groups`.

    Use with the common :class:`~sciml.train.Trainer`::

        trainer = Trainer(model, AllPairs(ds, ...), loss=PoseidonLoss(), config=TrainConfig(
            epochs=20, lr=1e-4, schedule=Cosine()))
        FineTuneRecipe(lr=1e-4, lr_embedding=5e-4).apply(trainer)
        trainer.fit()

    Attributes:
        lr: body learning rate (peak of the schedule).
        lr_embedding: embedding / recovery learning rate (None: ``lr``).
        lr_time: time-conditioning learning rate (None: ``lr``).
        weight_decay: AdamW weight decay of the decayed groups.
    """

    lr: float = 5e-5
    lr_embedding: float | None = 5e-4
    lr_time: float | None = 5e-5
    weight_decay: float = 1e-6

    def optimizer(self, model: nn.Module) -> torch.optim.AdamW:
        """AdamW over :func:`param_groups` of ``model``."""
        return torch.optim.AdamW(
            param_groups(
                model,
                lr=self.lr,
                lr_embedding=self.lr_embedding,
                lr_time=self.lr_time,
                weight_decay=self.weight_decay,
            )
        )

    def apply(self, trainer: Any) -> Any:
        """Replace ``trainer``'s optimiser by :meth:`optimizer` and rebuild its schedule (the
        trainer config's, e.g. cosine) over the same steps; call before ``fit``. Returns it."""
        from ..train.schedules import build_scheduler

        cfg = trainer.config
        trainer.optimizer = self.optimizer(trainer.model)
        trainer.scheduler = build_scheduler(
            trainer.optimizer, cfg.schedule, trainer.total_steps, cfg.warmup_steps
        )
        return trainer


# ---------------------------------------------------------------------------- evaluation
def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate_direct(model: nn.Module, data: Any, *, batch_size: int = 16) -> dict[str, Any]:
    """Relative L1 errors of ``model`` on a view of dict items (``input``, ``target``, ``t``).

    Returns ``{"median": float, "mean": float, "errors": (n,) tensor}``.
    """
    from ..train.trainer import predict

    was_training = model.training
    model.eval()
    dev = _device(model)
    errs = []
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False):
        batch = {k: v.to(dev) for k, v in batch.items()}
        errs.append(relative_l1(predict(model, batch), batch["target"]).cpu())
    model.train(was_training)
    e = torch.cat(errs)
    return {"median": float(e.median()), "mean": float(e.mean()), "errors": e}


def _unwrap(model: nn.Module) -> tuple[nn.Module, str]:
    """The operator inside any :class:`~sciml.models.Normalized` wrappers of ``model``, and the
    prefix (``"inner."`` per wrapper) its parameter names carry in ``model.named_parameters()``."""
    prefix = ""
    while isinstance(getattr(model, "inner", None), nn.Module):
        model, prefix = model.inner, prefix + "inner."
    return model, prefix


def _takes_lead_time(model: nn.Module) -> bool:
    """Whether a rollout passes the lead time ``t`` to ``model``.

    (why) through ``Normalized`` (what ``sciml train`` builds): its config has no
    ``time_conditioning``, so a wrapped unconditioned ScOT was handed ``t`` and refused it; and
    an operator config without the field (FNO, T1, MgNO) belongs to a family that refuses ``t``.
    """
    config = getattr(_unwrap(model)[0], "config", None)
    return True if config is None else bool(getattr(config, "time_conditioning", False))


@torch.no_grad()
def evaluate_autoregressive(
    model: nn.Module,
    trajectories: torch.Tensor,
    lead_time: float,
    *,
    steps: int | None = None,
    stride: int = 1,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Roll ``model`` out from ``trajectories[:, 0]`` in steps of ``lead_time`` (the time between
    snapshots ``stride`` apart) and compare each state with the stored one.

    Args:
        trajectories: ``(n, T, C, h, w)`` (normalised as the model expects).
        lead_time: ``t`` passed to the model at every step if it is time-conditioned
            (``config.time_conditioning``, looked up through a ``Normalized`` wrapper; a module
            without a ``config`` gets it too); other operators (an FNO baseline, a ScOT with
            ``time_conditioning=False``) are called as ``model(u)``.
        steps: number of steps (default: as many as the trajectory holds).
        stride: snapshots per step.

    Returns ``{"median": (steps,) per-step median relative L1, "errors": (n, steps)}``.
    """
    # (why) stride 0 raised ZeroDivisionError, batch_size 0 range()'s "arg 3 must not be zero",
    # a negative stride asked for steps in [1, -4], steps=True ran one step
    stride = check_int("stride", stride)
    batch_size = check_int("batch_size", batch_size)
    if steps is not None:
        check_int("steps", steps)
    n, T = trajectories.shape[:2]
    max_steps = (T - 1) // stride
    steps = max_steps if steps is None else steps
    if not 1 <= steps <= max_steps:
        raise ValueError(
            f"steps must be in [1, {max_steps}] for {T} snapshots and stride {stride}, got {steps}"
        )
    was_training = model.training
    model.eval()
    dev = _device(model)
    conditioned = _takes_lead_time(model)
    errs = []
    for i in range(0, n, batch_size):
        traj = trajectories[i : i + batch_size].to(dev)
        u = traj[:, 0]
        row = []
        for k in range(1, steps + 1):
            u = model(u, t=lead_time) if conditioned else model(u)
            row.append(relative_l1(u, traj[:, k * stride]).cpu())
        errs.append(torch.stack(row, dim=1))
    model.train(was_training)
    e = torch.cat(errs)
    return {"median": e.median(dim=0).values, "errors": e}
