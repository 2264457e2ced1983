"""Errors a user can cause and fix; the CLI prints them as one line, never as a traceback."""


class RadpipeError(Exception):
    """A user-facing error: bad input, missing file, wrong setting."""


class ConfigError(RadpipeError):
    """A setting or configuration value is invalid."""


class SourceError(RadpipeError):
    """A source (archive, report file, dataset) cannot be read as asked."""
