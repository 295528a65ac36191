"""``make bench``: ess-bot measured against a minimal echo bot on the same local Synapse."""
