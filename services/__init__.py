"""vizsearch services: embedder, indexer, query, gateway, and the code they share."""
