"""Transports: the Matrix homeserver and the terminal. Both feed the same App."""
