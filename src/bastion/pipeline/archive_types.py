"""What the archive's owner and its callers share: the archive's answers and errors as types.

The archive's tables are the Archivist's alone (`archive_repo`, used only by the Archivist agent
and the operator's own CLI); every other process reaches them through `archivist.*` calls
(`archive_calls`). Both sides speak in these types.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

MAX_LIST_LIMIT = 500
# Why a document the call names is answered as not found (`data.reason` of DOCUMENT_NOT_FOUND).
NOT_OWNER = "not_owner"  # another owner's: answered as if it did not exist
DELETED = "deleted"  # deleted: its data must not come back


@dataclass(frozen=True, slots=True)
class StaleDocument:
    """A document whose status has not changed for a while (see `ArchiveRepository.stale`)."""

    id: str
    correlation_id: str | None
    filename: str
    updated_at: float


class DocumentNotFoundError(KeyError):
    """No document with this id."""


class DocumentDeletedError(RuntimeError):
    """The document was deleted; its data must not come back."""


class ArchiveUnavailable(RuntimeError):
    """The archivist did not answer, or refused the caller itself (its credential or grant);
    the message says which. Worth another try later."""


DeleteResult = Literal["deleted", "not_found", "not_owner"]


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """The owner's document for uploaded bytes: its id, whether this upload created it, its
    status and outcome now."""

    id: str
    created: bool
    status: str
    outcome: str | None = None


def readable_by(owner: str, scope: str | None) -> bool:
    """Whether a reader limited to `scope`'s documents (None: every owner's) may see a document
    of `owner`."""
    return scope is None or hmac.compare_digest(owner.encode(), scope.encode())
