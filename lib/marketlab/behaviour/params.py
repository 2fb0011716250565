"""Parameters of the behaviour job (conf: `jobs.behaviour` in conf/base/params/behaviour.yaml)."""

from marketlab.params_base import StrictModel


class BehaviourParams(StrictModel):
    """Parameters of the behaviour job."""
