"""YAML for experiment files and data recipes: PyYAML's safe loader, with YAML 1.2 floats.

PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: ``lr: 1e-3`` (as
everyone writes it) and ``1.0e3`` are read as strings, and a config refused them as "expected
a number". :func:`load_yaml` reads them, and every plain scalar YAML 1.2's core schema calls a
float (``1e-3``, ``1E+5``, ``-2e4``, ``-.5``), as floats. Everything else reads as
``yaml.safe_load`` reads it: ints (``10``, ``1_000``), ``.inf`` / ``.nan``, and quoted
scalars, which stay strings (``'1e-3'``). A key repeated in one mapping is refused
(:class:`DuplicateKeyError`), where ``yaml.safe_load`` keeps the last without a word.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["DuplicateKeyError", "load_yaml"]

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


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one YAML mapping (a YAML mapping's keys are unique by the spec)."""


class _SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose float resolver is :data:`_FLOAT` and whose mappings refuse a
    repeated key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        # (why) PyYAML keeps the last of two equal keys: `train: {epochs: 1, epochs: 2}` trained
        # 2 epochs and a second `train:` block replaced the first, silently. Checked before the
        # merge keys are flattened, so `<<: *base` may still be overridden by a key of its own
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: SafeLoader's own error says so
                    continue
                if first is not key_node:
                    raise DuplicateKeyError(
                        f"duplicate key {key!r} at line {key_node.start_mark.line + 1}, column "
                        f"{key_node.start_mark.column + 1} (first at line "
                        f"{first.start_mark.line + 1}, column {first.start_mark.column + 1}): a "
                        "mapping holds each key once; keep one of the two"
                    )
        return super().construct_mapping(node, deep=deep)


# (why) a copy: add_implicit_resolver would append after the int resolver, and SafeLoader's own
# table must stay as it is for everyone else's yaml.safe_load
_SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, _FLOAT if tag == _FLOAT_TAG else regexp) for tag, regexp in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, except that YAML 1.2 floats (``1e-3``) are floats."""
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a SafeLoader subclass)
