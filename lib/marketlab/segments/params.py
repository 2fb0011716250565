"""Parameters of the segments job (conf: `jobs.segments` in conf/base/params/segments.yaml)."""

from marketlab.params_base import StrictModel


class SegmentsParams(StrictModel):
    """Parameters of the segments job."""
