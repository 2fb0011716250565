"""Parameters of the ingest job (conf: ``jobs.ingest``)."""

import datetime as dt

from pydantic import Field, field_validator

from marketlab.params_base import StrictModel


class TimestampBounds(StrictModel):
    """The plausible range of every timestamp field at ingest (and of silver's order dates).

    A timestamp before ``min`` or more than ``max_days_ahead`` days after the ingest time
    is rejected (``out_of_range_timestamp:<field>``): a year 0001 or 9999 is a typo or a
    sentinel, not a sale, and one such date would stretch every zero-filled calendar
    downstream to it. The upper bound moves with the clock, so nothing ever has to raise
    it; the lower one is absolute, so a re-ingest of old exports keeps loading.

    Attributes:
        min: Earliest accepted date (00:00 UTC of that day, inclusive).
        max_days_ahead: Days after the ingest time (UTC) still accepted, for clocks and
            time zones a little ahead of the ingesting machine.
    """

    min: dt.date = dt.date(2000, 1, 1)
    max_days_ahead: int = Field(1, ge=0, le=366)

    @field_validator("min")
    @classmethod
    def _not_in_future(cls, v: dt.date) -> dt.date:
        if v > dt.date.today():
            raise ValueError(f"min {v} is in the future: every timestamp would be rejected")
        return v

    def window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """``(earliest, latest)`` accepted timestamps (inclusive) for a run at ``now`` (naive UTC)."""
        return dt.datetime.combine(self.min, dt.time()), now + dt.timedelta(days=self.max_days_ahead)


class IngestParams(StrictModel):
    """Parameters of the ingest job.

    Attributes:
        sources: Source names to ingest; empty means every source in conf.
        rejects_table: Catalog name of the quarantine table.
        log_table: Catalog name of the per-file ingest log (what was loaded, when, counts).
        timestamp_bounds: Plausible range of timestamp fields (:class:`TimestampBounds`);
            the quality gate's ``timestamp_bounds`` expectations check silver against it.
    """

    sources: list[str] = Field(default_factory=list)
    rejects_table: str = "bronze._rejects"
    log_table: str = "ops.ingest_log"
    timestamp_bounds: TimestampBounds = Field(default_factory=TimestampBounds)
