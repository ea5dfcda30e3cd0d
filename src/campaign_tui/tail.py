"""Follow a log file like ``tail -F``, with bounded memory, yielding sanitized lines.

``tail()`` reads only the end of the file (a 1 GB log opens at once); ``poll()``
then reads only the bytes appended since, in chunks. A rotation (the path now
names another file) drains the old file before following the new one; a
truncation (the file got shorter than what was read) starts again from the top.
Both are announced by a marker line. A last line without its newline waits for
it, and a line longer than ``max_line`` is cut, so a writer that never ends a
line cannot make the tailer hold more than a few times ``max_line`` bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from campaign_tui.sanitize import sanitize

DEFAULT_TAIL_BYTES = 64 * 1024
CHUNK = 64 * 1024
MARKER = "──"
CUT = "…"

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def marker(text: str) -> str:
    """A line of our own among the file's lines, recognisable at a glance."""
    return f"{MARKER} {text} {MARKER}"


class Tailer:
    """Last lines of a file, then the lines appended to it, always sanitized."""

    def __init__(self, path: Path, *, max_line: int = 4096):
        self.path = Path(path)
        self.max_line = max_line
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._partial = bytearray()
        self._overlong = False  # the pending line passed the cap; drop bytes until its newline
        self._discard = False  # in the middle of a line we skipped; drop it through its newline
        self._complaint: str | None = None  # the last "cannot open" reason, said once

    # ------------------------------------------------------------------ public

    @property
    def offset(self) -> int:
        """How far into the current file the tailer has read."""
        return self._offset

    def tail(self, max_lines: int, max_bytes: int = DEFAULT_TAIL_BYTES) -> list[str]:
        """The last ``max_lines`` complete lines within the last ``max_bytes``;
        following continues from the end of the file."""
        self.close()
        opened = self._open()
        if isinstance(opened, str):
            return [opened] if opened else []
        size = opened
        start = max(0, size - max_bytes)
        data = self._read_range(start, size)
        if start > 0 and not self._at_line_start(start):
            self._partial += CUT.encode()  # the start of this line is not shown
        self._offset = size
        lines = self._split(data)
        return lines[-max_lines:] if max_lines > 0 else []

    def poll(self, *, max_bytes: int | None = None) -> list[str]:
        """New complete lines since the last call.

        ``max_bytes`` bounds the work of one call: when more than that was
        appended, the lines in between are skipped (with a marker) and reading
        resumes ``max_bytes`` before the end. ``None`` reads everything, in chunks.
        """
        out: list[str] = []
        if self._fd is not None:
            try:
                st = os.fstat(self._fd)
            except OSError:
                self.close()
                st = None
            if st is not None:
                if st.st_size < self._offset:
                    out.append(marker(f"{self.path.name} was truncated; reading it from the start"))
                    self._reset_lines()
                    self._offset = 0
                out += self._read_new(st.st_size, max_bytes)
            rotated = self._path_identity()
            if rotated is not None and rotated != self._identity:
                # Drained the old file above; a partial last line of it is complete now.
                out += self._flush_partial()
                out.append(
                    marker(f"{self.path.name} was replaced (rotated); following the new file")
                )
                self.close()
                opened = self._open()
                if isinstance(opened, int):
                    out += self._read_new(opened, max_bytes)
            return out
        opened = self._open()
        if isinstance(opened, str):
            return [opened] if opened else []
        return self._read_new(opened, max_bytes)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self._identity = None
        self._offset = 0
        self._reset_lines()

    def __enter__(self) -> Tailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # ------------------------------------------------------------------ internals

    def _open(self) -> int | str:
        """Open the path; its size, or a one-time complaint ("" when absent or said before)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            self._complaint = None
            return ""
        except OSError as exc:
            why = "is a symlink (not followed)" if exc.errno == errno.ELOOP else exc.strerror
            return self._complain(f"cannot read {self.path.name}: {why}")
        try:
            st = os.fstat(fd)
        except OSError as exc:  # pragma: no cover - fstat of an open descriptor
            os.close(fd)
            return self._complain(f"cannot read {self.path.name}: {exc.strerror}")
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return self._complain(f"cannot read {self.path.name}: not a regular file")
        self._complaint = None
        self._fd = fd
        self._identity = (st.st_dev, st.st_ino)
        self._offset = 0
        self._reset_lines()
        return st.st_size

    def _complain(self, text: str) -> str:
        if text == self._complaint:
            return ""
        self._complaint = text
        return marker(text)

    def _path_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return None  # gone for now: keep reading the old file until a new one appears
        return (st.st_dev, st.st_ino)

    def _read_range(self, start: int, end: int) -> bytes:
        assert self._fd is not None
        parts = []
        position = start
        while position < end:
            try:
                chunk = os.pread(self._fd, min(CHUNK, end - position), position)
            except OSError:
                break
            if not chunk:
                break
            parts.append(chunk)
            position += len(chunk)
        return b"".join(parts)

    def _at_line_start(self, position: int) -> bool:
        return position == 0 or self._read_range(position - 1, position) == b"\n"

    def _read_new(self, size: int, max_bytes: int | None) -> list[str]:
        out: list[str] = []
        if max_bytes is not None and size - self._offset > max_bytes:
            skip_to = size - max_bytes
            out += self._flush_partial()
            out.append(marker(f"{skip_to - self._offset} bytes skipped to keep up"))
            self._offset = skip_to
            self._discard = not self._at_line_start(skip_to)
        while self._offset < size:
            end = min(size, self._offset + CHUNK)
            data = self._read_range(self._offset, end)
            if not data:
                break
            self._offset += len(data)
            out += self._split(data)
        return out

    def _split(self, data: bytes) -> list[str]:
        """Complete lines of ``self._partial + data``; the rest waits for its newline."""
        out: list[str] = []
        cap = self.max_line * 4  # bytes; a UTF-8 character is at most 4
        begin = 0
        if self._discard:
            newline = data.find(b"\n")
            if newline < 0:
                return out
            self._discard = False
            begin = newline + 1
        while True:
            newline = data.find(b"\n", begin)
            piece = data[begin:] if newline < 0 else data[begin:newline]
            if not self._overlong:
                room = cap - len(self._partial)
                if len(piece) > room:
                    self._partial += piece[:room]
                    self._overlong = True
                else:
                    self._partial += piece
            if newline < 0:
                return out
            out.append(self._line(bytes(self._partial)))
            self._reset_lines()
            begin = newline + 1

    def _flush_partial(self) -> list[str]:
        if not self._partial and not self._overlong:
            return []
        line = self._line(bytes(self._partial))
        self._reset_lines()
        return [line]

    def _line(self, raw: bytes) -> str:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        text = sanitize(raw, limit=self.max_line)
        if self._overlong and not text.endswith("…"):
            text = text[: max(self.max_line - 1, 0)] + "…"
        return text

    def _reset_lines(self) -> None:
        self._partial = bytearray()
        self._overlong = False
        self._discard = False
