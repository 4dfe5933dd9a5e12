"""Targets that prove the suite and the runner work: each wraps or replaces ``velaria``.

* :mod:`.broken` answers some SQL wrongly on purpose; the suite must fail those clauses.
* :mod:`.aborting` kills its process (``os.abort()``) on UNION and on any stream entry point,
  as native Velaria does on an error inside a stream sink; the run must go on and report those
  clauses ``crashed``.
* :mod:`.hanging` never returns from ``LIMIT 0`` queries; the run must report ``timed-out``.

The DuckDB-backed target (:mod:`..duckdb_target`) shows the suite runs against another engine.
"""
