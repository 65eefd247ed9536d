"""The error family. Library code raises these; only ``cli.py`` turns them into an exit code."""


class Seq2AttnError(Exception):
    """A user-facing error: its message is one line that names the file, line or option at fault."""


class ConfigError(Seq2AttnError):
    """A bad option or configuration value."""


class DataError(Seq2AttnError):
    """Missing, empty, non-UTF-8 or misaligned input data."""


class CheckpointError(Seq2AttnError):
    """A model directory that is missing, corrupt, tampered with or not ours."""


def brief(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's reason, cut to ``limit`` characters, for a one-line error."""
    text = (getattr(e, "strerror", None) or str(e)).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return first if len(first) <= limit else first[: limit - 3] + "..."
