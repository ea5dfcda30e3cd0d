"""docs/benchmarks.md, written from the figures this run measured (never by hand)."""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from harness import Figure, Row, Stat


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ratio(row: Row) -> str:
    parts = []
    for ref in row.refs:
        if ref.stat is None or not ref.stat.samples or not row.ours.samples:
            continue
        if row.ratio_to is not None and ref.label != row.ratio_to:
            continue
        if ref.stat.median == 0:
            continue
        parts.append(f"{row.ours.median / ref.stat.median:.2g}× {ref.label}")
    return "; ".join(parts) or "—"


def _refs(row: Row) -> str:
    if not row.refs:
        return "—"
    parts = []
    for ref in row.refs:
        if ref.stat is not None:
            parts.append(f"{ref.label}: {ref.stat.text()}")
        else:
            parts.append(f"{ref.label}: skipped ({ref.skipped})")
    return "<br>".join(parts)


def _met(row: Row) -> str:
    if row.met is None:
        return "—"
    return "**met**" if row.met else "**missed**"


def _samples(stat: Stat) -> str:
    return ", ".join(f"{v:.3g}" for v in stat.samples)


def render(
    figures: list[Figure], *, mode: str, command: str, seconds: float, notes: list[str]
) -> str:
    out = [
        "# Benchmarks",
        "",
        "Written by `bench/run.py` from its own measurements; do not edit by hand.",
        f"Regenerate with `{command}` (about {max(1, round(seconds / 60))} minutes, "
        "installing the references into `bench/.venv` and `bench/.node` on the first run).",
        "",
        f"- run: {time.strftime('%Y-%m-%d %H:%M %Z')}, {mode} mode, {seconds:.0f} s in all",
        f"- machine: {_cpu()}, {os.cpu_count()} cores, Linux {platform.release()}",
        f"- Python {platform.python_version()}, campaign-tui {_version('campaign-tui')}, "
        f"textual {_version('textual')}, psutil {_version('psutil')}, "
        f"watchfiles {_version('watchfiles')}",
        "- each figure: median (min–max, n = samples); every reference was measured in the "
        "same run, on the same machine, with the same command or file. The ratio is ours ÷ the "
        "reference (below 1: ours is faster or smaller).",
        "",
        "## Results",
        "",
        "| figure | ours | target | met | reference (same run) | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fig in figures:
        if fig.skipped:
            out.append(f"| {fig.title} | skipped: {fig.skipped} | | | | |")
            continue
        for row in fig.rows:
            out.append(
                f"| {row.label} | {row.ours.text()} | {row.target} | {_met(row)} | "
                f"{_refs(row)} | {_ratio(row)} |"
            )
    out += ["", "## How each figure is measured", ""]
    for fig in figures:
        out += [f"### {fig.title}", "", fig.method, ""]
        if fig.skipped:
            out += [f"Skipped: {fig.skipped}", ""]
            continue
        for note in fig.notes:
            out.append(f"- {note}")
        if fig.notes:
            out.append("")
        out.append(f"Samples (took {fig.seconds:.0f} s):")
        out.append("")
        for row in fig.rows:
            out.append(f"- {row.label}, ours ({row.ours.unit}): {_samples(row.ours)}")
            for ref in row.refs:
                if ref.stat is not None:
                    out.append(
                        f"- {row.label}, {ref.label} ({ref.stat.unit}): {_samples(ref.stat)}"
                    )
        out.append("")
    if notes:
        out += ["## Notes of this run", ""] + [f"- {n}" for n in notes] + [""]
    out += [
        "## Reproduce",
        "",
        "```sh",
        "pip install -e .          # the package under test, in the current environment",
        "python bench/run.py       # all figures; writes docs/benchmarks.md",
        "python bench/run.py --quick --only restart,status   # a short look at some figures",
        "```",
        "",
        f"Interpreter: `{Path(sys.executable).name}`; the references live in the benchmark's own "
        "folders (`bench/.venv`: supervisor, toolong; `bench/.node`: pm2), never in the "
        "environment under test.",
        "",
    ]
    return "\n".join(out)
