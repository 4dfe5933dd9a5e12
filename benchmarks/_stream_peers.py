"""The Python stream engines a user would pick instead of velaria, on the stream benchmark.

Each adapter runs the benchmark's query (GROUP BY window, key with COUNT(*) and SUM(value),
windows of ``window_ms`` starting every ``slide_ms``) through the engine's own windowed
aggregation API, fed from the benchmark's pyarrow batches, and returns ``(#groups, total count,
total sum)`` of the final per-(window, key) values, the triple the numpy oracle computes.

All three engines emit a (window, key) once, when the window closes (at end of input for the
last ones), so the emitted rows are the final values: an engine that emitted a group twice or
dropped a row (e.g. as late data) gives a different triple and fails the check.

Window alignment matches the oracle without adjustment: windows start at multiples of
``slide_ms`` from the Unix epoch, and a sliding window may start before 0 (``[-30 s, 30 s)``
holds the first 30 s of events). bytewax and krishiv both number windows that way; pathway's
``sliding`` windows too.

pathway 0.33 requires pyarrow < 26 while the project pins pyarrow 26, so it cannot share the
benchmark's environment: :func:`pathway` runs it in a child process of another interpreter
(``VELARIA_PATHWAY_PYTHON``), which reads the same batches from an Arrow IPC file and reports
the time it spent from the first batch in to the last result out (its interpreter start and
``import pathway`` are not counted). Run this module as a script for that child.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

PATHWAY_PYTHON = os.environ.get("VELARIA_PATHWAY_PYTHON")


def krishiv(batches, window_ms: int, slide_ms: int) -> tuple[int, int, int]:
    """krishiv 0.1's stream API: an in-memory stream with an event-time watermark on ``ts``,
    ``key_by`` then a tumbling or sliding window, ``agg(count, sum)``, ``collect()``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    import krishiv as kv
    from krishiv import agg

    session = kv.Session()
    stream = session.memory_stream("ev", [kv.Batch(b) for b in batches], "ts", 0).key_by("key")
    windowed = (stream.tumbling_window_ms(window_ms) if slide_ms == window_ms
                else stream.sliding_window_ms(window_ms, slide_ms))
    emitted = windowed.agg(c=agg.count(), s=agg.sum("value")).collect()
    # one (window, key) per emitted batch; ``to_arrow`` is the only way to read its values
    final = pa.Table.from_batches([b.to_arrow() for b in emitted])
    return final.num_rows, pc.sum(final["c"]).as_py(), pc.sum(final["s"]).as_py()


def bytewax(batches, window_ms: int, slide_ms: int) -> tuple[int, int, int]:
    """bytewax 0.21: rows of each batch into a dataflow, ``key_on`` the key, ``fold_window``
    with an event-time clock and a sliding windower (offset = length is tumbling), run in
    this process on one worker."""
    from datetime import datetime, timedelta, timezone

    import pyarrow as pa

    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.operators import windowing as win
    from bytewax.testing import TestingSink, TestingSource, run_main

    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def rows(batch):
        """(aware UTC datetime, key, value) per row: the EventClock wants datetimes."""
        when = batch.column("ts").cast(pa.timestamp("ms", tz="UTC")).to_pylist()
        return zip(when, batch.column("key").to_pylist(), batch.column("value").to_pylist())

    flow = Dataflow("windowed_count_sum")
    keyed = op.key_on("key", op.flat_map("rows", op.input("in", flow, TestingSource(batches)), rows),
                      lambda row: row[1])
    # The watermark follows event time only: the input is a replay, so the system clock
    # (bytewax's default, which pushes the watermark on while a batch is processed) must not
    # turn rows of the same millisecond into late data.
    clock = win.EventClock(lambda row: row[0], wait_for_system_duration=timedelta(0),
                           now_getter=lambda: epoch, to_system_utc=lambda _t: None)
    windower = win.SlidingWindower(length=timedelta(milliseconds=window_ms),
                                   offset=timedelta(milliseconds=slide_ms), align_to=epoch)
    out = win.fold_window("count_sum", keyed, clock, windower, lambda: (0, 0),
                          lambda acc, row: (acc[0] + 1, acc[1] + row[2]),
                          lambda a, b: (a[0] + b[0], a[1] + b[1]))
    emitted: list = []
    late: list = []
    op.output("out", out.down, TestingSink(emitted))
    op.output("late", out.late, TestingSink(late))
    run_main(flow)
    if late:
        raise AssertionError(f"bytewax dropped {len(late)} rows as late data")
    # emitted items are (key, (window id, (count, sum)))
    return (len(emitted), sum(item[1][1][0] for item in emitted),
            sum(item[1][1][1] for item in emitted))


def pathway_available() -> str | None:
    """Why the pathway peer cannot run, or None when it can."""
    if not PATHWAY_PYTHON:
        return ("pathway needs its own environment (it requires pyarrow < 26); set "
                "VELARIA_PATHWAY_PYTHON to a Python that has pathway 0.33 installed")
    probe = subprocess.run([PATHWAY_PYTHON, "-c", "import pathway"], capture_output=True, text=True)
    if probe.returncode:
        return f"VELARIA_PATHWAY_PYTHON={PATHWAY_PYTHON} cannot import pathway: {probe.stderr[-300:]}"
    return None


def pathway(ipc_path: str, window_ms: int, slide_ms: int, seconds: list[float]) -> tuple[int, int, int]:
    """Run :func:`_pathway_child` in the pathway interpreter; appends its time to ``seconds``."""
    proc = subprocess.run([PATHWAY_PYTHON, os.path.abspath(__file__), ipc_path, str(window_ms),
                           str(slide_ms)], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"pathway child failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    seconds.append(answer["seconds"])
    return answer["groups"], answer["count"], answer["sum"]


def _pathway_child(ipc_path: str, window_ms: int, slide_ms: int) -> dict:
    """pathway 0.33 in static mode: a table from the batches (via pandas), ``windowby`` on
    ``ts`` with a tumbling or sliding window per ``key`` instance, ``reduce(count, sum)``,
    then the result table back to pandas."""
    import pyarrow as pa

    import pathway as pw

    with pa.memory_map(ipc_path) as source:
        batches = list(pa.ipc.open_stream(source))
    start = time.perf_counter()
    frame = pa.Table.from_batches(batches).to_pandas()
    events = pw.debug.table_from_pandas(frame)
    window = (pw.temporal.tumbling(duration=window_ms) if slide_ms == window_ms
              else pw.temporal.sliding(hop=slide_ms, duration=window_ms))
    result = events.windowby(events.ts, window=window, instance=events.key).reduce(
        window_start=pw.this._pw_window_start, key=pw.this._pw_instance,
        c=pw.reducers.count(), s=pw.reducers.sum(pw.this.value))
    final = pw.debug.table_to_pandas(result)
    seconds = time.perf_counter() - start
    return {"groups": len(final), "count": int(final["c"].sum()), "sum": int(final["s"].sum()),
            "seconds": seconds}


if __name__ == "__main__":
    print(json.dumps(_pathway_child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
