"""Certificates domain."""
