"""Stand-in for Ming-er/MGA-CLAP@887b624 ``tools/losses.py`` (not its code): imports
``sentence_transformers.util`` at module level; ``AudioTextContrastiveLoss_HN``."""

from sentence_transformers import util  # noqa: F401
from torch import nn


class AudioTextContrastiveLoss_HN(nn.Module):
    pass
