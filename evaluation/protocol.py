"""Named evaluation protocols, built from a manifest the user made from data they have.

``audiocaps``: the AudioLDM paper's AudioCaps test protocol: the manifest's ``test`` clips (964 in
the paper's copy of the set), one caption each (the first), 10 s of audio generated per caption,
compared at 16 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluation.clip_sets import Clip, clips_from_manifest


@dataclass(frozen=True)
class Protocol:
    name: str
    split: str | None  # manifest entries used (None: all)
    seconds: float  # generated length
    expected_clips: int | None = None


PROTOCOLS = {"audiocaps": Protocol("audiocaps", split="test", seconds=10.0, expected_clips=964)}


def protocol_clips(manifest: str, name: str | None) -> tuple[list[Clip], float | None, list[str]]:
    """(reference clips with their captions, generated length or None, notes for the report)."""
    if name is None:
        clips = clips_from_manifest(manifest)
        return clips, None, []
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r} (one of {', '.join(PROTOCOLS)})")
    protocol = PROTOCOLS[name]
    clips = clips_from_manifest(manifest, protocol.split)
    if not clips:
        raise ValueError(f"{manifest}: no '{protocol.split}' clips for the {name} protocol")
    notes = []
    if protocol.expected_clips and len(clips) != protocol.expected_clips:
        notes.append(
            f"{name}: {len(clips)} test clips, not the paper's {protocol.expected_clips}: "
            f"numbers are close to, not exactly, the published protocol"
        )
    return clips, protocol.seconds, notes
