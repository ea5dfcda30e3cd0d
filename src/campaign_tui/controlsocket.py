"""Where a supervisor's control socket lives, for the supervisor and its clients.

Kept apart from :mod:`campaign_tui.supervisor` so that ``campaign-tui stop`` and
``restart`` reach the socket without importing the supervisor and all it needs.
"""

from __future__ import annotations

import os
from pathlib import Path

CONTROL_SOCKET = "control.sock"


def socket_address(path: Path) -> tuple[str, int | None]:
    """An AF_UNIX address for ``path``; long paths go through /proc/self/fd/N of the directory.

    Returns the address and a directory descriptor the caller closes after use.
    """
    if len(os.fsencode(str(path))) < 100:
        return str(path), None
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{dir_fd}/{path.name}", dir_fd
