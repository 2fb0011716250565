"""Parameters of the quality job (conf: `jobs.quality` in conf/base/params/quality.yaml)."""

from marketlab.params_base import StrictModel


class QualityParams(StrictModel):
    """Parameters of the quality job."""
