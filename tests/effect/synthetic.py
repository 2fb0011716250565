"""A small campaign frame on the silver.campaign_log contract with a known effect."""

from __future__ import annotations

import numpy as np
import pandas as pd

ARMS = ["Mens E-Mail", "Womens E-Mail", "No E-Mail"]


def synthetic_campaign(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Randomized 3-arm campaign: the Mens e-mail lifts visits of customers with ``mens=1``
    and newbies (+0.25), the Womens e-mail lifts ``womens=1`` customers (+0.15)."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(ARMS, size=n)
    mens, womens, newbie = (rng.integers(0, 2, size=n) for _ in range(3))
    recency = rng.integers(1, 13, size=n)
    history = np.round(rng.gamma(2.0, 120.0, size=n), 2)
    base = 0.08 + 0.01 * (12 - recency) / 12
    lift = np.where(arm == "Mens E-Mail", 0.25 * mens * newbie, 0.0) + np.where(arm == "Womens E-Mail", 0.15 * womens, 0.0)
    visit = (rng.uniform(size=n) < base + lift).astype("int32")
    conversion = ((rng.uniform(size=n) < 0.3) & (visit == 1)).astype("int32")
    spend = np.where(conversion == 1, np.round(rng.gamma(2.0, 60.0, size=n), 2), 0.0)
    return pd.DataFrame({
        "customer_id": np.arange(n, dtype="int64"), "treatment": arm, "recency": recency.astype("int32"),
        "history": history, "history_bin": np.clip((history // 100).astype("int32") + 1, 1, 7),
        "mens": mens.astype("int32"), "womens": womens.astype("int32"),
        "zip_code": rng.choice(["Urban", "Suburban", "Rural"], size=n), "newbie": newbie.astype("int32"),
        "channel": rng.choice(["Web", "Phone", "Multichannel"], size=n),
        "visit": visit, "conversion": conversion, "spend": spend,
    })
