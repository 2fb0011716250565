"""segments capability."""
