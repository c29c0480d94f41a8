"""The sound devices PortAudio sees (through sounddevice): listing the input devices and finding the one a
``mic:`` source names. PortAudio enumerates devices once, when sounddevice is first imported, so a device
plugged in (or a sound server started) later appears only to a new process."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

INSTALL_HINT = "pip install 'emoscribe[mic]' and apt-get install libportaudio2"


@dataclass(frozen=True, slots=True)
class InputDevice:
    """An input device as PortAudio describes it: ``index`` is what ``mic:INDEX`` names, ``rate`` its
    default sample rate (the source records at it and resamples to 16 kHz)."""

    index: int
    name: str
    host_api: str
    channels: int
    rate: int
    default: bool

    def describe(self) -> str:
        return f"{self.index}: {self.name!r} ({self.host_api}, {self.rate} Hz)"


def sounddevice_module() -> ModuleType:
    """sounddevice, or a ``RuntimeError`` saying what to install (the package or the PortAudio library)."""
    try:
        import sounddevice
    except (ImportError, OSError) as error:
        raise RuntimeError(f"mic: needs sounddevice and the PortAudio library ({error}); {INSTALL_HINT}") from None
    return sounddevice


def input_devices() -> list[InputDevice]:
    """Every device with at least one input channel, in PortAudio's order."""
    sd = sounddevice_module()
    try:
        default = int(sd.query_devices(kind="input")["index"])
    except sd.PortAudioError:  # no default input device
        default = -1
    host_apis = [api["name"] for api in sd.query_hostapis()]
    return [
        InputDevice(
            index=index,
            name=device["name"],
            host_api=host_apis[device["hostapi"]],
            channels=int(device["max_input_channels"]),
            rate=int(device["default_samplerate"]),
            default=index == default,
        )
        for index, device in enumerate(sd.query_devices())
        if device["max_input_channels"] > 0
    ]


def find_device(spec: str | None) -> InputDevice:
    """The input device ``spec`` names: empty or ``None`` for the default input, a number for that index, else
    the device with that exact name or, failing one, the first whose name contains it (case-insensitive).
    A ``ValueError`` that lists the input devices there are when none fits."""
    devices = input_devices()
    if not spec:
        chosen = next((device for device in devices if device.default), None)
        wanted = "no default input audio device"
    elif spec.isdigit():
        chosen = next((device for device in devices if device.index == int(spec)), None)
        wanted = f"no input audio device with index {spec}"
    else:
        chosen = next((d for d in devices if d.name == spec), None) or next(
            (d for d in devices if spec.lower() in d.name.lower()), None
        )
        wanted = f"no input audio device matches {spec!r}"
    if chosen is None:
        there = "; ".join(device.describe() for device in devices) or "none (no sound card or sound server seen)"
        raise ValueError(f"mic: {wanted}; input devices: {there}")
    return chosen


def device_table(devices: list[InputDevice]) -> list[str]:
    """Lines for ``emoscribe run --list-devices``; ``*`` marks the default input."""
    width = max((len(device.name) for device in devices), default=4)
    rows = [f"  {'index':>5}  {'name':<{width}}  {'host API':<10}  {'inputs':>6}  rate"]
    for device in devices:
        mark = "*" if device.default else " "
        rows.append(
            f"{mark} {device.index:>5}  {device.name:<{width}}  {device.host_api:<10}  {device.channels:>6}"
            f"  {device.rate} Hz"
        )
    return rows
