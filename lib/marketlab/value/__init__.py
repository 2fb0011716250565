"""Customer lifetime value: BG/NBD purchases and P(alive), Gamma-Gamma spend, discounted CLV (docs/VALUE.md).

Entry point :func:`run` (in :mod:`marketlab.value.stage`); :func:`value_tiers` and
:func:`at_risk` are for the stages that read gold.customer_value (segments, strategy,
report). Imported lazily: :mod:`marketlab.config` imports this package's params, and the
stage imports the lake, which imports the config.
"""

from __future__ import annotations

__all__ = ["ValueResult", "at_risk", "run", "value_tiers"]


def __getattr__(name: str):
    if name in ("run", "ValueResult"):
        from marketlab.value import stage

        return getattr(stage, name)
    if name in ("at_risk", "value_tiers"):
        from marketlab.value import tiers

        return getattr(tiers, name)
    raise AttributeError(f"module 'marketlab.value' has no attribute '{name}'")
