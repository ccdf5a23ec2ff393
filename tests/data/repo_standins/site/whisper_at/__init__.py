"""Stand-in for whisper-at 0.5 (``whisper_at``): ``load_model(name, device=...)`` and
``model.transcribe(path) -> {"text": ...}``; the text ends in the hallucination LTU-AS's demo
removes."""


class _Model:
    def __init__(self, name, device):
        self.name, self.device = name, device

    def transcribe(self, audio, **decode_options):
        return {"text": " good morning Thank you for watching."}


def load_model(name, device=None, download_root=None, in_memory=False):
    return _Model(name, device)
