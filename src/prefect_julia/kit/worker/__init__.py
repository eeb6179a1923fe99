"""An environment's worker: starting, stopping, status, the worker process, and its locked work pool."""
