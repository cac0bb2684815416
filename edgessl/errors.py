"""One exception type for bad input, one for runtime failures: the CLI maps them to exit codes."""


class EdgesslError(Exception):
    """Base of every error edgessl raises on purpose."""

    exit_code = 1


class BadInput(EdgesslError, ValueError):
    """The user gave something we cannot use (file, value, table, budget). Exit code 2."""

    exit_code = 2


class RuntimeFailure(EdgesslError, RuntimeError):
    """Something went wrong while working (NaN loss, parity failure). Exit code 1."""

    exit_code = 1
