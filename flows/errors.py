"""Errors a user can act on, each with the exit code docs/contract.md section 4 gives it."""

from __future__ import annotations


class JknError(Exception):
    """Base of the errors the CLI turns into a message and an exit code."""

    exit_code = 1

    def __str__(self) -> str:
        # One line: Prefect puts this text in a run's state message, where a line break
        # (DuckDB's errors have several) would show as a literal \n.
        return " ".join(line.strip() for line in super().__str__().splitlines() if line.strip())

    def __repr__(self) -> str:  # Prefect logs a failed task's exception by repr: one line there too
        return f"{type(self).__name__}({str(self)!r})"


class PipelineError(JknError):
    exit_code = 1


class ConfigError(JknError):
    """Usage or configuration error (exit 2)."""

    exit_code = 2


class DataQualityError(JknError):
    """A critical data-quality check failed; nothing from the batch was published (exit 3)."""

    exit_code = 3

    def __init__(self, message: str, failures: list[dict] | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.failures = failures or []
        self.details = details or []

    def lines(self) -> list[str]:
        """The message to print or log: what happened, then one line per failed check."""
        if not self.details:
            return [str(self)]
        return [str(self).split(": ", 1)[0] + ":", *(f"  {line}" for line in self.details)]


class FilesRefused(JknError):
    """The run finished and published, but landing files were refused whole (exit 5)."""

    exit_code = 5

    def __init__(self, files: list[str], result: dict):
        super().__init__(
            f"{len(files)} landing file(s) refused whole (the rest of the batch was published): {', '.join(files)}"
        )
        self.files = files
        self.result = result


class DatabaseLocked(JknError):
    """Another run holds the database (exit 4)."""

    exit_code = 4


class FileRejected(JknError):
    """A whole extract file was refused; the database is as it was before it."""

    exit_code = 1

    def __init__(self, file_name: str, reason: str, line: int | None = None, column: str | None = None):
        where = file_name
        if line is not None:
            where += f", line {line}"
        if column:
            where += f", column {column!r}"
        super().__init__(f"{where}: {reason}")
        self.file_name = file_name
        self.reason = reason
        self.line = line
        self.column = column
