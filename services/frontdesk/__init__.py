"""The front desk: a web app for the staff of one room (check-in, booth board, incidents,
supplies), a backend-for-frontend that reports to the ingest APIs on the room's behalf."""
