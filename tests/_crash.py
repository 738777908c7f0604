"""A callback that makes a training run crash at a given step, for the resume tests."""

from sciml.train import Callback


class CrashAt(Callback):
    """Raise ``RuntimeError("crash (simulated)")`` at the end of step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            raise RuntimeError("crash (simulated)")
