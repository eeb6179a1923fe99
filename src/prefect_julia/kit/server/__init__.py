"""An environment's server and its database: starting, stopping, status, the server process, its log, sqlite or PostgreSQL, backups, and the runs in flight a stop must respect."""
