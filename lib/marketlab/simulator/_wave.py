"""Reading and checking a wave export (or a policy table) against the world and conf."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketlab.errors import BadInputError
from marketlab.simulator import schema as S
from marketlab.simulator._world import World, normalise_ids
from marketlab.simulator.params import SimulatorParams

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", "", "nan", "none"}


@dataclass
class Parsed:
    """A checked wave or policy, aligned with its input rows.

    Attributes:
        frame: Input rows with normalised ``customer_id``, ``arm``, ``holdout``, ``coupon_level``
            and ``featured_items`` (';'-joined) columns.
        cust: World index of each row's customer.
        sent: Whether an e-mail goes out (an e-mail arm and not held out).
        coupon: Coupon level of each row (0 when none or not sent).
        pair_row / pair_item: Featured items as (row, stock code) pairs.
    """

    frame: pd.DataFrame
    cust: np.ndarray
    sent: np.ndarray
    coupon: np.ndarray
    pair_row: np.ndarray
    pair_item: pd.Series


def _fail(what: str, msg: str) -> BadInputError:
    return BadInputError(f"simulator: {what}: {msg}")


def _examples(values) -> str:
    v = sorted({str(x) for x in values})
    return f"{v[:5]}{' ...' if len(v) > 5 else ''}"


def _bools(s: pd.Series, what: str) -> np.ndarray:
    if s.dtype == bool:
        return s.to_numpy()
    t = s.astype(str).str.strip().str.lower()
    bad = ~t.isin(_TRUE | _FALSE)
    if bad.any():
        raise _fail(what, f"{S.HOLDOUT} must be true/false, got {_examples(s[bad])}")
    return t.isin(_TRUE).to_numpy()


def _items(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Featured items of each row: ``(';'-joined codes, exploded codes indexed by row position)``.

    Accepts lists or ';'-joined strings (vectorised: waves of a million rows).
    """
    s = s.reset_index(drop=True)
    s = s.where(s.notna(), "")  # None / NaN: no featured item (a list is never NA)
    is_list = s.map(lambda v: isinstance(v, (list, tuple, np.ndarray))) if s.dtype == object else None
    if is_list is not None and is_list.any():
        ex = s.where(is_list, s.astype(str).str.split(";")).explode()
    else:
        ex = s.astype("string").str.split(";").explode()
    ex = ex.dropna().astype(str).str.strip().str.upper()
    ex = ex[(ex != "") & (ex != "NAN") & (ex != "<NA>")]
    if is_list is None or not is_list.any():
        # Strings: the normalised input is already the joined form.
        joined = s.astype("string").fillna("").str.replace(r"\s+", "", regex=True).str.upper()
        joined = joined.str.replace(r";{2,}", ";", regex=True).str.strip(";")
        joined = joined.where(~joined.isin(["NAN", "<NA>"]), "")
    else:
        joined = ex.groupby(level=0).agg(";".join).reindex(s.index, fill_value="")
    return joined.astype(object), ex


def parse(df: pd.DataFrame, world: World, p: SimulatorParams, *, what: str, wave: bool) -> Parsed:
    """Checks a wave export (``wave=True``) or a policy table and aligns it with the world.

    Raises:
        BadInputError: One message naming every problem of the first kind found: missing
            columns, unknown arms, coupon levels not in conf or not matching the arm,
            duplicate or unknown customers, more featured items than ``featured_k``, a bad
            holdout flag, propensity or send time.
    """
    if not isinstance(df, pd.DataFrame):
        raise _fail(what, f"expected a pandas DataFrame, got {type(df).__name__}")
    need = [S.CUSTOMER_ID, S.ARM] + ([S.CAMPAIGN_ID, S.SENT_AT] if wave else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise _fail(what, f"missing column(s) {missing}; have {sorted(map(str, df.columns))}")
    if wave and df.empty:
        raise _fail(what, "the wave has no rows")
    f = df.copy()
    if f[S.CUSTOMER_ID].isna().any():
        raise _fail(what, f"{int(f[S.CUSTOMER_ID].isna().sum())} row(s) without {S.CUSTOMER_ID}")
    f[S.CUSTOMER_ID] = normalise_ids(f[S.CUSTOMER_ID])
    dup = f[S.CUSTOMER_ID].duplicated(keep=False)
    if dup.any():
        raise _fail(what, f"{int(dup.sum())} rows share {int(f.loc[dup, S.CUSTOMER_ID].nunique())} customer id(s) "
                          f"{_examples(f.loc[dup, S.CUSTOMER_ID])}; one row per customer")
    cust = pd.Index(world.customer_ids).get_indexer(f[S.CUSTOMER_ID])
    if (cust < 0).any():
        raise _fail(what, f"{int((cust < 0).sum())} customer(s) not in the simulated shop "
                          f"(no order before {world.wave_date.date()}): {_examples(f.loc[cust < 0, S.CUSTOMER_ID])}")
    actions = {a.name: a for a in p.actions}
    f[S.ARM] = f[S.ARM].astype(str).str.strip()
    unknown = ~f[S.ARM].isin(list(actions))
    if unknown.any():
        raise _fail(what, f"unknown arm(s) {_examples(f.loc[unknown, S.ARM])}; conf actions are {list(actions)}")
    email = f[S.ARM].map({a.name: a.email for a in p.actions}).to_numpy(bool)
    arm_coupon = f[S.ARM].map({a.name: a.coupon for a in p.actions}).to_numpy(float)
    if S.COUPON_LEVEL in f.columns:
        lvl = pd.to_numeric(f[S.COUPON_LEVEL], errors="coerce")
        bad = f[S.COUPON_LEVEL].notna() & lvl.isna()
        if bad.any():
            raise _fail(what, f"{S.COUPON_LEVEL} is not a number: {_examples(f.loc[bad, S.COUPON_LEVEL])}")
        # Platforms write 5 or 0.05 for a 5 % coupon.
        lvl = lvl.where(lvl < 1, lvl / 100).fillna(0.0).round(6)
        allowed = [0.0, *p.coupon_levels]
        off = ~lvl.isin(allowed)
        if off.any():
            raise _fail(what, f"coupon level(s) {sorted(set(lvl[off]))} not in conf levels {p.coupon_levels}")
        clash = ~np.isclose(lvl.to_numpy(), arm_coupon)
        if clash.any():
            raise _fail(what, f"{int(clash.sum())} row(s) whose {S.COUPON_LEVEL} differs from their arm's coupon, "
                              f"e.g. customer {f.loc[clash, S.CUSTOMER_ID].iloc[0]}")
    f[S.COUPON_LEVEL] = arm_coupon
    holdout = _bools(f[S.HOLDOUT], what) if S.HOLDOUT in f.columns else np.zeros(len(f), bool)
    f[S.HOLDOUT] = holdout
    if S.PROPENSITY in f.columns:
        pr = pd.to_numeric(f[S.PROPENSITY], errors="coerce")
        bad = pr.isna() | (pr <= 0) | (pr > 1)
        if bad.any():
            raise _fail(what, f"{S.PROPENSITY} must be in (0, 1], got {_examples(f.loc[bad, S.PROPENSITY])}")
        f[S.PROPENSITY] = pr
    if wave:
        if f[S.CAMPAIGN_ID].isna().any() or f[S.CAMPAIGN_ID].astype(str).nunique() != 1:
            raise _fail(what, f"a wave has exactly one {S.CAMPAIGN_ID}, got {_examples(f[S.CAMPAIGN_ID])}")
        f[S.CAMPAIGN_ID] = f[S.CAMPAIGN_ID].astype(str)
        ts = pd.to_datetime(f[S.SENT_AT], errors="coerce")
        if ts.isna().any():
            raise _fail(what, f"{S.SENT_AT} is missing or not a time: {_examples(f.loc[ts.isna(), S.SENT_AT])}")
        f[S.SENT_AT] = ts
    if S.FEATURED_ITEMS in f.columns:
        joined, ex = _items(f[S.FEATURED_ITEMS])
    else:
        joined, ex = pd.Series([""] * len(f), dtype=object), pd.Series([], dtype=object)
    counts = np.bincount(ex.index.to_numpy(np.int64), minlength=len(f)) if len(ex) else np.zeros(len(f), int)
    many = counts > p.featured_k
    if many.any():
        raise _fail(what, f"{int(many.sum())} row(s) feature more than featured_k={p.featured_k} items, "
                          f"e.g. customer {f[S.CUSTOMER_ID].to_numpy()[many][0]}")
    f[S.FEATURED_ITEMS] = joined.to_numpy()
    sent = email & ~holdout
    return Parsed(frame=f.reset_index(drop=True), cust=cust, sent=sent, coupon=np.where(sent, arm_coupon, 0.0),
                  pair_row=ex.index.to_numpy(np.int64), pair_item=ex.astype(str).reset_index(drop=True))
