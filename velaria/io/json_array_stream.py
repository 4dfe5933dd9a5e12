"""The elements of a JSON array file, one at a time, in bounded memory.

``[{...}, {...}, ...]`` is read in slices of text: each element is decoded with Python's
``json`` decoder (``raw_decode`` at the element's offset) as soon as it is complete, and the
text before it is dropped. Memory holds one slice plus the element being decoded, whatever
the file's size; decoding the document whole would hold the whole text and every decoded
element at once (several times the file's size).

An element cut by the end of a slice is not an error: the decoder fails near the end of the
text it was given, so more text is read and the element decoded again (slices grow, so a huge
element costs linear time). Only an error away from the end of the text, or one at the end
of the file, is reported: with the file's line and column, as decoding the whole document
would report it.
"""
from __future__ import annotations

import json
from typing import Callable, Iterator, NoReturn, TextIO

__all__ = ["iter_array_elements", "SLICE_CHARS"]

#: characters read at a time (grows while one element does not fit)
SLICE_CHARS = 1 << 18
#: a decoding error this close to the end of the text read so far may be an element cut by
#: the slice (a number, a \\uXXXX escape, a keyword); more text decides
_CUT_MARGIN = 64
_WHITESPACE = " \t\n\r"

#: ``on_error(what, line, column, fix)`` raises the reader's error
ErrorHandler = Callable[[str, int, int, str], NoReturn]


class _Text:
    """A window on the file's text: ``buf[pos:]`` is unread; line and column of any index."""

    def __init__(self, handle: TextIO, slice_chars: int):
        self.handle = handle
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.slice_chars = slice_chars
        self.line_base = 1  # line of buf[0]
        self.col_base = 1   # column of buf[0]

    def fill(self, at_least: int = 0) -> bool:
        """Drop the text before ``pos`` and read more; False at the end of the file."""
        if self.eof:
            return False
        dropped = self.buf[:self.pos]
        if dropped:
            newlines = dropped.count("\n")
            if newlines:
                self.line_base += newlines
                self.col_base = len(dropped) - dropped.rfind("\n")
            else:
                self.col_base += len(dropped)
            self.buf = self.buf[self.pos:]
            self.pos = 0
        more = self.handle.read(max(self.slice_chars, at_least))
        if not more:
            self.eof = True
            return False
        self.buf += more
        return True

    def next_char(self) -> str | None:
        """The next non-whitespace character (``pos`` moves onto it), None at the end."""
        while True:
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in _WHITESPACE:
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self.fill():
                return None

    def where(self, index: int) -> tuple[int, int]:
        """(line, column), 1-based, of ``buf[index]``."""
        line = self.line_base + self.buf.count("\n", 0, index)
        newline = self.buf.rfind("\n", 0, index)
        return line, (index - newline if newline >= 0 else self.col_base + index)


def iter_array_elements(handle: TextIO, decoder: json.JSONDecoder, on_error: ErrorHandler,
                        slice_chars: int = SLICE_CHARS) -> Iterator[tuple[int, object]]:
    """Yield ``(element number, decoded value)`` for each element of the JSON array in
    ``handle`` (a text file). Blank input yields nothing. Problems call ``on_error``."""
    text = _Text(handle, slice_chars)

    def fail(what: str, index: int, fix: str = "") -> NoReturn:
        line, column = text.where(index)
        on_error(what, line, column, fix)
        raise AssertionError("on_error must raise")  # pragma: no cover

    first = text.next_char()
    if first is None:
        return
    if first != "[":
        fail(f"json array source should start with '[' (found {first!r})", text.pos,
             "use format='json_lines' for one object per line")
    text.pos += 1
    number = 0
    char = text.next_char()
    if char == "]":
        text.pos += 1
    else:
        while True:
            if char is None:
                fail("malformed JSON (Expecting value)", len(text.buf))
            number += 1
            yield number, _decode_one(text, decoder, fail)
            char = text.next_char()
            if char == ",":
                text.pos += 1
                char = text.next_char()
                if char == "]":
                    fail("malformed JSON (Expecting value)", text.pos)
                continue
            if char == "]":
                text.pos += 1
                break
            fail("malformed JSON (Expecting ',' delimiter)",
                 len(text.buf) if char is None else text.pos)
    if text.next_char() is not None:
        fail("malformed JSON (Extra data)", text.pos)


def _decode_one(text: _Text, decoder: json.JSONDecoder, fail) -> object:
    """Decode the element at ``text.pos`` (reading more while it may be cut) and move past it."""
    while True:
        start = text.pos
        try:
            value, end = decoder.raw_decode(text.buf, start)
        except json.JSONDecodeError as exc:
            maybe_cut = exc.pos >= len(text.buf) - _CUT_MARGIN or \
                exc.msg.startswith("Unterminated string")
            offset = exc.pos - start  # fill() may drop the text before the element
            if maybe_cut and text.fill(at_least=len(text.buf)):
                continue
            fail(f"malformed JSON ({exc.msg})", text.pos + offset)
        except RecursionError:
            fail("JSON nested too deeply", start, "flatten the data (nesting beyond ~900 levels)")
        except ValueError as exc:  # a constant the decoder refuses (NaN, Infinity)
            fail(f"malformed JSON ({exc})", start)
        if isinstance(value, (int, float)) and len(text.buf) - end < _CUT_MARGIN and \
                text.fill(at_least=len(text.buf)):
            continue  # a number may go on in the next slice ("0" of "0.5")
        text.pos += end - start  # fill() may have dropped the text before the element
        return value
