"""Reinforcement learning over campaign waves (issue 26, first milestone); see docs/RL.md.

- :mod:`marketlab.rl.transitions`: the Spark job building (state, action, reward, next
  state, done) rows from logged waves.
- :mod:`marketlab.rl.state`: the same state computed online in numpy (rollouts, small logs).
- :mod:`marketlab.rl.fqi`: offline fitted-Q iteration and the myopic (gamma = 0) baseline.
- :mod:`marketlab.rl.evaluate`: true cumulative profit of the policies in the campaign simulator.
- :mod:`marketlab.rl.params`: :class:`~marketlab.rl.params.RLParams` (not in conf yet).

Nothing is imported here, so ``import marketlab.rl`` does not pull in pyspark.
"""
