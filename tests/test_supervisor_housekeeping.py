"""Supervisor housekeeping: temp files left by killed writers, a removed state
directory, the status pipe.

A writer killed between creating its temp file and renaming it leaves
``.heartbeat.json.XXXX.tmp`` behind; the supervisor removes such files at each
attempt start, but only once they are a few seconds old (a younger one may be a
live writer's). The status pipe carries a campaign's final word to the
supervisor when its state directory cannot be written.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign_tui import statedir
from campaign_tui.supervisor import STALE_TEMP_AGE, remove_stale_temp_files
from campaign_tui.writer import STATUS_FD_VAR, report_final
from conftest import ProcessTracker, wait_until
from supervisor_fixtures import PY, Sup, sup_fixture


@pytest.fixture
def sup(procs: ProcessTracker, tmp_path: Path) -> Iterator[Sup]:
    yield from sup_fixture(procs, tmp_path)


def _aged(path: Path, seconds: float) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def _temp_name(name: str) -> str:
    """A temp name in statedir.write_json's shape (the first test checks the shape)."""
    return f".{name}.0123456789ab.tmp"


def test_the_pattern_matches_the_temp_name_statedir_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real write_json temp name (caught as it is renamed) is one the sweep removes."""
    renamed: list[str] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renamed.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    statedir.write_json(tmp_path / statedir.HEARTBEAT, {"a": 1})
    monkeypatch.undo()
    [name] = renamed
    left = tmp_path / name
    left.write_text('{"a"')  # as a writer killed before its rename leaves it
    _aged(left, 60)
    assert remove_stale_temp_files(tmp_path, time.time() - STALE_TEMP_AGE) == 1
    assert not left.exists()
    assert (tmp_path / statedir.HEARTBEAT).exists()


def test_only_old_temp_files_of_our_pattern_are_removed(tmp_path: Path) -> None:
    old = tmp_path / _temp_name("heartbeat.json")
    old.write_text("{")
    _aged(old, 60)
    fresh = tmp_path / _temp_name("checkpoint.json")
    fresh.write_text("{")  # a writer may be between its write and its rename right now
    keep = {
        "heartbeat.json": "{}",
        ".heartbeat.json.tmp": "",  # no hex part
        ".heartbeat.json.xyz123.tmp": "",  # not hex
        ".output.log.1.tmp": "",  # the rotation's temp file: not an atomic JSON write
        "notes.0123abcd.tmp": "",  # no leading dot
    }
    for name, text in keep.items():
        (tmp_path / name).write_text(text)
        _aged(tmp_path / name, 60)
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    link = tmp_path / _temp_name("status.json")
    link.symlink_to(target)
    os.utime(link, (time.time() - 60,) * 2, follow_symlinks=False)

    assert remove_stale_temp_files(tmp_path, time.time() - STALE_TEMP_AGE) == 1
    assert not old.exists()
    assert fresh.exists()
    assert all((tmp_path / name).exists() for name in keep)
    assert link.is_symlink() and target.exists()  # only regular files are ours to remove


def test_a_missing_directory_removes_nothing(tmp_path: Path) -> None:
    assert remove_stale_temp_files(tmp_path / "gone", time.time()) == 0


def test_a_state_dir_removed_during_the_backoff_is_created_again_and_locked(sup: Sup) -> None:
    crash = [PY, "-c", "import time; time.sleep(0.3); raise SystemExit(1)"]
    sup.detach("--backoff-initial", "0.5", "--stop-timeout", "1", cmd=crash)
    sup.wait_state("backoff")
    shutil.rmtree(sup.dir)
    wait_until(lambda: sup.sup().get("attempt", 0) >= 2, 15, "attempt 2 in a new directory")
    assert "created it again" in sup.text("wrapper.log")
    assert sup.ctl("start").returncode == 1  # locked again: no second supervisor
    assert (sup.dir / "control.sock").exists()  # a new control socket
    assert sup.ctl("stop").returncode == 0
    assert sup.sup().get("state") == "stopped"


def test_each_attempt_start_removes_stale_temp_files(sup: Sup) -> None:
    sup.dir.mkdir(mode=0o700)
    stale = sup.dir / _temp_name("heartbeat.json")
    stale.write_text('{"timestamp": 1')
    _aged(stale, 60)
    fresh = sup.dir / _temp_name("checkpoint.json")
    fresh.write_text("{")
    done = sup.run(cmd=[PY, "-c", "pass"])
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    assert fresh.exists()
    assert "removed 1 temp file(s) left by killed writers" in sup.text("wrapper.log")


# ---------------------------------------------------------------- the status pipe


def _pipe_env(monkeypatch: pytest.MonkeyPatch, state: Path) -> tuple[int, int]:
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    monkeypatch.setenv(STATUS_FD_VAR, str(write_fd))
    monkeypatch.setenv("CAMPAIGN_STATE_DIR", str(state))
    return read_fd, write_fd


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return b""


def test_report_final_writes_one_line_to_the_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_fd, write_fd = _pipe_env(monkeypatch, tmp_path)
    try:
        assert report_final("COMPLETE", tmp_path)
        assert _read(read_fd) == b"COMPLETE\n"
        assert not report_final("RUNNING", tmp_path)  # only final states
        assert not report_final("COMPLETE", tmp_path / "another")  # another campaign's
        assert _read(read_fd) == b""
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_report_final_never_writes_to_a_descriptor_that_is_not_a_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variable inherited without the descriptor: that number is someone else's file."""
    monkeypatch.setenv("CAMPAIGN_STATE_DIR", str(tmp_path))
    other = tmp_path / "unrelated.txt"
    with open(other, "w") as handle:
        monkeypatch.setenv(STATUS_FD_VAR, str(handle.fileno()))
        assert not report_final("COMPLETE", tmp_path)
    monkeypatch.setenv(STATUS_FD_VAR, "987654")
    assert not report_final("COMPLETE", tmp_path)
    assert other.read_text() == ""


def test_a_campaign_that_could_not_write_complete_is_complete(sup: Sup) -> None:
    """COMPLETE through the pipe alone (status.json made unwritable) ends the run, no restart."""
    script = sup.script(
        "done.py",
        """
        from campaign_tui import Campaign
        from campaign_tui.writer import StateWriter
        StateWriter.status = lambda self, *a, **k: False  # as if the disk were full
        with Campaign(total=1) as campaign:
            for key in campaign.pending(["only"]):
                with campaign.item(key):
                    pass
        """,
    )
    done = sup.run("--backoff-initial", "0.05", cmd=[PY, str(script)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "attempt 2" not in done.stdout, done.stdout
    assert "the campaign reported COMPLETE" in done.stdout, done.stdout
    assert sup.json("status.json").get("status") == "COMPLETE"


def test_beat_status_reaches_the_pipe(sup: Sup) -> None:
    """A shell campaign's `beat --status COMPLETE` says it through the inherited pipe too."""
    sup.dir.mkdir(mode=0o700)
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        sup.env.update({STATUS_FD_VAR: str(write_fd), "CAMPAIGN_STATE_DIR": str(sup.dir)})
        proc = sup.popen("beat", "--status", "COMPLETE", pass_fds=(write_fd,))
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert _read(read_fd) == b"COMPLETE\n"
    finally:
        os.close(read_fd)
        os.close(write_fd)
