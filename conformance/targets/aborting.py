"""A target that kills its own process, to prove a crash costs one clause and not the run.

It is ``velaria``, except that ``Session.sql`` calls ``os.abort()`` (SIGABRT, exit 134) for any
statement with ``UNION``, and every stream entry point aborts too, the way native Velaria's
process aborts on an error inside a stream sink. Run against it, the suite must report the
``sql-union-*`` clauses (and the stream clauses) as ``crashed`` and everything else as usual.
"""
from __future__ import annotations

import os
import sys

import velaria

__all__ = ["Session"]


def _abort(what: str):
    print("aborting-target: %s, calling os.abort()" % what, file=sys.stderr, flush=True)
    os.abort()


class Session(velaria.Session):
    def sql(self, text, /):
        if "UNION" in text.upper():
            _abort("UNION in %r" % text)
        return super().sql(text)

    def create_stream_from_arrow(self, arrow_obj, /):
        _abort("create_stream_from_arrow")

    def stream_sql(self, sql, /):
        _abort("stream_sql")

    def start_stream_sql(self, sql, **options):
        _abort("start_stream_sql")

    def explain_stream_sql(self, sql, **options):
        _abort("explain_stream_sql")
