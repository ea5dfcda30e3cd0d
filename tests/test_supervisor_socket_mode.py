"""The control socket is created 0600 by the umask at bind, whatever the caller's umask."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ProcessTracker
from supervisor_fixtures import Sup, cli_argv, sup_fixture


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


def test_control_socket_is_0600_under_an_open_umask(sup: Sup) -> None:
    argv = cli_argv("run", "--detach", "--state-dir", str(sup.dir), "--", "sleep", "60")
    proc = sup.tracker.start(
        ["sh", "-c", 'umask 000; exec "$@"', "sh", *argv],
        env=sup.env,
        cwd=sup.tmp,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    sup.wait_child()
    st = os.stat(sup.dir / "control.sock", follow_symlinks=False)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert sup.ctl("stop").returncode == 0
