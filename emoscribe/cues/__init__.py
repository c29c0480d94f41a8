"""Acoustic cues, binning into tokens and acoustic prompt text (numpy and Praat only: no torch)."""

from emoscribe.cues.contours import CueSettings
from emoscribe.cues.model import CUE_NAMES, Cues
from emoscribe.cues.signal import SAMPLE_RATE, AudioInputError
from emoscribe.cues.tracker import CueTracker, extract_cues

__all__ = ["CUE_NAMES", "SAMPLE_RATE", "AudioInputError", "CueSettings", "CueTracker", "Cues", "extract_cues"]
