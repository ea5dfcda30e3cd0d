"""The supervisor's figures: crash → next start, stop of a SIGTERM-ignoring
command, and the idle daemon — ours beside supervisord and pm2, same command,
same run."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from harness import (
    BENCH_DIR,
    Ref,
    Stat,
    bench_env,
    campaign_tui,
    end_pid,
    run,
    say,
    spawn,
    wait_for,
)
from refs import Refs

WORKERS = BENCH_DIR / "workers"
CRASH = WORKERS / "crash.sh"
IGNORE = WORKERS / "ignore_term.sh"
SLEEPER = WORKERS / "sleeper.sh"
BACKOFF = 0.2  # our configured restart delay; subtracted from each measured gap
CRASH_AFTER = 0.3  # how long each attempt of the crashing command runs
STOP_TIMEOUT = 1  # stop_timeout / stopwaitsecs / kill_timeout, the same for every tool


# ---------------------------------------------------------------------- helpers


def _stamps(path: Path) -> list[tuple[str, float]]:
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            with contextlib.suppress(ValueError):
                out.append((parts[0], float(parts[1])))
    return out


def _gaps(path: Path) -> list[float]:
    """Seconds from each crash to the next start, from the command's own stamps."""
    gaps = []
    crashed = None
    for kind, at in _stamps(path):
        if kind == "crash":
            crashed = at
        elif kind == "start" and crashed is not None:
            gaps.append(at - crashed)
            crashed = None
    return gaps


def _starts(path: Path) -> int:
    return sum(1 for kind, _ in _stamps(path) if kind == "start")


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def _gone_at(fd: int | None, timeout: float) -> float:
    if fd is None:
        return time.monotonic()
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"the command did not end within {timeout:g}s")
        return time.monotonic()
    finally:
        os.close(fd)


class Supervisord:
    """One supervisord (from the benchmark's venv) in the foreground, with one program."""

    def __init__(self, refs: Refs, home: Path, program: str, **options: object) -> None:
        self.daemon = refs.get("supervisord")
        self.ctl = refs.get("supervisorctl")
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.conf = home / "supervisord.conf"
        settings = "\n".join(f"{k}={v}" for k, v in options.items())
        self.conf.write_text(
            f"""[unix_http_server]
file={home}/supervisor.sock
chmod=0700

[supervisord]
logfile={home}/supervisord.log
pidfile={home}/supervisord.pid
childlogdir={home}
nodaemon=true
loglevel=warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{home}/supervisor.sock

[program:{program}]
{settings}
"""
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> int:
        assert self.daemon is not None
        self.proc = spawn(
            [str(self.daemon), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: (self.home / "supervisor.sock").exists(), 10, "supervisord's socket")
        return self.proc.pid

    def ctl_argv(self, *args: str) -> list[str]:
        assert self.ctl is not None
        return [str(self.ctl), "-c", str(self.conf), *args]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            end_pid(self.proc.pid, grace=5.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self.proc = None


class Pm2:
    """A pm2 daemon of the benchmark's own (PM2_HOME in its work folder)."""

    def __init__(self, refs: Refs, home: Path) -> None:
        self.exe = refs.get("pm2")
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = bench_env(PM2_HOME=str(home))

    def start(self, name: str, script: Path, args: list[str], **options: object) -> int:
        assert self.exe is not None
        eco = self.home / f"{name}.json"
        app = {"name": name, "script": str(script), "interpreter": "bash", "args": args, **options}
        eco.write_text(json.dumps({"apps": [app]}))
        done = run([str(self.exe), "start", str(eco)], env=self.env, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"pm2 start: {done.stderr.strip() or done.stdout.strip()}")
        return self.daemon_pid()

    def daemon_pid(self) -> int:
        return int((self.home / "pm2.pid").read_text().strip())

    def argv(self, *args: str) -> list[str]:
        assert self.exe is not None
        return [str(self.exe), *args]

    def kill(self) -> None:
        if self.exe is None:
            return
        pid = None
        with contextlib.suppress(OSError, ValueError):
            pid = self.daemon_pid()
        run([str(self.exe), "kill"], env=self.env, timeout=30)
        if pid is not None:
            end_pid(pid)


# ---------------------------------------------------------------------- crash → next start


def crash_restart(work: Path, refs: Refs, samples: int) -> tuple[Stat, list[Ref]]:
    """Gap between a crash and the next start, minus the configured backoff."""
    ours_dir = work / "crash-ours"
    stamps = work / "crash-ours.txt"
    argv = [
        *campaign_tui(),
        "run", "--state-dir", str(ours_dir),
        "--backoff-initial", str(BACKOFF), "--backoff-max", str(BACKOFF),
        "--max-restarts", str(samples), "--stop-timeout", str(STOP_TIMEOUT),
        "--", "bash", str(CRASH), str(stamps), str(CRASH_AFTER),
    ]  # fmt: skip
    proc = spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=30 + samples * (BACKOFF + CRASH_AFTER + 1))
    finally:
        if proc.poll() is None:
            end_pid(proc.pid)
    delays = []
    with contextlib.suppress(OSError):
        for line in (ours_dir / "restarts.jsonl").read_text().splitlines():
            doc = json.loads(line)
            if doc.get("next_delay") is not None:
                delays.append(float(doc["next_delay"]))
    gaps = _gaps(stamps)
    ours = Stat([1000 * (g - d) for g, d in zip(gaps, delays, strict=False)], "ms")
    say(f"  ours: {ours.text()}")
    out = [_crash_supervisord(work, refs, samples), _crash_pm2(work, refs, samples)]
    return ours, out


def _crash_supervisord(work: Path, refs: Refs, samples: int) -> Ref:
    label = "supervisord"
    if refs.get("supervisord") is None:
        return Ref(label, skipped=refs.why("supervisor"))
    stamps = work / "crash-supervisord.txt"
    sup = Supervisord(
        refs,
        work / "crash-supervisord",
        "crash",
        command=f"bash {CRASH} {stamps} {CRASH_AFTER}",
        autostart="true",
        autorestart="true",
        startsecs=0,
        startretries=1000,
        stopwaitsecs=STOP_TIMEOUT,
    )
    try:
        sup.start()
        wait_for(lambda: _starts(stamps) > samples, 30 + samples * 3, "supervisord's restarts")
    finally:
        sup.stop()
    stat = Stat([1000 * g for g in _gaps(stamps)[:samples]], "ms")
    say(f"  supervisord: {stat.text()}")
    return Ref(label, stat)


def _crash_pm2(work: Path, refs: Refs, samples: int) -> Ref:
    label = "pm2"
    if refs.get("pm2") is None:
        return Ref(label, skipped=refs.why("pm2"))
    stamps = work / "crash-pm2.txt"
    pm2 = Pm2(refs, work / "crash-pm2")
    try:
        pm2.start(
            "crash",
            CRASH,
            [str(stamps), str(CRASH_AFTER)],
            min_uptime=100,
            max_restarts=1000,
            restart_delay=0,
            autorestart=True,
        )
        wait_for(lambda: _starts(stamps) > samples, 30 + samples * 2, "pm2's restarts")
    finally:
        pm2.kill()
    stat = Stat([1000 * g for g in _gaps(stamps)[:samples]], "ms")
    say(f"  pm2: {stat.text()}")
    return Ref(label, stat)


# ---------------------------------------------------------------------- stop beyond the timeout


def _ours_running(work: Path, n: int) -> tuple[Path, int, int]:
    """A detached supervisor of ours running the SIGTERM-ignoring command; (dir, sup, child)."""
    sd = work / f"stop-ours-{n}"
    pidfile = work / f"stop-ours-{n}.pid"
    done = run(
        [*campaign_tui(), "run", "--detach", "--state-dir", str(sd), "--stop-timeout", str(STOP_TIMEOUT), "--", "bash", str(IGNORE), str(pidfile)],
        timeout=30,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"campaign-tui run --detach: {done.stderr.strip()}")
    sup = int(done.stdout.strip().split()[-1])
    child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "pidfile"))
    time.sleep(0.2)  # let the trap be set and the supervisor settle into its loop
    return sd, sup, child


def stop_beyond(work: Path, refs: Refs, runs: int) -> dict[str, tuple[Stat, Ref]]:
    """Time from the stop request to the command's end, minus the stop timeout.

    Two ways to ask: the command line (``campaign-tui stop`` / ``supervisorctl stop``),
    and SIGTERM to the daemon itself (no client start-up in the figure).
    """
    cli, sig = [], []
    for n in range(runs):
        sd, _sup, child = _ours_running(work, 2 * n)
        fd = _pidfd(child)
        start = time.monotonic()
        proc = spawn(
            [*campaign_tui(), "stop", "--state-dir", str(sd)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cli.append(1000 * (_gone_at(fd, 30) - start - STOP_TIMEOUT))
        proc.wait(30)
        sd, sup, child = _ours_running(work, 2 * n + 1)
        fd = _pidfd(child)
        start = time.monotonic()
        os.kill(sup, signal.SIGTERM)
        sig.append(1000 * (_gone_at(fd, 30) - start - STOP_TIMEOUT))
        wait_for(lambda sup=sup: _pidfd_gone(sup), 10, "our supervisor to exit")
    ours_cli, ours_sig = Stat(cli, "ms"), Stat(sig, "ms")
    say(f"  ours (campaign-tui stop): {ours_cli.text()}")
    say(f"  ours (SIGTERM to the supervisor): {ours_sig.text()}")
    ref_cli, ref_sig = _stop_supervisord(work, refs, runs)
    return {"cli": (ours_cli, ref_cli), "signal": (ours_sig, ref_sig)}


def _pidfd_gone(pid: int) -> bool:
    fd = _pidfd(pid)
    if fd is None:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], 0)
        return bool(ready)
    finally:
        os.close(fd)


def _stop_supervisord(work: Path, refs: Refs, runs: int) -> tuple[Ref, Ref]:
    if refs.get("supervisord") is None:
        why = refs.why("supervisor")
        return Ref("supervisord", skipped=why), Ref("supervisord", skipped=why)
    pidfile = work / "stop-supervisord.pid"
    options = {
        "command": f"bash {IGNORE} {pidfile}",
        "startsecs": 0,
        "stopwaitsecs": STOP_TIMEOUT,
        "stopasgroup": "true",
        "killasgroup": "true",
        "autorestart": "false",
    }
    cli, sig = [], []
    sup = Supervisord(refs, work / "stop-supervisord-cli", "ignore", autostart="false", **options)
    try:
        sup.start()
        for _ in range(runs):
            with contextlib.suppress(FileNotFoundError):
                pidfile.unlink()
            run(sup.ctl_argv("start", "ignore"), timeout=30)
            child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10))
            time.sleep(0.2)
            fd = _pidfd(child)
            start = time.monotonic()
            proc = spawn(sup.ctl_argv("stop", "ignore"), stdout=subprocess.DEVNULL)
            cli.append(1000 * (_gone_at(fd, 30) - start - STOP_TIMEOUT))
            proc.wait(30)
    finally:
        sup.stop()
    for n in range(runs):
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
        sup = Supervisord(
            refs, work / f"stop-supervisord-sig-{n}", "ignore", autostart="true", **options
        )
        try:
            daemon = sup.start()
            child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10))
            time.sleep(0.2)
            fd = _pidfd(child)
            start = time.monotonic()
            os.kill(daemon, signal.SIGTERM)
            sig.append(1000 * (_gone_at(fd, 30) - start - STOP_TIMEOUT))
        finally:
            sup.stop()
    ref_cli, ref_sig = Stat(cli, "ms"), Stat(sig, "ms")
    say(f"  supervisord (supervisorctl stop): {ref_cli.text()}")
    say(f"  supervisord (SIGTERM to supervisord): {ref_sig.text()}")
    return Ref("supervisord", ref_cli), Ref("supervisord", ref_sig)
