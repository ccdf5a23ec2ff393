"""Stand-in for stepfun-ai/Step-Audio2@c22bfad ``device_utils.py`` (not its code)."""


def get_device():
    return "cpu"
