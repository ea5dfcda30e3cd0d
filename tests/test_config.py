"""Settings: durations, campaign.toml with FILE:LINE errors, overrides winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_tui.config import Settings, load_settings, parse_duration, parse_size
from campaign_tui.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0.2", 0.2),
        ("90", 90.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        (".5", 0.5),
        ("250ms", 0.25),
        (" 2m ", 120.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-1", "ten", "5x", "1e3", "nan", "inf", "1.2.3"])
def test_bad_durations_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_sizes() -> None:
    assert parse_size("10MB") == 10 << 20
    assert parse_size("512k") == 512 << 10
    assert parse_size("1234") == 1234


def test_defaults_match_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(None, {"command": ("true",)})
    assert (s.stale_after, s.max_restarts, s.backoff_initial, s.backoff_max) == (600, 5, 5, 300)
    assert (s.backoff_reset_after, s.stop_timeout, s.restart_on_stale) == (600, 10, False)
    assert (s.output_max_bytes, s.output_files, s.on_alert_level) == (10 << 20, 3, "warning")
    assert s.cwd == str(tmp_path)


def test_file_values_then_overrides_win(tmp_path: Path) -> None:
    cfg = tmp_path / "campaign.toml"
    cfg.write_text(
        'command = ["node", "campaign.js"]\n'
        'cwd = "work"\n'
        'stale_after = "10m"\n'
        "max-restarts = 3\n"
        "backoff_initial = 0.5\n"
        'on_alert = ["notify", "--urgent"]\n'
        "restart_on_stale = true\n"
        'output_max_bytes = "1MB"\n'
        'name = "nightly"\n'
    )
    s = load_settings(cfg, {"max_restarts": 7, "stop_timeout": None})
    assert s.command == ("node", "campaign.js")
    assert s.cwd == str(tmp_path / "work")
    assert s.stale_after == 600.0 and s.backoff_initial == 0.5
    assert s.max_restarts == 7  # the flag wins
    assert s.stop_timeout == Settings().stop_timeout  # None means unset
    assert s.on_alert == ("notify", "--urgent") and s.restart_on_stale is True
    assert s.output_max_bytes == 1 << 20


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('max_restarts = 3\nstale_after = "soon"\n', 2, "stale_after"),
        ("stale_after = 5\nmax_restarts = -1\n", 2, "max_restarts"),
        ("a_typo = 1\n", 1, "unknown key"),
        ('\n\nrestart_on_stale = "yes"\n', 3, "true or false"),
        ("max_restarts = 3\ncommand = [\n", 2, ""),
        ("stale_after = = 3\n", 1, ""),
        ("[supervisor]\nstale_after = 3\n", 1, "top level"),
        ('on_alert_level = "loud"\n', 1, "info, warning, critical"),
    ],
)
def test_bad_file_is_reported_with_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    cfg = tmp_path / "campaign.toml"
    cfg.write_text(text)
    with pytest.raises(UsageError) as info:
        load_settings(cfg, {})
    assert info.value.code == 78
    assert info.value.message.startswith(f"{cfg}:{line}: "), info.value.message
    assert words in info.value.message


def test_missing_file_is_no_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_settings(tmp_path / "nope.toml", {})
    assert info.value.code == 66


def test_bad_override_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        load_settings(None, {"stale_after": "soon"})
    assert info.value.code == 64 and "--stale-after" in info.value.message


def test_record_round_trips() -> None:
    from campaign_tui.config import from_record

    s = Settings(command=("sh", "-c", "exit 0"), cwd="/", on_alert=("x",), stale_after=1.5)
    assert from_record(s.record()) == s
    assert from_record({"stale_after": 3}) is None  # no command: nothing to start
