"""strategy capability."""
