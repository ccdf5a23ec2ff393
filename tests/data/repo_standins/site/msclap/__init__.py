"""Stand-in for msclap 1.3.4 ``msclap/__init__.py``: ``CLAP`` is ``CLAPWrapper``."""

from msclap.CLAPWrapper import CLAPWrapper as CLAP

__all__ = ["CLAP"]
