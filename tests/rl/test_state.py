"""The numpy state tracker and its local transitions against the pandas computation."""

from __future__ import annotations

import pytest

from marketlab.errors import BadInputError
from marketlab.rl.state import local_transitions

from ._logs import MARGIN, assert_same, hand_log, reference


def test_local_transitions_equal_the_pandas_computation():
    waves, history = hand_log(every_wave=True)
    got = local_transitions(waves, history, value_cols=["clv"], margin=MARGIN)
    assert_same(got, reference(waves, history, value_cols=["clv"]))


def test_local_transitions_need_every_customer_in_every_wave():
    waves, history = hand_log(every_wave=False)
    with pytest.raises(BadInputError, match="every customer once in every wave"):
        local_transitions(waves, history)
