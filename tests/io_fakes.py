"""Test helpers shared by the io tests."""
from velaria.io.readers_api import ReaderMethods


class FakeSession(ReaderMethods):
    """The reader methods without a Session: a "DataFrame" is the source itself."""

    def _frame_from_source(self, source):
        return source
