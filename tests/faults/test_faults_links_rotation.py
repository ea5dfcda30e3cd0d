"""Output-log rotation and the supervisor's reads never follow a planted link or hang on a FIFO.

Links are planted at output.log and at every name the rotation writes
(output.log.1, output.log.2, the old fixed temp name), and a FIFO at
results.jsonl: each target keeps its bytes and the supervisor finishes its run.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from campaign_tui import supervisor
from supervisor_fixtures import PY, Sup

LIMIT = 20000
ROTATING = (
    "import os, sys, time\n"
    "for i in range(25): print('x' * 999)\n"
    "sys.stdout.flush()\n"
    "log = os.path.join(os.environ['CAMPAIGN_STATE_DIR'], 'output.log')\n"
    "end = time.monotonic() + 10\n"
    "while os.path.getsize(log) > 20000 and time.monotonic() < end: time.sleep(0.02)\n"
    "print('after rotation')\n"
)


def _config(tmp_path: Path, files: int = 3) -> str:
    path = tmp_path / "campaign.toml"
    path.write_text(f"output_max_bytes = {LIMIT}\noutput_files = {files}\n")
    return str(path)


def _victims(tmp_path: Path, *names: str, size: int = 10) -> dict[Path, bytes]:
    folder = tmp_path / "victims"
    folder.mkdir(exist_ok=True)
    found = {}
    for name in names:
        target = folder / name
        target.write_bytes(b"precious " + name.encode() + b"\n" + b"p" * size)
        found[target] = target.read_bytes()
    return found


def test_links_at_the_rotation_names_are_replaced_not_written_through(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected = fault(
        "symlinks at output.log.1, output.log.2 and .output.log.1.tmp before a rotation",
        "the rotation writes none of the link targets; output.log.1 holds the rotated output",
    )
    sup.dir.mkdir(mode=0o700)
    targets = _victims(tmp_path, "one", "two", "tmp")
    for name, target in zip(
        ("output.log.1", "output.log.2", ".output.log.1.tmp"), targets, strict=True
    ):
        (sup.dir / name).symlink_to(target)
        injected.inject()
    done = sup.run("--config", _config(tmp_path), cmd=[PY, "-c", ROTATING])
    assert done.returncode == 0, done.stdout + done.stderr
    assert {t: t.read_bytes() for t in targets} == targets, "a write went through a link"
    rotated = sup.dir / "output.log.1"
    assert rotated.is_file() and not rotated.is_symlink()
    assert rotated.read_text().count("x" * 999) == 25
    assert sup.text("output.log") == "after rotation\n"
    injected.lost = 0


def test_a_link_at_output_log_to_a_big_file_is_neither_rotated_nor_truncated(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected = fault(
        "output.log is a symlink to a file larger than output_max_bytes",
        "the target is not copied, truncated or overwritten; the campaign completes",
    )
    sup.dir.mkdir(mode=0o700)
    targets = _victims(tmp_path, "bashrc", size=4 * LIMIT)
    (target,) = targets
    (sup.dir / "output.log").symlink_to(target)
    injected.inject()
    code = "import time\nfor i in range(5):\n    print('line', i, flush=True); time.sleep(0.3)\n"
    done = sup.run("--config", _config(tmp_path), cmd=[PY, "-c", code])
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode in (0, 66), done.stdout + done.stderr
    assert target.read_bytes() == targets[target], "the link target was rotated or truncated"
    assert not (sup.dir / "output.log.1").exists()
    injected.lost = 0


def test_a_fifo_at_results_jsonl_does_not_block_the_supervisor(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected = fault(
        "a FIFO with no writer at results.jsonl while the command reports an item and crashes",
        "the supervisor reads around it without blocking and records the crash",
    )
    sup.dir.mkdir(mode=0o700)
    os.mkfifo(sup.dir / "results.jsonl", 0o600)
    injected.inject()
    # a heartbeat naming an item in flight, then a crash: the supervisor looks in the
    # journal for that item's result (it reads results.jsonl from the attempt's start)
    code = (
        "import subprocess, sys\n"
        f"subprocess.run([{PY!r}, '-m', 'campaign_tui', 'beat', '--item', 'it-1',"
        " '--tested', '0', '--total', '3'], check=True)\n"
        "print('1..3'); print('ok 1 - first', flush=True)\n"
        "sys.exit(3)\n"
    )
    done = sup.run("--max-restarts", "0", cmd=[PY, "-c", code], timeout=30)
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 2, done.stdout + done.stderr
    assert sup.json("status.json").get("status") == "CRASHED"
    restarts = sup.lines("restarts.jsonl")
    assert restarts and restarts[-1].get("exit_code") == 3
    assert (sup.dir / "results.jsonl").is_fifo()
    injected.lost = 0


# ------------------------------------------------------------------ the rotation itself


def test_rotate_refuses_a_link_and_leaves_its_target(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_bytes(b"precious\n" * 1000)
    log = tmp_path / "output.log"
    log.symlink_to(target)
    with pytest.raises(OSError):
        supervisor._rotate(log, 3)
    assert target.read_bytes() == b"precious\n" * 1000
    assert not (tmp_path / "output.log.1").exists()
    assert supervisor._size(log) == 0  # a link has no size of its own here


def test_rotate_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    os.mkfifo(log, 0o600)
    failed: list[BaseException] = []

    def rotate() -> None:
        try:
            supervisor._rotate(log, 2)
        except OSError as exc:
            failed.append(exc)

    worker = threading.Thread(target=rotate, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "rotating a FIFO blocked"
    assert failed
    assert supervisor._read_from(log, 0, 100) == b""


def test_rotate_copies_then_truncates_the_same_file(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_bytes(b"new\n")
    (tmp_path / "output.log.1").write_bytes(b"old\n")
    supervisor._rotate(log, 3)
    assert log.read_bytes() == b""
    assert (tmp_path / "output.log.1").read_bytes() == b"new\n"
    assert (tmp_path / "output.log.2").read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "output.log",
        "output.log.1",
        "output.log.2",
    ]


def test_a_fifo_at_results_jsonl_does_not_block_the_supervisors_tap_journal(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected = fault(
        "a FIFO with no reader at results.jsonl while the supervisor journals TAP results",
        "the journal write fails once (logged) instead of blocking; the campaign completes",
    )
    sup.dir.mkdir(mode=0o700)
    os.mkfifo(sup.dir / "results.jsonl", 0o600)
    injected.inject()
    code = "print('1..2'); print('ok 1 - a'); print('ok 2 - b', flush=True)\n"
    done = sup.run(cmd=[PY, "-c", code], timeout=30)
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert sup.json("status.json").get("status") == "COMPLETE"
    assert (sup.dir / "results.jsonl").is_fifo()
    injected.lost = 0
