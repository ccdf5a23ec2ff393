"""``resemblyzer``: the GE2E speaker encoder of the ``resemblyzer`` package (256-d frames).

Spec: ``{kind: resemblyzer}`` (source default ``pkg:resemblyzer``: the package folder,
whose ``pretrained.pt`` holds the weights; a folder holding ``pretrained.pt`` or a ``.pt``
file also work). The package is installed with ``--no-deps``: its audio helpers need librosa
and webrtcvad, which this encoder does not use. It re-implements the front end (40 Slaney
mel bands, power, 25 ms window, 10 ms hop, centred frames with reflect padding, as
``resemblyzer.audio.wav_to_mel_spectrogram``; no log) and loads the checkpoint's
``model_state`` (``lstm.*``: 3 layers of 256, ``linear.*``: 256 -> 256) into a torch LSTM.

Options:

* ``frames`` - what a frame is:

  - ``chunks`` (default): the model's own output, one speaker embedding per 1.6 s partial
    utterance (160 mel frames, from a zero LSTM state; final hidden state -> linear ->
    ReLU -> L2 norm, as ``VoiceEncoder.forward``), a partial starting every ``hop_s``
    seconds (default 0.16: 6.25 Hz); ``T' = ceil(samples / hop)``; partials running past
    the end of the clip see zero frames, as upstream pads its last partial. Upstream uses
    a rate of 1.3 partials/s and drops a last partial covering < 75 %: a frame sequence
    needs a fixed hop and a frame for the tail, hence this deviation.
  - ``lstm``: 100 Hz, the per-frame LSTM output projected like the embedding (linear, ReLU,
    L2 norm), the LSTM restarted from zero every 160 frames (the length it was trained
    on); ``T' = 1 + samples // 160``. Early frames of each 1.6 s block have little context.

* ``hop_s`` (0.16; ``chunks`` only; a multiple of 0.01 s, at most 1.6);
* ``normalize_volume`` (true): upstream's preprocessing gain, raising a clip whose RMS is
  under -30 dBFS to -30 dBFS (never lowering). Upstream's silence trimming (webrtcvad) is not
  applied: frames must stay aligned with the audio.
* ``pool_frames`` (1).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from lalm_eval.encoders import EncoderError
from lalm_eval.encoders.base import SAMPLE_RATE, FrozenEncoder, resolve_encoder_source
from lalm_eval.encoders.dsp import slaney_mel_filters

CODE_VERSION = "1"
DEFAULT_SOURCE = "pkg:resemblyzer"
N_MELS = 40
N_FFT = 400
HOP = 160
PARTIAL_FRAMES = 160  # 1.6 s
HIDDEN = 256
LAYERS = 3
TARGET_DBFS = -30.0


class ResemblyzerEncoder(FrozenEncoder):
    """GE2E speaker-encoder frames (module docstring)."""

    option_keys = frozenset({"frames", "hop_s", "normalize_volume"})

    def _load(self) -> None:
        self.frames = str(self.option("frames", "chunks"))
        if self.frames not in ("chunks", "lstm"):
            raise EncoderError(f"{self.label}.options.frames must be 'chunks' or 'lstm'")
        hop_s = float(self.option("hop_s", 0.16))
        hop_frames = hop_s * 100
        if (abs(hop_frames - round(hop_frames)) > 1e-6 or not 1 <= round(hop_frames)
                <= PARTIAL_FRAMES):
            raise EncoderError(f"{self.label}.options.hop_s must be a multiple of 0.01 s in "
                               f"[0.01, 1.6], got {hop_s}")
        if self.frames == "lstm" and "hop_s" in self.spec.options:
            raise EncoderError(f"{self.label}.options.hop_s applies to frames: chunks only")
        self.hop_frames = int(round(hop_frames))
        self.normalize_volume = bool(self.option("normalize_volume", True))

        weights = self._weights_file()
        try:
            checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
            state = checkpoint["model_state"]
        except Exception as exc:  # noqa: BLE001 - unreadable checkpoint
            raise EncoderError(f"{self.label}: cannot read the GE2E weights {weights}: "
                               f"{type(exc).__name__}: {exc}") from exc
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)
        wanted = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
        try:
            missing = nn.Module.load_state_dict(self, wanted, strict=False).missing_keys
        except RuntimeError as exc:
            raise EncoderError(f"{self.label}: {weights} does not fit the GE2E encoder "
                               f"(3-layer LSTM 40 -> 256, linear 256 -> 256): {exc}") from exc
        missing = [k for k in missing if k.startswith(("lstm.", "linear."))]
        if missing:
            raise EncoderError(f"{self.label}: {weights} lacks weights {missing}")
        self.register_buffer("mel_filters", torch.tensor(
            slaney_mel_filters(SAMPLE_RATE, N_FFT, N_MELS).T, dtype=torch.float32),
            persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True),
                             persistent=False)
        self.weights_path = weights
        self.output_dim = HIDDEN
        self.frame_rate = 100.0 / self.hop_frames if self.frames == "chunks" else 100.0

    def _weights_file(self) -> Path:
        resolved = resolve_encoder_source(self.spec, default=DEFAULT_SOURCE)
        if not isinstance(resolved, Path):
            raise EncoderError(f"{self.label}: source must be a local folder, a .pt file or a "
                               f"pkg: source, got hub id {resolved!r}")
        path = resolved / "pretrained.pt" if resolved.is_dir() else resolved
        if not path.is_file():
            raise EncoderError(f"{self.label}: no GE2E weights at {path} (install resemblyzer: "
                               "pip install --no-deps resemblyzer==0.1.4)")
        return path

    # -- front end -----------------------------------------------------------------------
    def _gain(self, samples: Tensor) -> Tensor:
        if not self.normalize_volume:
            return samples
        rms = float(torch.sqrt(torch.mean(samples.double() ** 2)))
        if rms <= 1e-10:
            return samples
        change_db = TARGET_DBFS - 20.0 * math.log10(rms)
        return samples * float(10.0 ** (change_db / 20.0)) if change_db > 0 else samples

    def mel(self, samples: Tensor) -> Tensor:
        """``[n]`` samples -> ``[1 + n // 160, 40]`` mel power frames."""
        samples = self._gain(samples)
        pad_mode = "reflect" if samples.shape[0] > N_FFT // 2 else "constant"
        spectrum = torch.stft(samples, N_FFT, HOP, window=self.window, center=True,
                              pad_mode=pad_mode, return_complex=True)
        power = spectrum.real ** 2 + spectrum.imag ** 2  # [201, frames]
        return power.T @ self.mel_filters

    def _project(self, hidden: Tensor) -> Tensor:
        out = torch.relu(self.linear(hidden))
        return out / out.norm(dim=-1, keepdim=True).clamp(min=1e-12)

    # -- frames --------------------------------------------------------------------------
    def _encode(self, audio: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        mels = [self.mel(audio[i, :n]) for i, n in enumerate(lengths.tolist())]
        if self.frames == "chunks":
            counts = [max(1, math.ceil(n / (self.hop_frames * HOP))) for n in lengths.tolist()]
            blocks, owners = [], []
            for mel, count in zip(mels, counts, strict=True):
                needed = (count - 1) * self.hop_frames + PARTIAL_FRAMES
                padded = torch.nn.functional.pad(mel, (0, 0, 0, max(0, needed - mel.shape[0])))
                blocks.append(padded[:needed].unfold(0, PARTIAL_FRAMES, self.hop_frames)
                              .transpose(1, 2))  # [count, 160, 40]
                owners.append(count)
            _, (hidden, _) = self.lstm(torch.cat(blocks))
            embeds = self._project(hidden[-1])  # [sum(counts), 256]
            per_item = torch.split(embeds, owners)
            frame_lengths = torch.tensor(counts, dtype=torch.long)
        else:
            per_item = []
            for mel in mels:
                blocks = math.ceil(mel.shape[0] / PARTIAL_FRAMES)
                padded = torch.nn.functional.pad(
                    mel, (0, 0, 0, blocks * PARTIAL_FRAMES - mel.shape[0]))
                outputs, _ = self.lstm(padded.view(blocks, PARTIAL_FRAMES, N_MELS))
                per_item.append(self._project(outputs.reshape(-1, HIDDEN))[: mel.shape[0]])
            frame_lengths = torch.tensor([m.shape[0] for m in mels], dtype=torch.long)
        longest = int(frame_lengths.max())
        feats = torch.zeros(len(per_item), longest, HIDDEN)
        for index, item in enumerate(per_item):
            feats[index, : item.shape[0]] = item
        return [feats], frame_lengths
