"""Where audio comes from: each source in a module of its own, handing PCM frames to a ``FrameSink``."""
