"""prefect-julia."""
