"""emoscribe: streaming speech-emotion description."""

import os

# Privacy: ONNX Runtime records telemetry events with a persistent device id under ~/.cache/Microsoft as soon
# as it is imported, unless this is set before it loads; every emoscribe entry point imports this package
# first. A deployment that wants the telemetry sets ORT_DISABLE_TELEMETRY=0 itself.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
