"""Base class of every conf section (kept free of imports so capabilities can use it)."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors, not silently ignored; values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
