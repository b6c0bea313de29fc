"""PostgreSQL plumbing: connection pools and the migration runner."""
