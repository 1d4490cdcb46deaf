"""Media input: files (video, audio) and live sources behind small, streaming readers."""
from edgeav.io.audio import read_audio, audio_files, AUDIO_EXTENSIONS
from edgeav.io.video import VideoFile, VIDEO_EXTENSIONS
from edgeav.io.sources import open_source, FrameSource

__all__ = ["read_audio", "audio_files", "AUDIO_EXTENSIONS", "VideoFile", "VIDEO_EXTENSIONS", "open_source", "FrameSource"]
