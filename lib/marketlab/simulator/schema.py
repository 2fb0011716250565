"""Column names of the simulated e-mail platform's files (the wave it reads, the export it writes).

These are the platform's own names: the ingest job maps them onto the campaign-log
contract through conf like any other e-mail-platform export. docs/SIMULATOR.md lists
each column's type and meaning.
"""

# --- the wave export the platform reads (one row per customer) ------------------------
CAMPAIGN_ID = "campaign_id"
CUSTOMER_ID = "customer_id"  # the shop's own id, as in the order lines
ARM = "arm"  # an action name of conf (jobs.simulator.actions)
FEATURED_ITEMS = "featured_items"  # stock codes: a list or one ';'-joined string
COUPON_LEVEL = "coupon_level"  # 0.05 or 5 for a 5 % coupon; optional (the arm's level)
HOLDOUT = "holdout"  # held out: not sent, outcomes still recorded
SENT_AT = "sent_at"
PROPENSITY = "propensity"  # assignment probability of the row's arm, when not uniform

# --- the response export the platform writes ----------------------------------------
SENT = "sent"
OPENED = "opened"
CLICKED = "clicked"
ORDERED = "ordered"
REVENUE = "revenue"
COUPON_COST = "coupon_cost"
CONTACT_COST = "contact_cost"
WINDOW_END = "window_end"

RESPONSE_COLUMNS = [CAMPAIGN_ID, CUSTOMER_ID, ARM, HOLDOUT, SENT_AT, WINDOW_END, FEATURED_ITEMS, COUPON_LEVEL,
                    PROPENSITY, SENT, OPENED, CLICKED, ORDERED, REVENUE, COUPON_COST, CONTACT_COST]
