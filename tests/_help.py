"""What a script's ``--help`` must say about each option, shared by the examples' and the
benchmark / tool scripts' tests."""

from __future__ import annotations

import argparse
import re


def record_parsers(monkeypatch) -> list[argparse.ArgumentParser]:
    """The parsers that call ``parse_args`` from now on (the one a script's ``main`` builds,
    which its ``--help`` then describes)."""
    parsers = []
    parse = argparse.ArgumentParser.parse_args

    def record(self, *args, **kwargs):
        parsers.append(self)
        return parse(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", record)
    return parsers


def _entries(parser: argparse.ArgumentParser, text: str) -> dict[str, str]:
    """Each argument's entry in the argument sections of ``text`` (a ``--help``): its
    invocation as argparse writes it (``--n N``, ``{a,b}``) -> its help, lines joined."""
    titles = [g.title for g in parser._action_groups if g._group_actions]
    start = min(text.rfind(f"\n{t}:\n") for t in titles)  # past the description
    entries: dict[str, list[str]] = {}
    key = None
    for line in text[start:].splitlines():
        if re.match(r"  \S", line):  # an entry starts 2 spaces in, its next lines further
            key, _, help_ = line.strip().partition("  ")
            entries[key] = [help_.strip()]
        elif line.startswith("   ") and key is not None:
            entries[key].append(line.strip())
        else:  # a section heading
            key = None
    # (why) argparse wraps after a hyphen too ("dcdm-" / "poisson3d")
    return {k: re.sub(r"(?<=\w-) ", "", " ".join(" ".join(v).split())) for k, v in entries.items()}


def check_every_option_has_a_meaning_and_a_default(
    parser: argparse.ArgumentParser, text: str, name: str
) -> None:
    """Every argument of ``parser`` not hidden from the help has an entry in ``text`` (its
    ``--help``) with help text; an option's entry ends in ``(default: <the parser's value>)``
    or, where the help says it itself (a mode's default, what None stands for), holds
    "default: <words>", never "default: None". Required options and positionals have no
    default to state."""
    formatter = parser._get_formatter()
    shown = [a for a in parser._actions if a.help != argparse.SUPPRESS]
    keys = [formatter._format_action_invocation(a) for a in shown]
    entries = _entries(parser, text)
    assert sorted(entries) == sorted(keys), (name, sorted(entries), sorted(keys))
    for action, key in zip(shown, keys):
        said = entries[key]
        if "-h" in action.option_strings:
            continue
        assert action.help and action.help.strip(), (name, key)  # what the option is
        if action.required or not action.option_strings:
            assert "default:" not in said, (name, key, said)
        elif "default:" not in action.help:  # the parser's value, as argparse writes it
            # (why) without whitespace: argparse wraps a long default (an absolute path) inside
            # a word, at a place that depends on where the checkout is
            want = "".join(f"(default: {action.default})".split())
            assert "".join(said.split()).endswith(want), (name, key, said)
        else:  # in words, not the None (or []) the parser holds
            assert re.search(r"default: \w", said) and "default: None" not in said, (name, said)
