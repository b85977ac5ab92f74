"""Audio front-end: file I/O and AudioLDM's log-mel (plain torch, no Lightning)."""

from audioldm.audio.io import AudioInfo, AudioReadError, audio_info, load_audio, save_audio
from audioldm.audio.mel import MelConfig, MelFrontEnd, normalize_waveform

__all__ = [
    "AudioInfo",
    "AudioReadError",
    "audio_info",
    "load_audio",
    "save_audio",
    "MelConfig",
    "MelFrontEnd",
    "normalize_waveform",
]
