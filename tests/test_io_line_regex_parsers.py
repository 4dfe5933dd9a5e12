"""Regex line files: the Arrow (RE2) fast path against its reference twin (Python's re,
line by line). Same rows, types and unmatched counts for any file and supported pattern."""
from __future__ import annotations

import os
import tempfile
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.errors import VelariaError
from velaria.io.line_regex_fast import re2_pattern
from velaria.io.line_source import LineSource
from velaria.io.typed_source import clear_typing_cache

PATTERNS = [
    (r"(\w+)=(\d+)", 2),
    (r"(\S+)\s+(.*)", 2),
    (r"(?P<k>[a-z]+)(?:-(\d+))?", 2),
    (r"(a|ab)(c|bcd)?(.*)", 3),
    (r".*?(\d+).*", 1),
    (r"(x)?y", 1),
]
text = st.lists(st.sampled_from(list("ab cd=-x1y9\t\r\n\x0b\x1céé中") + ["null", "NULL", "\n"]),
                max_size=40).map("".join)


def _run(path, pattern, groups, parser):
    clear_typing_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            src = LineSource(path, [(f"g{i}", i) for i in range(groups + 1)], mode="regex",
                             regex_pattern=pattern, parser=parser)
            return (str(src.schema), [r for b in src.scan() for r in b.to_pylist()],
                    src.stats["unmatched_lines"])
        except VelariaError as exc:
            return type(exc).__name__, str(exc)


@settings(max_examples=int(os.environ.get("VELARIA_FUZZ_EXAMPLES", "80")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATTERNS), text, st.booleans(), st.sampled_from([8, 64, 1 << 20]))
def test_fast_path_agrees_with_reference(case, body, bom, chunk_bytes):
    from velaria.io import line_regex_fast

    pattern, groups = case
    fd, path = tempfile.mkstemp(suffix=".log")
    saved = line_regex_fast.CHUNK_BYTES
    line_regex_fast.CHUNK_BYTES = chunk_bytes  # small chunks: fast and reference chunks mix
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write((b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8"))
        fast = _run(path, pattern, groups, "auto")
        ref = _run(path, pattern, groups, "python")
        assert fast == ref, (pattern, body, fast, ref)
    finally:
        line_regex_fast.CHUNK_BYTES = saved
        os.unlink(path)


def test_fast_path_really_runs_on_ascii(tmp_path):
    path = tmp_path / "a.log"
    path.write_text("".join(f"k{i}={i}\n" for i in range(1000)))
    src = LineSource(str(path), [("k", 1), ("v", 2)], mode="regex", regex_pattern=r"(\w+)=(\d+)")
    assert src.stats["fast_rows"] == 1000
    assert "parser=arrow" in src.describe()


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)(a)", r"(a)\Z", r"(a++)"])
def test_patterns_re2_rejects_use_the_reference_path(pattern):
    import re

    assert re2_pattern(pattern, re.compile(pattern).groups) is None


def test_group_renaming_keeps_numbering():
    anchored, names = re2_pattern(r"(a)(?P<x>b)[(](c)", 3)
    assert names == ["_g1", "x", "_g3"]
    assert anchored == r"^(?:(?P<_g1>a)(?P<x>b)[(](?P<_g3>c))$"
