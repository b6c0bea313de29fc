"""The projection service: turns the event log into read models and serves them (port 8004)."""
