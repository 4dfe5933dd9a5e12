#!/usr/bin/env python3
"""Bootstrap and run the project: ``python3 dev.py demo`` or ``python3 dev.py test``.

Needs only Python 3.11+, pip and (optionally) a C compiler. On first use it creates
``.venv/``, installs the project in editable mode with the extras the command needs and
builds the C accelerator; later runs reuse the environment unless ``pyproject.toml``,
``setup.py`` or the accelerator sources changed.

    python3 dev.py demo              run the demo on embedded data
    python3 dev.py test [pytest args] run the whole test suite
    python3 dev.py bench [args]       run the benchmarks (pytest-benchmark)
    python3 dev.py conformance [args] run the contract suite against velaria
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")

EXTRAS = {"demo": "", "test": "test", "conformance": "test", "bench": "test,bench"}


def _fingerprint(extras: str) -> str:
    h = hashlib.sha256(extras.encode())
    for rel in ["pyproject.toml", "setup.py"]:
        p = ROOT / rel
        if p.exists():
            h.update(p.read_bytes())
    for p in sorted((ROOT / "accel").glob("**/*")):
        if p.suffix in {".c", ".h"} or p.name.startswith("build"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def ensure_env(extras: str) -> None:
    """Create the virtual environment and (re)install the project when needed."""
    if sys.version_info < (3, 11):
        sys.exit("velaria needs Python 3.11 or newer (found %s)" % sys.version.split()[0])
    if not PY.exists():
        print("[dev] creating virtual environment in .venv", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    stamp = VENV / ".velaria-install-stamp"
    want = _fingerprint(extras)
    have = stamp.read_text().splitlines() if stamp.exists() else []
    if want in have:
        return
    print("[dev] installing velaria (editable%s)" % (" with " + extras if extras else ""), flush=True)
    target = "-e" if not extras else "-e"
    spec = "." if not extras else ".[%s]" % extras
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel", "cffi"],
                          cwd=ROOT)
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", target, spec], cwd=ROOT)
    # The accelerator is optional at run time; report how the build went.
    subprocess.call([str(PY), "-c", "import velaria.accel as a; print('[dev] accelerator:', a.status())"], cwd=ROOT)
    stamp.write_text("\n".join(have + [want]) + "\n")


def main(argv: list[str]) -> int:
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
