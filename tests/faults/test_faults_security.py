"""Security: planted links, foreign and open directories, other users, untrusted text.

Acting as another user: the tests run as root, and the interpreter lives under
a 0700 home that `nobody` cannot enter, so a *subprocess* as `nobody` could not
even exec Python. Each attempt as `nobody` is therefore a forked child of this
test process that drops to `nobody` (setgroups, setgid, setuid) and then calls
the CLI's ``main`` or :mod:`campaign_tui.control` directly; it reports back
through a pipe and its exit status.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# `nobody` may not be able to read the checkout (a clone under a 0700 folder), so
# everything the CLI imports lazily on these paths is imported before dropping to it.
from campaign_tui import cli, clock, config, control, health, report, snapshot  # noqa: F401
from campaign_tui.statedir import StateDir
from conftest import ProcessTracker, wait_until
from faults_report import Fault
from supervisor_fixtures import PY, Sup, alive

try:
    NOBODY: pwd.struct_passwd | None = pwd.getpwnam("nobody")
except KeyError:  # pragma: no cover
    NOBODY = None
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or NOBODY is None, reason="acting as `nobody` needs root and a nobody user"
)

JSON_NAMES = (
    "heartbeat.json",
    "checkpoint.json",
    "status.json",
    "supervisor.json",
    "campaign.json",
)
APPEND_NAMES = ("results.jsonl", "restarts.jsonl", "progress.log", "errors.log", "alerts.log")
EVIL = "[bold red]x[/] [link=http://evil]y[/link] \x1b]0;pwned\x07\x1b[2J\x1b[31mred \x9b1m"


def as_nobody(action: Callable[[], int]) -> tuple[int, str]:
    """Run ``action`` as `nobody` in a forked child; its exit code and what it printed."""
    assert NOBODY is not None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 70
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = action()
            os.write(write_end, out.getvalue().encode())
        except BaseException as exc:
            os.write(write_end, f"child failed: {exc!r}".encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory `nobody` can reach (pytest's own tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="campaign-tui-faults-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- planted links


def test_planted_links_at_state_file_names_are_not_followed(
    sup: Sup, tmp_path: Path, fault: Any
) -> None:
    injected: Fault = fault(
        "symlinks planted at every state file name before a supervised run",
        "no write goes through a link: each target keeps its bytes; the JSON state lands "
        "in the directory; the campaign finishes its items",
    )
    victims = tmp_path / "victims"
    victims.mkdir()
    sup.dir.mkdir(mode=0o700)
    targets = {}
    for name in (*JSON_NAMES, *APPEND_NAMES):
        target = victims / name
        target.write_text(f"precious {name}\n")
        (sup.dir / name).symlink_to(target)
        targets[target] = target.read_bytes()
        injected.inject()
    dangling = victims / "never-created"
    (sup.dir / "wrapper.log").symlink_to(dangling)
    injected.inject()
    script = sup.script(
        "tiny.py",
        """
        import os
        from campaign_tui import Campaign
        with Campaign(total=3) as c:
            for key in c.pending(["a", "b", "c"]):
                with c.item(key):
                    open(os.environ["FAULT_RAN"], "a").write(key + "\\n")
        """,
    )
    sup.env["FAULT_RAN"] = str(tmp_path / "ran.log")
    done = sup.run("--backoff-initial", "0.05", "--max-restarts", "1", cmd=[PY, str(script)])
    assert "Traceback" not in done.stdout + done.stderr
    assert {t: t.read_bytes() for t in targets} == targets, "a write went through a link"
    assert not dangling.exists()
    assert (tmp_path / "ran.log").read_text().split()[:3] == ["a", "b", "c"]
    for name in JSON_NAMES:
        path = sup.dir / name
        assert path.is_file() and not path.is_symlink(), name
        json.loads(path.read_text())
    assert sup.json("status.json")["status"] == "COMPLETE", done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    injected.lost = 0


def test_planted_link_at_output_log_does_not_stop_the_campaign(sup: Sup, tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("precious\n")
    sup.dir.mkdir(mode=0o700)
    (sup.dir / "output.log").symlink_to(target)
    done = sup.run(cmd=[PY, "-c", "print('hello')"])
    assert target.read_text() == "precious\n"
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 66), done.stderr  # refusing is fine; following is not


def test_planted_link_at_the_lock_is_refused_in_one_line(sup: Sup, tmp_path: Path) -> None:
    target = tmp_path / "victim.lock"
    target.write_text("precious\n")
    sup.dir.mkdir(mode=0o700)
    (sup.dir / "supervisor.lock").symlink_to(target)
    done = sup.run(cmd=["true"])
    assert target.read_text() == "precious\n"
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 1, done.stderr


# ---------------------------------------------------------------- foreign and open directories


@needs_root
def test_state_dir_of_another_user_is_refused_by_run_and_status(
    shared_tmp: Path, fault: Any
) -> None:
    injected: Fault = fault(
        "a state directory owned by another user (acting as `nobody` on root's)",
        "`run` and `status` refuse with one line and exit 73; nothing is written",
    )
    theirs = shared_tmp / "theirs"
    theirs.mkdir(mode=0o755)
    (theirs / "status.json").write_text('{"status": "RUNNING"}')
    os.chmod(theirs / "status.json", 0o644)
    before = sorted(p.name for p in theirs.iterdir())
    for argv in (
        ["status", "--state-dir", str(theirs)],
        ["run", "--state-dir", str(theirs), "--", "true"],
    ):
        code, text = as_nobody(lambda argv=argv: cli.main(argv))
        injected.inject()
        lines = text.strip().splitlines()
        assert code == 73 and len(lines) == 1 and "belongs to uid 0" in lines[0], (argv, code, text)
    assert sorted(p.name for p in theirs.iterdir()) == before
    injected.lost = 0


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_state_dir_writable_by_others_is_refused_by_run_and_status(
    sup: Sup, mode: int, fault: Any
) -> None:
    injected: Fault = fault(
        "a state directory writable by group or others",
        "`run`, `status` and `start` refuse with one line (exit 73); nothing runs",
    )
    sup.dir.mkdir()
    sup.dir.chmod(mode)
    for args in (("status",), ("start",), ("run", "--", "true")):
        done = sup.cli(args[0], "--state-dir", str(sup.dir), *args[1:])
        injected.inject()
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 73 and len(lines) == 1, (args, done.returncode, done.stderr)
        assert "writable by group or others" in lines[0]
    assert list(sup.dir.iterdir()) == []
    injected.lost = 0


# ---------------------------------------------------------------- control from another user


@needs_root
def test_control_from_another_user_is_refused(
    procs: ProcessTracker, shared_tmp: Path, fault: Any
) -> None:
    injected: Fault = fault(
        "control (stop, restart, ping) from another user, even with the socket opened to all",
        "the supervisor refuses the peer uid; the campaign keeps running, not restarted",
    )
    sup = Sup(procs, shared_tmp)
    sup.dir = shared_tmp / "mine"
    try:
        sup.detach("--stop-timeout", "0.5", cmd=[PY, "-c", "import time; time.sleep(300)"])
        doc = sup.wait_child()
        # a careless owner: the directory traversable and the socket open to everyone
        sup.dir.chmod(0o711)
        os.chmod(sup.dir / "control.sock", 0o666)
        os.chmod(sup.dir / "supervisor.json", 0o644)
        sd = StateDir(sup.dir)
        answers = {}
        for verb in ("stop", "restart", "ping"):
            code, text = as_nobody(
                lambda verb=verb: print(repr(control._ask(sd, verb, 2.0))) or 0  # type: ignore[func-returns-value]
            )
            answers[verb] = text.strip()
            injected.inject()
        code, text = as_nobody(lambda: control.restart(sd))
        injected.inject()
        assert code != 0, text
        assert all(a in ("None", "''") for a in answers.values()), answers
        wait_until(lambda: sup.text("wrapper.log").count("refused") >= 4, 10, "four refusals")
        assert "control connection from uid 65534 refused" in sup.text("wrapper.log")
        now = sup.sup()
        assert now["state"] == "running" and now["attempt"] == 1
        assert alive(doc["pid"]) and alive(doc["child_pid"])
        assert sup.ctl("stop").returncode == 0  # the owner still can
        injected.lost = 0
    finally:
        sup.end_all()


def test_stop_never_signals_a_pid_recorded_without_its_create_time(sup: Sup, fault: Any) -> None:
    injected: Fault = fault(
        "supervisor.json naming a stranger's pid without its create time",
        "`stop` does not signal it",
    )
    decoy = sup.tracker.start([PY, "-c", "import time; time.sleep(300)"])
    wait_until(lambda: alive(decoy.pid), 10, "the decoy")
    sup.dir.mkdir(mode=0o700)
    (sup.dir / "supervisor.json").write_text(json.dumps({"pid": decoy.pid, "state": "running"}))
    injected.inject()
    done = sup.ctl("stop", timeout=30)
    assert "Traceback" not in done.stderr
    assert decoy.poll() is None, f"stop killed an unverified pid ({done.stdout}{done.stderr})"
    injected.lost = 0


# ---------------------------------------------------------------- untrusted text


def _clean(text: str) -> None:
    assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text, repr(text)


def test_markup_and_escapes_in_logs_are_shown_literally(sup: Sup, fault: Any) -> None:
    injected: Fault = fault(
        "log lines, item names and messages with markup and terminal escapes",
        "`logs`, `status` and the TUI show them literally: no escape byte, markup as text",
    )
    sup.dir.mkdir(mode=0o700)
    stamp = "2026-01-01T00:00:00.000+00:00"
    for name in ("errors.log", "alerts.log", "progress.log", "wrapper.log"):
        with open(sup.dir / name, "w") as log:
            log.write(f"{stamp} CRITICAL {EVIL}\n")
        injected.inject()
    pid = os.getpid()
    (sup.dir / "heartbeat.json").write_text(
        json.dumps({"timestamp": int(time.time() * 1000), "current_item": EVIL, "pid": pid})
    )
    (sup.dir / "status.json").write_text(json.dumps({"status": "RUNNING", "message": EVIL}))
    injected.inject(2)
    for kind in ("errors", "alerts", "progress", "wrapper"):
        done = sup.cli("logs", kind, "--state-dir", str(sup.dir))
        assert done.returncode == 0, done.stderr
        _clean(done.stdout)
        assert "[bold red]x[/] [link=http://evil]y[/link]" in done.stdout, done.stdout
    done = sup.cli("status", "--state-dir", str(sup.dir))
    _clean(done.stdout)
    assert "[bold red]x[/]" in done.stdout and "Recent alerts:" in done.stdout, done.stdout
    done = sup.cli("status", "--json", "--state-dir", str(sup.dir))
    _clean(json.loads(done.stdout)["progress"]["current_item"])

    async def scenario() -> str:
        from textual.widgets import Log, Static

        from campaign_tui.tui.app import CampaignApp

        app = CampaignApp(StateDir(sup.dir), root=sup.dir.parent)
        async with app.run_test(size=(120, 30)) as pilot:
            deadline = time.monotonic() + 10

            def shown() -> str:
                parts = [str(w.render()) for w in app.screen.query(Static)]
                parts += ["\n".join(w.lines) for w in app.screen.query(Log)]
                return "\n".join(parts)

            while "[link=http://evil]y[/link]" not in shown():
                assert time.monotonic() < deadline, shown()
                await pilot.pause(0.05)
            svg = app.export_screenshot()
            assert "pwned" not in svg
            return shown()

    import asyncio

    text = asyncio.run(scenario())
    _clean(text)
    assert "[bold red]x[/]" in text
    injected.lost = 0
