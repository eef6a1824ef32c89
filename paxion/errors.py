"""The error types the library raises for bad input; the CLI prints them as one line."""


class PaxionError(Exception):
    """Base class of every error caused by the user's input, files or environment."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for wrapping a library's multi-line message into a one-line error."""
    return str(exc).partition("\n")[0]


class VideoDecodeError(PaxionError):
    """A video file is missing, empty, truncated or not a video."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class AnnotationError(PaxionError):
    """An annotation file is missing or malformed; names the file and line where known."""

    def __init__(self, path: object, reason: str, *, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")
        self.path = str(path)
        self.line = line
        self.reason = reason


class BackboneError(PaxionError):
    """A backbone cannot be loaded (unknown name, weights not on disk)."""


class CacheError(PaxionError):
    """A feature cache is missing, corrupt, or was made by another backbone or schema."""
