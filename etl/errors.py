"""Errors meant for people: each names where the problem is and what was expected.

`ConfigError` and `UsageError` end the CLI with exit code 2; `InputError` is a source
file that cannot be read at all (the site is skipped and the run fails with exit 1).
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
