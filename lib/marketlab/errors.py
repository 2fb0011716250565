"""The one error hierarchy: errors a user can act on, each printed as one line by the harness.

Capabilities raise a subclass of :class:`UserError`; :func:`marketlab.runtime.run_job`
catches the base, prints ``marketlab <job>: <message>`` and exits with ``exit_code``.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(RuntimeError):
    """An error with a message meant for the user, not a traceback.

    Attributes:
        exit_code: Process exit code when the job runs as a script.
    """

    exit_code = 2


class BadInputError(UserError):
    """Input data that cannot be processed as configured (empty, malformed, degenerate)."""


class GateFailedError(UserError):
    """A table version did not pass (or never ran) the data-quality gate."""


class MissingTableError(UserError, LookupError):
    """A catalog table that a stage needs has not been written yet."""


class ConfError(UserError, ValueError):
    """Configuration that cannot be used (unknown key, wrong type, impossible combination)."""


class LakeBusyError(UserError):
    """Another pipeline run holds the lake (two runs on one lake would race their writes)."""
