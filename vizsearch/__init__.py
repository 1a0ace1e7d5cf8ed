"""vizsearch for its users: the `vizsearch` command line and a Python client of the HTTP API."""

from vizsearch.client import ApiError, Client

__all__ = ["ApiError", "Client"]
