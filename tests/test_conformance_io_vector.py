"""The file-input (``io-*``) and vector (``vector-*``) contract clauses: families, divergence tags,
and proof that they catch a wrong target.

Running them against velaria under every engine configuration is part of
``tests/test_conformance.py`` (the whole suite, isolated, under each configuration).
"""
from __future__ import annotations

import types

from velaria.conformance import all_clauses, runner

PREFIXES = ("io-", "vector-", "keyword-")


def test_families_and_divergence_tags():
    ids = {c.id: c for c in all_clauses()}
    families = {i.rsplit("-", 1)[0] for i in ids if i.startswith(PREFIXES)}
    assert families >= {"io-probe", "io-read", "io-using", "io-options", "io-ddl", "io-path",
                        "vector-explain", "vector-search", "vector-ties", "vector-error",
                        "vector-ingest", "vector-hybrid"}
    for cid, row in (("io-ddl-003", "missing-file"), ("io-path-001", "path-arguments"),
                     ("vector-ties-001", "vector-ties"), ("vector-error-001", "top-k-zero"),
                     ("vector-explain-002", "backend-names")):
        assert ids[cid].diverges == row, cid
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
    report = runner.run(wrong, clause_prefix="io-probe-002")
    assert [r.cls for r in report.results] == ["fail"]
    assert "score" in report.results[0].detail and "P['users.csv']" in report.results[0].repro
    report = runner.run(wrong, clause_prefix="vector-explain-001")
    assert [r.cls for r in report.results] == ["fail"]

    class Bare:
        def __init__(self, **_kwargs):
            pass

    bare = types.ModuleType("bare_target")
    bare.Session = Bare
    for prefix in PREFIXES:
        report = runner.run(bare, clause_prefix=prefix)
        # vector-explain-002 and vector-levels-001 check our own implementation's extras and
        # pass vacuously elsewhere; an extension clause reports ``extension`` on a target without it
        assert report.results and all(r.cls == "not-supported" or (r.cls == "extension" and r.clause.extension)
                                      for r in report.results
                                      if r.clause.id not in ("vector-explain-002", "vector-levels-001")), report.format()


def test_native_tie_order_is_diverges_by_design_and_a_wrong_cut_fails():
    """vector-ties-001: native returns the tied rows in another order (diverges-by-design); a
    target that drops a tied row for a worse one fails."""
    import velaria

    class Shuffled(velaria.Session):
        def vector_search(self, *args, **kwargs):
            df = super().vector_search(*args, **kwargs)
            out = df.to_rows()
            head = [r for r in out["rows"] if r[0] < 6][::-1]
            rows = head + [r for r in out["rows"] if r[0] >= 6]
            return types.SimpleNamespace(to_rows=lambda: {"schema": out["schema"], "rows": [list(r) for r in rows]})

    class WrongCut(velaria.Session):
        def vector_search(self, *args, **kwargs):
            out = super().vector_search(*args, **kwargs).to_rows()
            rows = [[6, 1.0]] + out["rows"][1:]
            return types.SimpleNamespace(to_rows=lambda: {"schema": out["schema"], "rows": rows})

    for cls, want in ((Shuffled, "diverges-by-design"), (WrongCut, "fail")):
        mod = types.ModuleType(cls.__name__)
        mod.Session = cls
        report = runner.run(mod, clause_prefix="vector-ties-001")
        assert [r.cls for r in report.results] == [want], report.format()


def test_csv_row_clauses_tell_native_from_wrong():
    """io-csv-001: a target that drops the ragged rows silently (native Velaria) is
    diverges-by-design; one that pads them with NULLs fails. io-csv-002: a target that fails on
    a header-only file without a final newline fails."""
    import velaria

    class Dropping(velaria.Session):
        def read_csv(self, path, *args, **kwargs):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return super().read_csv(path, *args, on_bad_lines="skip", **kwargs)

    class Padding(velaria.Session):
        def read_csv(self, path, *args, **kwargs):   # short rows padded with NULL, long ones cut
            import csv

            import pyarrow as pa
            with open(path, newline="") as handle:
                header, *rows = list(csv.reader(handle))
            rows = [(r + [None] * len(header))[:len(header)] for r in rows]
            return self.create_dataframe_from_arrow(pa.table(
                {name: [r[i] for r in rows] for i, name in enumerate(header)}))

    class HeaderOnlyFails(velaria.Session):
        def read_csv(self, path, *args, **kwargs):
            with open(path, "rb") as handle:
                if not handle.read().endswith(b"\n"):
                    raise RuntimeError("cannot infer number of columns")
            return super().read_csv(path, *args, **kwargs)

    for cls, prefix, want in ((Dropping, "io-csv-001", "diverges-by-design"),
                              (Padding, "io-csv-001", "fail"),
                              (HeaderOnlyFails, "io-csv-002", "fail")):
        target = types.ModuleType("csv_target")
        target.Session = cls
        report = runner.run(target, clause_prefix=prefix)
        assert [r.cls for r in report.results] == [want], (cls.__name__, report.format())
