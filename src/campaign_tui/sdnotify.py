"""A small sd_notify client: tell systemd we are ready, and that we are alive.

Under a unit with ``Type=notify``, systemd puts the path of a datagram socket in
``NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). A message is
newline-separated ``KEY=VALUE`` pairs in one datagram: ``READY=1`` once the
service runs, ``WATCHDOG=1`` at least every ``WATCHDOG_USEC`` microseconds when
the unit sets ``WatchdogSec=``, ``STATUS=...`` for ``systemctl status``, and
``STOPPING=1`` on the way out. Sending never raises: systemd going away must not
take the supervisor down.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping

ENV_NAMES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def socket_address(path: str) -> str | bytes | None:
    """The AF_UNIX address for a ``NOTIFY_SOCKET`` value; None when unusable."""
    if not path:
        return None
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    if path.startswith("/"):
        return path
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings the unit asks of ``pid`` (half its limit), or None."""
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner.strip() != str(pid):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2_000_000


class Notifier:
    """Sends sd_notify messages to one socket; ``send`` returns whether it went out."""

    def __init__(self, address: str | bytes):
        self.address = address
        self._sock: socket.socket | None = None
        self.failures = 0

    def send(self, **fields: object) -> bool:
        """``send(READY=1, STATUS="running")`` → one datagram ``READY=1\\nSTATUS=running``."""
        message = "\n".join(
            f"{key}={str(value).replace(chr(10), ' ')}" for key, value in fields.items()
        )
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(message.encode("utf-8", "replace"), self.address)
        except OSError:
            self.failures += 1
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def from_environ(environ: Mapping[str, str] | None = None) -> Notifier | None:
    """A notifier when this process runs under systemd with ``NOTIFY_SOCKET`` set."""
    env = os.environ if environ is None else environ
    address = socket_address(env.get("NOTIFY_SOCKET", ""))
    return Notifier(address) if address is not None else None
