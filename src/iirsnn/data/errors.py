"""Errors of the data pipelines: every one names the file or directory and what is wrong."""

from __future__ import annotations


class DataError(Exception):
    """Base class of the errors raised by :mod:`iirsnn.data`."""


class MissingDataError(DataError, FileNotFoundError):
    """Expected files are not on disk; the message lists them and says where to put them."""


class CorruptFileError(DataError, ValueError):
    """A file exists but cannot be what it claims: bad magic, impossible header counts, truncated
    records, wrong checksum. The message names the file and the problem."""
