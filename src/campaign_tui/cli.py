"""The ``campaign-tui`` command line.

Commands import what they need when they run, so that ``status`` and ``beat``
(run from ``watch``, cron and monitoring) stay fast and never load Textual.
Bad input ends with one line on stderr and a sysexits code, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from campaign_tui import __version__, statedir
from campaign_tui.errors import EX_CANTCREAT, EX_NOINPUT, EX_SOFTWARE, UsageError
from campaign_tui.statedir import StateDir, StateDirError

PROG = "campaign-tui"
DEFAULT_CONFIG = "campaign.toml"
LOG_KINDS = ("progress", "errors", "alerts", "restarts", "output", "wrapper")

DESCRIPTION = """\
Supervise and monitor a long-running batch campaign: heartbeat, crash capture,
auto-restart with backoff, a status command for scripts, and a full-screen TUI.

Without a command, opens the monitor (same as `campaign-tui tui`)."""

EPILOG = """\
status exit codes: 0 HEALTHY, COMPLETE, TERMINATED · 1 STALE, RESTARTING · 2 CRASHED · 3 UNKNOWN
state directory: --state-dir DIR, else $CAMPAIGN_TUI_HOME/NAME, $XDG_STATE_HOME/campaign-tui/NAME,
or ~/.local/state/campaign-tui/NAME (NAME from --name, default "default")."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input as a UsageError (one line, exit 64)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _duration(text: str) -> float:
    from campaign_tui.config import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (try 0.5, 90, 90s, 10m, 1h)"
        ) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("campaign selection")
    group.add_argument("--name", default=default, help="campaign name under the state root")
    group.add_argument(
        "--state-dir", default=default, metavar="DIR", help="the campaign's directory"
    )
    group.add_argument(
        "--layout",
        choices=statedir.LAYOUTS,
        default=argparse.SUPPRESS if suppress else "standard",
        help="legacy reads the original /tmp/campaign-* files, read-only",
    )
    group.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help=f"settings file (default ./{DEFAULT_CONFIG} when present)",
    )


def _supervisor_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("supervisor settings (also campaign.toml keys)")
    group.add_argument(
        "--stale-after",
        type=_duration,
        metavar="S",
        help="heartbeat age that means a hang (default 600s)",
    )
    group.add_argument(
        "--max-restarts", type=_count, metavar="N", help="restarts before giving up (default 5)"
    )
    group.add_argument(
        "--backoff-initial", type=_duration, metavar="S", help="first restart delay (default 5s)"
    )
    group.add_argument(
        "--backoff-max", type=_duration, metavar="S", help="longest restart delay (default 300s)"
    )
    group.add_argument(
        "--backoff-reset-after",
        type=_duration,
        metavar="S",
        help="a run healthy this long resets the backoff (default 600s)",
    )
    group.add_argument(
        "--stop-timeout",
        type=_duration,
        metavar="S",
        help="SIGTERM, then SIGKILL after S (default 10s)",
    )
    group.add_argument(
        "--restart-on-stale",
        action="store_true",
        default=None,
        help="diagnose, kill and restart a hung campaign",
    )
    group.add_argument(
        "--on-alert", metavar="CMD", help="command run for each alert, the alert as JSON on stdin"
    )
    group.add_argument(
        "--textfile-dir",
        metavar="DIR",
        help="keep campaign_<name>.prom there for node_exporter's textfile collector",
    )


def _tui_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--poll", action="store_true", default=argparse.SUPPRESS, help="poll files (for NFS)"
    )


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--detach", action="store_true", help="run as a background daemon; print its pid"
    )
    _supervisor_options(p)
    p.add_argument(
        "cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]", help="the campaign's command"
    )


def _status_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--stale-after", type=_duration, metavar="S", help="override the hang limit")


def _logs_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "kind",
        nargs="?",
        default="progress",
        choices=LOG_KINDS,
        help="which log (default progress)",
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument(
        "-n", "--lines", type=_count, default=20, metavar="N", help="how many lines (default 20)"
    )


def _metrics_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="every campaign under the state root")


def _beat_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--item", help="the item being tested now (or just finished)")
    p.add_argument("--tested", type=_count, metavar="N", help="items finished so far")
    p.add_argument("--total", type=_count, metavar="N", help="items in the campaign")
    outcome = p.add_mutually_exclusive_group()
    for flag in ("passed", "failed", "error", "skipped"):
        outcome.add_argument(
            f"--{flag}",
            dest="outcome",
            action="store_const",
            const=flag,
            help=f"record --item as {flag}",
        )
    p.add_argument("--message", default="", help="a message for the outcome or the status")
    p.add_argument(
        "--status",
        type=str.upper,
        choices=("RUNNING", "COMPLETE", "CRASHED", "TERMINATED"),
        help="declare the campaign's status (COMPLETE when the loop is done)",
    )
    p.add_argument("--pid", type=_count, help="the campaign's pid (default: the calling shell)")


def _no_options(p: argparse.ArgumentParser) -> None:
    return None


SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "tui": ("the full-screen monitor (the default command)", _tui_options),
    "run": ("supervise CMD: restart it after a crash, record why it ended", _run_options),
    "start": ("start the recorded campaign detached (refuses if it runs)", _supervisor_options),
    "stop": ("stop the running campaign (the whole process tree)", _no_options),
    "restart": ("restart the running campaign now (not counted as a crash)", _no_options),
    "status": ("health verdict; exit code for monitoring", _status_options),
    "logs": ("print or follow one of the campaign's logs", _logs_options),
    "metrics": ("Prometheus text exposition of the campaign (or --all)", _metrics_options),
    "beat": ("report progress from a shell campaign", _beat_options),
    "demo": ("a simulated campaign under the supervisor, with the TUI", _no_options),
}
# The options before a command that take a value, and those that do not.
_MAIN_VALUED = ("--name", "--state-dir", "--layout", "--config")
_MAIN_FLAGS = ("--poll",)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``only``, just that command's: building every command's
    parser is most of argparse's start-up, and ``status`` may run every minute
    from monitoring. ``only`` must be the command the arguments name (see
    :func:`command_of`)."""
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _common(parser, suppress=False)
    parser.add_argument(
        "--poll", action="store_true", help="TUI: poll files (for NFS) instead of inotify"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, options) in SUBCOMMANDS.items():
        if only is None or name == only:
            p = sub.add_parser(name, help=help_text, description=help_text)
            _common(p, suppress=True)
            options(p)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (``tui`` when none), when that is certain without
    argparse: only the main options, spelled out in full, may come before it.
    None otherwise."""
    words = iter(argv)
    for word in words:
        if word in _MAIN_FLAGS:
            continue
        if word in _MAIN_VALUED:
            next(words, None)
            continue
        if word.startswith(tuple(f"{o}=" for o in _MAIN_VALUED)):
            continue
        return word if word in SUBCOMMANDS else None
    return "tui"


# ----------------------------------------------------------------- helpers


def _state_dir(args: argparse.Namespace) -> StateDir:
    try:
        return statedir.resolve(args.name, args.state_dir, getattr(args, "layout", "standard"))
    except StateDirError as exc:
        raise UsageError(str(exc), EX_CANTCREAT) from None


def _readable_dir(sd: StateDir) -> StateDir:
    """A directory we read from: absent is fine (nothing yet); not ours is not."""
    if not sd.legacy and sd.path.exists():
        try:
            statedir.check_owned(sd.path)
        except StateDirError as exc:
            raise UsageError(str(exc), EX_CANTCREAT) from None
    return sd


def _config_path(args: argparse.Namespace) -> Path | None:
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise UsageError(f"config file {path} does not exist", EX_NOINPUT)
        return path
    default = Path(DEFAULT_CONFIG)
    return default if default.is_file() else None


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    names = (
        "stale_after",
        "max_restarts",
        "backoff_initial",
        "backoff_max",
        "backoff_reset_after",
        "stop_timeout",
        "restart_on_stale",
        "textfile_dir",
    )
    found: dict[str, object] = {
        n: getattr(args, n) for n in names if getattr(args, n, None) is not None
    }
    if getattr(args, "on_alert", None):
        import shlex

        try:
            found["on_alert"] = tuple(shlex.split(args.on_alert))
        except ValueError as exc:
            raise UsageError(f"--on-alert: {exc}") from None
    return found


# ----------------------------------------------------------------- commands


def cmd_status(args: argparse.Namespace) -> int:
    from campaign_tui import clock
    from campaign_tui.health import judge
    from campaign_tui.report import health_json, plugin_line, report_text
    from campaign_tui.snapshot import probe_processes, read_snapshot

    sd = _readable_dir(_state_dir(args))
    snap = read_snapshot(sd)
    now = clock.now()
    health = judge(snap, now, probe_processes(snap), stale_after=args.stale_after)
    if args.json:
        print(json.dumps(health_json(health, snap, now), indent=2, ensure_ascii=False))
    else:
        print(plugin_line(health))
        print(report_text(health, snap, now))
    return health.exit_code


def cmd_metrics(args: argparse.Namespace) -> int:
    from campaign_tui.metrics import read_campaign, render

    if args.all:
        if args.name is not None or args.state_dir is not None:
            raise UsageError("metrics --all reads every campaign: leave out --name / --state-dir")
        dirs = [StateDir(path) for path in statedir.list_campaigns(statedir.state_root())]
    else:
        dirs = [_readable_dir(_state_dir(args))]
    sys.stdout.write(render(read_campaign(sd) for sd in dirs))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from campaign_tui.tail import Tailer

    sd = _readable_dir(_state_dir(args))
    if sd.legacy and args.kind not in ("progress", "errors", "alerts", "wrapper"):
        raise UsageError(f"the legacy layout has no {args.kind} log", EX_NOINPUT)
    path = sd.log(args.kind)
    tailer = Tailer(path)
    lines = tailer.tail(args.lines) if args.lines else []
    if not lines and not args.follow and not path.exists():
        print(f"{PROG}: {path} does not exist (yet)", file=sys.stderr)
        return EX_NOINPUT
    shape = _restart_line if args.kind == "restarts" else str
    _print_lines([shape(line) for line in lines])
    while args.follow:
        time.sleep(0.2)  # a plain poll: cheap, and it works on NFS
        _print_lines([shape(line) for line in tailer.poll()])
    return 0


def _restart_line(line: str) -> str:
    """One restarts.jsonl record as a person reads it (the JSON when it is not one)."""
    from campaign_tui.clock import human_duration, iso
    from campaign_tui.models import RestartRecord

    try:
        record = RestartRecord.parse(json.loads(line))
    except (ValueError, RecursionError):
        return line
    if not isinstance(record, RestartRecord):
        return line
    how = f"signal {record.signal}" if record.signal else f"exit code {record.exit_code}"
    text = f"{iso(record.ended_ms)} attempt {record.attempt} ended: {record.reason} ({how})"
    text += f", up {human_duration(record.uptime)}"
    if record.item:
        text += f", during {record.item}"
    if record.next_delay is not None:
        text += f", next start in {human_duration(record.next_delay)}"
    return text


def _print_lines(lines: Sequence[str]) -> None:
    if lines:
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()


def cmd_beat(args: argparse.Namespace) -> int:
    from campaign_tui.beat import Beat, report
    from campaign_tui.writer import StateWriter, report_final

    if args.item is None and args.status is None and args.tested is None:
        raise UsageError("beat needs --item ID (and/or --tested/--total, --status)")
    if args.outcome and not args.item:
        raise UsageError(f"--{args.outcome} needs --item ID")
    sd = _writable_dir(args)
    writer = StateWriter(sd, who=f"{PROG} beat")
    beat = Beat(
        item=args.item,
        outcome=args.outcome,
        tested=args.tested,
        total=args.total,
        status=args.status,
        message=args.message,
        pid=args.pid,
    )
    report(sd, beat, writer)
    if args.status is not None:  # reaches the supervisor even when status.json cannot be written
        report_final(args.status, sd.path)
    return 1 if writer.failing else 0


def cmd_run(args: argparse.Namespace) -> int:
    from campaign_tui import config, control

    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    overrides = _overrides(args)
    if command:
        overrides["command"] = tuple(command)
        overrides["cwd"] = os.getcwd()
    settings = config.load_settings(_config_path(args), overrides)
    if not settings.command:
        raise UsageError("missing command: campaign-tui run [options] -- CMD [ARGS...]")
    sd = _writable_dir(args)
    return control.run(sd, settings, detach=args.detach)


def _writable_dir(args: argparse.Namespace) -> StateDir:
    sd = _state_dir(args)
    if sd.legacy:
        raise UsageError("the legacy layout is read-only: it can be watched, not run", EX_CANTCREAT)
    try:
        return statedir.ensure(sd)
    except StateDirError as exc:
        raise UsageError(str(exc), EX_CANTCREAT) from None


def cmd_start(args: argparse.Namespace) -> int:
    from campaign_tui import control

    return control.start(_writable_dir(args), _overrides(args), _config_path(args))


def cmd_stop(args: argparse.Namespace) -> int:
    from campaign_tui import control

    return control.stop(_readable_dir(_state_dir(args)))


def cmd_restart(args: argparse.Namespace) -> int:
    from campaign_tui import control

    return control.restart(_readable_dir(_state_dir(args)))


def cmd_tui(args: argparse.Namespace) -> int:
    from campaign_tui.tui.app import run_tui

    explicit = args.name is not None or args.state_dir is not None or args.layout == "legacy"
    explicit = explicit or bool(os.environ.get("CAMPAIGN_STATE_DIR"))
    sd = _readable_dir(_state_dir(args)) if explicit else None
    return run_tui(sd, root=statedir.state_root(), poll=bool(getattr(args, "poll", False)))


def cmd_demo(args: argparse.Namespace) -> int:
    from campaign_tui.demo import run_demo

    return run_demo()


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "tui": cmd_tui,
    "run": cmd_run,
    "start": cmd_start,
    "stop": cmd_stop,
    "restart": cmd_restart,
    "status": cmd_status,
    "logs": cmd_logs,
    "metrics": cmd_metrics,
    "beat": cmd_beat,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``campaign-tui``; returns the exit code."""
    try:
        words = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(only=command_of(words)).parse_args(words)
        return COMMANDS[args.command or "tui"](args)
    except UsageError as exc:
        print(f"{PROG}: {exc.message}", file=sys.stderr)
        return exc.code
    except StateDirError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EX_CANTCREAT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `campaign-tui logs | head`: the reader left; say nothing more.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except Exception as exc:
        if os.environ.get("CAMPAIGN_TUI_DEBUG"):
            raise
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} "
            "(set CAMPAIGN_TUI_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
        return EX_SOFTWARE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
