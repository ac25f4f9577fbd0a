"""Provider domain."""
