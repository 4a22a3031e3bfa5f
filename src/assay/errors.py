"""Errors a user can act on: each names what was wrong, where, and what to do."""


class AssayError(Exception):
    """A problem the user can fix (bad input, config, missing model); exit code 2."""

    exit_code = 2


class StageFailed(AssayError):
    """A stage ran but its output is not usable (e.g. error rate above the limit); exit code 1."""

    exit_code = 1
