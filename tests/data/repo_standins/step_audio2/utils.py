"""Stand-in for stepfun-ai/Step-Audio2@c22bfad ``utils.py`` (not its code): ``load_audio``
(16 kHz mono samples of a file) as ``stepaudio2.py`` imports it."""

import soundfile as sf


def load_audio(file_path, target_rate=16000):
    samples, rate = sf.read(file_path, dtype="float32")
    assert rate == target_rate, f"stand-in: {file_path} is at {rate} Hz"
    return samples
