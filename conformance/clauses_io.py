"""Clauses on the batch file-input contract.

What they pin: the runtime contract's batch file input rules; native Velaria's ``probe``
dict, probe algorithm and its worked examples, the explicit readers, ``OPTIONS(key: 'value')``
syntax and ``CREATE TABLE`` over files. Clauses tagged ``diverges`` name their
docs/divergences.md row.

Every clause writes its files into its own temporary directory (never into the repository).
Comparisons between two ways of reading the same file (``read`` vs the explicit reader, DDL vs
the explicit reader) compare the target with itself, so they hold under any value-typing rule.
"""
from __future__ import annotations

import os
import pathlib
import tempfile
from contextlib import contextmanager

from . import ApiMissing, ClauseFailure, Context, NativeBehaviour, clause, contract_or_native

PROBE_KEYS = ["path", "kind", "final_format", "score", "confidence", "schema", "suggested_table_name",
              "warnings", "candidates"]
EXTRA_KEYS = {"csv": ["delimiter"], "line": ["mode", "delimiter", "mappings"], "json": ["format", "columns"]}
CANDIDATE_KEYS = ["format", "kind", "score", "reason", "evidence"]

LOW = "probe confidence is low; consider explicit USING ... OPTIONS(...)"
WEAK = "probe selected a weak fallback candidate"

USERS = "user_id,name\n1,alice\n2,bob\n"
PIPE = "1001|ok|12.5\n1002|fail|9.5\n"
JSONL = '{"user_id":1,"name":"alice"}\n{"user_id":2,"name":"bob"}\n'
ARRAY = '[{"event":"open","cost":1.5},{"event":"close","cost":2.5}]'
TSV = "user_id\tname\n1\talice\n2\tbob\n"
SPACE_LOG = "hello world foo\nbar baz qux\n"
SPLIT_LOG = "1001 ok 12.5\n1002 fail 9.5\n"


def _expect(cond: bool, msg: str, repro: str | None = None):
    if not cond:
        raise ClauseFailure(msg, repro)


@contextmanager
def _files(files: dict[str, str]):
    """A fresh temporary directory holding ``files`` (name -> exact text, UTF-8, no newline
    translation); yields ``{name: absolute path}``."""
    with tempfile.TemporaryDirectory(prefix="velaria_conf_") as d:
        paths = {}
        for name, text in files.items():
            p = os.path.join(d, name)
            with open(p, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            paths[name] = p
        yield paths


def _repro(ctx: Context, files: dict[str, str], code: str) -> str:
    """A runnable snippet: writes ``files`` into a temp dir (``P[name]`` is the path), then ``code``."""
    lines = ["import os, tempfile", "import %s as target" % ctx.target_name, "s = %s" % ctx.session_expr(),
             "d = tempfile.mkdtemp()", "P = {}"]
    for name, text in files.items():
        lines.append("P[%r] = os.path.join(d, %r)" % (name, name))
        lines.append("open(P[%r], 'w', encoding='utf-8', newline='').write(%r)" % (name, text))
    return "\n".join(lines + [code])


def _sql_str(path: str) -> str:
    """``path`` as an SQL string literal body (``'`` doubled)."""
    return path.replace("'", "''")


# ------------------------------------------------------------------------------------ probe shape

@clause("io-probe-001", "probe() dict: keys in order path..candidates then the per-kind extras; candidate keys "
        "format, kind, score, reason, evidence; value types")
def probe_shape(ctx: Context):
    files = {"users.csv": USERS, "pipe.csv": PIPE, "events.jsonl": JSONL}
    with _files(files) as paths:
        s = ctx.session()
        probe = ctx.api(s, "probe")
        for name, p in paths.items():
            repro = _repro(ctx, files, "print(s.probe(P[%r]))" % name)
            out = probe(p)
            _expect(isinstance(out, dict), "probe(%s) returned %s, expected dict" % (name, type(out).__name__), repro)
            kind = out.get("kind")
            _expect(kind in EXTRA_KEYS, "probe(%s)['kind'] is %r, expected csv, line or json" % (name, kind), repro)
            want = PROBE_KEYS + EXTRA_KEYS[kind]
            _expect(list(out) == want, "probe(%s) keys are %r, expected %r" % (name, list(out), want), repro)
            _expect(out["path"] == p, "probe(%s)['path'] is %r, expected the path as given %r" % (name, out["path"], p),
                    repro)
            _expect(type(out["score"]) is int, "score must be int, got %r" % (out["score"],), repro)
            _expect(out["confidence"] in ("high", "medium", "low"), "confidence is %r" % (out["confidence"],), repro)
            for key in ("schema", "warnings"):
                _expect(type(out[key]) is list and all(type(x) is str for x in out[key]),
                        "%s must be a list of str, got %r" % (key, out[key]), repro)
            _expect(type(out["suggested_table_name"]) is str, "suggested_table_name must be str", repro)
            _expect(type(out["candidates"]) is list and out["candidates"], "candidates must be a non-empty list", repro)
            for c in out["candidates"]:
                _expect(type(c) is dict and list(c) == CANDIDATE_KEYS,
                        "candidate keys are %r, expected %r" % (list(c) if isinstance(c, dict) else c, CANDIDATE_KEYS),
                        repro)
                _expect(type(c["score"]) is int and type(c["evidence"]) is list, "candidate types: %r" % (c,), repro)
                _expect(c["reason"] == "; ".join(c["evidence"]),
                        "candidate reason %r is not its evidence joined with '; ' (%r)" % (c["reason"], c["evidence"]),
                        repro)
            best = out["candidates"][0]
            _expect((best["format"], best["kind"], best["score"]) == (out["final_format"], out["kind"], out["score"]),
                    "the first candidate %r does not supply final_format/kind/score %r"
                    % (best, (out["final_format"], out["kind"], out["score"])), repro)
            scores = [c["score"] for c in out["candidates"]]
            _expect(scores == sorted(scores, reverse=True), "candidates are not sorted by score: %r" % scores, repro)
            if kind == "line":
                _expect(out["mappings"] == [{"column": "c%d" % i, "source_index": i} for i in range(len(out["schema"]))],
                        "line mappings are %r, expected c<i> -> i for schema %r" % (out["mappings"], out["schema"]),
                        repro)


# ------------------------------------------------------------------------------------ worked examples

def _cand(fmt: str, kind: str, score: int, *evidence: str) -> dict:
    return {"format": fmt, "kind": kind, "score": score, "reason": "; ".join(evidence), "evidence": list(evidence)}


def _split_mappings(n: int) -> list[dict]:
    return [{"column": "c%d" % i, "source_index": i} for i in range(n)]


# (clause id, file name, content, expected probe dict without 'path', title)
WORKED = [
    ("io-probe-002", "users.csv", USERS, {
        "kind": "csv", "final_format": "csv", "score": 91, "confidence": "high",
        "schema": ["user_id", "name"], "suggested_table_name": "users", "warnings": [],
        "candidates": [
            _cand("csv", "csv", 91, "delimiter=,;columns=2;header=true", "matching delimited extension"),
            _cand("csv", "csv", 55, "csv extension fallback"),
            _cand("line_split", "line", 36, "delimiter=,;columns=2;header=false", "header not trusted for line fallback"),
        ],
        "delimiter": ","}, "users.csv with a header: csv 91 high, delimiter ','"),
    ("io-probe-003", "pipe.csv", PIPE, {
        "kind": "line", "final_format": "line_split", "score": 73, "confidence": "medium",
        "schema": ["c0", "c1", "c2"], "suggested_table_name": "pipe", "warnings": [],
        "candidates": [
            _cand("line_split", "line", 73, "delimiter=|;columns=3;header=false", "stable split columns without header"),
            _cand("csv", "csv", 55, "csv extension fallback"),
        ],
        "mode": "split", "delimiter": "|", "mappings": _split_mappings(3)},
     "pipe-delimited .csv without a header: line_split 73 medium, split on '|'"),
    ("io-probe-004", "pipe", PIPE, {
        "kind": "line", "final_format": "line_split", "score": 73, "confidence": "medium",
        "schema": ["c0", "c1", "c2"], "suggested_table_name": "pipe", "warnings": [],
        "candidates": [
            _cand("line_split", "line", 73, "delimiter=|;columns=3;header=false", "stable split columns without header"),
        ],
        "mode": "split", "delimiter": "|", "mappings": _split_mappings(3)},
     "the pipe content without an extension: line_split 73 medium, no warnings"),
    ("io-probe-005", "u.jsonl", JSONL, {
        "kind": "json", "final_format": "json_lines", "score": 100, "confidence": "high",
        "schema": ["user_id", "name"], "suggested_table_name": "u", "warnings": [],
        "candidates": [
            _cand("json_lines", "json", 100, "content starts with object", "newline-delimited objects",
                  "jsonl/ndjson extension"),
            _cand("line_split", "line", 54, "delimiter=,;columns=2;header=false", "stable split columns without header"),
        ],
        "format": "json_lines", "columns": ["user_id", "name"]},
     "u.jsonl: json_lines 100 high, line_split 54"),
    ("io-probe-006", "u.json", JSONL, {
        "kind": "json", "final_format": "json_lines", "score": 100, "confidence": "high",
        "schema": ["user_id", "name"], "suggested_table_name": "u", "warnings": [],
        "candidates": [
            _cand("json_lines", "json", 100, "content starts with object", "newline-delimited objects"),
            _cand("line_split", "line", 54, "delimiter=,;columns=2;header=false", "stable split columns without header"),
        ],
        "format": "json_lines", "columns": ["user_id", "name"]},
     "JSON lines in u.json: json_lines 100 high, no jsonl/ndjson evidence"),
    ("io-probe-007", "arr", ARRAY, {
        "kind": "json", "final_format": "json_array", "score": 94, "confidence": "high",
        "schema": ["event", "cost"], "suggested_table_name": "arr", "warnings": [],
        "candidates": [
            _cand("json_array", "json", 94, "content starts with array"),
            _cand("line_split", "line", 60, "delimiter=,;columns=4;header=false", "stable split columns without header"),
        ],
        "format": "json_array", "columns": ["event", "cost"]},
     "a JSON array without an extension: json_array 94 high, line_split 60"),
    ("io-probe-008", "t.tsv", TSV, {
        "kind": "csv", "final_format": "tsv", "score": 91, "confidence": "high",
        "schema": ["user_id", "name"], "suggested_table_name": "t", "warnings": [],
        "candidates": [
            _cand("tsv", "csv", 91, "delimiter=\\t;columns=2;header=true", "matching delimited extension"),
            _cand("tsv", "csv", 55, "tsv extension fallback"),
            _cand("line_split", "line", 36, "delimiter=\\t;columns=2;header=false",
                  "header not trusted for line fallback"),
        ],
        "delimiter": "\t"}, "t.tsv with a header: tsv 91 high, delimiter TAB"),
    ("io-probe-009", "app.log", SPACE_LOG, {
        "kind": "csv", "final_format": "csv", "score": 74, "confidence": "medium",
        "schema": ["hello", "world", "foo"], "suggested_table_name": "app", "warnings": [],
        "candidates": [
            _cand("csv", "csv", 74, "delimiter=space;columns=3;header=true", "header-shaped first row"),
            _cand("line_split", "line", 47, "delimiter=space;columns=3;header=false",
                  "header not trusted for line fallback", "line-oriented extension"),
        ],
        "delimiter": " "}, "space-delimited app.log with word cells: csv 74 medium, delimiter space"),
    ("io-probe-010", "one.txt", "single\n", {
        "kind": "line", "final_format": "line_split", "score": 15, "confidence": "low",
        "schema": ["c0"], "suggested_table_name": "one", "warnings": [LOW, WEAK],
        "candidates": [_cand("line_split", "line", 15, "no stable delimiter match", "fallback line split candidate")],
        "mode": "split", "delimiter": " ", "mappings": _split_mappings(1)},
     "one.txt with one word: line_split 15 low, low-confidence and weak-fallback warnings"),
    ("io-probe-011", "ragged.txt", "a b\nc\n", {
        "kind": "line", "final_format": "line_split", "score": 15, "confidence": "low",
        "schema": ["c0", "c1"], "suggested_table_name": "ragged", "warnings": [LOW, WEAK],
        "candidates": [_cand("line_split", "line", 15, "no stable delimiter match", "fallback line split candidate")],
        "mode": "split", "delimiter": " ", "mappings": _split_mappings(2)},
     "ragged.txt 'a b' / 'c': line_split 15 low, schema [c0, c1] split on space"),
]


def _make_worked(cid: str, name: str, content: str, expected: dict, title: str):
    @clause(cid, title, repro=None)
    def worked(ctx: Context):
        with _files({name: content}) as paths:
            p = paths[name]
            out = ctx.api(ctx.session(), "probe")(p)
            want = {"path": p, **expected}
            if out != want:
                diff = ["  %s: got %r, expected %r" % (k, out.get(k, "<missing>"), want.get(k, "<absent>"))
                        for k in list(want) + [k for k in out if k not in want] if out.get(k, "<missing>") != want.get(k, "<absent>")]
                raise ClauseFailure("probe(%r) differs from the worked example:\n%s" % (name, "\n".join(diff)),
                                    _repro(ctx, {name: content}, "print(s.probe(P[%r]))" % name))
            _expect(list(out) == list(want), "probe(%r) key order %r, expected %r" % (name, list(out), list(want)))

    worked.__name__ = "probe_" + cid.replace("-", "_")
    return worked


for _args in WORKED:
    _make_worked(*_args)


@clause("io-probe-012", "probe path is the path as given; suggested_table_name is the unsanitised stem "
        "('my-data.v2.csv' -> 'my-data.v2')")
def probe_name(ctx: Context):
    files = {"my-data.v2.csv": USERS}
    with _files(files) as paths:
        p = paths["my-data.v2.csv"]
        given = os.path.join(os.path.dirname(p), ".", "my-data.v2.csv")
        out = ctx.api(ctx.session(), "probe")(given)
        repro = _repro(ctx, files, "print(s.probe(os.path.join(d, '.', 'my-data.v2.csv')))")
        _expect(out["path"] == given, "path is %r, expected the path as given %r" % (out["path"], given), repro)
        _expect(out["suggested_table_name"] == "my-data.v2",
                "suggested_table_name is %r, expected 'my-data.v2'" % (out["suggested_table_name"],), repro)


@clause("io-probe-013", "CRLF line endings probe like LF (sample lines are trimmed)")
def probe_crlf(ctx: Context):
    files = {"lf.csv": USERS, "crlf.csv": USERS.replace("\n", "\r\n"),
             "lf.log": SPLIT_LOG, "crlf.log": SPLIT_LOG.replace("\n", "\r\n")}
    with _files(files) as paths:
        s = ctx.session()
        probe = ctx.api(s, "probe")
        for ext in ("csv", "log"):
            a = {k: v for k, v in probe(paths["lf." + ext]).items() if k not in ("path", "suggested_table_name")}
            b = {k: v for k, v in probe(paths["crlf." + ext]).items() if k not in ("path", "suggested_table_name")}
            _expect(a == b, "CRLF .%s probes as %r, LF as %r" % (ext, b, a),
                    _repro(ctx, files, "print(s.probe(P['lf.%s']))\nprint(s.probe(P['crlf.%s']))" % (ext, ext)))


# ------------------------------------------------------------------------------------ reader equivalence

def _explicit_reader(ctx: Context, s, p: str, probe: dict):
    """The explicit reader called with the probe's options."""
    kind = probe["kind"]
    if kind == "csv":
        return ctx.api(s, "read_csv")(p, delimiter=probe["delimiter"]), \
            "s.read_csv(P[%%r], delimiter=%r)" % probe["delimiter"]
    if kind == "line":
        mappings = [(m["column"], m["source_index"]) for m in probe["mappings"]]
        return ctx.api(s, "read_line_file")(p, mappings, mode=probe["mode"], split_delimiter=probe["delimiter"]), \
            "s.read_line_file(P[%%r], %r, mode=%r, split_delimiter=%r)" % (mappings, probe["mode"], probe["delimiter"])
    if kind == "json":
        return ctx.api(s, "read_json")(p, list(probe["columns"]), format=probe["format"]), \
            "s.read_json(P[%%r], %r, format=%r)" % (list(probe["columns"]), probe["format"])
    raise ClauseFailure("probe returned unknown kind %r" % (kind,))


# (clause id, file name, content, expected kind, title)
EQUIV = [
    ("io-read-001", "scores.csv", "name,score\nalice,1.5\nbob,2\ncarol,\n", "csv", "csv"),
    ("io-read-002", "scores.tsv", "name\tscore\nalice\t1.5\nbob\t2\n", "csv", "tsv"),
    ("io-read-003", "pipe.csv", PIPE, "line", "pipe-delimited (probed as line)"),
    ("io-read-004", "events.jsonl", '{"event":"open","cost":1.5}\n{"event":"close","cost":2}\n', "json", "JSON lines"),
    ("io-read-005", "events.json", ARRAY, "json", "JSON array"),
    ("io-read-006", "app.log", SPACE_LOG, "csv", "space-delimited log with a header-shaped first line (probed as csv)"),
    ("io-read-007", "access.log", SPLIT_LOG, "line", "space-delimited log without a header (probed as line)"),
]


def _make_equiv(cid: str, name: str, content: str, kind: str, what: str):
    @clause(cid, "read(p) equals the explicit reader with the probe's options: %s" % what)
    def equiv(ctx: Context):
        with _files({name: content}) as paths:
            p = paths[name]
            s = ctx.session()
            probe = ctx.api(s, "probe")(p)
            _expect(probe["kind"] == kind, "probe(%r) kind is %r, expected %r" % (name, probe["kind"], kind),
                    _repro(ctx, {name: content}, "print(s.probe(P[%r]))" % name))
            explicit, call = _explicit_reader(ctx, s, p, probe)
            want = explicit.to_rows()
            got = ctx.api(s, "read")(p).to_rows()
            repro = _repro(ctx, {name: content},
                           "print(s.read(P[%r]).to_rows())\nprint(%s.to_rows())" % (name, call % name))
            _expect(got == want, "read(%r).to_rows() = %r\nexplicit reader gives %r" % (name, got, want), repro)
            _expect(got["schema"] == probe["schema"],
                    "read(%r) schema %r differs from the probe's schema %r" % (name, got["schema"], probe["schema"]), repro)

    equiv.__name__ = "read_" + cid.replace("-", "_")
    return equiv


for _args in EQUIV:
    _make_equiv(*_args)


# ------------------------------------------------------------------------------------ CREATE TABLE

def _ddl(ctx: Context, s, sql: str, files: dict, follow: str = ""):
    try:
        return ctx.api(s, "sql")(sql).to_rows()
    except (ClauseFailure, AssertionError, ApiMissing, AttributeError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise ClauseFailure("%s raised %s: %s" % (sql, type(exc).__name__, exc),
                            _repro(ctx, files, "s.sql(%r)%s" % (sql, follow))) from exc


def _raises(ctx: Context, fn, needle: str, what: str, repro: str, cls=RuntimeError) -> BaseException:
    try:
        fn()
    except (ApiMissing, AttributeError):  # a missing API is reported as such by the runner
        raise
    except Exception as exc:  # noqa: BLE001
        _expect(isinstance(exc, cls), "%s raised %s (not a %s): %s" % (what, type(exc).__name__, cls.__name__, exc),
                repro)
        _expect(needle in str(exc), "%s: error text lacks %r: %s" % (what, needle, exc), repro)
        return exc
    raise ClauseFailure("%s succeeded; expected %s containing %r" % (what, cls.__name__, needle), repro)


@clause("io-using-001", "USING csv overrides probing: a pipe-delimited .csv probed as line becomes a csv table "
        "with OPTIONS(delimiter: '|')")
def using_csv_overrides(ctx: Context):
    files = {"pipe.csv": PIPE}
    with _files(files) as paths:
        p = paths["pipe.csv"]
        s = ctx.session()
        _expect(ctx.api(s, "probe")(p)["kind"] == "line", "pipe.csv is not probed as line (see io-probe-003)")
        sql = "CREATE TABLE t USING csv OPTIONS(path: '%s', delimiter: '|')" % _sql_str(p)
        repro = _repro(ctx, files, "s.sql(\"CREATE TABLE t USING csv OPTIONS(path: '%s', delimiter: '|')\" % P['pipe.csv'])\n"
                       "print(s.sql('SELECT * FROM t').to_rows())\nprint(s.read_csv(P['pipe.csv'], delimiter='|').to_rows())")
        _ddl(ctx, s, sql, files)
        got = ctx.api(s, "sql")("SELECT * FROM t").to_rows()
        want = ctx.api(s, "read_csv")(p, delimiter="|").to_rows()
        _expect(got["schema"] == ["1001", "ok", "12.5"],
                "USING csv table has schema %r, expected the first line as header ['1001', 'ok', '12.5']"
                % (got["schema"],), repro)
        _expect(got == want, "USING csv table gives %r, read_csv(delimiter='|') gives %r" % (got, want), repro)


@clause("io-using-002", "USING line overrides probing: a csv-probed file read as split lines with OPTIONS(columns: ...)")
def using_line_overrides(ctx: Context):
    files = {"users.csv": USERS}
    with _files(files) as paths:
        p = paths["users.csv"]
        s = ctx.session()
        _expect(ctx.api(s, "probe")(p)["kind"] == "csv", "users.csv is not probed as csv (see io-probe-002)")
        sql = "CREATE TABLE t USING line OPTIONS(path: '%s', delimiter: ',', columns: 'a,b')" % _sql_str(p)
        repro = _repro(ctx, files, "s.sql(\"CREATE TABLE t USING line OPTIONS(path: '%s', delimiter: ',', "
                       "columns: 'a,b')\" % P['users.csv'])\nprint(s.sql('SELECT * FROM t').to_rows())")
        _ddl(ctx, s, sql, files)
        got = ctx.api(s, "sql")("SELECT * FROM t").to_rows()
        want = ctx.api(s, "read_line_file")(p, [("a", 0), ("b", 1)], mode="split", split_delimiter=",").to_rows()
        _expect(got["schema"] == ["a", "b"] and len(got["rows"]) == 3,
                "USING line table is %r, expected columns a, b and 3 rows (the header line is data)" % (got,), repro)
        _expect(got == want, "USING line table gives %r, read_line_file gives %r" % (got, want), repro)


@clause("io-options-001", "OPTIONS keys are case-insensitive (PATH, Delimiter) and the provider is case-insensitive (USING CSV)")
def options_case(ctx: Context):
    files = {"pipe.csv": PIPE}
    with _files(files) as paths:
        p = _sql_str(paths["pipe.csv"])
        s = ctx.session()
        sql = "CREATE TABLE t USING CSV OPTIONS(PATH: '%s', Delimiter: '|')" % p
        _ddl(ctx, s, sql, files)
        got = ctx.api(s, "sql")("SELECT * FROM t").to_rows()
        want = ctx.api(s, "read_csv")(paths["pipe.csv"], delimiter="|").to_rows()
        _expect(got == want, "%s gives %r, expected %r (read_csv with delimiter '|')" % (sql, got, want),
                _repro(ctx, files, "s.sql(\"CREATE TABLE t USING CSV OPTIONS(PATH: '%s', Delimiter: '|')\" % "
                                   "P['pipe.csv'])\nprint(s.sql('SELECT * FROM t').to_rows())"))


@clause("io-options-002", "OPTIONS values are single-quoted strings in which '' is one quote (a path with an apostrophe)")
def options_quote_escape(ctx: Context):
    name = "o'brien.csv"
    files = {name: USERS}
    with _files(files) as paths:
        p = paths[name]
        s = ctx.session()
        sql = "CREATE TABLE t OPTIONS(path: '%s')" % _sql_str(p)
        _ddl(ctx, s, sql, files)
        got = ctx.api(s, "sql")("SELECT * FROM t").to_rows()
        want = ctx.api(s, "read_csv")(p).to_rows()
        _expect(got == want, "%s gives %r, expected %r" % (sql, got, want),
                _repro(ctx, files, "s.sql(\"CREATE TABLE t OPTIONS(path: '%%s')\" %% P[%r].replace(\"'\", \"''\"))\n"
                                   "print(s.sql('SELECT * FROM t').to_rows())" % name))


@clause("io-options-003", "OPTIONS entries must be key: value pairs: 'OPTIONS entries must be key: value pairs.'")
def options_syntax(ctx: Context):
    s = ctx.session()
    sql = "CREATE TABLE t USING csv OPTIONS(path '/tmp/x.csv')"
    _raises(ctx, lambda: ctx.api(s, "sql")(sql).to_rows(), "OPTIONS entries must be key: value pairs.", sql,
            _repro(ctx, {}, "s.sql(%r)" % sql))


@clause("io-options-004", "an empty path option: RuntimeError 'CREATE TABLE missing option: path'")
def options_missing_path(ctx: Context):
    s = ctx.session()
    for sql in ("CREATE TABLE t USING csv OPTIONS(path: '')", "CREATE TABLE t OPTIONS(path: '')"):
        _raises(ctx, lambda: ctx.api(s, "sql")(sql).to_rows(), "CREATE TABLE missing option: path", sql,
                _repro(ctx, {}, "s.sql(%r)" % sql))


@clause("io-options-005", "an unknown provider: RuntimeError 'CREATE TABLE type/provider must be csv, line, or json'")
def options_bad_provider(ctx: Context):
    files = {"users.csv": USERS}
    with _files(files) as paths:
        s = ctx.session()
        for provider in ("orc", "xlsx"):
            sql = "CREATE TABLE t USING %s OPTIONS(path: '%s')" % (provider, _sql_str(paths["users.csv"]))
            _raises(ctx, lambda: ctx.api(s, "sql")(sql).to_rows(),
                    "CREATE TABLE type/provider must be csv, line, or json", sql,
                    _repro(ctx, files, "s.sql(\"CREATE TABLE t USING %s OPTIONS(path: '%%s')\" %% P['users.csv'])"
                           % provider))


# (file name, content) for CREATE TABLE without USING: one per kind
DDL_FILES = [("users.csv", USERS), ("pipe.csv", PIPE), ("events.jsonl", JSONL)]


@clause("io-ddl-001", "CREATE TABLE t OPTIONS(path: ...) without USING resolves the kind by probing (csv, line, json) "
        "and reads like the explicit reader")
def ddl_probes(ctx: Context):
    files = dict(DDL_FILES)
    with _files(files) as paths:
        s = ctx.session()
        for i, (name, _) in enumerate(DDL_FILES):
            p = paths[name]
            view = "t%d" % i
            sql = "CREATE TABLE %s OPTIONS(path: '%s')" % (view, _sql_str(p))
            repro = _repro(ctx, files, "s.sql(\"CREATE TABLE t OPTIONS(path: '%%s')\" %% P[%r])\n"
                           "print(s.sql('SELECT * FROM t').to_rows())\nprint(s.read(P[%r]).to_rows())" % (name, name))
            _ddl(ctx, s, sql, files)
            got = ctx.api(s, "sql")("SELECT * FROM %s" % view).to_rows()
            probe = ctx.api(s, "probe")(p)
            explicit, _call = _explicit_reader(ctx, s, p, probe)
            want = explicit.to_rows()
            _expect(got == want, "%s (probed kind %s) gives %r, the explicit reader gives %r"
                    % (name, probe["kind"], got, want), repro)


_MISSING_REPRO = """import os, tempfile
import {target} as target
s = {session}
p = os.path.join(tempfile.mkdtemp(), "nope.csv")
s.sql("CREATE TABLE t OPTIONS(path: '%s')" % p)"""


def _missing_calls(ctx: Context, s, p: str):
    """(what, call, expected text) for each entry point that must fail at call time on a missing file."""
    return [
        ("probe(missing)", lambda: ctx.api(s, "probe")(p), "cannot open file: " + p),
        ("read(missing)", lambda: ctx.api(s, "read")(p), "cannot open file: " + p),
        ("read_csv(missing)", lambda: ctx.api(s, "read_csv")(p), "cannot open csv file: " + p),
        ("CREATE TABLE t OPTIONS(path: missing)",
         lambda: ctx.api(s, "sql")("CREATE TABLE t OPTIONS(path: '%s')" % _sql_str(p)).to_rows(),
         "cannot open file: " + p),
        ("CREATE TABLE t USING csv OPTIONS(path: missing)",
         lambda: ctx.api(s, "sql")("CREATE TABLE t USING csv OPTIONS(path: '%s')" % _sql_str(p)).to_rows(),
         "cannot open file: " + p),
    ]


@clause("io-ddl-002", "a missing file is a RuntimeError at call time: 'cannot open file: <path>' (probe, read, "
        "CREATE TABLE), 'cannot open csv file: <path>' (read_csv)", repro=_MISSING_REPRO)
def missing_file_runtime(ctx: Context):
    with tempfile.TemporaryDirectory(prefix="velaria_conf_") as d:
        p = os.path.join(d, "nope.csv")
        s = ctx.session()
        for what, fn, needle in _missing_calls(ctx, s, p):
            _raises(ctx, fn, needle, what, None)


@clause("io-ddl-003", "a missing file's error is also a FileNotFoundError",
        diverges="missing-file", repro=_MISSING_REPRO)
def missing_file_fnf(ctx: Context):
    with tempfile.TemporaryDirectory(prefix="velaria_conf_") as d:
        p = os.path.join(d, "nope.csv")
        s = ctx.session()
        calls = _missing_calls(ctx, s, p)

        def contract():
            for what, fn, _needle in calls:
                _raises(ctx, fn, "", what, None, cls=FileNotFoundError)

        def native():  # a bare RuntimeError with the upstream "cannot open" text
            for what, fn, needle in calls:
                exc = _raises(ctx, fn, needle, what, None)
                if type(exc) is not RuntimeError:
                    return None
            return "every missing-file error is a bare RuntimeError with the upstream text"

        contract_or_native(contract, native)


@clause("io-path-001", "path arguments accept os.PathLike (pathlib.Path) with the same result as str",
        diverges="path-arguments")
def pathlike(ctx: Context):
    files = {"users.csv": USERS, "pipe.csv": PIPE, "events.jsonl": JSONL}
    with _files(files) as paths:
        s = ctx.session()
        users, pipe, events = (pathlib.Path(paths[n]) for n in files)
        repro = _repro(ctx, files, "import pathlib\nprint(s.probe(pathlib.Path(P['users.csv'])))")
        try:
            ctx.api(s, "probe")(users)
        except TypeError as exc:  # native: a str is required, a pathlib.Path raises TypeError
            raise NativeBehaviour("probe(pathlib.Path) raised TypeError: %s" % exc, repro) from exc
        pr = ctx.api(s, "probe")(users)
        _expect(pr["path"] == str(users) and type(pr["path"]) is str,
                "probe(Path)['path'] is %r, expected the str %r" % (pr["path"], str(users)), repro)
        _expect({k: v for k, v in pr.items() if k != "path"}
                == {k: v for k, v in ctx.api(s, "probe")(str(users)).items() if k != "path"},
                "probe(Path) differs from probe(str)", repro)
        pairs = [
            ("read", lambda x: ctx.api(s, "read")(x), users),
            ("read_csv", lambda x: ctx.api(s, "read_csv")(x), users),
            ("read_line_file", lambda x: ctx.api(s, "read_line_file")(x, [("c0", 0), ("c1", 1)], split_delimiter="|"),
             pipe),
            ("read_json", lambda x: ctx.api(s, "read_json")(x, ["user_id", "name"]), events),
        ]
        for what, fn, path in pairs:
            got, want = fn(path).to_rows(), fn(str(path)).to_rows()
            _expect(got == want, "%s(Path) gives %r, %s(str) gives %r" % (what, got, what, want), repro)


# ------------------------------------------------------------------------------------ date typing

DATES_CSV = "id,day,at\n1,2024-01-31,2024-01-31 10:11:12.5\n2,,2024-02-01T00:00:00\n"
DATES_JSONL = '{"id":1,"day":"2024-01-31","at":"2024-01-31 10:11:12.5"}\n{"id":2,"day":null,"at":"2024-02-01"}\n'


@clause("io-dates-001", "CSV and JSON readers type ISO date columns as DATE and ISO timestamp columns as "
        "TIMESTAMP; infer_dates=False keeps them text", diverges="reader-date-inference")
def reader_date_inference(ctx: Context):
    import datetime as dt

    files = {"d.csv": DATES_CSV, "d.jsonl": DATES_JSONL}
    with _files(files) as paths:
        s = ctx.session()
        repro = _repro(ctx, files, "print(s.read_csv(P['d.csv']).to_rows())")
        frames = [ctx.api(s, "read_csv")(paths["d.csv"]), ctx.api(s, "read_json")(paths["d.jsonl"])]

        def contract():
            for df in frames:
                rows = df.to_rows()["rows"]
                _expect(rows[0][1] == dt.date(2024, 1, 31) and rows[1][1] is None,
                        "day column is %r, expected DATE values" % [r[1] for r in rows], repro)
                _expect(rows[0][2] == dt.datetime(2024, 1, 31, 10, 11, 12, 500000),
                        "at column is %r, expected TIMESTAMP values" % [r[2] for r in rows], repro)
            kept = ctx.api(s, "read_csv")(paths["d.csv"], infer_dates=False).to_rows()["rows"]
            _expect(kept[0][1] == "2024-01-31", "infer_dates=False gave %r, expected the text" % kept[0][1],
                    repro)

        def native():   # native Velaria keeps ISO dates as text
            rows = frames[0].to_rows()["rows"]
            return "ISO dates stay text" if rows[0][1] == "2024-01-31" else None

        contract_or_native(contract, native)


# ------------------------------------------------------------------------------------ CSV rows

RAGGED_CSV = "id,name\n1,alice\n2,bob,extra\n3\n4,dave\n"


@clause("io-csv-001", "a CSV row whose field count differs from the header is an error naming the file and "
        "its line, never a row dropped silently", diverges="ragged-csv-rows")
def ragged_csv_rows(ctx: Context):
    files = {"ragged.csv": RAGGED_CSV}
    with _files(files) as paths:
        s = ctx.session()
        p = paths["ragged.csv"]
        repro = _repro(ctx, files, "print(s.read_csv(P['ragged.csv']).to_rows())")
        rows: list = []

        def contract():
            try:
                rows.append(ctx.api(s, "read_csv")(p).to_rows()["rows"])
            except RuntimeError as exc:
                text = str(exc)
                _expect("ragged.csv" in text and "line 3" in text,
                        "the error does not name the file and the first bad line (3): %r" % text, repro)
                return
            _expect(False, "read_csv of a file with rows of 3 and 1 fields under a 2-field header returned "
                    "%r instead of raising" % rows[-1], repro)

        def native():   # native Velaria drops rows of the wrong width without a word
            return "rows of the wrong width were dropped silently" \
                if rows and [r[0] for r in rows[-1]] == [1, 4] else None

        contract_or_native(contract, native)


@clause("io-csv-002", "a CSV file that is only a header line, with or without a final newline, reads as "
        "its columns and no rows")
def header_only_csv(ctx: Context):
    files = {"h1.csv": "id,name\n", "h2.csv": "id,name"}
    with _files(files) as paths:
        s = ctx.session()
        for name, p in paths.items():
            repro = _repro(ctx, files, "print(s.read_csv(P[%r]).to_rows())" % name)
            try:
                got = ctx.api(s, "read_csv")(p).to_rows()
            except RuntimeError as exc:
                raise ClauseFailure("read_csv(%s) raised %s: %s" % (name, type(exc).__name__, exc), repro) from exc
            _expect(got["schema"] == ["id", "name"] and got["rows"] == [],
                    "read_csv(%s).to_rows() is %r, expected schema [id, name] and no rows" % (name, got), repro)
