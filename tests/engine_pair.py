"""Test helper: one query over one table on the reference and the accelerated engine."""
from __future__ import annotations

from velaria import Session


def on_both_engines(table, sql: str) -> dict:
    """``{"reference": DataFrame, "auto": DataFrame}`` for ``sql`` over ``table`` registered
    as ``t`` in a fresh Session per engine (not yet run: explain after ``to_arrow``)."""
    frames = {}
    for engine in ("reference", "auto"):
        s = Session(engine=engine)
        s.create_temp_view("t", s.create_dataframe_from_arrow(table))
        frames[engine] = s.sql(sql)
    return frames
