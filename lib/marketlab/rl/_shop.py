"""Adapter: what the shop knows of the simulated customers before the first wave.

The simulator keeps its world private; its history features (orders, recency, average
order value, computed from the order lines before the wave date) are facts the shop has
in its own order lines, not ground truth. The RL evaluation needs them for the synthetic
shop too, which has no order lines, so this adapter takes them from
:meth:`CampaignSimulator.history` (nothing of the truth is in it) in the RL column names.
"""

from __future__ import annotations

import pandas as pd

from marketlab.rl import transitions as T
from marketlab.simulator import CampaignSimulator


def shop_history(sim: CampaignSimulator) -> pd.DataFrame:
    """One row per customer: ``customer_id``, ``recency_days``, ``frequency``, ``monetary`` at the wave date."""
    names = {"customer_id": T.CUSTOMER, "recency_days": T.RECENCY, "frequency": T.FREQUENCY, "aov": T.MONETARY}
    return sim.history().rename(columns=names)[list(names.values())]
