"""The campaign simulator: plays the e-mail platform and the shop's customers.

In production the e-mail platform sends a wave and exports the responses; for the demo,
the tests and the benchmarks this module does both against customers built from the real
Online Retail order lines. Its ground truth stays private: the only truth API is
:meth:`CampaignSimulator.oracle`, meant for benchmarks and evaluation, never for a policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.simulator import schema as S
from marketlab.simulator._truth import Outcome, Truth, build_truth, expected, featured_shares
from marketlab.simulator._wave import Parsed, parse
from marketlab.simulator._world import DAY, World, build_world, member, synthetic_world
from marketlab.simulator.params import SimulatorParams


@dataclass(frozen=True, eq=False)
class SimState:
    """The customers' state between waves (issue 26), carried from one wave to the next.

    Opaque on purpose: its arrays are the simulator's truth. A first wave starts from
    :meth:`CampaignSimulator.initial_state`; each :meth:`CampaignSimulator.respond` returns
    the state after the wave.

    Attributes:
        wave: Waves played so far.
    """

    wave: int
    _base: np.ndarray = field(repr=False)
    _recent_contacts: np.ndarray = field(repr=False)
    _recent_coupons: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class WaveResponse:
    """What :meth:`CampaignSimulator.respond` returns.

    Attributes:
        path: The response export written.
        rows: Rows in it (one per wave row).
        state: The customers' state after the wave (pass it to the next wave).
    """

    path: Path
    rows: int
    state: SimState


def _decay(p: SimulatorParams) -> float:
    d = p.dynamics
    return float(0.5 ** (d.gap_days / d.memory_days))


class CampaignSimulator:
    """The simulated e-mail platform and customers of one shop.

    Build it with :meth:`from_order_lines` (real order lines) or :meth:`synthetic`
    (benchmarks at any size). Sampling uses the simulator's own seed
    (``params.seed``): the same seed and the same calls give the same files.
    """

    def __init__(self, world: World, params: SimulatorParams):
        self._p = params
        self._w = world
        truth_seq, sample_seq = np.random.SeedSequence(params.seed).spawn(2)
        self._t: Truth = build_truth(world, params, np.random.default_rng(truth_seq))
        self._rng = np.random.default_rng(sample_seq)

    # --- construction ----------------------------------------------------------------
    @classmethod
    def from_order_lines(cls, lines: pd.DataFrame, params: SimulatorParams | None = None, *,
                         wave_date: date | str | None = None, customer_col: str = C.CUSTOMER_ID,
                         invoice_col: str = C.INVOICE_NO, ts_col: str = C.INVOICE_TS,
                         item_col: str = C.STOCK_CODE, quantity_col: str = C.QUANTITY,
                         price_col: str = C.UNIT_PRICE) -> "CampaignSimulator":
        """A simulator on the real customers: those with an order line before the wave date.

        Args:
            lines: Order lines (silver.order_lines or the raw export renamed); cancellations
                and non-product lines are dropped here.
            params: Simulator parameters (defaults when None).
            wave_date: Overrides ``params.wave_date``.
            customer_col / invoice_col / ts_col / item_col / quantity_col / price_col:
                Column names of ``lines``.

        Raises:
            BadInputError: Missing columns or no history before the wave date.
        """
        p = params or SimulatorParams()
        wd = pd.Timestamp(wave_date if wave_date is not None else p.wave_date)
        w = build_world(lines, wd, response_window_days=p.response_window_days, relevance_days=p.relevance_days,
                        category_digits=p.category_digits, customer_col=customer_col, invoice_col=invoice_col,
                        ts_col=ts_col, item_col=item_col, quantity_col=quantity_col, price_col=price_col)
        return cls(w, p)

    @classmethod
    def synthetic(cls, n_customers: int, params: SimulatorParams | None = None, *,
                  n_items: int = 3000) -> "CampaignSimulator":
        """A synthetic shop of ``n_customers`` (benchmarks; no data file needed)."""
        p = params or SimulatorParams()
        rng = np.random.default_rng(np.random.SeedSequence([p.seed, 1]))
        return cls(synthetic_world(n_customers, rng, wave_date=pd.Timestamp(p.wave_date),
                                   category_digits=p.category_digits, n_items=n_items), p)

    # --- public, non-truth facts (what the shop knows anyway) ---------------------------
    @property
    def params(self) -> SimulatorParams:
        return self._p

    @property
    def wave_date(self) -> pd.Timestamp:
        return self._w.wave_date

    @property
    def customer_ids(self) -> np.ndarray:
        """The population: the shop's ids of customers with history before the wave date."""
        return self._w.customer_ids.copy()

    def history(self) -> pd.DataFrame:
        """What the shop itself knows of each customer at the wave date (not ground truth).

        Orders, recency and average order value come from the order lines before the wave
        date, facts the shop holds in its own lines; a synthetic shop has no order lines, so
        a consumer that needs them (the RL evaluation) asks here. Nothing of the truth
        (baseline, effects, spend model) is in it.

        Returns:
            ``customer_id``, ``recency_days``, ``frequency``, ``aov``.
        """
        w = self._w
        return pd.DataFrame({S.CUSTOMER_ID: w.customer_ids, "recency_days": w.recency_days,
                             "frequency": w.frequency, "aov": w.aov})

    def initial_state(self) -> SimState:
        """The state before the first wave: nobody contacted recently."""
        n = self._w.n
        return SimState(0, self._t.p0.copy(), np.zeros(n), np.zeros(n))

    # --- the platform ------------------------------------------------------------------
    def respond(self, wave: pd.DataFrame, out_dir: str | Path, *, state: SimState | None = None) -> WaveResponse:
        """Sends a wave and writes the platform's response export.

        Args:
            wave: The exported wave, one row per customer: ``campaign_id``, ``customer_id``,
                ``arm``, ``sent_at``, optionally ``featured_items``, ``coupon_level``,
                ``holdout``, ``propensity`` (see docs/SIMULATOR.md).
            out_dir: Folder the export goes to (created if needed), as
                ``responses_<campaign_id>.csv``.
            state: The customers' state (the previous wave's ``WaveResponse.state``);
                None starts from :meth:`initial_state`.

        Returns:
            The file written, its row count and the state after the wave.

        Raises:
            BadInputError: A wave that cannot be sent as configured (one message).
        """
        frame, new_state = self.simulate(wave, state=state)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(frame[S.CAMPAIGN_ID].iloc[0]))
        path = out / f"responses_{name}.csv"
        tmp = path.with_suffix(".csv.tmp")
        out_frame = frame.copy()
        for col in (S.SENT_AT, S.WINDOW_END):
            # A wave has few distinct send times: format each once, not per row.
            cat = pd.Categorical(out_frame[col])
            out_frame[col] = cat.rename_categories(cat.categories.strftime("%Y-%m-%d %H:%M:%S")).astype(object)
        out_frame.to_csv(tmp, index=False)
        tmp.replace(path)  # a reader never sees half a file
        return WaveResponse(path=path, rows=len(frame), state=new_state)

    def simulate(self, wave: pd.DataFrame, *, state: SimState | None = None) -> tuple[pd.DataFrame, SimState]:
        """Like :meth:`respond` but returns the export as a frame instead of writing it."""
        st = state or self.initial_state()
        pw = parse(wave, self._w, self._p, what="wave", wave=True)
        o, sent, coupon = self._outcome(pw, st)
        rng, n = self._rng, self._w.n
        # Every customer of the shop may order, in the wave or not; only wave rows are exported.
        ordered = rng.random(n) < o.p_order
        shape = 1 / self._p.spend_cv ** 2
        revenue = np.where(ordered, self._t.spend * rng.gamma(shape, 1 / shape, n), 0.0).round(2)
        opened = rng.random(n) < o.p_open
        clicked = opened & (rng.random(n) < np.divide(o.p_click, o.p_open, out=np.zeros(n), where=o.p_open > 0))
        c = pw.cust
        f = pw.frame
        out = pd.DataFrame({
            S.CAMPAIGN_ID: f[S.CAMPAIGN_ID], S.CUSTOMER_ID: f[S.CUSTOMER_ID], S.ARM: f[S.ARM],
            S.HOLDOUT: f[S.HOLDOUT].astype(int), S.SENT_AT: f[S.SENT_AT],
            S.WINDOW_END: f[S.SENT_AT] + self._p.response_window_days * DAY,
            S.FEATURED_ITEMS: f[S.FEATURED_ITEMS], S.COUPON_LEVEL: f[S.COUPON_LEVEL],
            S.PROPENSITY: f[S.PROPENSITY] if S.PROPENSITY in f.columns else np.nan,
            S.SENT: sent[c].astype(int), S.OPENED: opened[c].astype(int), S.CLICKED: clicked[c].astype(int),
            S.ORDERED: ordered[c].astype(int), S.REVENUE: revenue[c],
            S.COUPON_COST: np.where(sent[c], coupon[c] * revenue[c], 0.0).round(2),
            S.CONTACT_COST: o.contact_cost[c],
        })
        return out[S.RESPONSE_COLUMNS], self._advance(st, sent, coupon, ordered.astype(float))

    def oracle(self, state: SimState | None = None) -> "Oracle":
        """The ground truth, for benchmarks and evaluation only (never for a policy)."""
        return Oracle(self, state or self.initial_state())

    # --- internals ---------------------------------------------------------------------
    def _outcome(self, pw: Parsed, st: SimState) -> tuple[Outcome, np.ndarray, np.ndarray]:
        w, p, n = self._w, self._p, self._w.n
        sent = np.zeros(n, bool)
        coupon = np.zeros(n)
        sent[pw.cust] = pw.sent
        coupon[pw.cust] = pw.coupon
        pc = pw.cust[pw.pair_row]
        keep = sent[pc]  # featured items of a mail not sent do nothing
        rel, aff = featured_shares(w, pc[keep], pw.pair_item[keep].reset_index(drop=True), p.featured_k,
                                   p.category_digits)
        o = expected(self._t, p, sent=sent, coupon=coupon, relevance=rel, affinity=aff, base=st._base,
                     recent_contacts=st._recent_contacts, recent_coupons=st._recent_coupons)
        return o, sent, coupon

    def _advance(self, st: SimState, sent: np.ndarray, coupon: np.ndarray, ordered: np.ndarray) -> SimState:
        d, k = self._p.dynamics, _decay(self._p)
        base = (1 - d.carryover_weight) * self._t.p0 + d.carryover_weight * ordered if d.carryover else st._base
        return SimState(st.wave + 1, base, st._recent_contacts * k + sent, st._recent_coupons * k + (coupon > 0))


class Oracle:
    """Exact expectations of the simulator's truth at one state (no sampling noise).

    For benchmarks and evaluation only: the true expected incremental revenue and profit
    of any policy, the best policy, regret, and the long-run value of a policy sequence.
    A policy is a table ``customer_id``, ``arm``, optional ``featured_items``; customers
    of the shop missing from it get no contact.
    """

    def __init__(self, sim: CampaignSimulator, state: SimState):
        self._sim = sim
        self._state = state

    def expected(self, policy: pd.DataFrame) -> pd.DataFrame:
        """Per customer of the shop: action and true expected outcomes against no contact.

        Returns:
            Columns ``customer_id``, ``arm``, ``sent``, ``p_order``, ``revenue``,
            ``coupon_cost``, ``contact_cost``, ``profit``, ``incremental_orders``, ``incremental_revenue``,
            ``incremental_profit`` (expected values in the response window).
        """
        sim = self._sim
        pw = parse(policy, sim._w, sim._p, what="policy", wave=False)
        o, sent, _ = sim._outcome(pw, self._state)
        z = self._baseline()
        arm = np.full(sim._w.n, sim._p.no_contact, dtype=object)
        arm[pw.cust] = pw.frame[S.ARM].to_numpy(object)
        return pd.DataFrame({S.CUSTOMER_ID: sim._w.customer_ids, S.ARM: arm, S.SENT: sent, "p_order": o.p_order,
                             "revenue": o.revenue, "coupon_cost": o.coupon_cost,
                             "contact_cost": o.contact_cost, "profit": o.profit,
                             "incremental_orders": o.p_order - z.p_order,
                             "incremental_revenue": o.revenue - z.revenue,
                             "incremental_profit": o.profit - z.profit})

    def value(self, policy: pd.DataFrame) -> dict[str, float]:
        """Totals of :meth:`expected` over the shop's customers.

        Returns:
            ``incremental_orders``, ``incremental_revenue``, ``incremental_profit``,
            ``contacts``, ``cost`` (contact plus expected coupon cost) and ``roi``
            (incremental profit per unit of cost; nan without cost).
        """
        e = self.expected(policy)
        inc = float(e["incremental_profit"].sum())
        cost = float(e["contact_cost"].sum() + e["coupon_cost"].sum())
        return {"incremental_orders": float(e["incremental_orders"].sum()),
                "incremental_revenue": float(e["incremental_revenue"].sum()),
                "incremental_profit": inc, "contacts": int(e[S.SENT].sum()), "cost": cost,
                "roi": inc / cost if cost > 0 else float("nan")}

    def best_items(self) -> pd.Series:
        """The truly best ``featured_k`` items per customer (';'-joined), for the oracle.

        Items the customer really buys in the relevance window come first (those in a
        category they bought before ahead), then their most-bought past items.
        """
        w, k = self._sim._w, self._sim._p.featured_k
        ni, nc = len(w.items), len(w.categories)
        fc, fi = np.divmod(w.future_item_keys, ni)
        hc, hi = np.divmod(w.hist_item_keys, ni)
        c = np.concatenate([fc, hc])
        i = np.concatenate([fi, hi])
        rank = np.concatenate([-member(w.hist_category_keys, fc * nc + w.item_category[fi]).astype(float),
                               10.0 - w.hist_item_qty / (1 + w.hist_item_qty.max())])
        o = np.lexsort((i, rank, c))
        c, i = c[o], i[o]
        _, first = np.unique(c * ni + i, return_index=True)  # a future item also bought before: keep its best rank
        keep = np.sort(first)
        c, i = c[keep], i[keep]
        start = np.searchsorted(c, c, side="left")
        pos = np.arange(len(c)) - start
        top = pos < k
        grid = np.full((w.n, k), "", dtype=object)
        grid[c[top], pos[top]] = w.items.to_numpy(object)[i[top]]
        cols = [pd.Series(grid[:, j]) for j in range(k)]
        joined = cols[0].str.cat(cols[1:], sep=";").str.strip(";").str.replace(r";{2,}", ";", regex=True)
        return pd.Series(joined.to_numpy(object), index=w.customer_ids)

    def policy(self, max_contacts: int | None = None) -> pd.DataFrame:
        """The best action per customer with the best items, optionally under a contact budget.

        With a budget of ``max_contacts`` e-mails the customers with the largest positive
        gain of their best e-mail action are contacted; this is exact because every e-mail
        action uses one contact.

        Returns:
            Columns ``customer_id``, ``arm``, ``featured_items``, ``incremental_profit``.
        """
        sim = self._sim
        p, w, n = sim._p, sim._w, sim._w.n
        if max_contacts is not None and max_contacts < 0:
            raise BadInputError(f"simulator: max_contacts must be >= 0, got {max_contacts}")
        items = self.best_items().to_numpy(object)
        pol = pd.DataFrame({S.CUSTOMER_ID: w.customer_ids, S.ARM: p.no_contact, S.FEATURED_ITEMS: items})
        pw = parse(pol, w, p, what="policy", wave=False)
        rel, aff = featured_shares(w, pw.cust[pw.pair_row], pw.pair_item, p.featured_k, p.category_digits)
        st = self._state
        z = self._baseline()
        best_gain = np.zeros(n)
        best_arm = np.full(n, p.no_contact, dtype=object)
        for a in p.actions:
            if not a.email:
                continue
            o = expected(sim._t, p, sent=np.ones(n, bool), coupon=np.full(n, a.coupon), relevance=rel, affinity=aff,
                         base=st._base, recent_contacts=st._recent_contacts, recent_coupons=st._recent_coupons)
            g = o.profit - z.profit
            better = g > best_gain
            best_gain = np.where(better, g, best_gain)
            best_arm = np.where(better, a.name, best_arm)
        if max_contacts is not None:
            drop = np.argsort(-best_gain, kind="stable")[max_contacts:]
            best_arm[drop] = p.no_contact
            best_gain[drop] = 0.0
        feat = np.where(best_arm == p.no_contact, "", items)
        return pd.DataFrame({S.CUSTOMER_ID: w.customer_ids, S.ARM: best_arm, S.FEATURED_ITEMS: feat,
                             "incremental_profit": best_gain})

    def regret(self, policy: pd.DataFrame, max_contacts: int | None = None) -> float:
        """True expected incremental profit the oracle (under the same budget) makes on top of ``policy``."""
        best = self.policy(max_contacts)
        return float(best["incremental_profit"].sum() - self.value(policy)["incremental_profit"])

    def long_run_value(self, policies: Sequence[pd.DataFrame], discount: float = 1.0) -> dict[str, float]:
        """True expected profit of a fixed sequence of wave policies, one per wave.

        Exact: the state's baseline is linear in the last order and the purchase
        probability is linear in the baseline, so carrying the expected baseline gives
        the expected profit of every wave.

        Returns:
            ``profit`` (discounted sum over waves of the shop's expected profit, all
            customers) and ``incremental_profit`` against never contacting anyone.
        """
        sim = self._sim
        nobody = pd.DataFrame({S.CUSTOMER_ID: [], S.ARM: []})
        total = {"profit": 0.0, "incremental_profit": 0.0}
        st, st0 = self._state, self._state
        for t, pol in enumerate(policies):
            o, sent, coupon = sim._outcome(parse(pol, sim._w, sim._p, what="policy", wave=False), st)
            z, _, c0 = sim._outcome(parse(nobody, sim._w, sim._p, what="policy", wave=False), st0)
            total["profit"] += discount ** t * float(o.profit.sum())
            total["incremental_profit"] += discount ** t * float(o.profit.sum() - z.profit.sum())
            st = sim._advance(st, sent, coupon, o.p_order)
            st0 = sim._advance(st0, np.zeros_like(sent), c0, z.p_order)
        return total

    def _baseline(self) -> Outcome:
        sim = self._sim
        nobody = pd.DataFrame({S.CUSTOMER_ID: [], S.ARM: []})
        return sim._outcome(parse(nobody, sim._w, sim._p, what="policy", wave=False), self._state)[0]
