"""value.run on a synthetic lake drawn from the models themselves: recovery, table slices, bad input."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from conftest import pass_gate
from marketlab import constants as C
from marketlab import value
from marketlab.errors import BadInputError, GateFailedError
from marketlab.tables import Lake
from marketlab.value import models as M
from marketlab.value.params import ValueParams
from marketlab.value.stage import delta_clv
from marketlab.value.synthetic import LINES_SCHEMA, simulate_block

TRUE_BG = M.BGNBD(r=0.6, alpha=12.0, a=0.8, b=3.0)
TRUE_GG = M.GammaGamma(p=6.0, q=4.0, gamma=15.0)
START = dt.date(2011, 1, 1)


def _params(**kw) -> ValueParams:
    base = dict(results_table=None, bootstrap=20, min_customers=20)
    return ValueParams(**{**base, **kw})


@pytest.fixture(scope="module")
def synth(spark, tmp_path_factory):
    from tests.conftest import make_settings

    lake = Lake(spark, make_settings(tmp_path_factory.mktemp("value")))
    # Drawn on the driver: at this size, faster than simulate_order_lines' Python workers (bench/clv.py uses those).
    lines = simulate_block(np.arange(3000), TRUE_BG, TRUE_GG, START, 365, seed=3)
    lake.write(spark.createDataFrame(lines, LINES_SCHEMA), "silver.order_lines")
    pass_gate(lake, "silver.order_lines")
    last = lake.read("silver.order_lines").agg(F.max(C.DATE)).first()[0]
    return lake, last


@pytest.fixture(scope="module")
def result(synth):
    lake, _ = synth
    return value.run(lake, _params(), secret="test-secret")


def test_recovers_the_generating_process_and_beats_the_baseline(result):
    bg, gg = result.fit.bgnbd, result.fit.gamma_gamma
    assert bg.r / bg.alpha == pytest.approx(TRUE_BG.r / TRUE_BG.alpha, rel=0.2)  # mean purchase rate per day
    assert bg.a / (bg.a + bg.b) == pytest.approx(TRUE_BG.a / (TRUE_BG.a + TRUE_BG.b), rel=0.35)  # mean dropout
    assert gg.population_mean == pytest.approx(TRUE_GG.population_mean, rel=0.15)
    ev = result.evaluation
    assert ev.cutoff == str(result.as_of - dt.timedelta(days=180))
    for h in (90, 180):
        m = ev.metrics
        assert m[f"h{h}.count.rmse.model"] < m[f"h{h}.count.rmse.historical"]
        assert m[f"h{h}.count.rmse.model_lo"] <= m[f"h{h}.count.rmse.model"] <= m[f"h{h}.count.rmse.model_hi"]
        assert abs(m[f"h{h}.count.aggregate_error.model"]) < 0.15
        cal = ev.calibration[h]
        assert cal["customers"].sum() == ev.n_customers
        assert (cal["frequency"] <= 7).all()


def test_writes_one_slice_per_as_of(synth, result):
    lake, last = synth
    out = lake.read("gold.customer_value")
    sl = out.where(F.col(C.AS_OF) == F.lit(str(result.as_of)).cast("date"))
    assert result.as_of == last + dt.timedelta(days=1)
    n_customers = lake.read("silver.order_lines").select(C.CUSTOMER_ID).distinct().count()
    assert sl.count() == result.n_customers == n_customers
    stats = sl.agg(F.min("p_alive"), F.max("p_alive"), F.min("clv"), F.countDistinct(C.CUSTOMER_KEY),
                   F.max(F.length(C.CUSTOMER_KEY)), F.sum(F.col("at_risk").cast("int"))).first()
    assert 0 < stats[0] <= stats[1] <= 1 and stats[2] > 0
    assert stats[3] == n_customers and stats[4] == 16
    assert stats[5] == result.totals["at_risk"] > 0
    tiers = {r["value_tier"]: r["count"] for r in sl.groupBy("value_tier").count().collect()}
    assert tiers["top"] == pytest.approx(0.05 * n_customers, rel=0.1)
    # A second, earlier as_of adds its own slice and leaves the first one as it was (replaceWhere on as_of).
    earlier = result.as_of - dt.timedelta(days=30)
    params = _params(as_of=str(earlier), eval_cutoff=str(earlier - dt.timedelta(days=180)), bootstrap=0)
    first = value.run(lake, params, secret="test-secret")
    out = lake.read("gold.customer_value")
    counts = {r[0]: r[1] for r in out.groupBy(C.AS_OF).count().collect()}
    assert counts == {result.as_of: n_customers, earlier: first.n_customers}
    assert first.n_customers == n_customers  # every synthetic customer starts in the first half-year
    assert first.version == result.version + 1
    old = out.where(F.col(C.AS_OF) == F.lit(str(earlier)).cast("date"))
    assert old.agg(F.max("T")).first()[0] == (earlier - START).days  # T runs to this slice's as_of, not the data end


def test_bad_input(synth, spark):
    lake, last = synth
    with pytest.raises(BadInputError, match="after the data"):
        value.run(lake, _params(as_of=str(last + dt.timedelta(days=5))))
    with pytest.raises(BadInputError, match="empty calibration window"):
        value.run(lake, _params(eval_cutoff=str(START)))
    with pytest.raises(BadInputError, match="runs past"):
        value.run(lake, _params(eval_cutoff=str(last - dt.timedelta(days=30))))
    # A version the gate never saw is refused by the lake's read.
    lake.write(lake.read("silver.order_lines"), "silver.order_lines")
    with pytest.raises(GateFailedError, match="has no data-quality result"):
        value.run(lake, _params())
    pass_gate(lake, "silver.order_lines")
    # Every customer bought once: nothing to learn the purchase rate from.
    once = lake.read("silver.order_lines").groupBy(C.CUSTOMER_ID).agg(F.min(C.DATE).alias(C.DATE),
                                                                     F.first(C.AMOUNT).alias(C.AMOUNT))
    lake.write(once, "silver.returns")  # any catalog table will do as a scratch input
    pass_gate(lake, "silver.returns")
    with pytest.raises(BadInputError, match="no customer has a repeat purchase"):
        value.run(lake, _params(input_table="silver.returns"))
    # Only returns (negative amounts): no purchase left, one clear error.
    lake.write(once.withColumn(C.AMOUNT, -F.col(C.AMOUNT)), "silver.adjustments")
    with pytest.raises(BadInputError, match="no customer purchase with a positive amount"):
        value.run(lake, _params(input_table="silver.adjustments"))


def test_delta_clv_sees_only_the_history_before_the_as_of(synth):
    lake, last = synth
    lines = lake.read("silver.order_lines")
    as_of = START + dt.timedelta(days=200)
    params = _params()
    got, fit = delta_clv(lines, as_of, params)
    before, fit_before = delta_clv(lines.where(F.col(C.DATE) < F.lit(as_of)), as_of, params)
    assert fit == fit_before  # no later order reaches the fit
    a = got.toPandas().set_index(C.CUSTOMER_ID).sort_index()
    b = before.toPandas().set_index(C.CUSTOMER_ID).sort_index()
    pd.testing.assert_frame_equal(a, b)
    first_buy = lines.groupBy(C.CUSTOMER_ID).agg(F.min(C.DATE).alias("d")).where(F.col("d") < F.lit(as_of)).count()
    assert len(a) == first_buy
    assert (a["delta_clv"] > 0).mean() > 0.9
