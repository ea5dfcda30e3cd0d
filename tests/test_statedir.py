"""The state directory: where it is, who may use it, and files that never hurt a reader."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from campaign_tui import statedir
from campaign_tui.clock import now
from campaign_tui.health import State, judge
from campaign_tui.models import Checkpoint, Heartbeat, Unreadable
from campaign_tui.snapshot import probe_processes, read_snapshot
from campaign_tui.statedir import StateDir, StateDirError
from conftest import ProcessTracker

try:
    NOBODY = pwd.getpwnam("nobody")
except KeyError:  # pragma: no cover - every Linux has one
    NOBODY = None

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or NOBODY is None,
    reason="changing a file's owner and dropping to `nobody` needs root and a nobody user",
)

# ---------------------------------------------------------------- where


def test_root_prefers_campaign_tui_home(tmp_path: Path) -> None:
    env = {"CAMPAIGN_TUI_HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "xdg")}
    assert statedir.state_root(env) == tmp_path / "home"


def test_root_then_xdg_state_home(tmp_path: Path) -> None:
    env = {"CAMPAIGN_TUI_HOME": "", "XDG_STATE_HOME": str(tmp_path / "xdg")}
    assert statedir.state_root(env) == tmp_path / "xdg" / "campaign-tui"


def test_root_then_local_state_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert statedir.state_root({"XDG_STATE_HOME": ""}) == (
        tmp_path / "me" / ".local" / "state" / "campaign-tui"
    )


def test_resolve_order(tmp_path: Path) -> None:
    env = {"CAMPAIGN_TUI_HOME": str(tmp_path / "root"), "CAMPAIGN_STATE_DIR": str(tmp_path / "sd")}
    # --state-dir wins over everything
    assert statedir.resolve(state_dir=tmp_path / "x", environ=env).path == tmp_path / "x"
    # a supervised command's CAMPAIGN_STATE_DIR, when no name is asked for
    assert statedir.resolve(environ=env).path == tmp_path / "sd"
    # a name asked for explicitly goes under the root
    assert statedir.resolve("nightly", environ=env).path == tmp_path / "root" / "nightly"
    env.pop("CAMPAIGN_STATE_DIR")
    assert statedir.resolve(environ=env).path == tmp_path / "root" / "default"
    env["CAMPAIGN_NAME"] = "fromenv"
    assert statedir.resolve(environ=env).path == tmp_path / "root" / "fromenv"


@pytest.mark.parametrize("name", ["..", ".", "a/b", "x\0y"])
def test_resolve_refuses_names_that_escape_the_root(name: str, tmp_path: Path) -> None:
    with pytest.raises(StateDirError):
        statedir.resolve(name, environ={"CAMPAIGN_TUI_HOME": str(tmp_path)})


def test_legacy_layout_reads_seed_names_in_place(tmp_path: Path) -> None:
    sd = statedir.resolve(state_dir=tmp_path, layout="legacy")
    assert sd.legacy
    assert sd.file(statedir.HEARTBEAT) == tmp_path / "campaign-heartbeat.txt"
    assert sd.file(statedir.STATUS) == tmp_path / "campaign-status.json"
    assert sd.log("errors") == tmp_path / "batch-test-errors.log"
    with pytest.raises(StateDirError, match="read-only"):
        statedir.ensure(sd)
    with pytest.raises(StateDirError):
        statedir.resolve(layout="sideways")


# ---------------------------------------------------------------- whose


def test_ensure_creates_mode_0700_with_parents(tmp_path: Path) -> None:
    old = os.umask(0)  # a permissive umask must not leak into the mode
    try:
        sd = statedir.ensure(StateDir(tmp_path / "a" / "b" / "default"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(sd.path).st_mode) == 0o700
    statedir.ensure(sd)  # again: fine


@pytest.mark.parametrize("mode", [0o770, 0o720, 0o707, 0o702, 0o777])
def test_group_or_other_writable_dir_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "open"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(StateDirError, match="writable by group or others"):
        statedir.ensure(StateDir(path))


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o755])
def test_dir_only_readable_by_others_is_accepted(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ok"
    path.mkdir()
    path.chmod(mode)
    statedir.check_owned(path)


def test_symlinked_or_file_state_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(StateDirError, match="not a directory"):
        statedir.check_owned(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StateDirError):
        statedir.ensure(StateDir(tmp_path / "file"))
    with pytest.raises(StateDirError, match="does not exist"):
        statedir.check_owned(tmp_path / "absent")


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory `nobody` can reach (pytest's own tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="campaign-tui-test-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_nobody(action: Callable[[], str]) -> str:
    """Run ``action`` in a forked child that has dropped to the `nobody` user."""
    assert NOBODY is not None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            try:
                result = action()
            except StateDirError as exc:
                result = f"refused: {exc}"
            os.write(write_end, result.encode())
        except BaseException as exc:
            os.write(write_end, f"child failed: {exc!r}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read().decode()
    os.waitpid(pid, 0)
    return out


@needs_root
def test_non_root_user_refuses_a_dir_owned_by_another_user(shared_tmp: Path) -> None:
    theirs = shared_tmp / "theirs"
    theirs.mkdir(mode=0o755)  # root's, readable by all
    out = as_nobody(lambda: (statedir.check_owned(theirs), "accepted")[1])
    assert out.startswith("refused:"), out
    assert "belongs to uid 0" in out


@needs_root
def test_non_root_user_creates_and_accepts_its_own_dir(shared_tmp: Path) -> None:
    assert NOBODY is not None
    mine = shared_tmp / "mine"
    mine.mkdir(mode=0o700)
    os.chown(mine, NOBODY.pw_uid, NOBODY.pw_gid)

    def create() -> str:
        sd = statedir.ensure(StateDir(mine / "default"))
        st = os.stat(sd.path)
        return f"ok {st.st_uid} {stat.S_IMODE(st.st_mode):o}"

    assert as_nobody(create) == f"ok {NOBODY.pw_uid} 700"


@needs_root
def test_root_may_use_a_campaign_dir_of_another_user(tmp_path: Path) -> None:
    # "Only the owner of a campaign (or root) can control it."
    assert NOBODY is not None
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY.pw_uid, NOBODY.pw_gid)
    statedir.check_owned(theirs)


@needs_root
def test_a_file_owned_by_a_stranger_is_unreadable(state_dir: Path) -> None:
    assert NOBODY is not None
    path = state_dir / statedir.HEARTBEAT
    path.write_text('{"timestamp": 1}')
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    got = statedir.read_json(path)
    assert isinstance(got, Unreadable) and "belongs to uid" in got.why


# ---------------------------------------------------------------- reading


def test_read_json_absent_is_none(state_dir: Path) -> None:
    assert statedir.read_json(state_dir / "heartbeat.json") is None
    assert statedir.read_tail(state_dir / "alerts.log", 100) is None
    assert statedir.read_json(state_dir / "no-such-dir" / "heartbeat.json") is None


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b'{"timestamp": 17', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"NaN garbage", "not valid JSON"),
    ],
    ids=["empty", "blank", "truncated", "not-utf8", "deep", "garbage"],
)
def test_read_json_bad_content_is_unreadable(state_dir: Path, content: bytes, why: str) -> None:
    path = state_dir / "status.json"
    path.write_bytes(content)
    got = statedir.read_json(path)
    assert isinstance(got, Unreadable), got
    assert why in got.why


@pytest.mark.parametrize("name", ["heartbeat.json", "status.json", "supervisor.json"])
def test_a_json_null_file_is_unreadable_not_absent(state_dir: Path, name: str) -> None:
    # the file is there but holds no object: a reader must say so, not "no state files"
    (state_dir / name).write_bytes(b"null")
    snap = read_snapshot(StateDir(state_dir))
    assert not snap.empty
    assert isinstance(getattr(snap, name.split(".")[0]), Unreadable)


def test_read_json_good(state_dir: Path) -> None:
    path = state_dir / "status.json"
    statedir.write_json(path, {"status": "RUNNING", "message": "ünï ✓"})
    assert statedir.read_json(path) == {"status": "RUNNING", "message": "ünï ✓"}


def test_oversize_file_is_unreadable_before_parsing(state_dir: Path) -> None:
    path = state_dir / "heartbeat.json"
    with open(path, "wb") as handle:  # sparse: big on paper, cheap on disk
        handle.write(b'{"pad": "')
        handle.truncate(statedir.MAX_JSON_BYTES + 10)
    got = statedir.read_json(path)
    assert isinstance(got, Unreadable) and "too large" in got.why
    small = state_dir / "small.json"
    small.write_bytes(b'{"a": "' + b"x" * 100 + b'"}')
    assert isinstance(statedir.read_json(small, limit=50), Unreadable)


def test_symlink_at_heartbeat_is_not_followed_on_read(state_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text('{"timestamp": 1700000000000, "pid": 1}')
    (state_dir / "heartbeat.json").symlink_to(target)
    got = statedir.read_json(state_dir / "heartbeat.json")
    assert isinstance(got, Unreadable) and "symlink" in got.why
    assert isinstance(statedir.read_tail(state_dir / "heartbeat.json", 100), Unreadable)


def test_dangling_symlink_is_unreadable_not_absent(state_dir: Path, tmp_path: Path) -> None:
    (state_dir / "status.json").symlink_to(tmp_path / "nowhere")
    assert isinstance(statedir.read_json(state_dir / "status.json"), Unreadable)


def _in_thread(fn: Callable[[], object], timeout: float = 10.0) -> object:
    box: list[object] = []
    worker = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "the reader blocked"
    return box[0]


def test_fifo_is_not_blocked_on(state_dir: Path) -> None:
    fifo = state_dir / "heartbeat.json"
    os.mkfifo(fifo, 0o600)
    got = _in_thread(lambda: statedir.read_json(fifo))
    assert isinstance(got, Unreadable) and "not a regular file" in got.why
    assert isinstance(_in_thread(lambda: statedir.read_tail(fifo, 100)), Unreadable)


def test_directory_in_place_of_a_file_is_unreadable(state_dir: Path) -> None:
    (state_dir / "checkpoint.json").mkdir()
    assert isinstance(statedir.read_json(state_dir / "checkpoint.json"), Unreadable)


def test_read_tail_starts_at_a_line_boundary(state_dir: Path) -> None:
    path = state_dir / "alerts.log"
    path.write_bytes(b"".join(b"line %03d\n" % i for i in range(100)))
    data = statedir.read_tail(path, 30)
    assert isinstance(data, bytes)
    assert data == b"line 097\nline 098\nline 099\n"
    assert statedir.read_tail(path, 10_000) == path.read_bytes()


def test_iter_jsonl_skips_torn_and_corrupt_lines() -> None:
    blob = b'{"a": 1}\n{"a": 2\n\nnot json\n' + b"[" * 5000 + b'\n{"a": 3}\n{"a"'
    assert list(statedir.iter_jsonl(blob)) == [{"a": 1}, {"a": 3}]


# ---------------------------------------------------------------- writing


def test_write_json_replaces_atomically_leaving_no_temp(state_dir: Path) -> None:
    path = state_dir / "checkpoint.json"
    for n in range(5):
        statedir.write_json(path, {"n": n}, fsync=n % 2 == 0)
    assert json.loads(path.read_text()) == {"n": 4}
    assert sorted(p.name for p in state_dir.iterdir()) == ["checkpoint.json"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_symlink_at_heartbeat_is_replaced_not_written_through(
    state_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("do not touch")
    link = state_dir / "heartbeat.json"
    link.symlink_to(target)
    statedir.write_json(link, {"timestamp": 1})
    assert target.read_text() == "do not touch"
    assert not link.is_symlink()
    assert json.loads(link.read_text()) == {"timestamp": 1}


def test_planted_link_at_a_guessable_temp_name_is_not_followed(
    state_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("do not touch")
    for name in (".heartbeat.json.tmp", "heartbeat.json.tmp", ".heartbeat.json.swp"):
        (state_dir / name).symlink_to(target)
    statedir.write_json(state_dir / "heartbeat.json", {"timestamp": 2})
    assert target.read_text() == "do not touch"


def test_write_into_missing_dir_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        statedir.write_json(tmp_path / "gone" / "status.json", {"status": "X"})


def test_append_refuses_a_symlinked_log(state_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("do not touch")
    (state_dir / "errors.log").symlink_to(target)
    with pytest.raises(OSError):
        statedir.append_bytes(state_dir / "errors.log", b"x\n")
    assert target.read_text() == "do not touch"


def test_append_jsonl_creates_0600_and_appends_lines(state_dir: Path) -> None:
    path = state_dir / "results.jsonl"
    statedir.append_jsonl(path, {"item": "a", "outcome": "passed"})
    statedir.append_jsonl(path, {"item": "b\nc", "outcome": "failed"})
    lines = path.read_bytes().splitlines()
    assert [json.loads(x)["item"] for x in lines] == ["a", "b\nc"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_list_campaigns(tmp_path: Path) -> None:
    for name in ("b", "a", "empty"):
        (tmp_path / name).mkdir()
    statedir.write_json(tmp_path / "a" / "status.json", {})
    statedir.write_json(tmp_path / "b" / "heartbeat.json", {})
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert [p.name for p in statedir.list_campaigns(tmp_path)] == ["a", "b"]
    assert statedir.list_campaigns(tmp_path / "none") == []


# ---------------------------------------------------------------- concurrency

WRITER = """
import sys
from pathlib import Path
from campaign_tui.statedir import write_json
path, count = Path(sys.argv[1]), int(sys.argv[2])
for n in range(count):
    size = (n * 7919) % 3000          # vary the length so a torn read shows
    write_json(path, {"n": n, "size": size, "pad": "x" * size})
"""


def test_reader_never_sees_a_torn_heartbeat(state_dir: Path, procs: ProcessTracker) -> None:
    path = state_dir / "heartbeat.json"
    statedir.write_json(path, {"n": -1, "size": 0, "pad": ""})
    writer = procs.start([sys.executable, "-c", WRITER, str(path), "4000"])
    reads, seen = 0, set()
    while writer.poll() is None or reads == 0:
        doc = statedir.read_json(path)
        assert isinstance(doc, dict), f"read {reads}: {doc!r}"
        assert doc["pad"] == "x" * doc["size"], f"read {reads}: torn"
        seen.add(doc["n"])
        reads += 1
    assert writer.returncode == 0
    assert statedir.read_json(path)["n"] == 3999  # type: ignore[index]
    assert len(seen) > 20, f"reader and writer hardly overlapped ({len(seen)} versions seen)"
    leftovers = [p.name for p in state_dir.iterdir() if p.name != "heartbeat.json"]
    assert leftovers == []


APPENDER = """
import sys
from pathlib import Path
from campaign_tui.statedir import append_jsonl
path, who = Path(sys.argv[1]), sys.argv[2]
for n in range(1500):
    append_jsonl(path, {"who": who, "n": n, "pad": "y" * (n % 700)})
"""


def test_concurrent_appenders_never_interleave_a_line(
    state_dir: Path, procs: ProcessTracker
) -> None:
    path = state_dir / "restarts.jsonl"
    writers = [
        procs.start([sys.executable, "-c", APPENDER, str(path), who]) for who in ("a", "b")
    ]
    for proc in writers:
        assert proc.wait(timeout=60) == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    docs = [json.loads(line) for line in lines[:-1]]
    for who in ("a", "b"):
        assert [d["n"] for d in docs if d["who"] == who] == list(range(1500))



# ---------------------------------------------------------------- whole snapshots


def test_legacy_layout_snapshot_reads_the_seed_files(tmp_path: Path) -> None:
    seed = {
        "timestamp": int(time.time() * 1000),
        "current_sd": "SD-057",
        "progress": "57/118",
        "percent": "48.3",
        "status": "running",
        "pid": os.getpid(),
    }
    (tmp_path / "campaign-heartbeat.txt").write_text(json.dumps(seed))
    (tmp_path / "campaign-checkpoint.json").write_text('{"last_sd": "SD-056", "tested": 56}')
    (tmp_path / "campaign-status.json").write_text('{"status": "RUNNING"}')
    (tmp_path / "campaign-alerts.log").write_text("2024-01-01T00:00:00 WARNING slow item\n")
    (tmp_path / "supervisor.json").write_text('{"state": "running", "pid": 1}')  # not legacy
    snap = read_snapshot(statedir.resolve(state_dir=tmp_path, layout="legacy"))
    hb = snap.heartbeat
    assert isinstance(hb, Heartbeat)
    assert (hb.item, hb.tested, hb.total, hb.percent) == ("SD-057", 57, 118, 48.3)
    assert isinstance(snap.checkpoint, Checkpoint) and snap.checkpoint.last_item == "SD-056"
    assert snap.supervisor is None
    assert [a.level for a in snap.recent_alerts] == ["WARNING"]
    health = judge(snap, now(), probe_processes(snap))
    assert health.state == State.HEALTHY, health.reason


def test_snapshot_alert_lines_are_sanitized_and_recent(state_dir: Path) -> None:
    lines = [f"2024-01-01T00:00:{n:02d} INFO alert {n}\n" for n in range(20)]
    lines.append("2024-01-01T00:01:00 CRITICAL \x1b]0;owned\x07evil \x1b[31m[b]x[/b]\n")
    (state_dir / "alerts.log").write_text("".join(lines))
    snap = read_snapshot(StateDir(state_dir))
    assert len(snap.recent_alerts) == 5
    last = snap.recent_alerts[-1]
    assert last.level == "CRITICAL"
    assert last.text == "2024-01-01T00:01:00 CRITICAL evil [b]x[/b]"
    assert snap.empty  # alerts alone are not a campaign's state
