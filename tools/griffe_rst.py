"""Griffe extension for the API reference (mkdocs.yml): sciml's reST habits to Markdown.

sciml's docstrings are Google-style with a few reStructuredText constructs that
``help()`` reads well but Markdown does not render. After griffe has loaded the package, every
docstring is rewritten in memory (the source files are untouched):

* ``:class:`X``` (and ``:func:``, ``:meth:``, ``:mod:``, ``:data:``, ``:attr:``, ``:exc:``,
  ``:obj:``) becomes ``X`` in code, linked to the page that documents it: the name is resolved
  in the docstring's own scope as Python would (``FNO`` in ``sciml/models/fno.py`` is
  ``sciml.models.fno.FNO``, which the reference shows as ``sciml.models.FNO``). The link is an
  optional cross-reference: a target the reference does not render (a private helper, torch)
  stays plain code instead of failing the strict build. ``~a.b.C`` shows as ``C``.
* ``:math:`x``` becomes ``x`` in code.
* A literal block (the indented lines after a paragraph ending in ``::``) becomes a fenced code
  block and the paragraph ends in ``:``.
* A simple table (rows between ``====  ====`` rules) becomes a Markdown table.
* A Returns section is one description and its type is the function's return annotation
  (mkdocs.yml sets ``returns_multiple_items`` and ``returns_named_value`` off). Griffe still
  reads the text before a colon in its first line as the type, so a first line such as
  ``(x, result)``: ... gets the annotation put in front of it.
* An attribute without a docstring takes the ``#:`` comment lines right above it, as Sphinx
  autodoc does (``#: the Triton dispatch table`` over ``DISPATCH_TABLE = {}``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(class|func|meth|mod|data|attr|exc|obj|math):`([^`]+)`")
_RULE = re.compile(r"^ *=+( +=+)+ *$")
_RETURNS = re.compile(r"(?m)^[ \t]*Returns:\n[ \t]+(?=[^\n]*:)")


def _link(obj: griffe.Object, target: str) -> str:
    """An optional autorefs cross-reference to ``target`` as written in ``obj``'s docstring."""
    target = target.strip()
    short = target.startswith("~")
    target = target.lstrip("~").rstrip("()")
    title = f"`{target.rsplit('.', 1)[-1] if short else target}`"
    head, _, rest = target.partition(".")
    try:
        path = obj.resolve(head)
        path = f"{path}.{rest}" if rest else path
    except Exception:  # griffe.NameResolutionError, or an alias griffe cannot resolve
        if not rest:
            return title
        path = target  # a full path such as sciml.layers.SpectralConv
    return f'<autoref identifier="{path}" optional>{title}</autoref>'


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literals(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.rstrip().endswith("::"):
            out.append(line)
            continue
        intro = line.rstrip()[:-2].rstrip()
        if intro.strip():
            out.append(intro + ":" if line.rstrip()[-3] != " " else intro)
        start = i
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > _indent(line)):
            i += 1
        block = lines[start:i]
        while block and not block[-1].strip():
            block.pop()
            i -= 1
        body = [b for b in block if b.strip()]
        if not body:
            continue
        deepest = min(_indent(b) for b in body)
        at = " " * _indent(line)
        code = [at + b[deepest:] if b.strip() else "" for b in block]
        while code and not code[0]:
            code.pop(0)
        out += ["", at + "```", *code, at + "```"]
    return "\n".join(out)


def _table(rows: list[str]) -> list[str]:
    """A reST simple table (its lines, rules included) as a Markdown table."""
    rule = rows[0]
    spans = [m.span() for m in re.finditer(r"=+", rule)]

    def cells(line: str) -> list[str]:
        edges = [start for start, _ in spans[1:]]
        parts = [line[a:b] for a, b in zip([0, *edges], [*edges, None])]
        return [p.strip().replace("|", r"\|") for p in parts]

    body, header = [], None
    for line in rows[1:]:
        if _RULE.match(line):
            if header is None:
                header, body = body, []
            continue
        if not line.strip():
            continue
        row = cells(line)
        if body and not row[0]:  # a continuation line of the row above
            body[-1] = [f"{a} {b}".strip() for a, b in zip(body[-1], row)]
        else:
            body.append(row)
    header = header[0] if header else [""] * len(spans)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(spans)]
    return ["", *out, *("| " + " | ".join(r) + " |" for r in body), ""]


def _tables(text: str) -> str:
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        if _RULE.match(lines[i]):
            rules = [j for j in range(i, len(lines)) if _RULE.match(lines[j])]
            if len(rules) >= 3:  # top, below the header, bottom
                out += _table(lines[i : rules[2] + 1])
                i = rules[2] + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def markdown(obj: griffe.Object, text: str) -> str:
    """``text``, a docstring of ``obj``, with its reST constructs in Markdown."""

    def role(m: re.Match) -> str:
        if m[1] == "math":
            return f"`{m[2]}`"
        return _link(obj, m[2])

    text = _ROLE.sub(role, text)
    text = _literals(text) if "::" in text else text
    if obj.is_function and obj.returns:
        text = _RETURNS.sub(lambda m: f"{m[0]}{obj.returns}: ", text)
    return _tables(text) if "==" in text else text


def _comment_docstring(attr: griffe.Object, loader: Any) -> griffe.Docstring | None:
    """The ``#:`` comment lines right above ``attr``'s assignment, as its docstring."""
    lines, i, found = attr.module.lines, (attr.lineno or 0) - 2, []
    while 0 <= i < len(lines) and lines[i].lstrip().startswith("#:"):
        found.insert(0, lines[i].lstrip()[2:].strip())
        i -= 1
    if not found:
        return None
    return griffe.Docstring(
        "\n".join(found),
        lineno=i + 2,
        parent=attr,
        parser=getattr(loader, "docstring_parser", None),
        parser_options=getattr(loader, "docstring_options", None),
    )


class RestToMarkdown(griffe.Extension):
    """Rewrite every docstring of the loaded package (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._done: set[str] = set()  # rewriting twice would put a Returns type in twice

    def on_package(self, *, pkg: griffe.Module, loader: Any = None, **kwargs: Any) -> None:
        if pkg.path in self._done:
            return
        self._done.add(pkg.path)
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is None and obj.is_attribute:
                obj.docstring = _comment_docstring(obj, loader)
            if obj.docstring is not None:
                obj.docstring.value = markdown(obj, obj.docstring.value)
            stack += [m for m in obj.members.values() if not m.is_alias]

    # griffe 1 names the same event on_package_loaded
    def on_package_loaded(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self.on_package(pkg=pkg, **kwargs)
