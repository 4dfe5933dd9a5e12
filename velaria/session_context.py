"""``SessionContext``: the small, explicit part of a Session that the rest of the package uses.

SQL statements, readers, the vector and stream mixins and the command line reach a Session
only through ``session.context``: its catalog, its kernels and execution settings, whether it
may touch files, and the few operations that turn data into frames. Nothing outside
``velaria/session.py`` reads a Session's private members, so the Session can change inside
without breaking them, and a reader can see at a glance what each layer depends on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover
    from .catalog import Catalog
    from .dataframe import DataFrame
    from .io.base import TableSource
    from .kernels import KernelSet
    from .session import Session

__all__ = ["SessionContext"]


class SessionContext:
    """What a statement, reader or mixin may use of one :class:`~velaria.Session`."""

    __slots__ = ("_session",)

    def __init__(self, session: "Session"):
        self._session = session

    @property
    def catalog(self) -> "Catalog":
        """The Session's tables and views."""
        return self._session._catalog

    @property
    def kernels(self) -> "KernelSet":
        """The kernels queries of this Session run on."""
        return self._session.kernels

    @property
    def batch_rows(self) -> int:
        """Rows per batch when scanning sources."""
        return self._session._batch_rows

    @property
    def memory_whole_chunks(self) -> bool:
        """True when in-memory tables are scanned in their own chunks (accelerated engine)."""
        return self._session._memory_whole_chunks

    @property
    def external_access(self) -> bool:
        """False when SQL may not read or write files (``enable_external_access=False``)."""
        return self._session._external_access

    def frame_from_source(self, source: "TableSource", cached: pa.Table | None = None) -> "DataFrame":
        """A lazy DataFrame scanning ``source`` (``cached``: its rows, already read)."""
        return self._session._frame_from_source(source, cached)

    def frame_from_table(self, table: pa.Table) -> "DataFrame":
        """A DataFrame over the in-memory ``table``."""
        return self._session._frame_from_table(table)

    def materialized_table(self, name: str) -> pa.Table:
        """The rows of catalog table ``name`` as one ``pa.Table``."""
        return self._session._materialized_table(name)

    def create_stream_table(self, *args, **kwargs):
        """Register a stream SOURCE / SINK table (``CREATE SOURCE|SINK TABLE``)."""
        return self._session._create_stream_table(*args, **kwargs)
