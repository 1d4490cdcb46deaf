"""Media input: files (video, audio) and live sources behind small, streaming readers."""

from edgeav.io.audio import AUDIO_EXTENSIONS, audio_files, read_audio
from edgeav.io.sources import FrameSource, open_source
from edgeav.io.video import VIDEO_EXTENSIONS, VideoFile

__all__ = [
    "read_audio",
    "audio_files",
    "AUDIO_EXTENSIONS",
    "VideoFile",
    "VIDEO_EXTENSIONS",
    "open_source",
    "FrameSource",
]
