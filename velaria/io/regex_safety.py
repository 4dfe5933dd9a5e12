"""Reject user-supplied regular expressions that can take exponential time.

Python's ``re`` backtracks: a pattern such as ``^(a+)+b$`` needs about 2**n steps on a line of
n ``a`` s that does not end in ``b``, and ``re`` cannot be interrupted, so one log line hangs
the process. The shapes that cause this are well known: a repetition whose body holds a
repetition that can run on into text that could start the next round or follow it
(``(a+)+``, ``(a*)*``, ``(\\w+\\s?)*``; not ``(\\d+,)*``, where a digit run ends at the comma), or a repetition over
alternatives that can match the same text (``(a|aa)*``, ``(a|ab|b)*``, ``(a|a)*``).
:func:`check_regex` walks the parsed pattern and rejects both, naming the part at fault and a
rewrite.

Alternatives are compared by the characters they can start with. An alternative that can
match the empty string starts with whatever follows it: the rest of the repeated body, the
body's next round, or what follows the repetition. That matters because Python's parser
factors common prefixes out (``a|aa`` becomes ``a(?:|a)``), so the ambiguity hides in an
empty alternative; ``(x|xy)+`` (after the ``x``: nothing, then another ``x``, or ``y``) stays
accepted, since its alternatives never match the same text.

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


def _ambiguous_inner_repeat(items, follow) -> bool:
    """Whether ``items`` (followed by text starting with ``follow``) holds an unbounded
    repetition that can be followed by a character it could also have taken: then the text
    can be split between rounds in many ways. ``(\\d+,)*`` is safe (a digit run ends at the
    comma); ``(a+)+`` (another round's ``a``) and ``(\\w+\\s?)*`` are not."""
    for i, (op, av) in enumerate(items):
        if op in _ATOMIC:
            continue
        after = _starts(items[i + 1:], follow)
        if _unbounded(op, av):
            if _nullable(av[2]) or _overlap(_first_chars(av[2]), after):
                return True
        inner = _union(_first_chars(av[2]), after) if op in _REPEATS else after
        for sub in _children(op, av):
            if _ambiguous_inner_repeat(sub, inner):
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


#: the characters overlap tests are made on: Latin-1 and its neighbours, plus Unicode digits,
#: spaces and letters of other scripts (``\\d``, ``\\s`` and ``\\w`` are Unicode-aware)
_SAMPLE = "".join(chr(c) for c in range(0x250)) + "\u0660\u0966\uff10\u2003\u3000\u2028\u4e2d\u00e9\u03b1"
_CATEGORY = {getattr(_c, name): re.compile(rx) for name, rx in [
    ("CATEGORY_DIGIT", r"\d"), ("CATEGORY_NOT_DIGIT", r"\D"), ("CATEGORY_SPACE", r"\s"),
    ("CATEGORY_NOT_SPACE", r"\S"), ("CATEGORY_WORD", r"\w"), ("CATEGORY_NOT_WORD", r"\W")]}


def _atom_matches(atom, ch: str) -> bool:
    """Whether the one-character atom (from :func:`_first_chars`) matches ``ch``."""
    kind, value = atom
    if kind == "lit":
        return ch == value
    if kind == "notlit":
        return ch != value
    negate, hit = False, False
    for op, av in value:  # the items of a character class
        if op == _c.NEGATE:
            negate = True
        elif op == _c.LITERAL:
            hit = hit or ch == chr(av)
        elif op == _c.RANGE:
            hit = hit or av[0] <= ord(ch) <= av[1]
        elif op == _c.CATEGORY and av in _CATEGORY:
            hit = hit or _CATEGORY[av].match(ch) is not None
        else:  # a class item this model does not know: assume it matches
            return True
    return hit != negate


def _overlap(a, b) -> bool:
    """Whether two first-character sets share a character."""
    if a is _ANY or b is _ANY:
        return bool(a) and bool(b)
    probes = _SAMPLE + "".join(v for atoms in (a, b) for kind, v in atoms if kind != "class")
    return any(_atom_matches(x, ch) and _atom_matches(y, ch)
               for x in a for y in b for ch in probes)


def _first_chars(items):
    """The characters the sub-pattern may start with: a set of atoms (``("lit", ch)``,
    ``("notlit", ch)``, ``("class", items)``), or ``_ANY``. A sub-pattern that can match the
    empty string gives the characters of its non-empty matches only."""
    chars: set = set()
    for op, av in items:
        if op == _c.LITERAL:
            chars.add(("lit", chr(av)))
            return chars
        if op == _c.NOT_LITERAL:
            chars.add(("notlit", chr(av)))
            return chars
        if op == _c.IN:
            chars.add(("class", tuple(av)))
            return chars
        if op == _c.SUBPATTERN:
            inner = _first_chars(av[-1])
            if inner is _ANY:
                return _ANY
            chars |= inner
            if not _nullable(av[-1]):
                return chars
            continue
        if op == _c.BRANCH:
            for alt in av[1]:
                inner = _first_chars(alt)
                if inner is _ANY:
                    return _ANY
                chars |= inner
            if not any(_nullable(alt) for alt in av[1]):
                return chars
            continue
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):  # they take no text: look further
            continue
        if op in _REPEATS:
            inner = _first_chars(av[2])
            if inner is _ANY:
                return _ANY
            chars |= inner
            if av[0] > 0 and not _nullable(av[2]):
                return chars
            continue
        return _ANY
    return chars


def _nullable(items) -> bool:
    """Whether the sub-pattern can match the empty string."""
    for op, av in items:
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue
        if op in _REPEATS or op == getattr(_c, "POSSESSIVE_REPEAT", None):
            if av[0] == 0 or _nullable(av[2]):
                continue
            return False
        if op == _c.SUBPATTERN:
            if _nullable(av[-1]):
                continue
            return False
        if op == getattr(_c, "ATOMIC_GROUP", None):
            if _nullable(av):
                continue
            return False
        if op == _c.BRANCH:
            if any(_nullable(alt) for alt in av[1]):
                continue
            return False
        return False
    return True


def _union(a, b):
    return _ANY if a is _ANY or b is _ANY else set(a) | set(b)


def _starts(items, follow):
    """The characters a match of ``items`` followed by text starting with ``follow`` may
    start with (``follow`` counts only when ``items`` can match the empty string)."""
    first = _first_chars(items)
    if first is _ANY or not _nullable(items):
        return first
    return _union(first, follow)


def _overlapping_branch(items, follow) -> bool:
    """Whether a BRANCH in ``items`` (followed by text starting with ``follow``) has two
    alternatives that may match from the same character, or both match the empty string."""
    for i, (op, av) in enumerate(items):
        if op in _ATOMIC:
            continue
        after = _starts(items[i + 1:], follow)
        if op == _c.BRANCH:
            alts = av[1]
            if sum(_nullable(alt) for alt in alts) > 1:
                return True
            firsts = [_starts(alt, after) for alt in alts]
            for j, a in enumerate(firsts):
                for b in firsts[j + 1:]:
                    if _overlap(a, b):
                        return True
        inner = _union(_first_chars(av[2]), after) if op in _REPEATS else after
        for sub in _children(op, av):
            if _overlapping_branch(sub, inner):
                return True
    return False


def _find_danger(items, follow=frozenset()) -> str | None:
    for i, (op, av) in enumerate(items):
        if op in _ATOMIC:
            continue
        after = _starts(items[i + 1:], follow)
        if _unbounded(op, av) or (op in _REPEATS and av[1] > 1):
            body = av[2]
            # after one round of the body: another round, or what follows the repetition
            rounds = _union(_first_chars(body), after)
            if _unbounded(op, av) and _ambiguous_inner_repeat(body, rounds):
                return ("a repetition whose body can itself repeat without bound (like "
                        "(a+)+); repeat once, e.g. write (a+)+ as a+, or make the inner part "
                        "atomic: (?>a+)+")
            if _overlapping_branch(body, rounds):
                return ("a repetition over alternatives that can match the same text (like "
                        "(a|aa)*); make the alternatives start differently, or atomic: "
                        "(?>a|aa)*")
        for sub in _children(op, av):
            found = _find_danger(sub, after)
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
