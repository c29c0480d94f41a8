"""emoscribe: streaming speech-emotion description."""
