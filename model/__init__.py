"""The model's home, apart from the serving code (services/): CLIP's preprocessing and
the runtime the Triton models share (deploy/triton-models imports it), checkpoints
(building, fetching), the demo model's training data and trainer, and the
retrieval-quality harness. Serving code may import from here; nothing here imports a
service."""
