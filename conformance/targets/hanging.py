"""A target that never returns from some calls, to prove a hang costs one clause and not the run.

It is ``velaria``, except that ``Session.sql`` sleeps forever on any statement with ``LIMIT 0``
(only ``sql-order-008`` uses it). Run with a short ``--timeout``, the suite must report that
clause ``timed-out`` and everything else as usual.
"""
from __future__ import annotations

import time

import velaria

__all__ = ["Session"]


class Session(velaria.Session):
    def sql(self, text, /):
        if "LIMIT 0" in text.upper():
            while True:
                time.sleep(3600)
        return super().sql(text)
