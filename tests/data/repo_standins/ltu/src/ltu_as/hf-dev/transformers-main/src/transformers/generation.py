"""Stand-in for ``transformers.GenerationConfig`` of the LTU-AS fork: keeps its keyword
arguments (the real one takes ``**kwargs`` too)."""


class GenerationConfig:
    def __init__(self, **kwargs):
        self.settings = dict(kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)
