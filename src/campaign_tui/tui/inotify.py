"""A minimal inotify binding (ctypes) for watching one directory from an asyncio loop.

The descriptor is non-blocking and read only when the loop says it is readable,
so an idle watch costs nothing: no thread and no timer. :func:`open_inotify`
returns ``None`` where inotify is not available (not Linux, no libc symbol, the
per-user instance limit reached); the caller falls back to watchfiles then.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from dataclasses import dataclass
from pathlib import Path

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

IN_NONBLOCK = getattr(os, "O_NONBLOCK", 0o4000)  # as on Linux, where it is the same flag
IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)

# What a state directory's watch asks for: a file written in place or replaced
# atomically, created, removed; and the directory itself going away.
DIR_MASK = (
    IN_CLOSE_WRITE
    | IN_MOVED_TO
    | IN_MOVED_FROM
    | IN_CREATE
    | IN_DELETE
    | IN_MODIFY
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ATTRIB
    | IN_ONLYDIR
)
# The watch is over: the directory was removed, moved away or unmounted.
GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED

_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name
READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Event:
    wd: int
    mask: int
    name: str  # empty for an event about the watched directory itself


def parse(buf: bytes) -> list[Event]:
    """The events in what one ``read`` of an inotify descriptor returned."""
    events = []
    offset = 0
    while offset + _HEADER.size <= len(buf):
        wd, mask, _cookie, length = _HEADER.unpack_from(buf, offset)
        start = offset + _HEADER.size
        raw = buf[start : start + length].split(b"\0", 1)[0]
        events.append(Event(wd, mask, os.fsdecode(raw)))
        offset = start + length
    return events


class Inotify:
    """One inotify descriptor. :meth:`read` never blocks; it returns ``[]`` when
    nothing is pending."""

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self.fd = fd

    def add_watch(self, path: Path, mask: int = DIR_MASK) -> int:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask))
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self.fd, wd)  # fails harmlessly on a watch already gone

    def read(self) -> list[Event]:
        events: list[Event] = []
        while True:
            try:
                buf = os.read(self.fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return events
            if not buf:
                return events
            events.extend(parse(buf))

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        for name in ("inotify_init1", "inotify_add_watch", "inotify_rm_watch"):
            getattr(libc, name)
    except (OSError, AttributeError, TypeError):
        return None
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.inotify_rm_watch.restype = ctypes.c_int
    return libc


def open_inotify() -> Inotify | None:
    """A new non-blocking, close-on-exec inotify descriptor, or None where there is none."""
    libc = _libc()
    if libc is None:
        return None
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        return None
    return Inotify(libc, fd)


def available() -> bool:
    """Whether an inotify descriptor can be had here."""
    ino = open_inotify()
    if ino is None:
        return False
    ino.close()
    return True
