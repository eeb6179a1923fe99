"""Environments and their settings: the settings model and env files, an environment resolved (ports, URLs, homes, the code folder it runs), its home's files, and the Prefect profiles file."""
