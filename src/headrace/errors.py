"""The one exception tree of headrace.

::

    HeadraceError
    ├── ConfigError            bad settings or arguments (exit 2)
    ├── RootUnavailableError   a root is missing, unreadable or suddenly empty
    ├── InputError             permanent, per file: dead letter, never retried unchanged
    │   ├── BinaryFileError
    │   ├── UnreadableFileError
    │   │   └── VanishedFileError  deleted after discovery: not a defect, no dead letter
    │   ├── ParseError
    │   └── LineTooLongError
    ├── TransientError         retryable (busy store, flaky I/O, network)
    ├── ModelError             the embedding model cannot be loaded or run
    └── StoreError             the index cannot be opened or written
        ├── ModelMismatchError an index holds vectors of another model
        └── ReplicaRejectedError  a replica refused some of a file's points: that
                                  file's dead letter (stage ``sink``), the run goes on

Whether an error is retryable is its type (``TransientError``), never a string
match. Library exceptions are translated where they enter headrace.
"""

from __future__ import annotations


class HeadraceError(Exception):
    """Base of every error headrace raises on purpose."""


class ConfigError(HeadraceError):
    """Invalid configuration, flags or environment."""


class RootUnavailableError(HeadraceError):
    """A root cannot be trusted for deletions (missing, unreadable or empty)."""


class InputError(HeadraceError):
    """A permanent problem with one input file; it becomes a dead letter.

    ``stage`` names the pipeline stage, ``line`` / ``offset`` locate the defect.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        stage: str = "parse",
        line: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.path = path
        self.stage = stage
        self.line = line
        self.offset = offset
        self.message = message
        where = path or "<input>"
        if line is not None:
            where += f":{line}"
        if offset is not None:
            where += f" (byte {offset})"
        super().__init__(f"{where}: {message}")


class BinaryFileError(InputError):
    """The file looks binary and is skipped."""


class UnreadableFileError(InputError):
    """The file exists but cannot be opened or read (permissions, I/O)."""


class VanishedFileError(UnreadableFileError):
    """The file was deleted (or renamed away) between its discovery and its read.

    Not a defect of the file: the write stage records nothing for it (no dead
    letter, its indexed version untouched) when the path is still absent, and the
    next plan, with its protection against vanished roots, decides the deletion.
    """


class ParseError(InputError):
    """The content does not follow its format."""


class LineTooLongError(InputError):
    """A single line exceeds the configured cap and was skipped unread."""


class TransientError(HeadraceError):
    """A failure that may succeed when retried."""


class ModelError(HeadraceError):
    """The embedding model is missing or failed."""


class StoreError(HeadraceError):
    """The index cannot be opened, migrated or written."""


class ModelMismatchError(StoreError):
    """The index was built with a different embedding model."""


class ReplicaRejectedError(StoreError):
    """A replica (Qdrant) permanently refused these chunks' data (HTTP 400/413/422, an
    invalid payload): the file they belong to becomes a dead letter, the run goes on.

    ``chunk_ids`` are the refused chunks, isolated by splitting the batch.
    """

    def __init__(self, message: str, chunk_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.chunk_ids = chunk_ids
