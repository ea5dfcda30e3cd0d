"""Supervisor settings: defaults, ``campaign.toml``, command-line overrides.

One frozen :class:`Settings` holds every knob of the supervisor. It is built
by :func:`load_settings` from three layers, the later winning: the defaults,
a ``campaign.toml`` (keys named like the fields), and the overrides the CLI
parsed from its flags. Bad input never gets past here: a file problem is
reported as ``FILE:LINE: what is wrong`` (exit 78), a bad flag as a usage
error (exit 64).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from campaign_tui.errors import EX_CONFIG, EX_NOINPUT, EX_USAGE, UsageError
from campaign_tui.sanitize import sanitize

ALERT_LEVELS = ("info", "warning", "critical")
DURATION_FIELDS = frozenset(
    {"stale_after", "backoff_initial", "backoff_max", "backoff_reset_after", "stop_timeout"}
)
# Keys a campaign.toml may hold that are not supervisor settings but the CLI's.
CLI_KEYS = frozenset({"name"})

_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"\s*(\d+)\s*([kmg]i?b?|b)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_duration(text: str) -> float:
    """Seconds from ``"0.2"``, ``"90"``, ``"90s"``, ``"10m"``, ``"1h"`` (also ``ms``, ``d``).

    Raises ValueError for anything else, negative values included.
    """
    match = _DURATION.fullmatch(str(text).lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration (use e.g. 0.5, 90, 90s, 10m, 1h)")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a finite duration")
    return seconds


def parse_size(text: str) -> int:
    """Bytes from ``"10485760"``, ``"10M"``, ``"10MB"``, ``"512k"``."""
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size (use e.g. 10MB, 512k, 1048576)")
    unit = (match[2] or "").lower()[:1]
    return int(match[1]) * _SIZE_UNITS[unit]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the supervisor needs to run one campaign.

    Durations are seconds. ``command`` is the argv to run (never from the control
    channel); ``cwd`` the directory it runs in.
    """

    stale_after: float = 600.0
    max_restarts: int = 5
    backoff_initial: float = 5.0
    backoff_max: float = 300.0
    backoff_reset_after: float = 600.0
    stop_timeout: float = 10.0
    restart_on_stale: bool = False
    on_alert: tuple[str, ...] = ()
    on_alert_level: str = "warning"
    output_max_bytes: int = 10 * 1024 * 1024
    output_files: int = 3
    textfile_dir: str = ""
    command: tuple[str, ...] = ()
    cwd: str = ""

    def record(self) -> dict[str, Any]:
        """Every field as plain JSON values (what supervisor.json and campaign.json keep)."""
        doc = asdict(self)
        doc["on_alert"] = list(self.on_alert)
        doc["command"] = list(self.command)
        return doc


FIELD_NAMES = tuple(f.name for f in fields(Settings))


def _check(name: str, value: object, base_dir: Path | None) -> object:
    """``value`` converted to the type of field ``name``; ValueError says what is wrong."""
    if name in DURATION_FIELDS:
        if isinstance(value, bool):
            raise ValueError("must be a duration, not true/false")
        if isinstance(value, (int, float)):
            try:
                seconds = float(value)
            except OverflowError:  # an integer past any float (10**400): a bad value too
                raise ValueError("must be a duration of zero or more seconds") from None
        elif isinstance(value, str):
            seconds = parse_duration(value)
        else:
            raise ValueError('must be a duration such as 90, 0.5, "10m"')
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("must be a duration of zero or more seconds")
        if name in ("stale_after", "backoff_reset_after") and seconds <= 0:
            raise ValueError("must be more than zero seconds")
        return seconds
    if name in ("max_restarts", "output_files"):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        if value < (1 if name == "output_files" else 0):
            raise ValueError(f"must be {'1' if name == 'output_files' else '0'} or more")
        return value
    if name == "output_max_bytes":
        if isinstance(value, str):
            value = parse_size(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError('must be a size in bytes (0 means unbounded), e.g. 10485760 or "10MB"')
        return value
    if name == "restart_on_stale":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if name in ("on_alert", "command"):
        if isinstance(value, str):
            value = shlex.split(value)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError('must be a list of strings, e.g. ["notify-send", "campaign"]')
        if name == "command" and value and not value[0]:
            raise ValueError("must not start with an empty program name")
        return tuple(value)
    if name == "on_alert_level":
        if not isinstance(value, str) or value.lower() not in ALERT_LEVELS:
            raise ValueError(f"must be one of {', '.join(ALERT_LEVELS)}")
        return value.lower()
    if name == "textfile_dir":
        if not isinstance(value, str):
            raise ValueError("must be a directory path (node_exporter's textfile collector)")
        if not value:
            return ""
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return str(path)
    if name == "cwd":
        if not isinstance(value, str) or not value:
            raise ValueError("must be a directory path")
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return str(path)
    raise ValueError("is not a setting")  # pragma: no cover - callers check names


def _key_line(text: str, key: str) -> int | None:
    """The line (1-based) where ``key = ...`` is assigned in a TOML text, if found."""
    pattern = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return None


def _toml_error_line(exc: tomllib.TOMLDecodeError, text: str) -> tuple[int, str]:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        return int(match[1]), message[: match.start()].strip()
    if "end of document" in message:
        return max(1, len(text.splitlines())), re.sub(r"\s*\(at end of document\)", "", message)
    return 1, message


def read_config(path: Path) -> dict[str, Any]:
    """The settings (and CLI keys) of one campaign.toml, checked; raises UsageError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found", EX_NOINPUT) from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a config file", EX_CONFIG) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}", EX_CONFIG) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text", EX_CONFIG) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, what = _toml_error_line(exc, text)
        raise UsageError(f"{path}:{line}: {what[:1].lower()}{what[1:]}", EX_CONFIG) from None
    values: dict[str, Any] = {}
    base_dir = path.parent.resolve()
    for key, value in doc.items():
        name = key.replace("-", "_")
        line = _key_line(text, key) or 1
        if name in CLI_KEYS:
            if not isinstance(value, str):
                raise UsageError(f"{path}:{line}: {key} must be a string", EX_CONFIG)
            values[name] = value
            continue
        if name not in FIELD_NAMES:
            if isinstance(value, dict):
                what = f"[{key}] tables are not used; write the settings at the top level"
            else:
                what = f"unknown key {key!r} (known: {', '.join(FIELD_NAMES)})"
            raise UsageError(f"{path}:{line}: {what}", EX_CONFIG)
        try:
            values[name] = _check(name, value, base_dir)
        except ValueError as exc:
            raise UsageError(f"{path}:{line}: {key} {exc}", EX_CONFIG) from None
    return values


def apply(settings: Settings, values: dict[str, object], *, source: str = "") -> Settings:
    """``settings`` with ``values`` (field names; ``None`` means unset) checked and applied.

    A bad value raises UsageError naming the ``--flag`` (exit 64).
    """
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or name in CLI_KEYS:
            continue
        if name not in FIELD_NAMES:
            raise UsageError(f"unknown setting {name!r}{source}", EX_USAGE)
        try:
            clean[name] = _check(name, value, Path.cwd())
        except ValueError as exc:
            raise UsageError(f"--{name.replace('_', '-')} {exc}{source}", EX_USAGE) from None
    return replace(settings, **clean)


def from_record(doc: object) -> Settings | None:
    """Settings from a recorded ``record()`` (supervisor.json / campaign.json); None if unusable."""
    if not isinstance(doc, dict):
        return None
    settings = Settings()
    for name in FIELD_NAMES:
        if name not in doc:
            continue
        try:
            value: Any = _check(name, doc[name], None)
            settings = replace(settings, **{name: value})
        except (ValueError, TypeError, OverflowError):
            continue  # a hand-edited record: one bad value falls back to its default
    if settings.cwd:
        # Read back from a state file, which may have been edited by hand; a
        # directory name with terminal escapes is not one we run in (the command
        # itself is kept: a multi-line ``-c`` program is legitimate, and every
        # display of it goes through the sanitizer).
        settings = replace(settings, cwd=sanitize(settings.cwd))
    return settings if settings.command else None


def load_settings(config_path: Path | None, overrides: dict[str, object]) -> Settings:
    """Defaults, then ``config_path`` (if given), then ``overrides``; ``cwd`` defaults to ".".

    Raises UsageError: ``FILE:LINE: ...`` with code 78 for a bad file (66 if missing),
    code 64 for a bad override.
    """
    settings = Settings()
    if config_path is not None:
        values = read_config(Path(config_path))
        settings = replace(settings, **{k: v for k, v in values.items() if k not in CLI_KEYS})
    settings = apply(settings, overrides)
    if not settings.cwd:
        settings = replace(settings, cwd=os.getcwd())
    return settings
