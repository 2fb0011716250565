"""behaviour capability."""
