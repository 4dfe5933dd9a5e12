"""Keyword search (BM25): the readable specification (pure Python).

This module is the truth for ``keyword_topk``; ``velaria.accel`` provides a twin of the same
signature vectorised over Arrow string buffers, and the tests check that the two agree bit for
bit. The behaviour is native Velaria's keyword search:

Tokenizers (``tokenizer=``):

* ``"fallback"`` (always available):

  - maximal runs of ASCII letters and digits, lower-cased, are tokens;
  - code points in the CJK ranges (U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF, U+3040-30FF,
    U+AC00-D7AF) form runs; a run emits all its 1-grams, then all its 2-grams, then all its
    3-grams, and a run of 2 to 8 code points also emits the whole run (so a 2- or 3-point run
    counts its whole text twice, as upstream does);
  - every other character separates tokens.

* ``"jieba"`` (when the ``jieba`` package is installed): ``jieba.cut_for_search(text, HMM=True)``;
  ASCII letters are lower-cased, tokens holding neither an ASCII letter or digit nor a non-ASCII
  character (spaces, punctuation) are dropped; when that leaves nothing, the fallback tokenizer
  runs instead.

Scoring, for the deduplicated query terms (in order of first appearance):

* a row's document is the text of each listed column that is not NULL (non-string values are
  turned into text the way ``CAST(x AS STRING)`` does: ``reference.functions.to_string``); ``doc_len`` is its total token count over the columns and
  ``tf`` the count of a term in it;
* ``N`` is the number of rows, ``avgdl = sum(doc_len) / N``, ``df`` the number of rows whose
  document holds the term, ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``;
* ``norm = 1 - b + b * doc_len / avgdl`` (1 when ``avgdl`` is 0), ``k1 = 1.2``, ``b = 0.75``;
* ``score = sum(idf * (tf * (k1 + 1)) / (tf + k1 * norm))`` over the terms, summed in term order;
* rows with ``score > 0`` are kept, sorted by score descending, equal scores by ascending row
  index, and the first ``top_k`` returned.
"""
from __future__ import annotations

import math
from collections import Counter

from .functions import to_string

__all__ = ["K1", "B", "TOKENIZERS", "CJK_RANGES", "is_cjk", "fallback_tokens",
           "jieba_tokens", "jieba_available", "tokenize", "query_terms", "column_texts", "keyword_stats",
           "keyword_topk"]

K1 = 1.2
B = 0.75
#: the tokenizer names ``keyword_topk`` accepts
TOKENIZERS = ("fallback", "jieba")
#: inclusive code point ranges the fallback tokenizer treats as CJK
CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x3040, 0x30FF), (0xAC00, 0xD7AF))


def is_cjk(ch: str) -> bool:
    """True when the character's code point lies in one of :data:`CJK_RANGES`."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only (``str.lower`` would also change non-ASCII letters)."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _cjk_run_tokens(run: str) -> list[str]:
    tokens = []
    for n in (1, 2, 3):
        tokens.extend(run[i:i + n] for i in range(len(run) - n + 1))
    if 2 <= len(run) <= 8:
        tokens.append(run)
    return tokens


def fallback_tokens(text: str) -> list[str]:
    """The fallback tokenizer: lower-cased ASCII alnum runs and CJK n-grams, in text order."""
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        kind = _is_ascii_alnum if _is_ascii_alnum(text[i]) else is_cjk if is_cjk(text[i]) else None
        if kind is None:  # a separator
            i += 1
            continue
        j = i
        while j < n and kind(text[j]):
            j += 1
        if kind is is_cjk:
            tokens.extend(_cjk_run_tokens(text[i:j]))
        else:
            tokens.append(_ascii_lower(text[i:j]))
        i = j
    return tokens


def jieba_available() -> bool:
    """True when the optional ``jieba`` dictionary tokenizer can be imported."""
    try:
        import jieba  # noqa: F401
    except ImportError:
        return False
    return True


def _jieba():
    try:
        import jieba
    except ImportError:
        raise ValueError("keyword tokenizer 'jieba' needs the jieba package: pip install jieba "
                         "(or velaria[cjk]), or use tokenizer='fallback'") from None
    jieba.setLogLevel(60)  # no "Building prefix dict" chatter on stderr
    return jieba


def jieba_tokens(text: str) -> list[str]:
    """The dictionary tokenizer (``cut_for_search`` with HMM), ASCII lower-cased, separators
    dropped; the fallback tokenizer's tokens when that leaves none."""
    tokens = []
    for tok in _jieba().cut_for_search(text, HMM=True):
        if any(_is_ascii_alnum(c) or not c.isascii() for c in tok):
            tokens.append(_ascii_lower(tok))
    return tokens or fallback_tokens(text)


def tokenize(text: str, tokenizer: str = "fallback") -> list[str]:
    """The tokens of ``text`` under ``tokenizer`` (``"fallback"`` or ``"jieba"``)."""
    if tokenizer == "fallback":
        return fallback_tokens(text)
    if tokenizer == "jieba":
        return jieba_tokens(text)
    raise ValueError(f"keyword tokenizer must be one of: {', '.join(TOKENIZERS)} (got {tokenizer!r})")


def query_terms(query: str, tokenizer: str = "fallback") -> list[str]:
    """The query's tokens, deduplicated, in order of first appearance."""
    return list(dict.fromkeys(tokenize(query, tokenizer)))


def column_texts(column) -> list[str | None]:
    """A column's cells as text, NULL as None (accepts lists and Arrow arrays; non-string
    values are converted like ``CAST(x AS STRING)``)."""
    if hasattr(column, "to_pylist"):
        typ = column.type
        return [None if v is None else to_string(v, typ) for v in column.to_pylist()]
    return [None if v is None else to_string(v) for v in column]


def _idf(n_rows: int, df: int) -> float:
    return math.log(1 + (n_rows - df + 0.5) / (df + 0.5))


def _term_score(idf: float, tf: int, norm: float) -> float:
    return idf * (tf * (K1 + 1)) / (tf + K1 * norm)


def _term_counts(columns, terms: list[str], tokenizer: str) -> tuple[list[int], list[list[int]]]:
    """Per row: its document length, and the count of each term in it."""
    cells = [column_texts(c) for c in columns]
    n_rows = len(cells[0]) if cells else 0
    doc_len = [0] * n_rows
    tf = [[0] * len(terms) for _ in range(n_rows)]
    for row in range(n_rows):
        counts: Counter = Counter()
        for column in cells:
            value = column[row]
            if value is None:
                continue
            tokens = tokenize(value, tokenizer)
            doc_len[row] += len(tokens)
            counts.update(tokens)
        tf[row] = [counts[t] for t in terms]
    return doc_len, tf


def keyword_stats(columns, query, tokenizer="fallback"):
    """The corpus statistics BM25 scores depend on: ``(N, total doc_len, [df per query term])``.

    Statistics of disjoint row sets add up, so the statistics of a whole table are the sums
    over its partitions; :func:`keyword_topk` given those sums (``corpus=``) scores a
    partition's rows exactly as it would inside the whole table.
    """
    terms = query_terms(query, tokenizer)
    doc_len, tf = _term_counts(columns, terms, tokenizer)
    return len(doc_len), sum(doc_len), [sum(1 for row in tf if row[j]) for j in range(len(terms))]


def keyword_topk(columns, query, top_k, tokenizer="fallback", corpus=None):
    """BM25 top-k rows: ``(row_indices, scores)``, best first, ties by ascending row index.

    ``columns`` is a non-empty list of equally long columns (lists or Arrow arrays; NULL cells
    contribute nothing); ``query`` is the query text (it must yield at least one term, which the
    API layer checks); ``top_k`` >= 1. ``corpus`` is ``(N, total doc_len, [df per term])`` of
    the whole corpus when these rows are one part of it (see :func:`keyword_stats`); by
    default the rows are the whole corpus.
    """
    terms = query_terms(query, tokenizer)
    doc_len, tf = _term_counts(columns, terms, tokenizer)
    n_rows = len(doc_len)
    if n_rows == 0:
        return [], []
    if corpus is None:
        corpus = (n_rows, sum(doc_len), [sum(1 for row in range(n_rows) if tf[row][j]) for j in range(len(terms))])
    total_rows, total_len, dfs = corpus
    avgdl = total_len / total_rows
    idf = [_idf(total_rows, df) for df in dfs]
    scored = []
    for row in range(n_rows):
        norm = 1 - B + B * doc_len[row] / avgdl if avgdl != 0 else 1.0
        score = 0.0
        for j in range(len(terms)):
            if tf[row][j]:
                score += _term_score(idf[j], tf[row][j], norm)
        if score > 0:
            scored.append((-score, row))
    scored.sort()
    best = scored[:top_k]
    return [row for _, row in best], [-neg for neg, _ in best]
