"""The docs and the messages of a fresh clone stand alone: they never point at files that only
exist outside the repository (the team's shared notes), at issue numbers or at numbered
sections of another project's spec, and every relative link in the docs resolves."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import velaria
from velaria.errors import SQLSyntaxError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["README.md", "docs", "velaria", "reference", "accel", "conformance", "benchmarks", "tests", "dev.py"]
#: this file spells out the patterns it looks for
_SELF = Path(__file__).resolve()
SUFFIXES = {".md", ".py", ".c", ".h", ".slt", ".txt", ".toml"}

#: references a reader of the repository cannot follow
FORBIDDEN = re.compile(
    r"\.\./shared|shared/(?:spec|seeds)|\bissues? ?#?\d+\b|§ ?\d|\bsection \d+(?:\.\d+)*\b"
    r"|DECISIONS\.md|perf-targets\.md|core-semantics\.md|python-api\.md|velaria_sql_capabilities",
    re.IGNORECASE)


def _shipped_files():
    for name in SHIPPED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for f in files:
            if f.is_file() and f.suffix in SUFFIXES and "__pycache__" not in f.parts and f.resolve() != _SELF:
                yield f


def test_no_reference_to_files_outside_the_repository():
    found = []
    for path in _shipped_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            match = FORBIDDEN.search(line)
            if match:
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r}")
    assert not found, "say what matters in the project's own words:\n" + "\n".join(found)


def test_the_pattern_catches_what_it_is_for():
    for text in ["see ../shared/spec/DECISIONS.md", "issue 11", "as in §4.2", "upstream section 9.6",
                 "velaria_sql_capabilities"]:
        assert FORBIDDEN.search(text), text
    for text in ["see docs/io.md", "a JSON issue with keys", "section headers", "python_api"]:
        assert not FORBIDDEN.search(text), text


_LINK = re.compile(r"\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"],
                         ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    missing = [target for target in _LINK.findall(doc.read_text(encoding="utf-8"))
               if "://" not in target and not target.startswith("mailto:")
               and not (doc.parent / target).exists()]
    assert not missing, f"{doc.name} links to files that do not exist: {missing}"


def test_unknown_function_hint_names_a_doc_that_exists():
    with pytest.raises(SQLSyntaxError) as err:
        velaria.Session().sql("SELECT frobnicate(1)")
    docs = re.findall(r"docs/[\w.-]+\.md", str(err.value))
    assert docs, str(err.value)
    assert all((ROOT / d).is_file() for d in docs)


def test_readme_python_example_runs_and_says_what_it_returns(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert blocks, "the README shows how to use the package"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)   # noqa: S102 - the README's own code
    assert namespace["result"].to_rows() == {"schema": ["k", "total"], "rows": [["a", 4], ["b", 2]]}
    assert "logical" in capsys.readouterr().out
