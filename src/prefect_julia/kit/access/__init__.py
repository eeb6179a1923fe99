"""Who may talk to an environment's server: its identity (is it this checkout's?), auth, CSRF and private files, and the Prefect clients the kit uses."""
