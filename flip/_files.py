"""Writing a user's files safely: into a temporary file beside the destination, then renamed.

Design choices:
- A reader (or a crash) never sees half a file: `atomic_output` yields a temporary file in the
  destination's folder and renames it over the destination only when the block finishes without an
  error and the caller keeps it; otherwise the temporary file is removed and an existing destination
  is left as it was (never truncated, never emptied).
- The rename is made durable by fsyncing the folder (POSIX), as databases do.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json_object(file: str | os.PathLike, what: str = "a JSON object") -> dict:
    """A JSON file that must hold an object: ValueError naming the file when it is not valid JSON (or
    UTF-8) or holds something else (`what` says what was expected)."""
    file = Path(file)
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected {what}, got a {type(data).__name__}")
    return data


def check_writable_file(path: str | os.PathLike, what: str = "output") -> Path:
    """Refuse, before any work, an output path that cannot become a file: a folder, or a parent that is
    a file or not writable. Raises OSError subclasses whose message names the path."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path}: is a folder, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise NotADirectoryError(f"{what} {path}: {parent} is a file, not a folder")
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {path}: the folder {parent} is not writable")
    return path


class _Pending:
    """The temporary file of `atomic_output`: `keep = False` discards it at the end."""

    def __init__(self, path: Path):
        self.path = path
        self.keep = True


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[_Pending]:
    """Yield a pending temporary file beside `path` (its `.path`); on a clean exit with `.keep` set,
    rename it to `path` (atomically, keeping the destination's mode if it existed); otherwise remove it."""
    path = check_writable_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    pending = _Pending(Path(name))
    try:
        yield pending
        if pending.keep:
            umask = os.umask(0)
            os.umask(umask)
            mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~umask
            os.chmod(pending.path, mode)
            os.replace(pending.path, path)
            fsync_dir(path.parent)
    finally:
        if pending.path.exists():
            pending.path.unlink()
