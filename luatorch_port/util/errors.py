"""The error a user sees: bad input, named with the file, field or value that was wrong."""


class A2Error(ValueError):
    """Bad input or an impossible request; the CLI prints its message as one line."""
