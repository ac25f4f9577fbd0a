"""Certificate verification straight from the chain (no trust in Tuition's database)."""
