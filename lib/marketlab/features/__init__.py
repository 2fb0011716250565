"""features capability."""
