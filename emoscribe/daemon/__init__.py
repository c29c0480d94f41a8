"""The streaming daemon: sources, segmenter, rolling cues, batching engine, describe, publisher, metrics.

Nothing here imports torch or transformers: a node installs ``emoscribe`` without the training stack.
"""
