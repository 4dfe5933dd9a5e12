"""The one-ahead background producer used by the CSV reader."""
from __future__ import annotations

import contextvars
import threading

import pytest

from velaria.io.prefetch import prefetch


def test_items_in_order_and_errors_at_their_place():
    def items():
        yield 1
        yield 2
        raise ValueError("third item failed")

    got = []
    with pytest.raises(ValueError, match="third item failed"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_early_close_stops_and_closes_the_producer():
    closed = threading.Event()
    produced = []

    def items():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    stream = prefetch(items())
    assert next(stream) == 0
    stream.close()
    assert closed.wait(5)
    assert len(produced) <= 4  # at most a couple of items ahead, never the whole input


def test_producer_sees_the_callers_context():
    var = contextvars.ContextVar("probe", default="unset")
    var.set("caller")
    seen = []

    def items():
        seen.append((var.get(), threading.current_thread().name))
        yield 1

    assert list(prefetch(items())) == [1]
    assert seen == [("caller", "velaria-prefetch")]
