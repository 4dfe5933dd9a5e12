#!/usr/bin/env python3
"""Bootstrap and run the project: ``python3 dev.py demo`` or ``python3 dev.py test``.

Needs only Python 3.11+, pip and (optionally) a C compiler. On first use it creates
``.venv/``, installs the project in editable mode with the extras the command needs and
builds the C accelerator, saying what each step is doing. Versions come from
``constraints.txt`` (the versions the suite was last green with), so a new release of a
dependency cannot turn a fresh clone red. Later runs reuse the environment: the project is
reinstalled only when ``pyproject.toml``, ``setup.py``, ``constraints.txt`` or the
accelerator sources changed, and a command needing more extras installs just those.

    python3 dev.py demo              run the demo on embedded data
    python3 dev.py test [pytest args] run the whole test suite
    python3 dev.py bench [args]       run the benchmarks (pytest-benchmark)
    python3 dev.py conformance [args] run the contract suite against velaria
    python3 dev.py freeze             rewrite constraints.txt from the current .venv
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
CONSTRAINTS = ROOT / "constraints.txt"
STAMP = VENV / ".velaria-install.json"

EXTRAS = {"demo": [], "test": ["test"], "conformance": ["test"], "bench": ["test", "bench"]}
#: pip output lines worth showing while it works (the rest stays quiet)
_PIP_PROGRESS = ("Collecting", "Building", "Installing collected", "Successfully", "ERROR",
                 "WARNING: velaria")


def _source_fingerprint() -> str:
    """What a (re)install depends on: packaging files, pinned versions, accelerator sources."""
    h = hashlib.sha256()
    for rel in ["pyproject.toml", "setup.py", "constraints.txt"]:
        p = ROOT / rel
        if p.exists():
            h.update(rel.encode())
            h.update(p.read_bytes())
    for p in sorted((ROOT / "accel").glob("**/*")):
        if p.suffix in {".c", ".h"} or p.name.startswith("build"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _pip(step: str, args: list[str]) -> None:
    """Run ``pip install args``, showing the progress lines and, on failure, everything."""
    start = time.monotonic()
    print(f"[dev] {step} ...", flush=True)
    cmd = [str(PY), "-m", "pip", "install", "--disable-pip-version-check"]
    env = dict(os.environ)
    if CONSTRAINTS.exists():
        cmd += ["-c", str(CONSTRAINTS)]
        env["PIP_CONSTRAINT"] = str(CONSTRAINTS)  # pins the isolated build environment too
    proc = subprocess.Popen(cmd + args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.lstrip().startswith(_PIP_PROGRESS):
            print("[dev]   " + line.strip()[:110], flush=True)
    if proc.wait() != 0:
        sys.stdout.write("".join(lines))
        sys.exit(f"[dev] {step} failed (pip exit status {proc.returncode}); see the output above")
    print(f"[dev] {step}: done in {time.monotonic() - start:.0f} s", flush=True)


def _extra_requirements(extras: list[str]) -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        optional = tomllib.load(handle)["project"]["optional-dependencies"]
    return sorted({req for extra in extras for req in optional[extra]})


def ensure_env(extras: list[str]) -> None:
    """Create the virtual environment and install what ``extras`` need, once."""
    if sys.version_info < (3, 11):
        sys.exit("velaria needs Python 3.11 or newer (found %s)" % sys.version.split()[0])
    if not PY.exists():
        print("[dev] creating the virtual environment in .venv (first run only)", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        stamp = {}
    fingerprint = _source_fingerprint()
    installed = set(stamp.get("extras", [])) if stamp.get("source") == fingerprint else None
    if installed is not None and set(extras) <= installed:
        return
    if installed is None:
        wanted = sorted(set(extras) | set(stamp.get("extras", [])))
        print("[dev] setting up velaria: installs pinned dependencies and builds the C "
              "accelerator (about a minute the first time)", flush=True)
        _pip("updating pip, setuptools, wheel and cffi",
             ["--upgrade", "pip", "setuptools", "wheel", "cffi"])
        spec = "." if not wanted else ".[%s]" % ",".join(wanted)
        _pip("installing velaria (editable%s) and building the accelerator"
             % (" with " + ", ".join(wanted) if wanted else ""), ["-e", spec])
        # the accelerator is optional at run time; report how the build went
        subprocess.call([str(PY), "-c",
                         "import velaria.accel as a; print('[dev] accelerator:', a.status())"],
                        cwd=ROOT)
    else:  # the project is current: add only the missing extras' packages, no rebuild
        wanted = sorted(installed | set(extras))
        missing = sorted(set(extras) - installed)
        _pip("installing the packages of extra(s) " + ", ".join(missing),
             _extra_requirements(missing))
    STAMP.write_text(json.dumps({"source": fingerprint, "extras": wanted}) + "\n")


def freeze() -> int:
    """Rewrite constraints.txt from the packages installed in .venv."""
    out = subprocess.run([str(PY), "-m", "pip", "freeze", "--all"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    pins = [line for line in out.splitlines()
            if line and not line.startswith("-e") and "velaria" not in line]
    header = CONSTRAINTS.read_text().splitlines()[:3] if CONSTRAINTS.exists() else []
    CONSTRAINTS.write_text("\n".join([h for h in header if h.startswith("#")] + pins) + "\n")
    print(f"[dev] wrote {len(pins)} pins to {CONSTRAINTS.name}")
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "freeze":
        return freeze()
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    ensure_env(EXTRAS[cmd])
    env = dict(os.environ)
    if cmd == "demo":
        return subprocess.call([str(PY), "-m", "velaria.demo", *rest], cwd=ROOT, env=env)
    if cmd == "test":
        rc = subprocess.call([str(PY), "-m", "pytest", "-q", *rest], cwd=ROOT, env=env)
        return 0 if rc == 5 else rc  # 5: no tests collected for a narrowed selection
    if cmd == "bench":
        return subprocess.call([str(PY), "-m", "pytest", "benchmarks", "--benchmark-only", *rest], cwd=ROOT, env=env)
    if cmd == "conformance":
        return subprocess.call([str(PY), "-m", "velaria.conformance", *rest], cwd=ROOT, env=env)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
