"""inventory capability."""
