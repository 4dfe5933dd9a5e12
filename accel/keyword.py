"""BM25 keyword search vectorised over Arrow string buffers: the twin of
``velaria.reference.keyword.keyword_topk`` (same signature, same results bit for bit).

With the fallback tokenizer nothing is tokenized row by row. Each column's UTF-8 data buffer is
classified byte by byte with numpy:

* ASCII letters and digits form runs (tokens); a row's runs are counted with ``bincount`` and a
  query term is matched by comparing the lower-cased bytes of the runs of its length;
* three-byte UTF-8 sequences are decoded to code points; those in the CJK ranges form runs
  (consecutive characters of one row), whose token count is ``L + (L-1) + (L-2)`` n-grams plus
  the whole run when ``2 <= L <= 8``; a CJK query term of m code points is matched at every run
  position with room for m points (n-grams, m <= 3) and against whole runs of length m.

Every CJK code point is in U+3040..U+FAFF, i.e. encoded in exactly three bytes, and a byte in
0xE0..0xEF only ever starts a three-byte sequence, so the decoding needs no state. The jieba
tokenizer is a dictionary algorithm with no vector form: its tokens come from the reference
tokenizer row by row, and only the scoring is vectorised.

Scores are computed with the same float64 operations in the same order as the reference, so
they are identical, not merely close.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from velaria.reference import keyword as ref

__all__ = ["keyword_topk", "KERNELS"]

_ALNUM = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
    _ALNUM[_c] = True
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[ord("A"):ord("Z") + 1] += 32


class _ColumnTokens:
    """One column's token structure: per-row token counts and the runs terms are matched in."""

    def __init__(self, arr: pa.Array):
        arr = pc.fill_null(arr.cast(pa.large_string()), "")  # NULL contributes no tokens
        n = len(arr)
        self.n = n
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8)
        first, last = int(offsets[0]), int(offsets[-1])
        data = arr.buffers()[2]
        raw = np.frombuffer(data, dtype=np.uint8, count=last - first, offset=first) if data is not None and last > first \
            else np.zeros(0, dtype=np.uint8)
        self.row_start = offsets[:-1] - first  # byte position where each row starts
        self.lower = _LOWER[raw]
        self.doc_len = np.zeros(n, dtype=np.int64)
        # True at the first byte of every row but the first: runs never cross these
        new_row = np.zeros(raw.size + 1, dtype=bool)
        new_row[self.row_start[1:]] = True
        self._ascii_runs(raw, new_row)
        self._cjk_runs(raw)

    def _rows_of(self, positions: np.ndarray) -> np.ndarray:
        """The row index of each byte position."""
        return np.searchsorted(self.row_start, positions, side="right") - 1

    def _ascii_runs(self, raw: np.ndarray, new_row: np.ndarray) -> None:
        alnum = _ALNUM[raw]
        joins = np.zeros(raw.size + 1, dtype=bool)  # joins[i]: bytes i-1 and i are in one run
        joins[1:-1] = alnum[:-1] & alnum[1:] & ~new_row[1:-1]
        self.run_start = np.flatnonzero(alnum & ~joins[:-1])
        self.run_len = np.flatnonzero(alnum & ~joins[1:]) + 1 - self.run_start
        self.run_row = self._rows_of(self.run_start)
        self.doc_len += np.bincount(self.run_row, minlength=self.n)

    def _cjk_runs(self, raw: np.ndarray) -> None:
        lead = np.flatnonzero((raw[:-2] >= 0xE0) & (raw[:-2] <= 0xEF)) if raw.size >= 3 else np.zeros(0, np.int64)
        cps = ((raw[lead].astype(np.int64) & 0x0F) << 12) | ((raw[lead + 1].astype(np.int64) & 0x3F) << 6) \
            | (raw[lead + 2].astype(np.int64) & 0x3F)
        is_cjk = np.zeros(cps.size, dtype=bool)
        for lo, hi in ref.CJK_RANGES:
            is_cjk |= (cps >= lo) & (cps <= hi)
        pos = lead[is_cjk]
        self.cps = cps[is_cjk]
        rows = self._rows_of(pos)
        self.cp_row = rows
        new_run = np.ones(pos.size, dtype=bool)
        new_run[1:] = (pos[1:] != pos[:-1] + 3) | (rows[1:] != rows[:-1])
        starts = np.flatnonzero(new_run)
        self.cjk_start = starts                                  # index into self.cps
        self.cjk_len = np.diff(np.append(starts, pos.size))
        self.cjk_row = rows[starts] if starts.size else np.zeros(0, np.int64)
        run_of = np.cumsum(new_run) - 1
        self.room = (self.cjk_len[run_of] - (np.arange(pos.size) - starts[run_of])) if pos.size else \
            np.zeros(0, np.int64)                               # points from here to the run's end
        L = self.cjk_len
        tokens = L + np.maximum(L - 1, 0) + np.maximum(L - 2, 0) + ((L >= 2) & (L <= 8))
        self.doc_len += np.bincount(self.cjk_row, weights=tokens, minlength=self.n).astype(np.int64)

    def term_frequency(self, term: str) -> np.ndarray:
        """How many of each row's tokens equal ``term`` (a fallback-tokenizer token)."""
        if term.isascii():
            body = np.frombuffer(term.encode(), dtype=np.uint8)
            # runs of the term's length whose first byte matches, then every byte
            pick = np.flatnonzero(self.run_len == body.size)
            pick = pick[self.lower[self.run_start[pick]] == body[0]]
            if pick.size and body.size > 1:
                same = (self.lower[self.run_start[pick][:, None] + np.arange(1, body.size)] == body[1:]).all(axis=1)
                pick = pick[same]
            return np.bincount(self.run_row[pick], minlength=self.n)
        points = np.array([ord(c) for c in term], dtype=np.int64)
        m = points.size
        tf = np.zeros(self.n, dtype=np.int64)
        if m <= 3 and self.cps.size:  # n-grams
            hit = self.room >= m
            for j in range(m):
                shifted = np.full(self.cps.size, -1, dtype=np.int64)
                shifted[:self.cps.size - j] = self.cps[j:]
                hit &= shifted == points[j]
            tf += np.bincount(self.cp_row[hit], minlength=self.n)
        if 2 <= m <= 8:  # whole runs
            whole = np.flatnonzero(self.cjk_len == m)
            if whole.size:
                same = (self.cps[self.cjk_start[whole][:, None] + np.arange(m)] == points).all(axis=1)
                tf += np.bincount(self.cjk_row[whole[same]], minlength=self.n)
        return tf


def _row_tokens_counts(columns, terms, tokenizer):
    """doc_len and tf per term, tokenizing row by row with the reference tokenizer (jieba)."""
    texts = [ref.column_texts(c) for c in columns]
    n = len(texts[0])
    doc_len = np.zeros(n, dtype=np.int64)
    tf = np.zeros((len(terms), n), dtype=np.int64)
    index = {t: j for j, t in enumerate(terms)}
    for column in texts:
        for row, text in enumerate(column):
            if text is None:
                continue
            tokens = ref.tokenize(text, tokenizer)
            doc_len[row] += len(tokens)
            for tok in tokens:
                j = index.get(tok)
                if j is not None:
                    tf[j, row] += 1
    return doc_len, tf


def _as_text_array(column) -> pa.Array:
    """The column as an Arrow string array (non-string values converted like the reference)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if isinstance(column, pa.Array) and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    return pa.array(ref.column_texts(column), pa.large_string())


def _check_tokenizer(tokenizer) -> None:
    if tokenizer not in ref.TOKENIZERS:
        raise ValueError(f"keyword tokenizer must be one of: {', '.join(ref.TOKENIZERS)} (got {tokenizer!r})")


def _term_counts(columns, terms: list[str], tokenizer: str) -> tuple[np.ndarray, np.ndarray]:
    """doc_len per row and tf per (term, row)."""
    if tokenizer != "fallback":
        return _row_tokens_counts(columns, terms, tokenizer)
    parsed = [_ColumnTokens(_as_text_array(c)) for c in columns]
    n = parsed[0].n if parsed else 0
    doc_len = sum((p.doc_len for p in parsed), np.zeros(n, dtype=np.int64))
    tf = np.array([sum((p.term_frequency(t) for p in parsed), np.zeros(n, dtype=np.int64)) for t in terms],
                  dtype=np.int64).reshape(len(terms), n)
    return doc_len, tf


def keyword_stats(columns, query, tokenizer="fallback"):
    """``(N, total doc_len, [df per query term])`` (the reference's ``keyword_stats``)."""
    _check_tokenizer(tokenizer)
    terms = ref.query_terms(query, tokenizer)
    doc_len, tf = _term_counts(columns, terms, tokenizer)
    return int(doc_len.size), int(doc_len.sum()), [int(np.count_nonzero(tf[j])) for j in range(len(terms))]


def keyword_topk(columns, query, top_k, tokenizer="fallback", corpus=None):
    """BM25 top-k rows: ``(row_indices, scores)``, best first, ties by ascending row index;
    ``corpus``: the whole corpus's ``keyword_stats`` when these rows are one part of it."""
    _check_tokenizer(tokenizer)
    terms = ref.query_terms(query, tokenizer)
    doc_len, tf = _term_counts(columns, terms, tokenizer)
    n = doc_len.size
    if n == 0:
        return [], []
    if corpus is None:
        corpus = (n, int(doc_len.sum()), [int(np.count_nonzero(tf[j])) for j in range(len(terms))])
    total_rows, total_len, dfs = corpus
    avgdl = total_len / total_rows
    if avgdl != 0:
        norm = 1 - ref.B + ref.B * doc_len.astype(np.float64) / avgdl
    else:
        norm = np.ones(n, dtype=np.float64)
    score = np.zeros(n, dtype=np.float64)
    for j in range(len(terms)):
        f = tf[j].astype(np.float64)
        idf = math.log(1 + (total_rows - dfs[j] + 0.5) / (dfs[j] + 0.5))
        # a zero tf adds exactly +0.0, the same as the reference skipping the term
        score += idf * (f * (ref.K1 + 1)) / (f + ref.K1 * norm)
    hits = np.flatnonzero(score > 0)
    order = hits[np.lexsort((hits, -score[hits]))][:top_k]
    return order.tolist(), score[order].tolist()


KERNELS = {"keyword_topk": keyword_topk, "keyword_stats": keyword_stats}
