"""Errors that mean bad input, not a bug: the CLI prints them in one line and exits 2."""


class VptError(Exception):
    """Base of every error whose message alone tells the user what to fix."""


class NonFiniteError(VptError):
    """A non-finite loss or gradient: the step is not taken and the last good checkpoint is kept."""


class SourceError(VptError, RuntimeError):
    """A data source that is missing, unreadable or malformed; the message names the file and why."""
