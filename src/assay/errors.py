"""Errors a user can act on: each names what was wrong, where, and what to do."""


class AssayError(Exception):
    """A problem the user can fix (bad input, config, missing model); exit code 2."""

    exit_code = 2

