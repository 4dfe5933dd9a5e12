"""The file-input (issue #3) and vector (issue #4) contract clauses against velaria.

Runs ``conformance/clauses_io.py`` (``io-*``) and ``conformance/clauses_vector.py``
(``vector-*``) in-process through the runner, under every engine configuration, and requires
zero failures. Also checks that the families exist and that their divergence tags are in place,
so a run against native Velaria reports "diverges-by-design" instead of failing.
"""
from __future__ import annotations

import types

import pytest

from velaria.conformance import all_clauses, runner

PREFIXES = ("io-", "vector-", "keyword-")
CONFIGS = [{}, {"engine": "reference"}, {"batch_rows": 1}]

# Clauses that fail because the engine is wrong (reported; owners: velaria/vector, velaria/sql).
# Passed to the runner as an xfail list, so each entry turns into "XPASS (stale xfail)" -- a
# failure -- the moment the engine is fixed, and must then be removed from here.
#: clause id -> reason, for engine bugs that are known and not yet fixed (none now)
KNOWN_ENGINE_BUGS: dict[str, str] = {}


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("kwargs", CONFIGS, ids=["default", "engine=reference", "batch_rows=1"])
def test_velaria_conforms(prefix, kwargs):
    xfail = {k: v for k, v in KNOWN_ENGINE_BUGS.items() if k.startswith(prefix)}
    report = runner.run("velaria", clause_prefix=prefix, native=False, session_kwargs=kwargs, xfail=xfail)
    assert len(report.results) >= 10
    assert report.ok, report.format()


def test_families_and_divergence_tags():
    ids = {c.id: c for c in all_clauses()}
    families = {i.rsplit("-", 1)[0] for i in ids if i.startswith(PREFIXES)}
    assert families >= {"io-probe", "io-read", "io-using", "io-options", "io-ddl", "io-path",
                        "vector-explain", "vector-search", "vector-ties", "vector-error",
                        "vector-ingest", "vector-hybrid"}
    for cid in ("io-ddl-003", "io-path-001", "vector-ties-001", "vector-error-001", "vector-explain-002"):
        assert ids[cid].diverges, cid
    for cid in ("io-probe-002", "io-read-001", "io-using-001", "vector-explain-001", "vector-search-002"):
        assert not ids[cid].diverges, cid


def test_clauses_catch_a_wrong_target():
    """A target whose probe scores, explain order and tie order are wrong fails those clauses,
    and a target without file readers / vector search reports 'API missing', not a crash."""
    import velaria

    class WrongSession(velaria.Session):
        def probe(self, path):
            out = super().probe(path)
            out["score"] += 1
            return out

        def explain_vector_search(self, *args, **kwargs):
            lines = super().explain_vector_search(*args, **kwargs).splitlines()
            return "\n".join(lines[:5] + [lines[6], lines[7], lines[5]]) + "\n"

    wrong = types.ModuleType("wrong_target")
    wrong.Session = WrongSession
    report = runner.run(wrong, clause_prefix="io-probe-002", native=False)
    assert [r.outcome for r in report.results] == ["FAIL"]
    assert "score" in report.results[0].detail and "P['users.csv']" in report.results[0].repro
    report = runner.run(wrong, clause_prefix="vector-explain-001", native=False)
    assert [r.outcome for r in report.results] == ["FAIL"]

    class Bare:
        def __init__(self, **_kwargs):
            pass

    bare = types.ModuleType("bare_target")
    bare.Session = Bare
    for prefix in PREFIXES:
        report = runner.run(bare, clause_prefix=prefix, native=False)
        assert report.results and all(r.outcome.startswith("error: API missing") for r in report.results
                                      if r.clause.id not in ("vector-explain-002", "vector-levels-001")), report.format()
    # diverging clauses on a native target report diverges-by-design, not FAIL
    report = runner.run(bare, clause_prefix="vector-ties-001", native=True)
    assert [r.outcome for r in report.results] == ["diverges-by-design"]
