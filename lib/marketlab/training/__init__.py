"""Data-parallel training shared by the deep models (forecast LSTM, sequence models).

:mod:`marketlab.training.launch` starts the workers (Horovod on Spark, or tf.distribute in
a Spark barrier stage); :mod:`marketlab.training.worker` is what every worker shares.
"""
