"""Parameters of the ingest job (conf: ``jobs.ingest``)."""

from pydantic import Field

from marketlab.params_base import StrictModel


class IngestParams(StrictModel):
    """Parameters of the ingest job.

    Attributes:
        sources: Source names to ingest; empty means every source in conf.
        rejects_table: Catalog name of the quarantine table.
        log_table: Catalog name of the per-file ingest log (what was loaded, when, counts).
    """

    sources: list[str] = Field(default_factory=list)
    rejects_table: str = "bronze._rejects"
    log_table: str = "ops.ingest_log"
