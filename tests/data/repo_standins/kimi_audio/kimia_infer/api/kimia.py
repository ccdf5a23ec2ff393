"""Stand-in for MoonshotAI/Kimi-Audio@faedaac ``kimia_infer/api/kimia.py`` (not its code).

Mirrors:

* the import-time side effect of ``kimia.py:14``: a loguru file sink ``kimia_audio.log`` added in
  the working directory (here: the file is created there);
* ``KimiAudio.__init__(self, model_path, load_detokenizer=True)``: a path that does not exist is
  taken as a hub id and downloaded without a revision (``snapshot_download(model_path)``); the
  stand-in refuses that, as a pinned run must never do it;
* ``KimiAudio.generate(chats, output_type="text", audio_temperature=0.0, audio_top_k=5,
  text_temperature=0.0, text_top_k=5, audio_repetition_penalty=1.0,
  audio_repetition_window_size=64, text_repetition_penalty=1.0,
  text_repetition_window_size=16, max_new_tokens=-1)``: no ``**kwargs`` (no top_p, no beams),
  ``assert output_type in ["text", "both"]``, returns ``(wav, text)``.
"""

import os

with open("kimia_audio.log", "a", encoding="utf-8") as _sink:  # kimia.py:14
    _sink.write("stand-in kimia.py imported\n")


class KimiAudio:
    instances: list = []

    def __init__(self, model_path: str, load_detokenizer: bool = True):
        if not os.path.exists(model_path):
            raise RuntimeError(f"stand-in: KimiAudio would snapshot_download({model_path!r}) "
                               "without a revision")
        self.model_path = model_path
        self.load_detokenizer = load_detokenizer
        self.calls: list = []
        KimiAudio.instances.append(self)

    def generate(
        self,
        chats: list,
        output_type="text",
        audio_temperature=0.0,
        audio_top_k=5,
        text_temperature=0.0,
        text_top_k=5,
        audio_repetition_penalty=1.0,
        audio_repetition_window_size=64,
        text_repetition_penalty=1.0,
        text_repetition_window_size=16,
        max_new_tokens=-1,
    ):
        assert output_type in ["text", "both"]
        audio = []
        for message in chats:
            assert message["role"] in ("user", "assistant")
            assert message["message_type"] in ("text", "audio")
            if message["message_type"] == "audio":
                assert os.path.exists(message["content"]), message["content"]
                audio.append(message["content"])
        self.calls.append({"chats": chats, "output_type": output_type,
                           "text_temperature": text_temperature, "text_top_k": text_top_k,
                           "max_new_tokens": max_new_tokens})
        return None, f"heard {len(audio)} clip(s)"
