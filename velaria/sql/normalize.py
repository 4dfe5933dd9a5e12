"""Normalise Velaria's SQL extensions into text PostgreSQL (pglast) can parse.

This is the Python twin of upstream's ``pg_query_frontend.cc`` preprocessor. A small tokenizer splits the text; then, in this order:

1. an unquoted token holding a non-ASCII character is an error (``invalid token byte 0x..``);
2. ``CREATE [SOURCE|SINK] TABLE name [USING p] [OPTIONS(k: v, ...)]`` — the kind word, the
   ``USING`` and ``OPTIONS`` clauses are recorded and cut out, and `` ()`` is inserted after the
   name when no column list follows;
3. ``WINDOW BY``, ``KEYWORD SEARCH`` and ``HYBRID SEARCH`` clauses are parsed and cut out;
4. ``LEFT(``, ``RIGHT(``, ``POSITION(`` and ``CURRENT_TIMESTAMP(`` get a ``VELARIA_`` prefix.

All edits are recorded against the original text, so any position in the normalised text can be
mapped back to a byte offset in what the user wrote (:meth:`Normalized.to_original_offset`).

One deliberate divergence from upstream: ``--`` and ``/* */`` comments are skipped by the
tokenizer (upstream tokenizes their contents, so a comment with an accented letter or an
apostrophe breaks the statement).
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field

from ..errors import SQLSyntaxError
from .depth import check_text_depth

__all__ = [
    "Token",
    "tokenize",
    "CreateExt",
    "WindowSpec",
    "KeywordSearchSpec",
    "HybridSearchSpec",
    "Normalized",
    "normalize",
]

# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------

WORD, STRING, IDENT, NUMBER, SYMBOL, PARAM = "word", "string", "ident", "number", "symbol", "param"


@dataclass(frozen=True)
class Token:
    """One token of the mini-tokenizer.

    ``text`` is the raw source text, ``value`` the unescaped content for string literals and
    quoted identifiers (the raw text otherwise). ``start``/``end`` are character indices into
    the original SQL; ``depth`` is the parenthesis depth outside the token (a ``(`` and its
    matching ``)`` share the depth of the surrounding text).
    """

    kind: str
    text: str
    value: str
    start: int
    end: int
    depth: int

    def is_word(self, *names: str) -> bool:
        """True for an unquoted word equal (case-insensitively) to one of ``names``."""
        return self.kind == WORD and self.text.upper() in names

    def is_symbol(self, char: str) -> bool:
        """True for the one-character symbol ``char``."""
        return self.kind == SYMBOL and self.text == char


def _is_ident_start(ch: str) -> bool:
    return ("A" <= ch <= "Z") or ("a" <= ch <= "z") or ch == "_" or ord(ch) >= 0x80


def _is_ident_char(ch: str) -> bool:
    # C's isalnum in the "C" locale: ASCII letters and digits only.
    return _is_ident_start(ch) or ("0" <= ch <= "9") or ch == "$"


def _scan_quoted(sql: str, i: int, quote: str, backslash: bool = False) -> tuple[int, str]:
    """Scan a ``quote``-delimited token starting at ``sql[i]``; return (end, unescaped value).

    A doubled quote is an escaped quote. With ``backslash`` (``E'...'`` strings) a backslash
    escapes the next character too; the value then decodes the common escapes only, since
    PostgreSQL decodes the literal again, exactly, when it parses. An unterminated token runs
    to the end of the text.
    """
    n = len(sql)
    j = i + 1
    parts = []
    while j < n:
        ch = sql[j]
        if backslash and ch == "\\" and j + 1 < n:
            parts.append(_ESCAPES.get(sql[j + 1], sql[j + 1]))
            j += 2
            continue
        if ch == quote:
            if j + 1 < n and sql[j + 1] == quote:
                parts.append(quote)
                j += 2
                continue
            return j + 1, "".join(parts)
        parts.append(ch)
        j += 1
    return n, "".join(parts)


def _follows_word(sql: str, i: int) -> bool:
    """True when ``sql[i]`` continues a word (so an ``E`` there is not a string prefix)."""
    return i > 0 and _is_ident_char(sql[i - 1])


_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _scan_dollar(sql: str, i: int) -> tuple[int, str, str] | None:
    """At a ``$``: a positional parameter ``$<digits>`` or a dollar-quoted string.

    Returns (end, kind, value), or None when the ``$`` starts neither (it is then a symbol).
    An unterminated dollar-quoted string runs to the end of the text, as quotes do.
    """
    n = len(sql)
    j = i + 1
    if j < n and sql[j].isascii() and sql[j].isdigit():
        while j < n and sql[j].isascii() and sql[j].isdigit():
            j += 1
        return j, PARAM, sql[i:j]
    while j < n and (sql[j] == "_" or (sql[j].isascii() and sql[j].isalnum())):
        j += 1
    if j >= n or sql[j] != "$" or (j > i + 1 and sql[i + 1].isdigit()):
        return None
    tag = sql[i:j + 1]
    close = sql.find(tag, j + 1)
    if close < 0:
        return n, STRING, sql[j + 1:]
    return close + len(tag), STRING, sql[j + 1:close]


def _skip_comment(sql: str, i: int) -> int:
    """Return the index after a comment starting at ``sql[i]``, or ``i`` when there is none."""
    if sql.startswith("--", i):
        newline = sql.find("\n", i)
        return len(sql) if newline < 0 else newline + 1
    if sql.startswith("/*", i):
        close = sql.find("*/", i + 2)
        return len(sql) if close < 0 else close + 2
    return i


def tokenize(sql: str) -> list[Token]:
    """Split ``sql`` into the preprocessor's tokens (upstream's "mini-tokenizer").

    Beyond upstream's tokenizer it knows PostgreSQL's other literal forms, so that nothing
    inside a literal is ever taken for SQL: ``E'...'`` strings (backslash escapes),
    dollar-quoted strings (``$$...$$``, ``$tag$...$tag$``) and positional parameters
    (``$1``, kind ``param``).
    """
    tokens: list[Token] = []
    depth = 0
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
            continue
        after_comment = _skip_comment(sql, i)
        if after_comment != i:
            i = after_comment
            continue
        start = i
        if ch in ("'", '"'):
            i, value = _scan_quoted(sql, i, ch)
            kind = STRING if ch == "'" else IDENT
            tokens.append(Token(kind, sql[start:i], value, start, i, depth))
            continue
        if ch in "Ee" and i + 1 < n and sql[i + 1] == "'" and not _follows_word(sql, i):
            i, value = _scan_quoted(sql, i + 1, "'", backslash=True)
            tokens.append(Token(STRING, sql[start:i], value, start, i, depth))
            continue
        if ch == "$":
            dollar = _scan_dollar(sql, i)
            if dollar is not None:
                i, kind, value = dollar
                tokens.append(Token(kind, sql[start:i], value, start, i, depth))
                continue
        if _is_ident_start(ch):
            i += 1
            while i < n and _is_ident_char(sql[i]):
                i += 1
            tokens.append(Token(WORD, sql[start:i], sql[start:i], start, i, depth))
            continue
        if ch.isascii() and ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isascii()
                                               and sql[i + 1].isdigit()):
            i = _scan_number(sql, i)
            tokens.append(Token(NUMBER, sql[start:i], sql[start:i], start, i, depth))
            continue
        if ch == ")":
            depth = max(depth - 1, 0)
        tokens.append(Token(SYMBOL, ch, ch, start, i + 1, depth))
        if ch == "(":
            depth += 1
        i += 1
    return tokens


def _scan_number(sql: str, i: int) -> int:
    """Return the end of a run of ASCII digits holding at most one ``.``."""
    seen_dot = False
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch.isascii() and ch.isdigit():
            i += 1
        elif ch == "." and not seen_dot:
            seen_dot = True
            i += 1
        else:
            break
    return i


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateExt:
    """What ``CREATE [SOURCE|SINK] TABLE`` carried beyond PostgreSQL syntax."""

    kind: str  # "regular" | "source" | "sink"
    provider: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    provider_offset: int | None = None  # byte offset of the provider token
    options_offset: int | None = None  # byte offset of the OPTIONS keyword


@dataclass(frozen=True)
class WindowSpec:
    """``WINDOW BY [qualifier.]time_column EVERY every_ms [SLIDE slide_ms] AS output``."""

    time_column: str
    qualifier: str | None
    every_ms: int
    slide_ms: int
    output: str
    offset: int  # byte offset of the WINDOW keyword


@dataclass(frozen=True)
class KeywordSearchSpec:
    """``KEYWORD SEARCH(col, ...) QUERY 'text' [TOP_K n]``."""

    columns: tuple[str, ...]
    query: str
    top_k: int
    offset: int


@dataclass(frozen=True)
class HybridSearchSpec:
    """``HYBRID SEARCH col QUERY 'vector' [METRIC m] [TOP_K n] [SCORE_THRESHOLD x]``.

    ``query_text`` is the vector literal's text, unparsed; ``metric`` is as written.
    """

    column: str
    query_text: str
    metric: str
    top_k: int
    score_threshold: float | None
    offset: int


@dataclass(frozen=True)
class _Segment:
    """A run of the normalised text: copied from ``orig_start`` or inserted at ``orig_start``."""

    norm_start: int
    length: int
    orig_start: int
    copied: bool


@dataclass(frozen=True)
class Normalized:
    """The normalised statement text, the extension specs found, and an offset map."""

    original: str
    text: str
    create: CreateExt | None = None
    window: WindowSpec | None = None
    keyword_search: KeywordSearchSpec | None = None
    hybrid_search: HybridSearchSpec | None = None
    describe: bool = False  # DESCRIBE t / DESCRIBE SELECT ...: the text is now the query
    _segments: tuple[_Segment, ...] = field(default=(), repr=False, compare=False)

    def to_original_offset(self, norm_char_index: int) -> int:
        """Map a 0-based character index in :attr:`text` to a 0-based UTF-8 byte offset in
        :attr:`original`.

        Characters that were inserted by normalisation map to the original position they were
        inserted at; an index at or past the end maps to the end of the original text.
        """
        if norm_char_index < 0:
            raise ValueError(f"negative character index: {norm_char_index}")
        if norm_char_index >= len(self.text) or not self._segments:
            return _byte_offset(self.original, len(self.original))
        starts = [seg.norm_start for seg in self._segments]
        seg = self._segments[bisect.bisect_right(starts, norm_char_index) - 1]
        orig = seg.orig_start + (norm_char_index - seg.norm_start if seg.copied else 0)
        return _byte_offset(self.original, orig)


def _byte_offset(text: str, char_index: int) -> int:
    """UTF-8 byte length of ``text[:char_index]``."""
    return len(text[:char_index].encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

_WINDOW_HINT = "Use WINDOW BY time_col EVERY window_ms [SLIDE slide_ms] AS output_col."
_KEYWORD_HINT = "Use KEYWORD SEARCH(col, ...) QUERY 'text' TOP_K n."
_HYBRID_HINT = "Use HYBRID SEARCH col QUERY 'vector' [METRIC m] [TOP_K n]."
_NON_ASCII_HINT = "Quote non-ASCII identifiers with double quotes."


def _error(sql: str, message: str, char_index: int, hint: str | None = None) -> SQLSyntaxError:
    """A ``parse_error`` pointing at ``sql[char_index]`` (as a byte offset)."""
    return SQLSyntaxError(message, hint=hint, byte_offset=_byte_offset(sql, char_index))


# --------------------------------------------------------------------------------------------
# Step 1: non-ASCII check
# --------------------------------------------------------------------------------------------


def _check_ascii(sql: str, tokens: list[Token]) -> None:
    """Reject the first unquoted word holding a non-ASCII character."""
    for tok in tokens:
        if tok.kind != WORD:
            continue
        for k, ch in enumerate(tok.text):
            if ord(ch) >= 0x80:
                first_byte = ch.encode("utf-8", "surrogatepass")[0]
                raise _error(sql, f"invalid token byte 0x{first_byte:02x}", tok.start + k,
                             _NON_ASCII_HINT)


# --------------------------------------------------------------------------------------------
# Step 2: CREATE [SOURCE|SINK] TABLE ... USING ... OPTIONS(...)
# --------------------------------------------------------------------------------------------


@dataclass
class _Edits:
    """Edits against the original text: (start, end, replacement), in character indices."""

    items: list[tuple[int, int, str]] = field(default_factory=list)

    def remove(self, first: Token, last: Token) -> None:
        self.items.append((first.start, last.end, ""))

    def insert(self, at: int, text: str) -> None:
        self.items.append((at, at, text))


def _is_name(tok: Token | None) -> bool:
    return tok is not None and tok.kind in (WORD, IDENT)


def _identifier(tok: Token) -> str:
    """An identifier's name as PostgreSQL sees it: unquoted words fold to lower case."""
    return tok.value if tok.kind == IDENT else tok.text.lower()


def _at(tokens: list[Token], i: int) -> Token | None:
    return tokens[i] if 0 <= i < len(tokens) else None


def _parse_create(sql: str, tokens: list[Token], edits: _Edits,
                  removed: set[int]) -> CreateExt | None:
    """Find the first depth-0 ``CREATE ... TABLE``; record and cut out its Velaria parts."""
    create_i = next((i for i, t in enumerate(tokens) if t.depth == 0 and t.is_word("CREATE")),
                    None)
    if create_i is None:
        return None
    i = create_i + 1
    kind = "regular"
    kind_tok = _at(tokens, i)
    if kind_tok is not None and kind_tok.is_word("SOURCE", "SINK"):
        kind = kind_tok.text.lower()
        i += 1
    table_tok = _at(tokens, i)
    if table_tok is None or not table_tok.is_word("TABLE"):
        return None  # CREATE VIEW / INDEX / ...: left for PostgreSQL and the validator
    if kind != "regular":
        edits.remove(kind_tok, kind_tok)
        removed.add(create_i + 1)
    name_end_i = _table_name_end(sql, tokens, i + 1, table_tok)
    after_name = _at(tokens, name_end_i + 1)
    if kind == "regular" and after_name is not None and after_name.is_word("AS"):
        return CreateExt(kind)  # CREATE TABLE t AS SELECT ...: plain PostgreSQL from here on

    provider = provider_offset = options_offset = None
    options: dict[str, str] = {}
    j = name_end_i + 1
    while j < len(tokens) and not (tokens[j].depth == 0 and tokens[j].is_symbol(";")):
        tok = tokens[j]
        if tok.depth == 0 and tok.is_word("USING"):
            prov = _at(tokens, j + 1)
            if prov is None or prov.kind == SYMBOL:
                raise _error(sql, "CREATE TABLE USING requires a provider.", tok.start)
            provider, provider_offset = prov.value, _byte_offset(sql, prov.start)
            edits.remove(tok, prov)
            removed.update((j, j + 1))
            j += 2
        elif tok.depth == 0 and tok.is_word("OPTIONS"):
            close_j = _parse_options(sql, tokens, j, options)
            options_offset = _byte_offset(sql, tok.start)
            edits.remove(tok, tokens[close_j])
            removed.update(range(j, close_j + 1))
            j = close_j + 1
        else:
            j += 1

    following = next((t for k, t in enumerate(tokens) if k > name_end_i and k not in removed),
                     None)
    if following is None or not following.is_symbol("("):
        # PostgreSQL needs a column list; Velaria allows none (the provider supplies it).
        edits.insert(tokens[name_end_i].end, " ()")
    return CreateExt(kind, provider, options, provider_offset, options_offset)


def _table_name_end(sql: str, tokens: list[Token], i: int, table_tok: Token) -> int:
    """Index of the last token of the table name starting at ``tokens[i]``.

    Skips ``IF NOT EXISTS`` and accepts a dotted name (``schema.t``).
    """
    if (_at(tokens, i) and tokens[i].is_word("IF") and _at(tokens, i + 1)
            and tokens[i + 1].is_word("NOT") and _at(tokens, i + 2)
            and tokens[i + 2].is_word("EXISTS")):
        i += 3
    if not _is_name(_at(tokens, i)):
        raise _error(sql, "CREATE TABLE requires a table name.", table_tok.start)
    while (_at(tokens, i + 1) is not None and tokens[i + 1].is_symbol(".")
           and _is_name(_at(tokens, i + 2))):
        i += 2
    return i


def _parse_options(sql: str, tokens: list[Token], i: int, options: dict[str, str]) -> int:
    """Parse ``OPTIONS(key: value, ...)`` starting at ``tokens[i]`` into ``options``.

    Keys are lower-cased (they are matched case-insensitively); the last duplicate wins.
    Returns the index of the closing ``)``.
    """
    keyword = tokens[i]
    if not (_at(tokens, i + 1) and tokens[i + 1].is_symbol("(")):
        raise _error(sql, "OPTIONS must use OPTIONS(key: value, ...).", keyword.start)

    def unclosed() -> SQLSyntaxError:
        return _error(sql, "OPTIONS clause must end with ')'.", keyword.start)

    def bad_entry(tok: Token) -> SQLSyntaxError:
        return _error(sql, "OPTIONS entries must be key: value pairs.", tok.start)

    j = i + 2
    if j >= len(tokens):
        raise unclosed()
    if tokens[j].is_symbol(")"):
        return j
    while True:
        key, colon, value, sep = (_at(tokens, j + k) for k in range(4))
        for tok, ok in ((key, _is_option_atom), (colon, lambda t: t.is_symbol(":")),
                        (value, _is_option_atom), (sep, lambda t: t.is_symbol(",")
                                                   or t.is_symbol(")"))):
            if tok is None:
                raise unclosed()
            if not ok(tok):
                raise bad_entry(tok)
        options[key.value.lower()] = value.value
        if sep.is_symbol(")"):
            return j + 3
        j += 4


def _is_option_atom(tok: Token) -> bool:
    """Keys and values are one string literal, word, number or quoted identifier."""
    return tok.kind != SYMBOL


# --------------------------------------------------------------------------------------------
# Step 3: WINDOW BY / KEYWORD SEARCH / HYBRID SEARCH
# --------------------------------------------------------------------------------------------

_BOUNDARY_WORDS = ("GROUP", "HAVING", "ORDER", "LIMIT", "UNION", "INTERSECT", "EXCEPT")


def _clause_kind(tokens: list[Token], i: int) -> str | None:
    """The extension clause starting at ``tokens[i]`` ("window"/"keyword"/"hybrid"), if any."""
    tok, nxt = tokens[i], _at(tokens, i + 1)
    if tok.depth != 0 or nxt is None:
        return None
    if tok.is_word("WINDOW") and nxt.is_word("BY"):
        return "window"
    if tok.is_word("KEYWORD") and nxt.is_word("SEARCH"):
        return "keyword"
    if tok.is_word("HYBRID") and nxt.is_word("SEARCH"):
        return "hybrid"
    return None


def _is_boundary(tokens: list[Token], i: int) -> bool:
    """True when ``tokens[i]`` ends an extension clause. (``WHERE`` deliberately does not.)"""
    tok = tokens[i]
    if tok.depth != 0:
        return False
    return (tok.is_word(*_BOUNDARY_WORDS) or tok.is_symbol(";")
            or _clause_kind(tokens, i) is not None)


def _find_clauses(tokens: list[Token], removed: set[int]) -> list[tuple[str, int, int]]:
    """List the extension clauses as (kind, first index, end index exclusive)."""
    found = []
    i = 0
    while i < len(tokens):
        kind = None if i in removed else _clause_kind(tokens, i)
        if kind is None:
            i += 1
            continue
        j = i + 2
        while j < len(tokens) and not _is_boundary(tokens, j):
            j += 1
        found.append((kind, i, j))
        i = j
    return found


def _is_uint(tok: Token | None) -> bool:
    return tok is not None and tok.kind == NUMBER and tok.text.isdigit()


class _Clause:
    """A cursor over one extension clause's tokens, for the small grammars below."""

    def __init__(self, sql: str, tokens: list[Token]):
        self.sql = sql
        self.tokens = tokens
        self.pos = 2  # past the two introducing words
        self.offset = _byte_offset(sql, tokens[0].start)

    def peek(self, k: int = 0) -> Token | None:
        return _at(self.tokens, self.pos + k)

    def take(self) -> Token | None:
        tok = self.peek()
        self.pos += 1
        return tok

    def error(self, message: str, tok: Token | None = None,
              hint: str | None = None) -> SQLSyntaxError:
        """An error at ``tok``, or at the clause's first word when the token is missing."""
        return _error(self.sql, message, (tok or self.tokens[0]).start, hint)


def _parse_window(sql: str, tokens: list[Token]) -> WindowSpec:
    """``WINDOW BY <col> EVERY <uint> [SLIDE <uint>] AS <name>``."""
    c = _Clause(sql, tokens)
    if len(tokens) < 6 or not _is_name(c.peek()):
        raise c.error("Invalid WINDOW BY clause.", hint=_WINDOW_HINT)
    qualifier = None
    column = _identifier(c.take())
    if c.peek() is not None and c.peek().is_symbol("."):
        if not _is_name(c.peek(1)):
            raise c.error("Invalid WINDOW BY clause.", hint=_WINDOW_HINT)
        c.take()
        qualifier, column = column, _identifier(c.take())
    every_kw = c.take()
    if every_kw is None or not every_kw.is_word("EVERY"):
        raise c.error("WINDOW BY clause requires EVERY window_ms.", every_kw)
    every = c.take()
    if not _is_uint(every):
        raise c.error("WINDOW EVERY must be numeric.", every or every_kw)
    every_ms = slide_ms = int(every.text)
    if c.peek() is not None and c.peek().is_word("SLIDE"):
        slide_kw = c.take()
        slide = c.take()
        if not _is_uint(slide):
            raise c.error("WINDOW SLIDE must be numeric.", slide or slide_kw)
        slide_ms = int(slide.text)
    as_kw = c.take()
    if as_kw is None or not as_kw.is_word("AS") or not _is_name(c.peek()):
        raise c.error("WINDOW BY clause requires AS output_col.", as_kw)
    output = _identifier(c.take())
    extra = c.peek()
    if extra is not None:
        raise c.error(f"Unexpected token in WINDOW BY clause: {extra.value}", extra)
    return WindowSpec(column, qualifier, every_ms, slide_ms, output, c.offset)


def _parse_keyword_search(sql: str, tokens: list[Token]) -> KeywordSearchSpec:
    """``KEYWORD SEARCH(<col>[, <col>...]) QUERY '<text>' [TOP_K <n>]``."""
    c = _Clause(sql, tokens)
    if c.peek() is None or not c.peek().is_symbol("("):
        raise c.error("Invalid KEYWORD SEARCH clause.", hint=_KEYWORD_HINT)
    close = next((k for k in range(c.pos + 1, len(tokens)) if tokens[k].is_symbol(")")), None)
    if close is None:
        raise c.error("KEYWORD SEARCH column list must end with ')'.", c.peek())
    inner = tokens[c.pos + 1:close]
    # col (, col)*: names at even positions, commas at odd ones.
    if not inner or len(inner) % 2 == 0 or not all(
            _is_name(t) if k % 2 == 0 else t.is_symbol(",") for k, t in enumerate(inner)):
        raise c.error("Invalid KEYWORD SEARCH clause.", hint=_KEYWORD_HINT)
    columns = tuple(_identifier(t) for t in inner[::2])
    c.pos = close + 1
    query_kw = c.take()
    if query_kw is None or not query_kw.is_word("QUERY"):
        raise c.error("Invalid KEYWORD SEARCH clause.", query_kw, hint=_KEYWORD_HINT)
    query = c.take()
    if query is None or query.kind != STRING:
        raise c.error("KEYWORD SEARCH QUERY must be a quoted string literal.", query or query_kw)
    top_k = 10
    if c.peek() is not None and c.peek().is_word("TOP_K"):
        top_kw = c.take()
        value = c.take()
        if not _is_uint(value):
            raise c.error("KEYWORD SEARCH TOP_K must be numeric.", value or top_kw)
        top_k = int(value.text)
    extra = c.peek()
    if extra is not None:
        raise c.error(f"Unexpected token in KEYWORD SEARCH clause: {extra.value}", extra)
    return KeywordSearchSpec(columns, query.value, top_k, c.offset)


_SIGNED_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: what a number may look like before its last token is read (``-``, ``1e``, ``2.5E-``)
_SIGNED_NUMBER_PREFIX = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)?(?:[eE][+-]?\d*)?")


def _signed_number_text(c: _Clause, first: Token | None) -> str | None:
    """The text of a signed decimal number starting at ``first`` (``-0.5``, ``1e-3``,
    ``+2.5E+4``), taking the touching tokens it spans from the clause; None if it is not one.

    The tokenizer splits such a literal into several tokens (sign, digits, an ``e3`` word...),
    so they are joined back while they touch. Dot-product thresholds are often negative, and the
    Python API accepts any float, so SQL accepts the same values (native Velaria's clause only
    takes unsigned decimals).
    """
    if first is None or first.kind not in (NUMBER, SYMBOL) or (first.kind == SYMBOL and first.value not in "+-"):
        return None
    text, end = first.text, first.end
    while c.peek() is not None and c.peek().start == end and c.peek().kind in (NUMBER, WORD, SYMBOL) \
            and (c.peek().kind != SYMBOL or c.peek().value in "+-."):
        tok = c.take()
        text, end = text + tok.text, tok.end
        if _SIGNED_NUMBER.fullmatch(text) is None and not _SIGNED_NUMBER_PREFIX.fullmatch(text):
            return None
    return text if _SIGNED_NUMBER.fullmatch(text) else None


def _parse_hybrid_search(sql: str, tokens: list[Token]) -> HybridSearchSpec:
    """``HYBRID SEARCH <col> QUERY '<vector>' [METRIC m] [TOP_K n] [SCORE_THRESHOLD x]``.

    The optional parts may come in any order and repeat; the last one wins.
    """
    c = _Clause(sql, tokens)
    if len(tokens) < 5 or not _is_name(c.peek()) or not c.peek(1).is_word("QUERY"):
        raise c.error("Invalid HYBRID SEARCH clause.", hint=_HYBRID_HINT)
    column = _identifier(c.take())
    query_kw = c.take()
    query = c.take()
    if query.kind != STRING:
        raise c.error("HYBRID SEARCH QUERY must be a quoted vector literal.", query or query_kw)
    metric, top_k, threshold = "cosine", 10, None
    while c.peek() is not None:
        keyword = c.take()
        value = c.take()
        if keyword.is_word("METRIC"):
            if value is None or value.kind == SYMBOL:
                raise c.error("Invalid HYBRID SEARCH clause.", value or keyword,
                              hint=_HYBRID_HINT)
            metric = value.value
        elif keyword.is_word("TOP_K"):
            if not _is_uint(value):
                raise c.error("HYBRID SEARCH TOP_K must be numeric.", value or keyword)
            top_k = int(value.text)
        elif keyword.is_word("SCORE_THRESHOLD"):
            text = _signed_number_text(c, value)
            if text is None:
                raise c.error("HYBRID SEARCH SCORE_THRESHOLD must be numeric.", value or keyword)
            threshold = float(text)
            if not math.isfinite(threshold):  # upstream: std::stod out of range
                raise c.error(f"Invalid HYBRID SEARCH SCORE_THRESHOLD: {text}", value)
        else:
            raise c.error(f"Unexpected token in HYBRID SEARCH clause: {keyword.value}", keyword)
    return HybridSearchSpec(column, query.value, metric, top_k, threshold, c.offset)


_CLAUSE_PARSERS = {
    "window": _parse_window,
    "keyword": _parse_keyword_search,
    "hybrid": _parse_hybrid_search,
}


# --------------------------------------------------------------------------------------------
# Step 4: function renames
# --------------------------------------------------------------------------------------------

_RENAMED_FUNCTIONS = ("LEFT", "RIGHT", "POSITION", "CURRENT_TIMESTAMP")


def _rename_functions(tokens: list[Token], edits: _Edits, removed: set[int]) -> None:
    """Prefix ``VELARIA_`` to the functions PostgreSQL would parse as special syntax.

    ``POSITION(a IN b)`` is PostgreSQL's own syntax and is left alone (only the two-argument
    call form ``POSITION(a, b)`` is renamed).
    """
    for i, tok in enumerate(tokens):
        nxt = _at(tokens, i + 1)
        if (i not in removed and tok.is_word(*_RENAMED_FUNCTIONS)
                and nxt is not None and nxt.is_symbol("(")):
            if tok.is_word("POSITION") and _has_in_keyword(tokens, i + 2, nxt.depth + 1):
                continue
            edits.insert(tok.start, "VELARIA_")


def _has_in_keyword(tokens: list[Token], i: int, depth: int) -> bool:
    """True when an ``IN`` word at ``depth`` comes before the parenthesis closing there."""
    for tok in tokens[i:]:
        if tok.depth < depth:
            return False
        if tok.depth == depth and tok.is_word("IN"):
            return True
    return False


# --------------------------------------------------------------------------------------------
# Step 5: ``?`` placeholders
# --------------------------------------------------------------------------------------------


def _number_placeholders(sql: str, tokens: list[Token], edits: _Edits) -> None:
    """Rewrite each ``?`` placeholder to ``$1``, ``$2``, ... in order of appearance.

    PostgreSQL only knows ``$n``; the two styles cannot be mixed in one statement.
    """
    marks = [t for t in tokens if t.is_symbol("?")]
    if not marks:
        return
    numbered = next((t for t in tokens if t.kind == PARAM), None)
    if numbered is not None:
        raise _error(sql, "cannot mix ? and $n parameter placeholders in one statement",
                     numbered.start, "Use either ? for every parameter or $1, $2, ...")
    for k, tok in enumerate(marks, start=1):
        edits.items.append((tok.start, tok.end, f"${k}"))


# --------------------------------------------------------------------------------------------
# Step 6: DESCRIBE (not PostgreSQL syntax)
# --------------------------------------------------------------------------------------------


def _rewrite_describe(tokens: list[Token], edits: _Edits) -> bool:
    """``DESCRIBE name`` becomes ``SELECT * FROM name`` and ``DESCRIBE SELECT ...`` the
    query itself; True when the statement was a DESCRIBE (its result is the query's schema)."""
    if not tokens or not tokens[0].is_word("DESCRIBE"):
        return False
    nxt = _at(tokens, 1)
    if nxt is not None and (nxt.is_word("SELECT", "WITH", "VALUES") or nxt.is_symbol("(")):
        edits.items.append((tokens[0].start, tokens[0].end, ""))
    else:
        edits.items.append((tokens[0].start, tokens[0].end, "SELECT * FROM"))
    return True


# --------------------------------------------------------------------------------------------
# Applying the edits
# --------------------------------------------------------------------------------------------


def _apply(sql: str, edits: _Edits) -> tuple[str, tuple[_Segment, ...]]:
    """Apply the edits to ``sql``; return the new text and its segment map."""
    pieces: list[str] = []
    segments: list[_Segment] = []
    pos = norm = 0

    def emit(text: str, orig_start: int, copied: bool) -> None:
        nonlocal norm
        if text:
            pieces.append(text)
            segments.append(_Segment(norm, len(text), orig_start, copied))
            norm += len(text)

    for start, end, replacement in sorted(edits.items):
        if start < pos:  # inside a span already removed
            continue
        emit(sql[pos:start], pos, True)
        if not replacement and _would_join(sql, start, end):
            replacement = " "  # keep the neighbours from fusing into one token
        emit(replacement, start, False)
        pos = end
    emit(sql[pos:], pos, True)
    return "".join(pieces), tuple(segments)


def _would_join(sql: str, start: int, end: int) -> bool:
    """True when removing ``sql[start:end]`` leaves two non-space characters touching."""
    return (start > 0 and end < len(sql) and not sql[start - 1].isspace()
            and not sql[end].isspace())


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def normalize(sql: str) -> Normalized:
    """Rewrite Velaria's extensions in ``sql`` into PostgreSQL text.

    Raises :class:`~velaria.errors.SQLSyntaxError` (``parse_error``) with a byte offset into
    ``sql`` for every malformed extension.
    """
    nul = sql.find("\x00")
    if nul >= 0:  # the parser reads a C string: everything after a NUL would be lost
        raise _error(sql, "NUL character (0x00) in SQL text", nul,
                     "Remove the NUL character; SQL text cannot contain one, not even in a literal.")
    tokens = tokenize(sql)
    _check_ascii(sql, tokens)
    check_text_depth(tokens, lambda char_index: _byte_offset(sql, char_index))
    edits = _Edits()
    removed: set[int] = set()  # token indices cut out of the text
    create = _parse_create(sql, tokens, edits, removed)

    specs: dict[str, object] = {}
    for kind, first, end in _find_clauses(tokens, removed):
        clause = tokens[first:end]
        specs[kind] = _CLAUSE_PARSERS[kind](sql, clause)  # a repeated clause: the last wins
        edits.remove(clause[0], clause[-1])
        removed.update(range(first, end))

    _rename_functions(tokens, edits, removed)
    _number_placeholders(sql, tokens, edits)
    describe = _rewrite_describe(tokens, edits)
    text, segments = _apply(sql, edits)
    return Normalized(sql, text, create, specs.get("window"), specs.get("keyword"),
                      specs.get("hybrid"), describe, segments)
