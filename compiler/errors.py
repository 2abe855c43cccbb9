"""The error type every user-facing failure derives from; the CLI prints it as one diagnostic line."""


class AttncError(Exception):
    """A user-facing error: bad input, an unsupported model, a wrong option. Printed without a traceback."""
