"""The command line as a user meets it: `status` on real campaigns in every
state, `beat`, `logs`, and one clear line for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ProcessTracker, wait_until

CLI = [sys.executable, "-m", "campaign_tui"]

# A campaign using the API: items wait for a "go" file so that tests decide
# when it moves; `TEST_CRASH` makes it die with an exception outside any item.
CAMPAIGN = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from campaign_tui import Campaign

    gate = Path(os.environ["TEST_GATE"])
    with Campaign(total=3, stale_after=float(os.environ.get("TEST_STALE", "600"))) as c:
        for item in c.pending(["SD-001", "SD-002", "SD-003"]):
            with c.item(item):
                while not gate.exists():
                    time.sleep(0.01)
        if os.environ.get("TEST_CRASH"):
            raise RuntimeError("cable unplugged")
    """
)


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


def status(state: Path, *extra: str) -> tuple[int, str, str]:
    done = cli("status", "--state-dir", str(state), *extra)
    return done.returncode, done.stdout.splitlines()[0] if done.stdout else "", done.stdout


@pytest.fixture
def campaign(tmp_path: Path, procs: ProcessTracker):
    script = tmp_path / "campaign.py"
    script.write_text(CAMPAIGN)
    state = tmp_path / "state"
    gate = tmp_path / "go"

    def start(**env: str) -> subprocess.Popen[bytes]:
        full = {**os.environ, "CAMPAIGN_STATE_DIR": str(state), "TEST_GATE": str(gate), **env}
        proc = procs.start([sys.executable, str(script)], env=full, stderr=subprocess.PIPE)
        wait_until(lambda: (state / "heartbeat.json").exists(), what="the first heartbeat")
        return proc

    start.state = state  # type: ignore[attr-defined]
    start.gate = gate  # type: ignore[attr-defined]
    return start


def test_status_of_an_empty_directory_is_unknown_exit_3(tmp_path: Path) -> None:
    code, line, _ = status(tmp_path / "nothing-here")
    assert code == 3
    assert line.startswith("CAMPAIGN UNKNOWN - state directory ")
    assert line.endswith("nothing-here does not exist")


def test_status_of_a_live_unsupervised_campaign_is_healthy_exit_0(campaign) -> None:
    campaign()
    code, line, out = status(campaign.state)
    assert code == 0, out
    assert line.startswith("CAMPAIGN HEALTHY - heartbeat")
    assert "no supervisor: no auto-restart" in line
    assert "SD-001 0/3" in line
    assert "| heartbeat_age=" in line and "tested=0;;;0;3" in line
    assert "Current item:   SD-001" in out


def test_status_of_a_silent_campaign_is_stale_exit_1(campaign) -> None:
    campaign(TEST_STALE="0.3")
    # The heartbeat ages on the campaign's own clock; poll until it is past the limit.
    _code, line, _ = wait_until(
        lambda: (r := status(campaign.state))[0] == 1 and r, timeout=15, what="STALE"
    )
    assert line.startswith("CAMPAIGN STALE - heartbeat")
    assert "(limit 0.3s)" in line
    assert ";;0;" in line  # the limit is the perfdata's critical threshold


def test_status_after_sigkill_is_crashed_exit_2(campaign) -> None:
    proc = campaign()
    proc.kill()
    proc.wait(timeout=10)
    code, line, _ = status(campaign.state)
    assert code == 2
    assert f"process {proc.pid} is gone without a final status" in line


def test_status_after_sigterm_is_terminated_exit_0(campaign) -> None:
    proc = campaign()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM
    code, line, _ = status(campaign.state)
    assert code == 0
    assert line.startswith("CAMPAIGN TERMINATED - SIGTERM received during item SD-001")


def test_status_after_an_uncaught_exception_is_crashed_with_the_reason(campaign) -> None:
    proc = campaign(TEST_CRASH="1")
    campaign.gate.touch()
    proc.wait(timeout=20)
    code, line, _out = status(campaign.state)
    assert code == 2
    assert "RuntimeError: cable unplugged" in line
    doc = json.loads(cli("status", "--json", "--state-dir", str(campaign.state)).stdout)
    assert doc["state"] == "CRASHED" and doc["exit_code"] == 2
    assert doc["progress"]["tested"] == 3 and doc["progress"]["passed"] == 3


def test_status_of_a_finished_campaign_is_complete_exit_0_and_json(campaign) -> None:
    proc = campaign()
    campaign.gate.touch()
    assert proc.wait(timeout=20) == 0
    code, line, _ = status(campaign.state)
    assert code == 0
    assert line.startswith("CAMPAIGN COMPLETE - campaign complete: 3 items: 3 passed")
    done = cli("status", "--json", "--state-dir", str(campaign.state))
    doc = json.loads(done.stdout)
    assert done.returncode == 0
    assert doc["state"] == "COMPLETE"
    assert doc["progress"] == {
        "tested": 3,
        "total": 3,
        "percent": 100.0,
        "passed": 3,
        "failed": 0,
        "errors": 0,
        "current_item": None,  # nothing is in flight once it finished
    }


def test_status_while_the_supervisor_waits_out_a_backoff_is_restarting_exit_1(
    tmp_path: Path, procs: ProcessTracker
) -> None:
    state = tmp_path / "state"
    sup = procs.start(
        [
            *CLI,
            "run",
            "--state-dir",
            str(state),
            "--backoff-initial",
            "30",
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Between the exit and the backoff it is RESTARTING too ("the supervisor is
    # acting"); wait for the backoff itself.
    _code, line, _ = wait_until(
        lambda: (r := status(state))[0] == 1 and "restart 1 of" in r[1] and r,
        timeout=20,
        what="RESTARTING in backoff",
    )
    assert line.startswith("CAMPAIGN RESTARTING - restart 1 of 5 in ")
    assert line.count("code 3") == 1, line
    assert cli("stop", "--state-dir", str(state)).returncode == 0
    sup.wait(timeout=20)


def test_status_after_giving_up_is_crashed_exit_2(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = subprocess.run(
        [
            *CLI,
            "run",
            "--state-dir",
            str(state),
            "--backoff-initial",
            "0.01",
            "--max-restarts",
            "1",
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    code, line, _ = status(state)
    assert code == 2
    assert "gave up after 1 restarts: manual intervention required" in line


def test_beat_reports_a_shell_campaign(tmp_path: Path) -> None:
    state = tmp_path / "state"
    script = f"""
        set -e
        {" ".join(CLI)} beat --state-dir {state} --item T1 --total 2
        {" ".join(CLI)} beat --state-dir {state} --item T1 --passed
        {" ".join(CLI)} beat --state-dir {state} --item T2
        {" ".join(CLI)} status --state-dir {state} > {tmp_path / "mid.txt"} || true
        {" ".join(CLI)} beat --state-dir {state} --item T2 --failed --message "bad [red]x[/]"
        {" ".join(CLI)} beat --state-dir {state} --status COMPLETE
    """
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    mid = (tmp_path / "mid.txt").read_text()
    assert mid.startswith("CAMPAIGN HEALTHY - heartbeat"), mid
    assert "T2 1/2" in mid
    # the heartbeat names the calling shell, which was alive then
    assert "campaign pid" in mid and "alive" in mid
    results = [json.loads(line) for line in (state / "results.jsonl").read_text().splitlines()]
    assert [(r["item"], r["outcome"]) for r in results] == [("T1", "passed"), ("T2", "failed")]
    checkpoint = json.loads((state / "checkpoint.json").read_text())
    assert (checkpoint["tested"], checkpoint["passed"], checkpoint["failed"]) == (2, 1, 1)
    code, line, _ = status(state)
    assert code == 0 and line.startswith("CAMPAIGN COMPLETE")
    # what a call does not say is carried forward from the one before
    assert "tested=2;;;0;2" in line, line


def test_logs_prints_the_last_lines_literally(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    lines = [f"2026-12-04T10:00:{i:02d}+00:00 ERROR line {i}" for i in range(30)]
    lines.append(
        "2026-12-04T10:01:00+00:00 ERROR [bold red]boom[/] \x1b]0;pwned\x07\x1b[31mred\x1b[0m"
    )
    (state / "errors.log").write_text("\n".join(lines) + "\n")
    done = cli("logs", "errors", "-n", "3", "--state-dir", str(state))
    assert done.returncode == 0
    out = done.stdout.splitlines()
    assert out[:2] == [
        "2026-12-04T10:00:28+00:00 ERROR line 28",
        "2026-12-04T10:00:29+00:00 ERROR line 29",
    ]
    assert out[2] == "2026-12-04T10:01:00+00:00 ERROR [bold red]boom[/] red"
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout


def test_logs_of_a_missing_file_is_one_line_exit_66(tmp_path: Path) -> None:
    done = cli("logs", "alerts", "--state-dir", str(tmp_path))
    assert done.returncode == 66
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--bogus"], 64, "unrecognized arguments: --bogus"),
        (["status", "--stale-after", "soon"], 64, "'soon' is not a duration"),
        (["logs", "everything"], 64, "invalid choice: 'everything'"),
        (["run", "--state-dir", "{tmp}/s"], 64, "missing command"),
        (["beat", "--state-dir", "{tmp}/s"], 64, "beat needs --item"),
        (["run", "--state-dir", "{tmp}/s", "--", "{tmp}/no-such-program"], 66, "no-such-program"),
        (["run", "--config", "{tmp}/absent.toml", "--", "true"], 66, "absent.toml does not exist"),
        (["status", "--state-dir", "{tmp}/open"], 73, "writable by group or others"),
        (["run", "--layout", "legacy", "--", "true"], 73, "legacy layout is read-only"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_sysexits_code(
    tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    done = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert done.returncode == code, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_bad_campaign_toml_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text('command = ["true"]\nmax_restarts = "many"\n')
    done = cli("run", "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert done.returncode == 78
    assert "campaign.toml:2:" in done.stderr
    assert "Traceback" not in done.stderr


def test_status_of_the_legacy_layout_reads_the_seed_files(tmp_path: Path) -> None:
    (tmp_path / "campaign-heartbeat.txt").write_text(
        json.dumps(
            {"timestamp": 1, "current_sd": "SD-057", "progress": "57/118", "percent": "48.3"}
        )
    )
    (tmp_path / "campaign-status.json").write_text(
        json.dumps({"status": "CRASHED", "message": "boom"})
    )
    done = cli("status", "--layout", "legacy", "--state-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stdout.startswith("CAMPAIGN CRASHED - boom")
    assert "57/118 (48.3%)" in done.stdout and "SD-057" in done.stdout


def test_logs_restarts_reads_as_sentences(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    records = [
        {
            "attempt": 1,
            "ended_ms": 1_796_399_850_695,
            "exit_code": None,
            "signal": "SIGKILL",
            "reason": "crash",
            "uptime": 65.2,
            "next_delay": 5,
            "item": "SD-004",
        },
        {
            "attempt": 2,
            "ended_ms": 1_796_399_851_934,
            "exit_code": 0,
            "reason": "complete",
            "uptime": 0.7,
        },
    ]
    (state / "restarts.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records) + "not json\n"
    )
    out = cli("logs", "restarts", "--state-dir", str(state)).stdout.splitlines()
    assert out[0].endswith(
        "attempt 1 ended: crash (signal SIGKILL), up 1m05s, during SD-004, next start in 5s"
    )
    assert out[1].endswith("attempt 2 ended: complete (exit code 0), up 0.7s")
    assert out[2] == "not json"


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ([], "tui"),
        (["status", "--json"], "status"),
        (["--state-dir", "d", "status", "--stale-after", "90s"], "status"),
        (["--name=x", "--poll", "logs", "errors", "-n", "5"], "logs"),
        (["--layout", "legacy", "beat", "--item", "a", "--failed"], "beat"),
        (["run", "--detach", "--max-restarts", "3", "--", "sh", "-c", "exit 1"], "run"),
        (["start", "--stop-timeout", "2"], "start"),
        (["tui", "--poll"], "tui"),
        (["--config", "c.toml", "metrics", "--all"], "metrics"),
    ],
)
def test_building_only_the_named_command_parses_as_the_whole_parser_does(
    argv: list[str], command: str
) -> None:
    from campaign_tui.cli import build_parser, command_of

    assert command_of(argv) == command
    assert build_parser(only=command).parse_args(argv) == build_parser().parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["-h"], None),  # the whole parser: its help lists every command
        (["--stat", "d", "status"], None),  # an abbreviation: leave it to argparse
        (["--name", "status", "stop"], "stop"),
        (["bogus"], None),  # argparse says which commands there are
    ],
)
def test_the_command_is_named_only_when_certain(argv: list[str], command: str | None) -> None:
    from campaign_tui.cli import command_of

    assert command_of(argv) == command
