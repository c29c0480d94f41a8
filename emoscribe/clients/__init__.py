"""Subscribers of the daemon's ZeroMQ feed: a small library and the ``emoscribe listen`` command (no torch)."""
