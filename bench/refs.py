"""The reference tools, installed by the benchmark into its own folders (git-ignored):
supervisor and toolong from PyPI into ``bench/.venv``, pm2 from npm into
``bench/.node``. GNU ``tail`` comes from the system. Anything that cannot be
installed is skipped with the reason, printed and written into the report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import BENCH_DIR, bench_env, say

VENV = BENCH_DIR / ".venv"
NODE = BENCH_DIR / ".node"
PY_REFS = {"supervisor": ("supervisord", "supervisorctl"), "toolong": ("tl",)}


@dataclass
class Refs:
    tools: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Path | None:
        return self.tools.get(name)

    def why(self, name: str) -> str:
        return self.skipped.get(name, f"{name} is not available")


def _quiet(argv: list[str], timeout: float) -> tuple[bool, str]:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=bench_env(),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    lines = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode == 0, lines[-1] if lines else f"exit {done.returncode}"


def _python_refs(refs: Refs, install: bool) -> None:
    python = VENV / "bin" / "python"
    missing = [pkg for pkg, exes in PY_REFS.items() if not (VENV / "bin" / exes[0]).exists()]
    if missing and install:
        if not python.exists():
            say(f"bench: creating {VENV.relative_to(BENCH_DIR.parent)} for the references")
            ok, why = _quiet([sys.executable, "-m", "venv", str(VENV)], 120)
            if not ok:
                for pkg in missing:
                    refs.skipped[pkg] = f"cannot create the benchmark's venv: {why}"
                missing = []
        for pkg in missing:
            say(f"bench: installing {pkg} from PyPI into the benchmark's venv")
            ok, why = _quiet(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", pkg],
                300,
            )
            if not ok:
                refs.skipped[pkg] = f"pip install {pkg} failed: {why}"
    for pkg, exes in PY_REFS.items():
        if pkg in refs.skipped:
            continue
        for exe in exes:
            path = VENV / "bin" / exe
            if path.exists():
                refs.tools[exe] = path
            else:
                refs.skipped[pkg] = (
                    f"{pkg} is not installed (run without --no-install to install it)"
                )


def _pm2(refs: Refs, install: bool) -> None:
    pm2 = NODE / "node_modules" / ".bin" / "pm2"
    if not pm2.exists() and install:
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            refs.skipped["pm2"] = "node / npm are not installed"
            return
        say("bench: installing pm2 from npm into the benchmark's folder")
        ok, why = _quiet(
            [npm, "install", "--prefix", str(NODE), "--no-audit", "--no-fund",
             "--loglevel=error", "pm2"],
            300,
        )  # fmt: skip
        if not ok:
            refs.skipped["pm2"] = f"npm install pm2 failed: {why}"
            return
    if pm2.exists():
        refs.tools["pm2"] = pm2
    else:
        refs.skipped.setdefault("pm2", "pm2 is not installed (run without --no-install)")


def ensure(install: bool = True, want: tuple[str, ...] = ("python", "pm2")) -> Refs:
    refs = Refs()
    if "python" in want:
        _python_refs(refs, install)
    if "pm2" in want:
        _pm2(refs, install)
    tail = shutil.which("tail")
    if tail is not None:
        refs.tools["tail"] = Path(tail)
    else:
        refs.skipped["tail"] = "tail is not installed"
    tmux = shutil.which("tmux")
    if tmux is None:
        refs.skipped["tmux"] = "tmux is not installed: the terminal figures need it"
    for name, why in refs.skipped.items():
        say(f"bench: skipping {name}: {why}")
    return refs
