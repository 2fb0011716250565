"""Campaign simulator: plays the e-mail platform and the shop's customers (issue 22, section 3).

In production the e-mail platform sends a wave and exports the responses. Here
:class:`CampaignSimulator` does both against customers built from the real order lines:
``respond(wave, folder)`` writes a response export that the ingest job reads like any
other source; :meth:`CampaignSimulator.oracle` is the only way to its ground truth (for
benchmarks and evaluation). See docs/SIMULATOR.md.
"""

from marketlab.simulator.params import Dynamics, SimAction, SimulatorParams
from marketlab.simulator.schema import RESPONSE_COLUMNS
from marketlab.simulator.simulator import CampaignSimulator, Oracle, SimState, WaveResponse

__all__ = ["CampaignSimulator", "Dynamics", "Oracle", "RESPONSE_COLUMNS", "SimAction", "SimState",
           "SimulatorParams", "WaveResponse"]
