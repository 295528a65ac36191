"""Golden recordings: what the bot says today, replayed to prove a refactor changes nothing a user sees."""
