"""The local providers: `secret://env/NAME` and `secret://file/PATH` (relative to the config
folder), and `write_secret_file` for files only their owner may read."""

from __future__ import annotations

import os
from pathlib import Path

from bastion.security.secrets.reference import Reference
from bastion.security.secrets.value import SecretError

__all__ = ["fetch_env", "fetch_file", "file_path", "write_secret_file"]


def fetch_env(ref: Reference) -> str:
    value = os.environ.get(ref.locator)
    if value is None:
        raise SecretError(
            f"{ref}: environment variable {ref.locator} is not set: export it before starting"
        )
    return value


def file_path(ref: Reference, base_dir: Path) -> Path:
    path = Path(ref.locator)
    return path if path.is_absolute() else base_dir / path


def fetch_file(ref: Reference, base_dir: Path) -> str:
    path = file_path(ref, base_dir)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(
            f"{ref}: cannot read {path}: {exc.strerror}; create it (mode 0600) or fix the path"
        ) from None
    except UnicodeDecodeError:
        raise SecretError(f"{ref}: {path} is not UTF-8 text") from None


def write_secret_file(path: Path, value: str) -> None:
    """Create a secret file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
