"""Sequence models of customer baskets: a SASRec-style Transformer and the Mult-VAE.

Entry point: :func:`marketlab.sequence.run.run` (``run(lake, params) -> SequenceResult``).
"""
