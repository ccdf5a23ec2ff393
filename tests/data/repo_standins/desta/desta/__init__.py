"""Stand-in for kehanlu/DeSTA2.5-Audio ``desta/__init__.py``: exports ``DeSTA25AudioModel``."""

from .models.modeling_desta25 import DeSTA25AudioModel

__all__ = ["DeSTA25AudioModel"]
