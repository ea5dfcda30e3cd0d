"""The state directory: where it is, who may use it, and safe file operations.

Writers replace JSON files atomically (an unpredictable temp name in the same
directory, then ``os.replace``) so a reader never sees a torn file. Every open
refuses to follow a symlink. Readers never raise: a file is the data, absent
(``None``), or :class:`~campaign_tui.models.Unreadable` with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from campaign_tui.models import Unreadable

DEFAULT_NAME = "default"
MAX_JSON_BYTES = 1 << 20  # a state file larger than this is not ours
MAX_JSONL_TAIL = 1 << 20  # restarts.jsonl: only the newest part is read

HEARTBEAT = "heartbeat.json"
CHECKPOINT = "checkpoint.json"
STATUS = "status.json"
SUPERVISOR = "supervisor.json"
RESULTS = "results.jsonl"
RESTARTS = "restarts.jsonl"
PROGRESS_LOG = "progress.log"
ERRORS_LOG = "errors.log"
ALERTS_LOG = "alerts.log"
WRAPPER_LOG = "wrapper.log"
OUTPUT_LOG = "output.log"
LOCK = "supervisor.lock"
CONFIG = "campaign.json"

# The original script's names, read in place (read-only) by --layout legacy.
LEGACY_NAMES = {
    HEARTBEAT: "campaign-heartbeat.txt",
    CHECKPOINT: "campaign-checkpoint.json",
    STATUS: "campaign-status.json",
    PROGRESS_LOG: "batch-test-progress.log",
    ERRORS_LOG: "batch-test-errors.log",
    ALERTS_LOG: "campaign-alerts.log",
    WRAPPER_LOG: "campaign-wrapper.log",
}
LEGACY_DEFAULT_DIR = "/tmp"
LAYOUTS = ("standard", "legacy")

LOG_NAMES = {
    "progress": PROGRESS_LOG,
    "errors": ERRORS_LOG,
    "alerts": ALERTS_LOG,
    "wrapper": WRAPPER_LOG,
    "output": OUTPUT_LOG,
    "restarts": RESTARTS,
}

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class StateDirError(Exception):
    """The state directory cannot be used (not ours, not creatable, not a directory)."""


@dataclass(frozen=True, slots=True)
class StateDir:
    """One campaign's state directory and its layout."""

    path: Path
    layout: str = "standard"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def legacy(self) -> bool:
        return self.layout == "legacy"

    def file(self, name: str) -> Path:
        """The path of a state file, by its standard name, in this layout."""
        if self.legacy:
            return self.path / LEGACY_NAMES.get(name, name)
        return self.path / name

    def log(self, kind: str) -> Path:
        return self.file(LOG_NAMES[kind])


def state_root(environ: Mapping[str, str] | None = None) -> Path:
    """The directory that holds one sub-directory per campaign."""
    env = os.environ if environ is None else environ
    if env.get("CAMPAIGN_TUI_HOME"):
        return Path(env["CAMPAIGN_TUI_HOME"]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]).expanduser() / "campaign-tui"
    return Path("~/.local/state/campaign-tui").expanduser()


def valid_name(name: str) -> bool:
    return bool(name) and name not in {".", ".."} and "/" not in name and "\0" not in name


def resolve(
    name: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    layout: str = "standard",
    environ: Mapping[str, str] | None = None,
) -> StateDir:
    """Where a campaign's state lives: ``--state-dir``, else ``CAMPAIGN_STATE_DIR``
    (set for a supervised command), else ``ROOT/NAME``."""
    env = os.environ if environ is None else environ
    if layout not in LAYOUTS:
        raise StateDirError(f"unknown layout {layout!r} (choose standard or legacy)")
    if layout == "legacy":
        return StateDir(Path(state_dir or LEGACY_DEFAULT_DIR), "legacy")
    if state_dir is not None:
        return StateDir(Path(state_dir).expanduser(), layout)
    if name is None and env.get("CAMPAIGN_STATE_DIR"):
        return StateDir(Path(env["CAMPAIGN_STATE_DIR"]), layout)
    name = name or env.get("CAMPAIGN_NAME") or DEFAULT_NAME
    if not valid_name(name):
        raise StateDirError(f"campaign name {name!r} is not usable as a directory name")
    return StateDir(state_root(env) / name, layout)


def check_owned(path: Path) -> None:
    """Refuse a directory another user owns or others may write into."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        raise StateDirError(f"state directory {path} does not exist") from None
    except OSError as exc:
        raise StateDirError(f"state directory {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirError(f"state directory {path} is not a directory")
    euid = os.geteuid()
    if st.st_uid != euid and euid != 0:
        raise StateDirError(f"state directory {path} belongs to uid {st.st_uid}, not to you")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StateDirError(
            f"state directory {path} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 700 it"
        )


def ensure(sd: StateDir) -> StateDir:
    """Create the directory (mode 0700, parents too) if absent, then check it is ours."""
    if sd.legacy:
        raise StateDirError("the legacy layout is read-only")
    try:
        sd.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StateDirError(f"state directory {sd.path} exists and is not a directory") from None
    except OSError as exc:
        raise StateDirError(f"cannot create state directory {sd.path}: {exc.strerror}") from None
    check_owned(sd.path)
    return sd


def _open_regular(path: Path, trusted_uid: int | None) -> tuple[int, os.stat_result] | Unreadable:
    """Open for reading without following links or blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Unreadable(f"{path.name} is a symlink (not followed)")
        return Unreadable(f"{path.name}: {exc.strerror}")
    try:
        st = os.fstat(fd)
    except OSError as exc:  # pragma: no cover - fstat on an open fd
        os.close(fd)
        return Unreadable(f"{path.name}: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return Unreadable(f"{path.name} is not a regular file")
    if trusted_uid is not None and st.st_uid not in (trusted_uid, os.geteuid()):
        os.close(fd)
        return Unreadable(f"{path.name} belongs to uid {st.st_uid}, not to the campaign's owner")
    return fd, st


def _owner_of(path: Path) -> int | None:
    try:
        return os.stat(path.parent, follow_symlinks=False).st_uid
    except OSError:
        return None


def _read_safely(
    path: Path, read: Callable[[int, os.stat_result], bytes | Unreadable]
) -> bytes | Unreadable | None:
    """Open ``path`` safely and hand the descriptor to ``read``; never raises."""
    try:
        opened = _open_regular(path, _owner_of(path))
    except FileNotFoundError:
        return None
    if isinstance(opened, Unreadable):
        return opened
    fd, st = opened
    try:
        return read(fd, st)
    except OSError as exc:
        return Unreadable(f"{path.name}: {exc.strerror}")
    finally:
        os.close(fd)


def read_bytes(path: Path, limit: int = MAX_JSON_BYTES) -> bytes | Unreadable | None:
    """A whole small file, or why not. ``None`` when it does not exist."""

    def whole(fd: int, st: os.stat_result) -> bytes | Unreadable:
        if st.st_size > limit:
            return Unreadable(f"{path.name} is too large ({st.st_size} bytes, limit {limit})")
        data = os.read(fd, limit + 1)
        if len(data) > limit:  # it grew, or fstat does not know (/proc, devices)
            return Unreadable(f"{path.name} is too large (over {limit} bytes)")
        return data

    return _read_safely(path, whole)


def parse_json_bytes(data: bytes, what: str) -> object | Unreadable:
    if not data.strip():
        return Unreadable(f"{what} is empty")
    try:
        doc = json.loads(data.decode("utf-8", "strict"))
    except UnicodeDecodeError:
        return Unreadable(f"{what} is not UTF-8")
    except RecursionError:
        return Unreadable(f"{what} is nested too deeply")
    except ValueError as exc:
        return Unreadable(f"{what} is not valid JSON ({str(exc)[:80]})")
    # None means "absent" to every caller; a file that holds null is present but useless.
    return Unreadable(f"{what} holds JSON null") if doc is None else doc


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> object | Unreadable | None:
    """Parsed JSON, ``None`` when absent, :class:`Unreadable` otherwise. Never raises."""
    data = read_bytes(path, limit)
    if data is None or isinstance(data, Unreadable):
        return data
    return parse_json_bytes(data, path.name)


def read_tail(path: Path, max_bytes: int) -> bytes | Unreadable | None:
    """The last ``max_bytes`` of a file, starting at a line boundary."""

    def tail(fd: int, st: os.stat_result) -> bytes:
        start = max(0, st.st_size - max_bytes)
        data = os.pread(fd, max_bytes, start)
        if start > 0:
            cut = data.find(b"\n")
            data = data[cut + 1 :] if cut >= 0 else b""
        return data

    return _read_safely(path, tail)


def iter_jsonl(data: bytes) -> Iterator[object]:
    """Parsed lines of a JSON-lines blob; torn or corrupt lines are skipped."""
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except (ValueError, RecursionError):
            continue


def mtime_ms(path: Path) -> int | None:
    try:
        return int(os.stat(path, follow_symlinks=False).st_mtime * 1000)
    except OSError:
        return None


# ----------------------------------------------------------------- writing


def write_json(path: Path, doc: object, *, fsync: bool = False) -> None:
    """Replace ``path`` atomically with ``doc`` as JSON. Raises OSError on failure."""
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    replace_atomically(path, data, fsync=fsync)


def replace_atomically(path: Path, data: bytes, *, mode: int = 0o600, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically: a reader sees the old file or the new
    one, never half of either. Raises OSError on failure.

    The temp name starts with a dot, does not end like ``path`` and is unpredictable;
    it is created with O_EXCL|O_NOFOLLOW, so a link planted in the directory cannot
    redirect the write, and ``os.replace`` replaces a link at ``path`` itself rather
    than writing through it. ``mode`` is set whatever the umask.
    """
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, mode)
    try:
        try:
            if mode != 0o600:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        dir_fd = os.open(path.parent, os.O_RDONLY | _O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def open_append(path: Path) -> int:
    """An O_APPEND descriptor (0600, no symlinks followed) for a log or journal.

    Opened non-blocking, so a FIFO planted at the name cannot hang the writer,
    and refused unless it is a regular file (OSError); blocking again once checked.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(path, flags, 0o600)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{path.name} is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_bytes(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Append whole or not at all: one write, so concurrent appenders never
    interleave a line; a short write (disk full mid-line) is cut off again, so
    no fragment is left to swallow the next line."""
    fd = open_append(path)
    try:
        before = os.fstat(fd).st_size
        written = 0
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write (disk full?)")
            if fsync:
                os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                # Cut our fragment off, unless another appender wrote after it.
                if 0 < written < len(data) and os.fstat(fd).st_size == before + written:
                    os.ftruncate(fd, before)
            raise
    finally:
        os.close(fd)


def append_jsonl(path: Path, doc: object, *, fsync: bool = False) -> None:
    line = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
    append_bytes(path, line.encode(), fsync=fsync)


def list_campaigns(root: Path) -> list[Path]:
    """Sub-directories of the state root that look like campaigns, sorted by name."""
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            if (
                entry.is_dir()
                and not entry.is_symlink()
                and any(
                    (entry / name).exists() for name in (HEARTBEAT, STATUS, SUPERVISOR, CHECKPOINT)
                )
            ):
                found.append(entry)
        except OSError:
            continue
    return found
