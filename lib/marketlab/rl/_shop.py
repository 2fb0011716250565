"""Adapter: what the shop knows of the simulated customers before the first wave.

The simulator keeps its world private; its history features (orders, recency, average
order value, computed from the order lines before the wave date) are facts the shop has
in its own order lines, not ground truth. The RL evaluation needs them for the synthetic
shop too, which has no order lines, so this adapter reads them from the world. It reads
nothing of the truth (baseline, effects, spend).
"""

from __future__ import annotations

import pandas as pd

from marketlab.rl import transitions as T
from marketlab.simulator import CampaignSimulator


def shop_history(sim: CampaignSimulator) -> pd.DataFrame:
    """One row per customer: ``customer_id``, ``recency_days``, ``frequency``, ``monetary`` at the wave date."""
    w = sim._w  # noqa: SLF001 - the history half of the world only (see the module docstring)
    return pd.DataFrame({T.CUSTOMER: w.customer_ids, T.RECENCY: w.recency_days, T.FREQUENCY: w.frequency,
                         T.MONETARY: w.aov})
