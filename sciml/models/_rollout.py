"""Autoregressive rollouts for grid operators whose input is a window of states.

A time-stepping surrogate maps the last ``k`` states to the next ``m``: trained on
:class:`sciml.data.Windows` (``n_in = k``, ``n_out = m``, time-major channels ``t * C + c``),
its input has ``k * C`` channels and its output ``m * C``. :meth:`Autoregressive.rollout` feeds
each prediction back: the next window is the newest ``window`` channels of the old window
followed by the prediction (``window = k * C``), so the oldest states drop out. Channels that
do not evolve (a coefficient field, a forcing) go in ``static`` and are appended to every step's
input.
"""

from __future__ import annotations

import torch

__all__ = ["Autoregressive"]


class Autoregressive:
    """Mixin for :class:`~sciml.Operator` grid models (FNO, T1, MgNO, ScOT, and Normalized
    around them): adds :meth:`rollout`."""

    def _rollout_channels(self) -> int:
        """Input channels of one call (the window and the static channels together)."""
        return int(self.config.in_channels)  # type: ignore[attr-defined]

    def _rollout_check(self) -> None:
        """Raise if this model's output cannot be fed back as its input."""

    def _rollout_check_static(self, n_static: int) -> None:
        """Raise if this model cannot take ``n_static`` static channels after the window."""

    def rollout(
        self,
        u0: torch.Tensor,
        steps: int,
        t: torch.Tensor | float | None = None,
        *,
        static: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Autoregressive rollout: feed each prediction back as the newest input states.

        Gradients flow through every step (for training on unrolled losses); wrap the call in
        ``torch.no_grad()`` for inference.

        Args:
            u0: ``(batch, window, *spatial)``, the initial window of states, oldest first
                (time-major channels, as :class:`sciml.data.Windows` gives them).
            steps: number of model calls.
            t: the lead time of one call, for time-conditioned models
                (:class:`~sciml.models.ScOT`); passed as ``model(u, t=t)`` at every call. Models
                that take no lead time refuse one.
            static: ``(batch, S, *spatial)`` channels appended to every call's input, which
                must then take ``window + S`` channels (``None``: ``S = 0``).

        Returns:
            ``(batch, steps, out_channels, *spatial)``: the prediction of each call (the
            trajectory layout of sciml's data when ``out_channels`` is one state).
        """
        self._rollout_check()
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"rollout: expected steps as an int >= 1, got {steps!r}")
        if not isinstance(u0, torch.Tensor) or u0.ndim < 3:
            got = tuple(u0.shape) if isinstance(u0, torch.Tensor) else type(u0).__name__
            raise ValueError(f"rollout: expected u0 of shape (batch, window, *spatial), got {got}")
        n_static = 0
        if static is not None:
            # (why) a NumPy static failed in torch.cat, a list with "no attribute 'ndim'"; one in
            # another dtype than u0 was promoted with it (an integer static ran as floats) or
            # refused by the model as "expected u of dtype ...", naming the wrong input
            if not isinstance(static, torch.Tensor) or static.dtype != u0.dtype:
                got = static.dtype if isinstance(static, torch.Tensor) else type(static).__name__
                raise TypeError(
                    f"rollout: expected static as a tensor in u0's dtype ({u0.dtype}), got "
                    f"{got}; pass both in the model's dtype"
                )
            if (
                static.ndim != u0.ndim
                or static.shape[0] != u0.shape[0]
                or (static.shape[2:] != u0.shape[2:])
            ):
                raise ValueError(
                    f"rollout: expected static of shape ({u0.shape[0]}, S, "
                    f"{', '.join(map(str, u0.shape[2:]))}) like u0, got {tuple(static.shape)}"
                )
            n_static = static.shape[1]
        self._rollout_check_static(n_static)
        expected = self._rollout_channels()
        window = u0.shape[1]
        if window + n_static != expected:
            raise ValueError(
                f"rollout: the model takes {expected} input channels, so the window u0 needs "
                f"{expected - n_static} channels with {n_static} static ones, got {window}"
            )
        outs = []
        for _ in range(steps):
            u = u0 if static is None else torch.cat([u0, static], dim=1)
            nxt = self(u) if t is None else self(u, t=t)  # type: ignore[operator]
            if nxt.shape[2:] != u0.shape[2:]:
                raise ValueError(
                    f"rollout: the model answered on the grid {tuple(nxt.shape[2:])}, not the "
                    f"input's {tuple(u0.shape[2:])}, so its output cannot be fed back"
                )
            outs.append(nxt)
            u0 = torch.cat([u0, nxt], dim=1)[:, -window:]
        return torch.stack(outs, dim=1)
