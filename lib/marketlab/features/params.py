"""Parameters of the features job (conf: `jobs.features` in conf/base/params/features.yaml)."""

from marketlab.params_base import StrictModel


class FeaturesParams(StrictModel):
    """Parameters of the features job."""
