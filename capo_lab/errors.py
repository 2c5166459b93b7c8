"""The error type the CLI and UI show as one line, without a traceback."""


class LabError(Exception):
    """A user-facing failure: bad input, unknown name, impossible request."""
