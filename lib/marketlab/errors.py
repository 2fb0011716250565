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


class DiskFullError(UserError):
    """The file system under the lake (or Spark's scratch space) ran out of space mid-job.

    Not a bug of the job: Delta commits last, so every table keeps its last committed
    version, and a rerun after freeing space completes the work.
    """

    #: EX_TEMPFAIL (sysexits.h): a scheduler may retry once space is freed.
    exit_code = 75


#: How the JVM and the OS word a full file system (ENOSPC, EDQUOT), in any exception's text.
DISK_FULL_MARKERS = ("No space left on device", "Disk quota exceeded")


def disk_full(exc: BaseException) -> str | None:
    """The marker text if ``exc`` or any exception it chains is a full-disk failure."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        hit = next((m for m in DISK_FULL_MARKERS if m in text), None)
        if hit or (isinstance(exc, OSError) and exc.errno in (28, 122)):
            return hit or DISK_FULL_MARKERS[0]
        exc = exc.__cause__ or exc.__context__
    return None
