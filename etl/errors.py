"""Errors meant for people: each names where the problem is and what was expected.

`ConfigError` and `UsageError` end the CLI with exit code 2; `InputError` is a source
file that cannot be read at all (the site is skipped and the run fails with exit 1);
`StorageError` (exit 3) is an output folder that is full, read-only or failing.
Row-level data problems are never exceptions: they become quarantine findings.
"""
from __future__ import annotations


class CarpoolError(Exception):
    """Base class: the message is complete and shown to the user as-is."""

    exit_code = 2


class ConfigError(CarpoolError):
    """A config or mapping file is wrong (file, key and what was expected)."""


class UsageError(CarpoolError):
    """The command line asks for something that cannot be done."""


class InputError(CarpoolError):
    """A source file cannot be read at all (missing, empty, wrong format, bad encoding)."""

    exit_code = 1


class LockError(CarpoolError):
    """Another refresh holds the lock."""


class StorageError(CarpoolError):
    """The output folder cannot be written: disk full, read-only, no permission, I/O error.
    Nothing published was changed; free space or fix the mount and run again."""

    exit_code = 3


class StaleResultError(CarpoolError):
    """`carpool analyze` finished after a refresh replaced the warehouse it read: its results
    were kept beside that older run, not mixed into the new one. Running analyze again fixes it."""


STORAGE_ERRNOS = {"ENOSPC": "disk full", "EDQUOT": "disk quota exceeded", "EROFS": "read-only file system",
                  "EACCES": "permission denied", "EPERM": "operation not permitted", "EIO": "I/O error"}
STORAGE_TEXTS = {"No space left on device": "disk full", "Read-only file system": "read-only file system",
                 "Permission denied": "permission denied", "Disk quota exceeded": "disk quota exceeded",
                 "Input/output error": "I/O error"}


def storage_fault(exc: BaseException) -> str | None:
    """'disk full', 'read-only file system', ... when `exc` (an OSError, or a DuckDB/Arrow error
    that wraps one in its text) is a problem of the storage rather than of the data; else None."""
    import errno

    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, "")
        if name in STORAGE_ERRNOS:
            return STORAGE_ERRNOS[name]
    text = str(exc)
    return next((kind for needle, kind in STORAGE_TEXTS.items() if needle in text), None)


def storage_error(exc: BaseException, doing: str) -> StorageError:
    """One line for a storage fault: what was being done, what the system said, what to do."""
    kind = storage_fault(exc) or "I/O error"
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
    detail = " ".join(str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc).split())[:300]
    return StorageError(f"{kind} while {doing}{where}: {detail}; nothing published was changed "
                        "(free space or make the output folder writable, then run again)")


class IntegrityError(UsageError):
    """A published warehouse, result set or snapshot does not match its manifest (exit 1)."""

    exit_code = 1
