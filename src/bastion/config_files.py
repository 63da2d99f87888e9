"""Checks of the files a configuration points to, for `bastion config check`.

`policy_checks`: the RBAC policy (`policy.file`) and any guardrail policy files load; a problem
reads `FILE:LINE: problem`. `exposed_file_warnings`: the secret files, the SQLite database, the
queue file, the log folder, the object store and the audit checkpoint folder hold secrets, key
hashes, extracted IBANs, document text and the audit trail's anchors, so anyone but their owner
being able to open them is worth a warning (files are created 0600, folders 0700).
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.config import Settings
from bastion.guardrails import policy as guardrail_policy
from bastion.security import (
    PolicyError,
    SecretError,
    file_path,
    is_reference,
    load_policy,
    parse_reference,
)
from bastion.storage import queue_path, sqlite_file

# `bastion up` writes each service's log here unless told otherwise.
LOG_DIR = "logs"


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One policy file: `problem` is None when it loads."""

    key: str
    path: Path
    problem: str | None = None


def policy_checks(settings: Settings, guardrail_files: Sequence[Path] = ()) -> list[FileCheck]:
    """Load the RBAC policy and each guardrail policy file; every problem with its line."""
    rbac_path = settings.path(settings.policy.file)
    checks = []
    try:
        load_policy(rbac_path)
    except PolicyError as exc:
        checks.append(FileCheck("policy.file", rbac_path, str(exc)))
    else:
        checks.append(FileCheck("policy.file", rbac_path))
    for path in guardrail_files:
        try:
            guardrail_policy.load_policy(path)
        except guardrail_policy.PolicyError as exc:
            checks.append(FileCheck("guardrails", path, "; ".join(str(exc).splitlines())))
        else:
            checks.append(FileCheck("guardrails", path))
    return checks


def _private_paths(settings: Settings, references: Iterable[str]) -> Iterator[tuple[Path, str]]:
    """(path, what it holds) of every file or folder that only its owner should open."""
    for ref in references:
        try:
            parsed = parse_reference(ref) if is_reference(ref) else None
        except SecretError:
            continue  # a malformed reference: `check_references` reports it
        if parsed is not None and parsed.provider == "file":
            yield file_path(parsed, settings.base_dir), "a secret"
    database = settings.database_url()
    database_file = sqlite_file(database)
    if database_file is not None:
        yield database_file, "the database"
    queue: Path | None = None
    with contextlib.suppress(ValueError):  # not a queue file: nothing to look at
        queue = queue_path(settings.pipeline.queue_url, settings.base_dir)
    if queue is not None:
        yield queue, "the queue"
    yield settings.path(LOG_DIR), "the service logs"
    yield settings.path(settings.pipeline.objects_dir), "the stored documents"
    yield settings.path(settings.audit.checkpoint_dir), "the audit checkpoints"


def exposed_file_warnings(settings: Settings, references: Iterable[str]) -> list[str]:
    """One warning per secret or data file (or the log folder) other users may open.

    `references` are the configuration's secret references; the `secret://file/` ones are
    looked at. Files that do not exist are skipped (`check_references` reports them).
    """
    warnings = []
    seen: set[Path] = set()
    for path, holds in _private_paths(settings, references):
        if path in seen:
            continue
        seen.add(path)
        try:
            st = path.stat()
        except OSError:
            continue
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            private = "700" if stat.S_ISDIR(st.st_mode) else "600"
            warnings.append(
                f"{path} holds {holds} and other users may open it (mode {mode:04o}): "
                f"run `chmod {private} {path}`"
            )
    return warnings
