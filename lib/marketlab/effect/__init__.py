"""effect capability."""
