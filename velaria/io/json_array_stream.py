"""The elements of a JSON array file, one at a time, in bounded memory.

``[{...}, {...}, ...]`` is read in slices of text: elements are decoded with Python's
``json`` decoder as soon as they are complete, and the text before them is dropped. Memory
holds one slice plus the elements decoded from it, whatever the file's size; decoding the
document whole would hold the whole text and every decoded element at once (several times
the file's size). Most elements are decoded a slice's run at a time in one call of the C
decoder (:func:`_run_of_objects`); the rest one at a time at their offset.

An element cut by the end of a slice is not an error: the decoder fails near the end of the
text it was given, so more text is read and the element decoded again (slices grow, so a huge
element costs linear time). Only an error away from the end of the text, or one at the end
of the file, is reported: with the file's line and column, as decoding the whole document
would report it.
"""
from __future__ import annotations

import json
import re
from typing import Callable, Iterator, NoReturn, TextIO

__all__ = ["iter_array_elements", "SLICE_CHARS"]

#: characters read at a time (grows while one element does not fit)
SLICE_CHARS = 1 << 18
#: a decoding error this close to the end of the text read so far may be an element cut by
#: the slice (a number, a \\uXXXX escape, a keyword); more text decides
_CUT_MARGIN = 64
#: JSON whitespace (what the json module skips between tokens)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_COMMA = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")

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
            buf = self.buf
            pos = self.pos = _WHITESPACE.match(buf, self.pos).end()
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
            for value in _complete_elements(text, decoder):
                number += 1
                yield number, value
            # the element at text.pos may be cut by the slice, or malformed: the careful way
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


def _complete_elements(text: _Text, decoder: json.JSONDecoder) -> Iterator[object]:
    """The fast paths: decode the elements from ``text.pos`` that lie wholly inside the text
    read so far, followed by a comma and the start of the next (``text.pos`` follows). Stops,
    leaving ``text.pos`` on an element, at anything else (the last element, a cut, an error),
    which :func:`_decode_one` then handles."""
    yield from _run_of_objects(text, decoder)
    scan, buf, pos = decoder.scan_once, text.buf, text.pos
    limit = len(buf) - _CUT_MARGIN  # a number ending beyond this may be cut
    while True:  # element by element
        try:
            value, end = scan(buf, pos)
        except (StopIteration, ValueError, RecursionError):
            break
        comma = _COMMA.match(buf, end)
        if comma is None or comma.end() >= len(buf) or \
                (end > limit and isinstance(value, (int, float))):
            break
        pos = text.pos = comma.end()
        yield value


def _run_of_objects(text: _Text, decoder: json.JSONDecoder) -> list:
    """Many elements in one call of the C decoder: the text from ``text.pos`` up to a ``}``
    that a comma follows, decoded as an array. If that text decodes, its elements are
    exactly the document's (JSON values delimit themselves, and it ends on a closing brace,
    not inside a number); if it does not (the brace was inside a string or a nested
    object, or an element is malformed), nothing is taken and the slower paths decide."""
    buf, pos = text.buf, text.pos
    end = len(buf)
    for _ in range(8):  # the last few closing braces are candidates
        end = buf.rfind("}", pos, end)
        if end < 0:
            return []
        comma = _COMMA.match(buf, end + 1)
        if comma is not None and comma.end() < len(buf):
            break
    else:
        return []
    try:
        values = decoder.decode("[" + buf[pos:end + 1] + "]")
    except (ValueError, RecursionError):
        return []
    text.pos = comma.end()
    return values


def _decode_one(text: _Text, decoder: json.JSONDecoder, fail) -> object:
    """Decode the element at ``text.pos`` (reading more while it may be cut) and move past it."""
    scan = decoder.scan_once
    while True:
        start = text.pos
        try:
            try:
                value, end = scan(text.buf, start)  # what raw_decode runs, minus a frame
            except StopIteration as stop:
                raise json.JSONDecodeError("Expecting value", text.buf, stop.value) from None
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
