"""Learning domain."""
