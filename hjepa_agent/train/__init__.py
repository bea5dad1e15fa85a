"""Training in PyTorch (never imported by the runtime)."""
