"""Test helper: a Session whose kernels record every call (to compare with explain)."""
from __future__ import annotations

from velaria import Session
from velaria.kernels import KernelSet


def counting_session(engine: str) -> tuple[Session, list[str]]:
    """A Session of ``engine`` and the list its kernels append their registry name to on
    every call; the aggregate keeps its planning hook (``plan_path``)."""
    sess = Session(engine)
    base = sess.kernels
    called: list[str] = []

    def wrap(name, fn):
        def counted(*a, **k):
            called.append(name)
            return fn(*a, **k)
        counted.plan_path = getattr(fn, "plan_path", None)
        return counted
    sess.kernels = KernelSet(engine=base.engine, origins=dict(base.origins), backend=base.backend,
                             accel_status=base.accel_status, **{n: wrap(n, f) for n, f in base.kernels.items()})
    return sess, called
