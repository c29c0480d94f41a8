"""``python -m emoscribe``: the same as the ``emoscribe`` command."""

from emoscribe.cli import app

app()
