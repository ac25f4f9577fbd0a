"""Database backups and restores (`tuition backup`, `tuition restore`)."""
