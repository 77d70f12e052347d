"""Renaming checkpoint entries: pure functions from names to names.

Three kinds of rule, applied in order to every name:

- ``strip_prefix("module.")`` / ``--strip-prefix module.``: drop a prefix where a name has it;
- ``"OLD=NEW"``: replace the literal text ``OLD`` by ``NEW`` everywhere in a name;
- ``"s/PATTERN/REPL/"``: :func:`re.sub` with a Python regular expression (``\\1`` or ``\\g<name>``
  in ``REPL``); any character after ``s`` may be the delimiter, e.g. ``s|a/b|c|``.

>>> rename_names(["module.conv.weight"], [strip_prefix("module."), "s/^conv/conv1/"])
{'module.conv.weight': 'conv1.weight'}

A rule set that maps two entries to one name, or a name to the empty string, is an error that
lists every collision.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from netdef.errors import CheckpointError

T = TypeVar("T")


@dataclass(frozen=True)
class Rule:
    """One renaming step; call it on a name. ``text`` is how the user wrote it."""

    text: str
    apply: Callable[[str], str]

    def __call__(self, name: str) -> str:
        return self.apply(name)


RuleLike = Rule | str


def strip_prefix(prefix: str) -> Rule:
    """A rule that removes ``prefix`` from names starting with it (others are unchanged)."""
    if not prefix:
        raise ValueError("--strip-prefix needs a non-empty prefix")
    return Rule(f"strip prefix {prefix!r}", lambda name: name.removeprefix(prefix))


def parse_rule(text: str) -> Rule:
    """``"OLD=NEW"`` (literal replacement) or ``"s/PATTERN/REPL/"`` (regular expression)."""
    if len(text) >= 4 and text[0] == "s" and not text[1].isalnum() and text[1] not in "_.=" and text.endswith(text[1]):
        return _regex_rule(text)
    old, sep, new = text.partition("=")
    if not sep or not old:
        raise ValueError(f"rename rule {text!r}: expected OLD=NEW (literal) or s/PATTERN/REPL/ (regular expression)")
    return Rule(text, lambda name: name.replace(old, new))


def _regex_rule(text: str) -> Rule:
    delimiter = text[1]
    parts = _split_unescaped(text[2:-1], delimiter)
    if len(parts) != 2:
        raise ValueError(
            f"rename rule {text!r}: expected s{delimiter}PATTERN{delimiter}REPL{delimiter} "
            f"(escape a literal {delimiter!r} as \\{delimiter})"
        )
    pattern_text, replacement = parts
    try:
        pattern = re.compile(pattern_text)
    except re.error as exc:
        raise ValueError(f"rename rule {text!r}: bad regular expression {pattern_text!r}: {exc}") from None

    def apply(name: str) -> str:
        try:
            return pattern.sub(replacement, name)
        except (re.error, IndexError) as exc:  # a bad group reference shows on the first match
            raise ValueError(f"rename rule {text!r}: bad replacement {replacement!r}: {exc}") from None

    return Rule(text, apply)


def _split_unescaped(body: str, delimiter: str) -> list[str]:
    """Split on ``delimiter`` not preceded by a backslash; ``\\<delimiter>`` becomes the delimiter."""
    parts, current, i = [], [], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] == delimiter:
            current.append(delimiter)
            i += 2
            continue
        if body[i] == delimiter:
            parts.append("".join(current))
            current = []
        else:
            current.append(body[i])
        i += 1
    parts.append("".join(current))
    return parts


def make_rules(rules: Iterable[RuleLike] = (), strip_prefixes: Iterable[str] = ()) -> list[Rule]:
    """Prefix stripping first, then ``rules`` in order (strings are parsed with :func:`parse_rule`)."""
    made = [strip_prefix(p) for p in strip_prefixes]
    made += [r if isinstance(r, Rule) else parse_rule(r) for r in rules]
    return made


def rename_names(names: Iterable[str], rules: Sequence[RuleLike], source: str = "") -> dict[str, str]:
    """``{old: new}`` for every name (in order); raises :class:`CheckpointError` on collisions.

    ``source`` (a file name) prefixes the error message.
    """
    made = make_rules(rules)
    mapping = {}
    for old in names:
        new = old
        for rule in made:
            new = rule(new)
        mapping[old] = new
    _check(mapping, made, source)
    return mapping


def rename_tensors(tensors: Mapping[str, T], rules: Sequence[RuleLike], source: str = "") -> dict[str, T]:
    """The same tensors under their new names (order kept); ``source`` names the file in errors."""
    mapping = rename_names(tensors, rules, source) if rules else {name: name for name in tensors}
    return {mapping[old]: value for old, value in tensors.items()}


def _check(mapping: dict[str, str], rules: list[Rule], source: str) -> None:
    sources: dict[str, list[str]] = {}
    for old, new in mapping.items():
        sources.setdefault(new, []).append(old)
    problems = [f"{new!r} <- {', '.join(map(repr, olds))}" for new, olds in sources.items() if len(olds) > 1]
    empty = [old for old, new in mapping.items() if not new]
    if empty:
        problems.append(f"empty name <- {', '.join(map(repr, empty))}")
    if problems:
        applied = "; ".join(r.text for r in rules)
        where = f"{source}: " if source else ""
        raise CheckpointError(f"{where}renaming ({applied}) gives {len(problems)} clash(es)", problems)
