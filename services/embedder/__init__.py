"""The embedder: a gRPC service that turns texts and images into CLIP vectors through Triton."""
