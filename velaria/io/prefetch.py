"""Run a generator one item ahead in a background thread.

The CSV typing pass alternates two kinds of work: pyarrow parsing a chunk and classifying
the parsed columns. Both release the GIL, so producing chunk k+1 while chunk k is classified
keeps both cores busy instead of idling between the phases. At most ``depth`` items wait in
the queue, so memory stays bounded by the chunk size.
"""
from __future__ import annotations

import contextvars
import queue
import threading
from typing import Iterator, TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield what ``items`` yields, in order, computing up to ``depth`` items ahead in a
    thread. An exception in the producer is raised here, at the item it failed on. Closing
    this generator early stops the producer before its next item and closes ``items``."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.05)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            _put_until_stopped(slots, (_DONE, exc), stop)
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                close()
        _put_until_stopped(slots, (_DONE, None), stop)

    # the producer sees the caller's context variables (the active progress bar)
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(produce,), name="velaria-prefetch",
                              daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _put_until_stopped(slots: queue.Queue, entry, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            slots.put(entry, timeout=0.05)
            return
        except queue.Full:
            continue
