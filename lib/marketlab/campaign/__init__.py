"""Campaign waves for the shop's own customers: plan, send, ingest the responses, measure (docs/CAMPAIGN.md).

The stage's entry point is :func:`marketlab.campaign.run.run` (not imported here: conf
loading imports this package's params).
"""
