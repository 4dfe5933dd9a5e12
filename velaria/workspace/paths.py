"""Where the workspace lives: ``$VELARIA_HOME``, else the user's data directory."""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["get_velaria_home", "get_runs_dir", "get_index_dir", "ensure_dirs", "is_inside"]


def _user_data_dir() -> Path:
    """The platform's per-user data directory for velaria (XDG on Linux)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "velaria"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "velaria"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "velaria"


def get_velaria_home() -> Path:
    """``$VELARIA_HOME`` (expanded, resolved), else the user's data directory."""
    env = os.environ.get("VELARIA_HOME")
    home = Path(env).expanduser() if env else _user_data_dir()
    return home.resolve()


def get_runs_dir() -> Path:
    """``<home>/runs``: one directory per run."""
    return get_velaria_home() / "runs"


def get_index_dir() -> Path:
    """``<home>/index``: the run and artifact index."""
    return get_velaria_home() / "index"


def ensure_dirs() -> dict[str, Path]:
    """Create home, runs and index directories; return them as ``{"home","runs","index"}``."""
    dirs = {"home": get_velaria_home(), "runs": get_runs_dir(), "index": get_index_dir()}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def is_inside(path: Path, root: Path) -> bool:
    """True when ``path`` (resolved, symlinks followed) lies strictly inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return path.resolve() != root.resolve()
