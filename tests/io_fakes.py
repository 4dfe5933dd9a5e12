from velaria.io.readers_api import ReaderMethods


class _FakeContext:
    """The session context a reader uses: a "DataFrame" is the source itself."""

    def frame_from_source(self, source, cached=None):
        return source


class FakeSession(ReaderMethods):
    """The reader methods without a Session."""

    context = _FakeContext()
