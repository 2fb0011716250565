"""A small hand-made wave log and the transitions computed from it by plain pandas loops.

The reference is written from the docstring of ``build_transitions``, row by row, so the
Spark job and the numpy tracker are each compared with something they do not share code with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MARGIN = 0.35
DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2011-11-01 09:00:00")
STATE = ["recency_days", "frequency", "monetary", "days_since_contact", "contacts_90d", "coupons_90d", "orders_90d"]


def hand_log(every_wave: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three customers over four waves 30 days apart (wave 3 is 45 days after wave 2).

    Customer ``b`` skips wave 1 unless ``every_wave``; customer ``c`` has no history.
    Returns ``(waves, history)``.
    """
    rows = []
    plan = {  # customer -> per wave (arm, ordered, revenue)
        "a": [("email", 1, 100.0), ("email_coupon_5", 0, 0.0), ("no_contact", 1, 50.0), ("email", 0, 0.0)],
        "b": [("no_contact", 0, 0.0), ("email", 1, 80.0), ("email_coupon_10", 1, 200.0), ("email", 1, 20.0)],
        "c": [("email_coupon_5", 1, 40.0), ("email", 0, 0.0), ("email", 0, 0.0), ("no_contact", 0, 0.0)],
    }
    coupon = {"no_contact": 0.0, "email": 0.0, "email_coupon_5": 0.05, "email_coupon_10": 0.10}
    offsets = [0, 30, 60, 105]
    for cust, waves in plan.items():
        for t, (arm, ordered, rev) in enumerate(waves):
            if cust == "b" and t == 1 and not every_wave:
                continue
            sent = int(arm != "no_contact")
            rows.append({"customer_id": cust, "wave": t, "sent_at": T0 + offsets[t] * DAY, "arm": arm,
                         "sent": sent, "coupon_level": coupon[arm], "ordered": ordered, "revenue": rev,
                         "coupon_cost": round(coupon[arm] * rev * sent, 2), "contact_cost": 0.10 * sent,
                         "clv": 10.0 * t + {"a": 1, "b": 2, "c": 3}[cust]})
    history = pd.DataFrame({"customer_id": ["a", "b"], "recency_days": [12.0, 200.0], "frequency": [3.0, 1.0],
                            "monetary": [150.0, 400.0]})
    return pd.DataFrame(rows), history


def reference(waves: pd.DataFrame, history: pd.DataFrame, value_cols=(), gap_days: int = 30) -> pd.DataFrame:
    """The transitions, customer by customer and wave by wave."""
    hist = history.set_index("customer_id")
    out = []
    for cust, g in waves.sort_values(["customer_id", "wave"]).groupby("customer_id"):
        g = g.reset_index(drop=True)
        rec0 = hist.loc[cust, "recency_days"] if cust in hist.index else 365.0
        f0 = hist.loc[cust, "frequency"] if cust in hist.index else 0.0
        m0 = hist.loc[cust, "monetary"] if cust in hist.index else 0.0
        first = g["sent_at"].iloc[0]

        def state(ts, past):
            d = lambda x: (ts - x) / DAY  # noqa: E731
            orders = past[past["ordered"] == 1]
            freq = f0 + len(orders)
            rec = d(orders["sent_at"].max()) if len(orders) else rec0 + d(first)
            mon = (f0 * m0 + orders["revenue"].sum()) / freq if freq > 0 else 0.0
            sent = past[past["sent"] == 1]
            dsc = d(sent["sent_at"].max()) if len(sent) else 365.0
            near = past[(ts - past["sent_at"] > pd.Timedelta(0)) & (ts - past["sent_at"] <= 90 * DAY)]
            return [rec, freq, mon, dsc, float(near["sent"].sum()),
                    float(((near["sent"] == 1) & (near["coupon_level"] > 0)).sum()), float(near["ordered"].sum())]

        for i in range(len(g)):
            row = g.iloc[i]
            s = state(row["sent_at"], g.iloc[:i]) + [float(row[c]) for c in value_cols]
            last = i + 1 == len(g)
            nts = row["sent_at"] + gap_days * DAY if last else g["sent_at"].iloc[i + 1]
            vals = row if last else g.iloc[i + 1]
            ns = state(nts, g.iloc[:i + 1]) + [float(vals[c]) for c in value_cols]
            cols = STATE + list(value_cols)
            rec = {"customer_id": cust, "wave": int(row["wave"]), **dict(zip(cols, s)), "action": row["arm"],
                   "reward": MARGIN * row["revenue"] - row["coupon_cost"] - row["contact_cost"],
                   **{"next_" + c: v for c, v in zip(cols, ns)}, "done": last}
            out.append(rec)
    return pd.DataFrame(out)


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same rows (by customer and wave) and columns, numbers to 1e-9."""
    got = got.sort_values(["customer_id", "wave"]).reset_index(drop=True)
    want = want.sort_values(["customer_id", "wave"]).reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for c in want.columns:
        if want[c].dtype == object:
            assert got[c].astype(str).tolist() == want[c].astype(str).tolist(), c
        else:
            np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-9, atol=1e-9,
                                       err_msg=c)
