"""RLParams: strict, bounded."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from marketlab.rl.params import RLParams


def test_params_are_strict_and_bounded():
    assert RLParams().regressor.kind == "ridge"
    for bad in ({"gamma": 1.0}, {"iterations": 0}, {"regressor": {"kind": "forest"}}, {"horizon": 12}):
        with pytest.raises(ValidationError):
            RLParams(**bad)
