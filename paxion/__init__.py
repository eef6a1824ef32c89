"""paxion: patch action knowledge into frozen video-language models from a feature cache."""

__version__ = "0.1.0"
