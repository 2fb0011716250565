"""evaluation capability."""
