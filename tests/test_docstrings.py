"""The API reference tells the truth about signatures.

docs/api/*.md is built by mkdocstrings from the docstrings (Google style), so a name listed under
``Args:`` that the signature does not have is a false statement users read. This walks every
public name (``__all__`` of sciml and of each subpackage, and of public submodules listed there),
and checks, for each public function, class (``__init__`` / dataclass fields, the class and
``__init__`` docstrings together, as ``merge_init_into_class`` renders them) and public method
defined in sciml:

* every public name has a docstring, and so does every public method and property (its own:
  mkdocstrings shows a member only with a docstring, and does not inherit one for an override);
* every field of a public dataclass is documented: under the class's ``Attributes:`` or
  ``Args:``, or by a string under the field (on the class or the base class that declares it);
* every name documented under ``Args:`` is a parameter of the signature;
* no argument is documented inside another one's item (``x0: labels, t: times``);
* an ``Args:`` section, where there is one, lists every parameter (a partial list reads as a
  complete one);
* a dataclass's ``Attributes:`` section names its fields;
* a cross-reference (``:func:`x```, ``:meth:`x```, ...) names something that exists where the
  docstring stands: tools/griffe_rst.py turns one it cannot resolve into plain code without a
  word, so a renamed or misplaced target would lose its link silently.

Parameters of a callable without an ``Args:`` section are not required: many are described in
the prose, and no package documents every parameter of every public callable yet.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import dataclasses
import functools
import importlib
import importlib.util
import inspect
import pathlib
import re
import sys
import textwrap
import types

import pytest

PACKAGES = (
    "sciml",
    "sciml.data",
    "sciml.models",
    "sciml.layers",
    "sciml.pinn",
    "sciml.de",
    "sciml.linalg",
    "sciml.kernels",
    "sciml.train",
    "sciml.symbolic",
    "sciml.pretrained",
)

_ARGS = re.compile(r"^(?P<indent>\s*)(?P<title>Args|Arguments|Parameters):\s*$")
_ATTRIBUTES = re.compile(r"^(?P<indent>\s*)Attributes:\s*$")
# an item's head: one name, or several sharing a description ("dtype, device: ...")
_ARG = re.compile(r"^(?P<names>\*{0,2}[A-Za-z_]\w*(?:,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(\([^)]*\))?\s*:")


def documented_args(doc: str | None, section: re.Pattern = _ARGS) -> list[str]:
    """Names listed under the ``Args:`` sections of a Google-style docstring, stars kept."""
    return _args_and_inline(doc, section)[0]


def inline_args(doc: str | None, section: re.Pattern = _ARGS) -> list[str]:
    """Names written as ``; name:`` / ``, name:`` inside another argument's description.

    ``x0: labels, t: times`` on one line renders as one argument ``x0`` whose text mentions
    ``t``: the reference then shows no entry for ``t``.
    """
    return _args_and_inline(doc, section)[1]


_INLINE = re.compile(r"[;,]\s+(\*{0,2}[A-Za-z_]\w*)\s*(?:\([^)]*\))?:\s")


def _args_and_inline(doc: str | None, section: re.Pattern) -> tuple[list[str], list[str]]:
    if not doc:
        return [], []
    lines = inspect.cleandoc(doc).splitlines()
    names: list[str] = []
    inline: list[str] = []
    i = 0
    while i < len(lines):
        m = section.match(lines[i])
        i += 1
        if not m:
            continue
        base = len(m.group("indent"))
        arg_indent = None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= base:
                break
            if arg_indent is None:
                arg_indent = indent
            text = line.strip()
            if indent == arg_indent:
                a = _ARG.match(text)
                if a:
                    names += [n.strip() for n in a.group("names").split(",")]
                    text = text[a.end() :]
            inline += _INLINE.findall(" " + text)
            i += 1
    return names, inline


def _is_sciml(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("sciml")


@functools.cache
def public_objects() -> dict[str, object]:
    """qualified name -> object, for every public function and class (deduplicated)."""
    found: dict[str, object] = {}
    seen: set[int] = set()

    def walk(module: types.ModuleType, prefix: str) -> None:
        names = list(getattr(module, "__all__", ()))
        # a package's own names first: sciml.pinn.grad, not sciml.pinn.derivatives.grad
        objs = [(n, getattr(module, n)) for n in names]
        objs.sort(key=lambda item: isinstance(item[1], types.ModuleType))
        for name, obj in objs:
            if isinstance(obj, types.ModuleType):
                if obj.__name__.startswith("sciml") and hasattr(obj, "__all__"):
                    walk(obj, obj.__name__)
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not _is_sciml(obj):
                continue  # constants (DISPATCH_TABLE, PAD, ...) have no docstring of their own
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            found[f"{prefix}.{name}"] = obj

    for package in PACKAGES:
        walk(importlib.import_module(package), package)
    return found


@functools.cache
def callables() -> list[tuple[str, str, inspect.Signature | None, str | None]]:
    """(kind, qualified name, signature, docstring) for each public callable.

    kind is "function", "class" or "method". A class contributes its constructor (class docstring
    + ``__init__`` docstring against the ``__init__`` / dataclass signature) and each public
    method defined in sciml: on the class itself, or on a private base class (a public base class
    is checked as its own entry).
    """
    objs = public_objects()
    public_classes = {id(o) for o in objs.values() if inspect.isclass(o)}
    out = []
    for qual, obj in objs.items():
        if inspect.isfunction(obj):
            out.append(("function", qual, _signature(obj), obj.__doc__))
            continue
        init = obj.__dict__.get("__init__")
        doc = "\n\n".join(d for d in (obj.__doc__, getattr(init, "__doc__", None)) if d)
        out.append(("class", qual, _signature(obj), doc))
        seen: set[str] = set()
        for klass in obj.__mro__:
            if not _is_sciml(klass):
                continue
            inherited_public = klass is not obj and id(klass) in public_classes
            for mname, member in vars(klass).items():
                if mname.startswith("_") or mname in seen:
                    continue
                seen.add(mname)
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if not inspect.isfunction(member) or inherited_public:
                    continue
                sig, mdoc = _signature(member), member.__doc__
                out.append(("method", f"{qual}.{mname}", sig, mdoc))
    return out


def _signature(obj) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _params(sig: inspect.Signature) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in sig.parameters.items() if n not in ("self", "cls")}


def _spelled(p: inspect.Parameter) -> str:
    return {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name


def stale_args() -> dict[str, list[str]]:
    """qualified name -> documented names that the signature does not have."""
    stale = {}
    for _, qual, sig, doc in callables():
        if sig is None:
            continue
        params = _params(sig)
        spelled = {_spelled(p) for p in params.values()}
        bad = [
            a
            for a in documented_args(doc)
            # `*args` / `**kwargs` as in the signature; the bare name too, which griffe accepts
            if a not in spelled and not (a.lstrip("*") in params and a == a.lstrip("*"))
        ]
        if bad:
            stale[qual] = bad
    return stale


def inline_documented() -> dict[str, list[str]]:
    """qualified name -> parameters documented only inside another argument's item."""
    out = {}
    for _, qual, sig, doc in callables():
        if sig is None:
            continue
        params = {n.lstrip("*") for n in _params(sig)}
        listed = {a.lstrip("*") for a in documented_args(doc)}
        hidden = [a for a in inline_args(doc) if a.lstrip("*") in params - listed]
        if hidden:
            out[qual] = hidden
    return out


def undocumented_args() -> dict[str, list[str]]:
    """qualified name -> signature parameters not documented under Args."""
    out: dict[str, list[str]] = {}
    for _, qual, sig, doc in callables():
        if sig is None:
            continue
        documented = {a.lstrip("*") for a in documented_args(doc)}
        missing = [n for n in _params(sig) if n not in documented]
        if missing:
            out[qual] = missing
    return out


def test_parser_reads_google_args():
    doc = """Summary.

    Args:
        u: (batch, channels, n) input;
            continued: not an argument.
        x (Tensor | None): points.
        *args: passed on.
        **kwargs: passed on.
        a: first; b: second, hidden.
        c, d: two names sharing one description, both listed.

    Returns:
        y: not an argument.
    """
    assert documented_args(doc) == ["u", "x", "*args", "**kwargs", "a", "c", "d"]
    assert inline_args(doc) == ["b"]


def test_walk_finds_the_public_surface():
    objs = public_objects()
    # one name from each package, and a submodule's __all__ reached through sciml.pinn.__all__
    for qual in (
        "sciml.load",
        "sciml.data.H5Dataset",
        "sciml.models.FNO",
        "sciml.layers.SpectralConv",
        "sciml.pinn.grad",
        "sciml.pinn.reference.burgers_spectral",
        "sciml.de.NeuralODE",
        "sciml.linalg.solve",
        "sciml.kernels.backend_for",
        "sciml.train.Trainer",
        "sciml.symbolic.decode",
        "sciml.pretrained.card",
    ):
        assert qual in objs, qual
    checked = {qual for _, qual, _, _ in callables()}
    assert "sciml.layers.SpectralConv.forward" in checked


def test_every_public_name_has_a_docstring():
    missing = set()
    for kind, qual, _, doc in callables():
        if kind != "method" and not (doc or "").strip():
            missing.add(qual)
    assert missing == set(), "public names without a docstring"


def test_public_methods_have_docstrings():
    # the API reference hides a method without a docstring of its own: griffe does not inherit
    # one for an override (Convection.speed, without one, was missing from the reference though
    # PeriodicProblem.speed had one); torch.nn.Module's extra_repr hook is not user API
    missing = set()
    for kind, qual, _, doc in callables():
        name = qual.rsplit(".", 1)[1]
        if kind == "method" and not (doc or "").strip() and name != "extra_repr":
            missing.add(qual)
    assert missing == set(), "public methods without a docstring"


@functools.cache
def public_properties() -> list[tuple[str, property]]:
    """(qualified name, property) for each public property of a public class: defined on the
    class itself or on a private sciml base (a public base class lists its own)."""
    objs = public_objects()
    public_classes = {id(o) for o in objs.values() if inspect.isclass(o)}
    out = []
    for qual, obj in objs.items():
        if not inspect.isclass(obj):
            continue
        seen: set[str] = set()
        for klass in obj.__mro__:
            if not _is_sciml(klass):
                continue
            for name, member in vars(klass).items():
                if name.startswith("_") or name in seen:
                    continue
                seen.add(name)
                if klass is not obj and id(klass) in public_classes:
                    continue
                if isinstance(member, (property, functools.cached_property)):
                    out.append((f"{qual}.{name}", member))
    return out


def test_public_properties_have_docstrings():
    # the API reference shows a property only with a docstring of its own (griffe does not
    # inherit one for an override): NeuralODE.nfe_forward and H5Dataset.n_samples were hidden
    props = public_properties()
    assert "sciml.de.NeuralODE.nfe_forward" in dict(props)
    missing = {qual for qual, prop in props if not (prop.__doc__ or "").strip()}
    assert missing == set(), "public properties without a docstring"


def test_documented_args_exist_in_the_signature():
    found = {f"{qual}: {a}" for qual, bad in stale_args().items() for a in bad}
    assert found == set(), (
        "documented arguments that the signature does not have (stale docstrings): fix the "
        "docstring"
    )


def test_one_argument_per_item():
    # "x0: labels, t: times" documents t where griffe cannot see it
    assert inline_documented() == {}


def test_args_sections_are_complete():
    docs = {qual: doc for _, qual, _, doc in callables()}
    found = {
        f"{qual}: {name}"
        for qual, missing in undocumented_args().items()
        if documented_args(docs[qual])
        for name in missing
    }
    assert found == set(), "an Args section that leaves out these parameters: document them there"


def test_dataclass_attributes_exist():
    # the Attributes section of a dataclass (a config, a result record) names its fields: a name
    # that is no field or class attribute is stale, one written inside another item is hidden
    problems = {}
    for qual, obj in public_objects().items():
        if not (inspect.isclass(obj) and dataclasses.is_dataclass(obj)):
            continue
        known = {f.name for f in dataclasses.fields(obj)} | {
            n for klass in obj.__mro__ for n in vars(klass)
        }
        names = documented_args(obj.__doc__, _ATTRIBUTES)
        stale = [n for n in names if n not in known]
        hidden = [n for n in inline_args(obj.__doc__, _ATTRIBUTES) if n in known]
        if stale or hidden:
            problems[qual] = {"stale": stale, "inline": hidden}
    assert problems == {}


def _field_docstrings(klass: type) -> set[str]:
    """Names of the fields ``klass``'s own body documents by a string under them (griffe reads
    ``x: int = 0`` followed by ``\"\"\"text\"\"\"`` as the attribute's docstring)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    except (OSError, TypeError, SyntaxError):
        return set()
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    return {
        stmt.target.id
        for stmt, after in zip(body, body[1:])
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(stmt.target, ast.Name)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
        and isinstance(after.value.value, str)
    }


def undocumented_fields() -> set[str]:
    """ "qualified.name.field" for each field of a public dataclass that no docstring names."""
    objs = public_objects()
    public_classes = {id(o) for o in objs.values() if inspect.isclass(o)}
    missing = set()
    for qual, obj in objs.items():
        if not (inspect.isclass(obj) and dataclasses.is_dataclass(obj)):
            continue
        documented: set[str] = set()
        # the class and its public bases (each rendered with its own docs); a private base's
        # docstring appears nowhere in the reference
        for klass in obj.__mro__:
            if not _is_sciml(klass) or (klass is not obj and id(klass) not in public_classes):
                continue
            init = klass.__dict__.get("__init__")
            doc = "\n\n".join(d for d in (klass.__doc__, getattr(init, "__doc__", None)) if d)
            documented |= {a.lstrip("*") for a in documented_args(doc)}
            documented |= set(documented_args(klass.__doc__, _ATTRIBUTES))
            documented |= _field_docstrings(klass)
        missing |= {f"{qual}.{f.name}" for f in dataclasses.fields(obj) if f.name not in documented}
    return missing


@dataclasses.dataclass
class _FieldDocs:
    documented: int = 0
    """A string under a field is its docstring."""
    bare: int = 0
    also_bare: int = 0


def test_field_docstring_parser():
    assert _field_docstrings(_FieldDocs) == {"documented"}


def test_dataclass_fields_are_documented():
    # the reference renders a config's fields from its Args / Attributes sections (or a string
    # under the field); one named in neither reads as a field the user need not know about
    missing = undocumented_fields()
    assert missing == set(), "dataclass fields no docstring names"


_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`([^`]+)`")


def _resolves(target: str, scopes: list) -> bool:
    """Whether ``target`` names something, looked up as Python (and griffe) would: in the
    class and module the docstring stands in, then builtins, then as a module path."""
    head, *rest = target.strip().lstrip("~").rstrip("()").split(".")
    for scope in scopes:
        if hasattr(scope, head):
            obj = getattr(scope, head)
            break
    else:
        if hasattr(builtins, head):
            obj = getattr(builtins, head)
        else:
            try:
                obj = importlib.import_module(head)
            except ImportError:
                return _exists(head)
    for i, part in enumerate(rest):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif isinstance(obj, types.ModuleType):
            try:
                obj = importlib.import_module(f"{obj.__name__}.{part}")
            except ImportError:
                return _exists(f"{obj.__name__}.{part}")
        elif inspect.isclass(obj) and part in _instance_attributes(obj):
            return not rest[i + 1 :]  # an instance attribute ends the path: nothing after it
        else:
            return False
    return True


def _exists(module: str) -> bool:
    """Whether ``module`` is there, also when importing it fails for want of an optional
    dependency (``sciml.kernels.triton_kernels`` without Triton): griffe reads it without
    importing it, so the link holds; names inside it cannot be checked without the dependency."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package that is not there
        return False


@functools.cache
def _instance_attributes(klass: type) -> frozenset[str]:
    """Fields, annotations and ``self.name =`` assignments of a class and its sciml bases."""
    names: set[str] = set()
    for k in klass.__mro__:
        if not _is_sciml(k):
            continue
        names |= set(getattr(k, "__annotations__", {}))
        with contextlib.suppress(OSError, TypeError):  # no source: no assignments to read
            names |= set(re.findall(r"self\.([A-Za-z_]\w*)\s*[:=]", inspect.getsource(k)))
    return frozenset(names)


def broken_refs() -> set[str]:
    """ "qualified.name: target" for every cross-reference that does not resolve."""
    found = set()
    # the package docstrings head their API reference pages
    for package in PACKAGES:
        module = importlib.import_module(package)
        for target in _ROLE.findall(module.__doc__ or ""):
            if not _resolves(target, [module]):
                found.add(f"{package}: {target}")
    for qual, obj in public_objects().items():
        module = sys.modules[obj.__module__]
        if not inspect.isclass(obj):
            docs = [(qual, obj.__doc__, [module])]
        else:
            docs = [(qual, obj.__doc__, [obj, _InstanceScope(obj), module])]
            for klass in obj.__mro__:
                if not _is_sciml(klass):
                    continue
                scopes = [obj, _InstanceScope(obj), sys.modules[klass.__module__]]
                for name, member in vars(klass).items():
                    if name.startswith("_") and name != "__init__":
                        continue
                    func = member.fget if isinstance(member, property) else member
                    func = getattr(func, "__func__", func)
                    if inspect.isfunction(func) and func.__doc__:
                        docs.append((f"{qual}.{name}", func.__doc__, scopes))
        for where, doc, scopes in docs:
            for target in _ROLE.findall(doc or ""):
                if not _resolves(target, scopes):
                    found.add(f"{where.removesuffix('.__init__')}: {target}")
    return found


class _InstanceScope:
    """Lets a bare ``:attr:`name``` resolve to an instance attribute set in ``__init__``."""

    def __init__(self, klass: type) -> None:
        self._names = _instance_attributes(klass)

    def __getattr__(self, name: str):
        if name in self.__dict__.get("_names", ()):
            return None
        raise AttributeError(name)


def test_cross_references_resolve():
    found = broken_refs()
    assert found == set(), "cross-references that name nothing there"


def test_a_module_needing_a_missing_optional_dependency_resolves(monkeypatch):
    # sciml.kernels' docstring names sciml.kernels.triton_kernels, which imports triton (the
    # kernels extra): without Triton the reference was reported broken and this file failed
    monkeypatch.setitem(sys.modules, "triton", None)  # import triton -> ImportError
    monkeypatch.delitem(sys.modules, "sciml.kernels.triton_kernels", raising=False)
    import sciml.kernels

    monkeypatch.delattr(sciml.kernels, "triton_kernels", raising=False)
    with contextlib.suppress(ImportError):
        importlib.import_module("sciml.kernels.triton_kernels")
        raise AssertionError("triton was not hidden")
    assert _resolves("sciml.kernels.triton_kernels", [sciml.kernels])
    assert _resolves("~sciml.kernels.triton_kernels", [])
    assert not _resolves("sciml.kernels.no_such_module", [sciml.kernels])
    assert not _resolves("no_such_package.module", [])


def test_an_instance_attribute_ends_the_path_where_it_stands():
    # the tail after an instance attribute was taken from rest.index(part), the FIRST part
    # with that name: Outer.x.x (class attribute x, then Inner's instance attribute x) was
    # judged on the tail after the first x, ["x"], and reported broken
    class Inner:
        __module__ = "sciml._fake"  # _instance_attributes reads sciml classes only
        x: int  # an annotation, no class attribute: found by _instance_attributes alone

    class Outer:
        __module__ = "sciml._fake"
        x = Inner

    scope = types.SimpleNamespace(Outer=Outer)
    assert _resolves("Outer.x.x", [scope])
    assert _resolves("Outer.x", [scope])
    assert not _resolves("Outer.x.x.x", [scope])  # nothing can follow an instance attribute
    assert not _resolves("Outer.x.y", [scope])


def _inherited_from_unrendered_bases() -> list[tuple[str, type, object]]:
    """``(Class.member, base, member)`` for every public member a public class inherits from a
    sciml class the API reference does not render (not in ``public_objects``:
    ``Autoregressive`` in sciml/models/_rollout.py, ``_PathSDE``, ...), methods and properties
    (unwrapped) as well as plain class attributes and dataclass fields."""
    objs = public_objects()
    shown = {id(o) for o in objs.values()}
    found = []
    for qual, klass in objs.items():
        if not inspect.isclass(klass):
            continue
        for name in dir(klass):
            owner = next((b for b in klass.__mro__ if name in b.__dict__), None)
            if name.startswith("_") or owner is None or owner is klass or not _is_sciml(owner):
                continue
            if id(owner) in shown:
                continue
            member = inspect.unwrap(getattr(owner.__dict__[name], "__func__", owner.__dict__[name]))
            found.append((f"{qual}.{name}", owner, member))
    return found


def inherited_from_unrendered_bases() -> dict[str, str]:
    """``Class.member`` -> the base defining it, for every documented public method or property
    a public class inherits from a sciml class the API reference does not render (not in
    ``public_objects``: ``Autoregressive`` in sciml/models/_rollout.py, ``_PathSDE``, ...).
    Nothing else documents such a member, so the reference must show it under the class."""
    return {
        qual: f"{owner.__module__}.{owner.__qualname__}"
        for qual, owner, member in _inherited_from_unrendered_bases()
        if isinstance(member, (types.FunctionType, property)) and member.__doc__
    }


def attributes_inherited_from_unrendered_bases() -> dict[str, str]:
    """``Class.attribute`` -> the base defining it, for every public class attribute or
    dataclass field (not a method or property) a public class inherits from a sciml class the
    API reference does not render: ``Dopri5.rtol`` (from ``_Adaptive``),
    ``NaiveSDE.noise_type`` (``_PathSDE``), ``DCT.is_complex`` (``RealTransform``), ..."""
    return {
        qual: f"{owner.__module__}.{owner.__qualname__}"
        for qual, owner, member in _inherited_from_unrendered_bases()
        if not isinstance(member, (types.FunctionType, property, classmethod, staticmethod))
        and not inspect.isroutine(member)
    }


@functools.cache
def griffe_package():
    """``sciml`` as the docs build loads it: griffe with mkdocs.yml's extensions and options."""
    import yaml

    # (why) griffe comes with the docs extra (mkdocstrings-python), not with sciml's dependencies
    griffe = pytest.importorskip("griffe")

    root = pathlib.Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "mkdocs.yml").read_text())
    plugin = next(p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict))
    options = plugin["handlers"]["python"]["options"]
    extensions = griffe.load_extensions(*(str(root / e) for e in options["extensions"]))
    return griffe.load(
        "sciml", search_paths=[str(root)], extensions=extensions, docstring_parser="google"
    )


def test_members_inherited_from_unrendered_bases_are_rendered():
    # mkdocstrings shows a class's own members only (inherited_members: true would add
    # torch.nn.Module's), so FNO.rollout (from Autoregressive in sciml/models/_rollout.py),
    # DCT.forward (RealTransform), NaiveSDE.hidden_path (_PathSDE), Dopri5.options (_Adaptive),
    # ... were in no page; tools/griffe_inherited.py makes them members of the class
    expected = inherited_from_unrendered_bases()
    for name in ("sciml.models.FNO.rollout", "sciml.layers.DCT.forward", "sciml.de.Dopri5.options"):
        assert name in expected, name  # the walk above sees the cases this test is about
    pkg = griffe_package()
    missing = []
    for qual, owner in sorted(expected.items()):
        klass, _, name = qual.removeprefix("sciml.").rpartition(".")
        member = pkg[klass].members.get(name)
        if member is None or member.inherited or not member.has_docstrings:
            missing.append(f"{qual} (from {owner})")
    assert missing == [], "inherited members the API reference would not show"
    # a member from a rendered base stays on its entry: FNO.save_pretrained is under Operator
    assert "save_pretrained" not in pkg["models.FNO"].members
    assert "save_pretrained" in pkg["models.FNO"].inherited_members


# Inherited attributes the reference has no entry for (no docstring where they are defined)
# but need none: dataclass fields that each class documents under its own Args, which
# mkdocstrings renders as the class's Parameters table (merge_init_into_class); an attribute
# entry would repeat that row. The test checks the Args item is there.
IN_PARAMETERS_TABLE = {
    "sciml.de.Dopri5.rtol",
    "sciml.de.Dopri5.atol",
    "sciml.de.Dopri5.max_num_steps",
    "sciml.de.Bosh3.rtol",
    "sciml.de.Bosh3.atol",
    "sciml.de.Bosh3.max_num_steps",
    "sciml.de.RK4.step_size",
    "sciml.de.Euler.step_size",
    "sciml.de.Euler.interp",
}


def test_attributes_inherited_from_unrendered_bases_are_rendered_or_in_the_parameters():
    # tools/griffe_inherited.py makes an inherited member of an unrendered base a member of
    # the class, but mkdocstrings shows a member only with a docstring: 16 class attributes
    # and dataclass fields (NaiveSDE.noise_type, Dopri5.rtol, ...) were in no entry. Each is
    # rendered now (7 have a docstring where they are defined: _Adaptive.adaptive,
    # _PathSDE.noise_type, RealTransform.is_complex), or is a field of its Parameters table
    expected = attributes_inherited_from_unrendered_bases()
    for name in ("sciml.de.Dopri5.rtol", "sciml.de.NaiveSDE.noise_type"):
        assert name in expected, name  # the walk sees the cases this test is about
    pkg = griffe_package()
    objs = public_objects()
    hidden, wrongly_allowed = set(), []
    for qual in sorted(expected):
        klass, _, name = qual.removeprefix("sciml.").rpartition(".")
        member = pkg[klass].members.get(name)
        if member is not None and not member.inherited and member.has_docstrings:
            if qual in IN_PARAMETERS_TABLE:
                wrongly_allowed.append(f"{qual} has its docstring now: take it off the list")
            continue
        if qual in IN_PARAMETERS_TABLE:
            cls = objs[qual.rpartition(".")[0]]
            if name not in {f.name for f in dataclasses.fields(cls)}:
                wrongly_allowed.append(f"{qual} is no dataclass field: no Parameters row")
            elif name not in documented_args(cls.__doc__):
                wrongly_allowed.append(f"{qual} is not under {cls.__name__}'s Args")
            continue
        hidden.add(qual)
    assert wrongly_allowed == []
    assert hidden == set(), "inherited attributes the API reference would not show"
    assert len(expected) == 16 and len(IN_PARAMETERS_TABLE) == 9
