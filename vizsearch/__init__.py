"""vizsearch for its users: the `vizsearch` command line (and, later, a Python client)."""
