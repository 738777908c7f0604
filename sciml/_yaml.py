"""YAML for experiment files and data recipes: PyYAML's safe loader, with YAML 1.2 floats.

PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``lr: 1e-3`` (as
everyone writes it) and ``1.0e3`` are read as strings, and a config refused them as "expected
a number". :func:`load_yaml` reads them, and every plain scalar YAML 1.2's core schema calls a
float (``1e-3``, ``1E+5``, ``-2e4``, ``-.5``), as floats. Everything else reads as
``yaml.safe_load`` reads it: ints (``10``, ``1_000``), ``.inf`` / ``.nan``, and quoted
scalars, which stay strings (``'1e-3'``).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml"]

_FLOAT_TAG = "tag:yaml.org,2002:float"

# (why) YAML 1.1's float pattern (PyYAML's, kept as is: underscores, sexagesimal 1:30.5, .inf,
# .nan) or-ed with YAML 1.2's float that has a dot or an exponent. YAML 1.2's pattern alone
# also matches ints (10): the float resolver is tried before the int one, so those would turn
# into floats
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN)
    |[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9]+[eE][-+]?[0-9]+)$""",
    re.X,
)


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose float resolver is :data:`_FLOAT` (no other change)."""


# (why) a copy: add_implicit_resolver would append after the int resolver, and SafeLoader's own
# table must stay as it is for everyone else's yaml.safe_load
_SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, _FLOAT if tag == _FLOAT_TAG else regexp) for tag, regexp in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, except that YAML 1.2 floats (``1e-3``) are floats."""
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a SafeLoader subclass)
