"""Griffe extension for the API reference (mkdocs.yml): members inherited from unrendered bases.

mkdocstrings shows a class's own members and leaves out the inherited ones
(``inherited_members: false``): a member inherited from a public sciml base is documented on that
base's entry, and ``inherited_members: true`` would pull in ``torch.nn.Module``'s methods too. A
member inherited from a sciml base that the reference does not render (``Autoregressive`` in
``sciml/models/_rollout.py``, ``_PathSDE``, ``RealTransform``, ...) would then appear nowhere:
``FNO.rollout`` and ``DCT.forward`` had no entry at all.

After griffe has loaded ``sciml``, every class the reference renders (reached from the package
and its public subpackages through ``__all__``, as the ``::: sciml.<package>`` pages are) gets
each public member it inherits from a sciml class the reference does not render as a member of
its own: an alias of the base's member, not marked inherited, so mkdocstrings shows it under the
class with the base's docstring.
A new private base needs nothing here. Members inherited from a rendered base stay on that base's
entry; members from outside sciml (torch) are not loaded and never shown.
"""

from __future__ import annotations

from typing import Any

import griffe


def rendered(pkg: griffe.Module) -> dict[str, griffe.Object]:
    """Canonical path -> object, for every object the reference renders under ``pkg``.

    docs/api/ has a page ``::: <package>`` for ``pkg`` and each of its public subpackages. A
    module renders the names its ``__all__`` lists (griffe's ``exports``), or, without one, its
    own public members; a listed module is rendered in turn, and a class renders its members.
    """
    found: dict[str, griffe.Object] = {}
    stack: list[griffe.Object] = [pkg]
    stack += [
        m
        for name, m in pkg.members.items()
        if not m.is_alias and m.is_module and m.is_subpackage and not name.startswith("_")
    ]
    while stack:
        obj = stack.pop()
        if obj.canonical_path in found:
            continue
        found[obj.canonical_path] = obj
        if obj.is_module:
            names = obj.exports if obj.exports is not None else list(obj.members)
            for name in names:
                name = name if isinstance(name, str) else name.name
                member = obj.members.get(name)
                if member is None or name.startswith("_"):
                    continue
                try:
                    target = member.final_target if member.is_alias else member
                except griffe.AliasResolutionError:
                    continue  # an import from outside the package (torch)
                if target.package is pkg.package and (target.is_module or target.is_class):
                    stack.append(target)
        elif obj.is_class:
            stack += [m for m in obj.members.values() if not m.is_alias and m.is_class]
    return found


def unrendered_inherited(klass: griffe.Class, shown: dict[str, griffe.Object]) -> dict[str, Any]:
    """Public members ``klass`` inherits from a class of its package ``shown`` does not hold."""
    try:
        mro = klass.mro()
    except (ValueError, griffe.AliasResolutionError):
        return {}
    found: dict[str, Any] = {}
    for name in klass.inherited_members:
        if name.startswith("_"):
            continue
        # the class that defines it: the first one in the MRO with it in its own body
        owner = next((b for b in mro if name in b.members and not b.members[name].is_alias), None)
        if owner is None or owner.package is not klass.package or owner.canonical_path in shown:
            continue
        found[name] = owner.members[name]
    return found


class InheritedFromPrivateBases(griffe.Extension):
    """Give rendered classes the members they inherit from unrendered bases (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._done: set[str] = set()

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path in self._done:
            return
        self._done.add(pkg.path)
        shown = rendered(pkg)
        # all additions first: an alias added to one class must not count as another's own member
        additions = [
            (klass, name, member)
            for klass in shown.values()
            if klass.is_class
            for name, member in unrendered_inherited(klass, shown).items()
        ]
        for klass, name, member in additions:
            klass.set_member(name, griffe.Alias(name, member, parent=klass, inherited=False))

    # griffe 1 names the same event on_package_loaded
    def on_package_loaded(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self.on_package(pkg=pkg, **kwargs)
