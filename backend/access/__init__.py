"""Access domain."""
