"""The ``--help`` layout every benchmark script's parser uses (``formatter_class=HelpFormatter``);
the scripts import it from here, the folder that running one puts first on ``sys.path``."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The description as written, then each option with its default, unless its help states
    the default itself (one that depends on another option, or that None stands for) or the
    option is required."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)
