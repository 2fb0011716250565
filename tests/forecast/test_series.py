import datetime as dt

from pyspark.sql import functions as F

from marketlab.forecast.series import ALL_ZERO, NOT_SELECTED, OK, TOO_SHORT, complete_calendar, series_profile
from forecast.conftest import N_DAYS, START

END = START + dt.timedelta(days=N_DAYS - 1)


def _rows(df, item, wh):
    return df.where((F.col("item_id") == item) & (F.col("warehouse") == wh))


def test_complete_calendar_fills_gaps_and_clips_negatives(demand_df, demand_pd):
    s = complete_calendar(demand_df)
    g = _rows(s, "GAPPY", "EU").orderBy("date").toPandas()
    assert len(g) == N_DAYS and g["date"].iloc[-1] == END
    raw = demand_pd[(demand_pd.item_id == "GAPPY")]
    assert g["n_gap_days"].iloc[0] == N_DAYS - len(raw) == 30
    assert g["n_negative"].iloc[0] == 1
    assert g["units"].min() == 0.0
    assert g["units"].sum() == raw["units"].clip(lower=0).sum()
    # the short series starts at its first sale, not at the global start
    short = _rows(s, "SHORT", "UK").agg(F.min("date"), F.count("*")).first()
    assert short[0] == END - dt.timedelta(days=19) and short[1] == 20
    # nothing lost: every input unit is still there (negatives clipped)
    assert s.agg(F.sum("units")).first()[0] == demand_pd["units"].clip(lower=0).sum()


def test_profile_status_and_flags(demand_df):
    s = complete_calendar(demand_df)
    prof = series_profile(s, END, history_needed=84).toPandas().set_index(["item_id", "warehouse"])
    assert prof.loc[("SHORT", "UK"), "status"] == TOO_SHORT
    assert prof.loc[("ZERO", "UK"), "status"] == ALL_ZERO
    assert prof.loc[("I00", "EMPTY"), "status"] == ALL_ZERO
    assert prof.loc[("GAPPY", "EU"), "status"] == OK
    assert list(prof.loc[("GAPPY", "EU"), "flags"]) == ["gaps_filled", "negative_clipped"]
    assert list(prof.loc[("ZERO", "UK"), "flags"]) == ["all_zero"]
    assert (prof["status"] == OK).sum() == 17
    # the scale is fitted on the history only: a cutoff 50 days earlier sees less data
    early = series_profile(s, END - dt.timedelta(days=50), 84).toPandas().set_index(["item_id", "warehouse"])
    raw = s.where((F.col("item_id") == "I01") & (F.col("warehouse") == "UK")).toPandas()
    hist = raw[raw["date"] <= END - dt.timedelta(days=50)]
    assert abs(early.loc[("I01", "UK"), "scale"] - hist["units"].mean()) < 1e-9
    assert early.loc[("SHORT", "UK")].empty if ("SHORT", "UK") in early.index else True


def test_max_series_keeps_the_biggest(demand_df):
    s = complete_calendar(demand_df)
    prof = series_profile(s, END, 84, max_series=5).toPandas()
    ok = prof[prof.status == OK]
    assert len(ok) == 5 and (prof.status == NOT_SELECTED).sum() == 12
    assert ok["total_units"].min() >= prof[prof.status == NOT_SELECTED]["total_units"].max()
