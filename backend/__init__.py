"""Tuition backend: API, domain services and workers."""
