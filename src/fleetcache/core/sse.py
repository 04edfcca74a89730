"""Server-sent events (``text/event-stream``): an incremental parser and an encoder. No I/O.

The parser follows the WHATWG HTML "event stream" interpretation rules:

- the stream is UTF-8 (invalid bytes become U+FFFD); one leading byte order mark is dropped;
- a line ends at CRLF, LF or a lone CR, and a CRLF split across two chunks is one line end;
- a line starting with ``:`` is a comment; ``name: value`` sets a field (one space after the
  colon is dropped), a line without a colon is a field with an empty value;
- ``data`` lines accumulate joined by LF, ``event`` sets the type, ``id`` sets the last event
  id (kept across events; ignored when it holds NUL), ``retry`` sets the reconnection time in
  milliseconds when it is all ASCII digits; other field names are ignored;
- a blank line dispatches the event when its data is not empty, then clears data and type;
- bytes after the last blank line at end of stream are an incomplete event and are dropped.

Chunk boundaries never change the result: any split of the same bytes yields the same events.
Besides events, :meth:`SSEParser.feed` reports each complete *block* (the exact bytes up to and
including the blank line that ends it), so a proxy can forward what it parsed byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Block", "Event", "SSEParser", "encode", "parse"]

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n|\r|\n")
_TEXT_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One dispatched event.

    ``type`` is the ``event`` field (``"message"`` when the block set none or an empty one),
    ``data`` the ``data`` lines joined by LF, ``id`` the last event id at dispatch (``""``
    until a stream sets one), ``retry`` the reconnection time in milliseconds the block set
    (``None`` when it set none).
    """

    data: str
    type: str = "message"
    id: str = ""
    retry: int | None = None


@dataclass(frozen=True)
class Block:
    """The exact bytes of one complete block and the event it dispatched (``None`` when it
    dispatched none: a comment, a keep-alive, a block without data, or a lone LF that
    completed a CRLF split across chunks)."""

    raw: bytes
    event: Event | None


class SSEParser:
    """Incremental event-stream parser: :meth:`feed` bytes in any chunking, get blocks out.

    :attr:`pending` holds the bytes of the block not complete yet; at end of stream they are
    an incomplete event (dropped by the spec: :meth:`close` returns them so a proxy can still
    forward them).
    """

    def __init__(self) -> None:
        self._buf = bytearray()  # bytes of the current (incomplete) block
        self._scan = 0  # offset in _buf where the next line starts
        self._started = False  # the BOM check has been done
        self._after_cr = False  # the last byte seen ended a line with CR
        self._data: list[str] = []
        self._type = ""
        self._retry: int | None = None
        self._has_data = False
        self._last_id = ""

    @property
    def pending(self) -> bytes:
        """Bytes received since the last complete block."""
        return bytes(self._buf)

    @property
    def last_id(self) -> str:
        """The last event id buffer (``""`` until the stream sets one)."""
        return self._last_id

    def feed(self, chunk: bytes) -> list[Block]:
        """Add ``chunk`` and return every block it completed, in stream order."""
        if not chunk:
            return []
        blocks: list[Block] = []
        data = bytes(chunk)
        if self._after_cr:
            self._after_cr = False
            if data[:1] == b"\n":  # the LF of a CRLF split across chunks
                data = data[1:]
                if self._buf:
                    self._buf += b"\n"
                    self._scan += 1
                else:
                    blocks.append(Block(b"\n", None))
        self._buf += data
        if not self._started:
            if len(self._buf) < len(_BOM) and _BOM.startswith(bytes(self._buf)):
                return blocks
            self._started = True
            if self._buf.startswith(_BOM):
                self._scan = len(_BOM)
        blocks += self._lines()
        return blocks

    def close(self) -> bytes:
        """End of stream: drop the incomplete event (per the spec) and return its bytes."""
        rest = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        self._reset_event()
        return rest

    def _lines(self) -> list[Block]:
        blocks: list[Block] = []
        start = 0  # start of the current block in _buf
        while True:
            match = _LINE_END.search(self._buf, self._scan)
            if match is None:
                break
            if match.group() == b"\r" and match.end() == len(self._buf):
                self._after_cr = True  # an LF may follow in the next chunk
            line = bytes(self._buf[self._scan : match.start()])
            self._scan = match.end()
            if line:
                self._field(line)
                continue
            event = self._dispatch()
            blocks.append(Block(bytes(self._buf[start : self._scan]), event))
            start = self._scan
        if start:
            del self._buf[:start]
            self._scan -= start
        return blocks

    def _field(self, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace")
        if text.startswith(":"):
            return
        name, colon, value = text.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\x00" not in value:
                self._last_id = value
        elif name == "retry" and value and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> Event | None:
        event = None
        if self._has_data:
            event = Event(
                data="\n".join(self._data),
                type=self._type or "message",
                id=self._last_id,
                retry=self._retry,
            )
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._data = []
        self._has_data = False
        self._type = ""
        self._retry = None


def parse(data: bytes | Iterable[bytes]) -> list[Event]:
    """Every event of a whole stream (bytes, or an iterable of chunks), in order."""
    parser = SSEParser()
    chunks = [data] if isinstance(data, (bytes, bytearray)) else data
    events: list[Event] = []
    for chunk in chunks:
        events += [b.event for b in parser.feed(chunk) if b.event is not None]
    return events


def encode(data: str, event: str | None = None, *, id: str | None = None) -> bytes:
    """One event as bytes: ``event:`` (when given), ``id:`` (when given), one ``data:`` line
    per line of ``data`` (CRLF, CR and LF all split), then the blank line. LF line ends.

    ``event`` and ``id`` must be one line each (``ValueError`` otherwise); parsing the result
    gives back ``data`` with its line ends turned into LF.
    """
    head = ""
    if event is not None:
        if _TEXT_LINE_END.search(event):
            raise ValueError("an SSE event type cannot contain a line break")
        head += f"event: {event}\n"
    if id is not None:
        if _TEXT_LINE_END.search(id) or "\x00" in id:
            raise ValueError("an SSE event id cannot contain a line break or NUL")
        head += f"id: {id}\n"
    body = "".join(f"data: {line}\n" for line in _TEXT_LINE_END.split(data))
    return (head + body + "\n").encode("utf-8")
