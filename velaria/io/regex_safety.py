"""Reject user-supplied regular expressions that can take exponential time.

Python's ``re`` backtracks: a pattern such as ``^(a+)+b$`` needs about 2**n steps on a line of
n ``a`` s that does not end in ``b``, and ``re`` cannot be interrupted, so one log line hangs
the process. The shapes that cause this are well known: a repetition whose body can itself
repeat without bound (``(a+)+``, ``(a*)*``, ``(\\w+\\s?)*``), or a repetition over
alternatives that can match the same text (``(a|ab)*``, ``(\\w|\\d)+``). :func:`check_regex`
walks the parsed pattern and rejects both, naming the part at fault and a rewrite.

Atomic groups ``(?>...)`` and possessive quantifiers (``a++``) never backtrack into their
body, so what is inside them is accepted.
"""
from __future__ import annotations

import re

try:  # Python 3.11+
    from re import _constants as _c, _parser as _p
except ImportError:  # pragma: no cover - older Pythons
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

from ..errors import VelariaValueError

__all__ = ["check_regex"]

_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT}
_ATOMIC = {getattr(_c, "POSSESSIVE_REPEAT", None), getattr(_c, "ATOMIC_GROUP", None)} - {None}
_ANY = object()  # "may start with any character"


def _unbounded(op, av) -> bool:
    return op in _REPEATS and av[1] == _c.MAXREPEAT


def _contains_unbounded_repeat(items) -> bool:
    for op, av in items:
        if op in _ATOMIC:
            continue
        if _unbounded(op, av):
            return True
        for sub in _children(op, av):
            if _contains_unbounded_repeat(sub):
                return True
    return False


def _children(op, av):
    """The sub-patterns of one parsed node."""
    if op in _REPEATS:
        return [av[2]]
    if op == _c.SUBPATTERN:
        return [av[-1]]
    if op == _c.BRANCH:
        return list(av[1])
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [av[1]]
    if op == _c.GROUPREF_EXISTS:
        return [x for x in av[1:] if x is not None]
    return []


def _first_chars(items):
    """A set of characters the sub-pattern may start with, or ``_ANY``."""
    chars: set = set()
    for op, av in items:
        if op == _c.LITERAL:
            chars.add(chr(av))
            return chars
        if op == _c.IN:
            for kind, value in av:
                if kind == _c.LITERAL:
                    chars.add(chr(value))
                elif kind == _c.RANGE and value[1] - value[0] < 256:
                    chars.update(chr(c) for c in range(value[0], value[1] + 1))
                else:
                    return _ANY
            return chars
        if op == _c.SUBPATTERN:
            inner = _first_chars(av[-1])
            return _ANY if inner is _ANY else chars | inner
        if op == _c.AT:  # anchors take no text: look further
            continue
        if op in _REPEATS:
            inner = _first_chars(av[2])
            if inner is _ANY:
                return _ANY
            chars |= inner
            if av[0] > 0:
                return chars
            continue
        return _ANY
    return chars


def _overlapping_branch(items) -> bool:
    """Whether a BRANCH in ``items`` has two alternatives that may start alike."""
    for op, av in items:
        if op in _ATOMIC:
            continue
        if op == _c.BRANCH:
            firsts = [_first_chars(alt) for alt in av[1]]
            for i, a in enumerate(firsts):
                for b in firsts[i + 1:]:
                    if a is _ANY or b is _ANY or a & b:
                        return True
        for sub in _children(op, av):
            if _overlapping_branch(sub):
                return True
    return False


def _find_danger(items) -> str | None:
    for op, av in items:
        if op in _ATOMIC:
            continue
        if _unbounded(op, av) or (op in _REPEATS and av[1] > 1):
            body = av[2]
            if _unbounded(op, av) and _contains_unbounded_repeat(body):
                return ("a repetition whose body can itself repeat without bound (like "
                        "(a+)+); repeat once, e.g. write (a+)+ as a+, or make the inner part "
                        "atomic: (?>a+)+")
            if _overlapping_branch(body):
                return ("a repetition over alternatives that can match the same text (like "
                        "(a|ab)*); make the alternatives start differently, or atomic: "
                        "(?>a|ab)*")
        for sub in _children(op, av):
            found = _find_danger(sub)
            if found:
                return found
    return None


def check_regex(pattern: str, arg: str = "regex_pattern") -> re.Pattern:
    """Compile ``pattern`` after checking that it cannot backtrack exponentially; raise
    VelariaValueError naming the problem and a rewrite otherwise (or for a syntax error)."""
    try:
        compiled = re.compile(pattern)
        parsed = _p.parse(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise VelariaValueError(f"invalid {arg} {pattern!r}: {exc.msg}{where}") from None
    danger = _find_danger(list(parsed))
    if danger:
        raise VelariaValueError(
            f"{arg} {pattern!r} can take exponential time on lines that almost match: it has "
            f"{danger}")
    return compiled
