"""The simulator on the real Online Retail customers (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from marketlab import constants as C
from marketlab.simulator import CampaignSimulator, SimulatorParams

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="session")
def retail_lines() -> pd.DataFrame:
    """The vendored export, renamed to the canonical order-line columns."""
    df = pd.read_csv(DATA / "online_retail" / "online_retail.csv.gz", dtype={"InvoiceNo": str, "StockCode": str})
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    return df.rename(columns={"CustomerID": C.CUSTOMER_ID, "InvoiceNo": C.INVOICE_NO, "InvoiceDate": C.INVOICE_TS,
                              "StockCode": C.STOCK_CODE, "Quantity": C.QUANTITY, "UnitPrice": C.UNIT_PRICE})


@pytest.fixture(scope="session")
def params() -> SimulatorParams:
    return SimulatorParams()


@pytest.fixture(scope="session")
def sim(retail_lines, params) -> CampaignSimulator:
    return CampaignSimulator.from_order_lines(retail_lines, params)
