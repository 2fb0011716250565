"""clean capability."""
