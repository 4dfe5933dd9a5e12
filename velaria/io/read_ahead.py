"""Produce the next item of an iterator on a worker thread while the caller handles this one.

A CSV scan reads and converts a file chunk by chunk, and whoever consumes the chunks (a
filter, an aggregate) runs between them: without help the converter waits for the consumer
and the consumer for the converter, so one core idles whichever of them runs. The reading
and converting release the GIL (file reads, the C converter, pyarrow's parser), so running
them one chunk ahead on a worker thread lets both work at once.

Items come out in order and exactly once; an exception raised while producing an item is
raised to the caller when it asks for that item, as without the worker. The iterator is
advanced by one thread at a time, under a copy of the caller's context (so context variables
such as the progress bar's are seen), and is closed once no step of it is running.
"""
from __future__ import annotations

import contextvars
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")

_END = object()


def _step(context: contextvars.Context, iterator: Iterator[T]):
    """The next item of ``iterator`` (``_END`` past the last), produced under ``context``."""
    return context.run(next, iterator, _END)


def read_ahead(iterator: Iterator[T], depth: int = 1) -> Iterator[T]:
    """The items of ``iterator``, each produced on a worker thread while the caller handles
    the ones before it: up to ``depth`` items ahead of the caller (one worker, so the items
    are still produced one at a time, in order)."""
    context = contextvars.copy_context()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="velaria-read-ahead")
    pending: deque = deque()
    try:
        pending.extend(pool.submit(_step, context, iterator) for _ in range(max(1, depth)))
        while True:
            item = pending[0].result()
            pending.popleft()
            if item is _END:
                return
            pending.append(pool.submit(_step, context, iterator))
            yield item
    finally:
        for step in pending:   # the caller stopped early: let the queued steps finish
            try:
                step.result()
            except BaseException:  # noqa: BLE001 - items nobody asked for; their errors too
                pass
        pool.shutdown(wait=True)
        close = getattr(iterator, "close", None)
        if close is not None:
            context.run(close)
