"""Pseudonymisation: the one home of ``customer_key`` and of the secret it is keyed with.

Every stage that turns a shop customer id into the gold ``customer_key`` (features, effect,
evaluation, export, strategy, report) calls :func:`customer_key` with the secret from
:func:`resolve_secret`, so the keys of one lake join across tables.
"""

from __future__ import annotations

import logging
import os

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C

log = logging.getLogger(__name__)

SECRET_ENV = "MARKETLAB_PSEUDONYM_SALT"
DEV_SECRET = "marketlab-dev-salt"


def resolve_secret(env: str = SECRET_ENV, default: str = DEV_SECRET) -> str:
    """The pseudonymisation secret: ``$env`` when set and non-empty, else the development one (warned).

    Args:
        env: Environment variable that holds the secret.
        default: Development secret used when the variable is unset or empty.
    """
    secret = os.environ.get(env)
    if not secret:
        log.warning("%s is unset: using the development pseudonym salt (not for production data)", env)
        return default
    return secret


def customer_key(customer_id: Column | str, secret: str) -> Column:
    """``customer_key``: first 16 hex chars of sha256(secret || id) (docs/CONTRACTS.md).

    Integral ids (``17850`` and ``17850.0`` alike) are keyed by their integer text, so the
    same customer gets one key whichever table's type the id had.
    """
    col = F.col(customer_id) if isinstance(customer_id, str) else customer_id
    as_text = F.when(col.cast("double") == col.cast("long").cast("double"), col.cast("long").cast("string")) \
        .otherwise(col.cast("string"))
    return F.substring(F.sha2(F.concat(F.lit(secret), as_text), 256), 1, 16)


def pseudonymise(df: DataFrame, secret: str, id_col: str = C.CUSTOMER_ID, key_col: str = C.CUSTOMER_KEY) -> DataFrame:
    """``df`` with ``key_col`` = :func:`customer_key` of ``id_col``."""
    return df.withColumn(key_col, customer_key(id_col, secret))
