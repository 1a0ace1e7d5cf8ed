"""Code shared by every vizsearch service: config, logging, gRPC plumbing, clients, generated stubs."""
