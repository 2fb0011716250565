"""Parameters of the features job (conf: `jobs.features` in conf/base/params/features.yaml)."""

from pydantic import Field

from marketlab.params_base import StrictModel


class FeaturesParams(StrictModel):
    """Parameters of the features job.

    Attributes:
        as_of: Cutoff date (``YYYY-MM-DD``) of ``gold.customer_features``: only rows
            strictly before it are used. None: the day after the last sale (all data).
        windows_days: Look-back windows of the time-window aggregates.
        score_bins: Number of quantile bins of the R, F and M scores (1 = worst).
        salt_env: Environment variable holding the pseudonymisation salt.
        default_salt: Development salt used (with a warning) when the variable is unset.
        sequence_max_baskets: Keep each customer's most recent baskets only.
        demand_exclude_outliers: Leave flagged outlier lines out of demand (default keeps
            them: they are real shipped units; forecasters may clip instead).
    """

    as_of: str | None = None
    windows_days: list[int] = Field(default_factory=lambda: [7, 30, 90])
    score_bins: int = Field(5, ge=2, le=10)
    salt_env: str = "MARKETLAB_PSEUDONYM_SALT"
    default_salt: str = "marketlab-dev-salt"
    sequence_max_baskets: int = Field(100, ge=1)
    demand_exclude_outliers: bool = False
