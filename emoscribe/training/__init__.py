"""Offline training and evaluation (PyTorch, transformers): never imported by the daemon."""
