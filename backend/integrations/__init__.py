"""Clients of outside services the domains build on (the card processor); no domain logic."""
