"""Privacy defaults: ONNX Runtime's telemetry stays off, so no device id is written under the user's home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_bundle import make_fake_bundle


def test_onnx_runtime_writes_no_telemetry_device_id(tmp_path: Path) -> None:
    bundle = make_fake_bundle(tmp_path / "bundle")
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "from emoscribe.daemon.engine.onnx_local import open_session; "
        f"open_session({str(bundle / 'audio.onnx')!r}, 'cpu', 1)"
    )
    environment = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"} | {"HOME": str(home)}
    subprocess.run([sys.executable, "-c", code], check=True, env=environment)
    assert not (home / ".cache" / "Microsoft").exists(), sorted(p.name for p in home.rglob("*"))
