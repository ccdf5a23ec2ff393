"""Validation of a model entry's ``decoding`` mapping, shared by every adapter family.

:func:`parse_decoding` holds what the transformers adapters (:mod:`lalm_eval.models.hf_common`,
:class:`~lalm_eval.models.hf_common.GenerationSettings`) and the repository-code and serving
adapters (:class:`Decoding`, built by :func:`decoding_from`) have in common: the known keys,
``max_tokens`` as an alias of ``max_new_tokens``, the conversion of every value and the range
checks. Each caller keeps its own default ``max_new_tokens``, its own settings class and its own
sampling convention (how ``do_sample`` and ``temperature`` combine).

:class:`Decoding` is the settings class of the adapters in :mod:`lalm_eval.models.external_common`
(Kimi-Audio, Step-Audio 2, SALMONN, LTU-AS, DeSTA2.5) and of the serving backends
(:mod:`lalm_eval.models.vllm_backend`, :mod:`lalm_eval.models.openai_http`).

Pure Python: importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from lalm_eval.models.base import ModelError

#: every key a ``decoding`` mapping may hold
DECODING_KEYS = frozenset({"max_new_tokens", "max_tokens", "do_sample", "temperature", "top_p",
                           "top_k", "num_beams", "repetition_penalty", "seed"})


class RangeChecked(Protocol):
    """What :func:`parse_decoding` range-checks on the settings object it builds."""

    @property
    def max_new_tokens(self) -> int: ...

    @property
    def temperature(self) -> float | None: ...

    @property
    def num_beams(self) -> int: ...

    @property
    def top_p(self) -> float | None: ...


T = TypeVar("T", bound=RangeChecked)

#: ``(do_sample, temperature)`` as configured (None when absent) → the sampling fields of the
#: settings class (e.g. ``{"do_sample": ..., "temperature": ...}``); may raise TypeError or
#: ValueError for a value that does not convert
SamplingRule = Callable[[Any, Any], Mapping[str, Any]]


def _optional(value: Any, convert: Callable[[Any], Any]) -> Any:
    return None if value is None else convert(value)


def parse_decoding(config: Mapping[str, Any] | None, build: Callable[..., T],
                   sampling: SamplingRule, *, default_max_new_tokens: int,
                   temperature_checked_first: bool = False) -> T:
    """Validate an entry's ``decoding`` mapping into ``build(**fields)``.

    ``build`` receives ``max_new_tokens``, the fields ``sampling`` returns, ``top_p``,
    ``top_k``, ``num_beams``, ``repetition_penalty`` and ``seed``; the :class:`RangeChecked`
    attributes of what it returns are range-checked. ``temperature_checked_first`` puts the
    temperature check before the ``num_beams`` one (it decides which message a mapping with
    both values out of range gets). Every problem is a :class:`ModelError` starting with
    ``decoding:``.
    """
    config = dict(config or {})
    unknown = set(config) - DECODING_KEYS
    if unknown:
        raise ModelError(f"decoding: unknown key(s) {sorted(unknown)} "
                         f"(known: {sorted(DECODING_KEYS)})")
    if "max_new_tokens" in config and "max_tokens" in config:
        raise ModelError("decoding: give max_new_tokens or max_tokens, not both")
    try:
        max_new = int(config.get("max_new_tokens", config.get("max_tokens",
                                                              default_max_new_tokens)))
        sampling_fields = sampling(config.get("do_sample"), config.get("temperature"))
        settings = build(
            max_new_tokens=max_new,
            **sampling_fields,
            top_p=_optional(config.get("top_p"), float),
            top_k=_optional(config.get("top_k"), int),
            num_beams=int(config.get("num_beams", 1)),
            repetition_penalty=_optional(config.get("repetition_penalty"), float),
            seed=_optional(config.get("seed"), int),
        )
    except (TypeError, ValueError) as exc:
        raise ModelError(f"decoding: invalid value ({exc})") from exc
    if settings.max_new_tokens <= 0:
        raise ModelError("decoding: max_new_tokens must be positive")
    negative_temperature = settings.temperature is not None and settings.temperature < 0
    if temperature_checked_first and negative_temperature:
        raise ModelError("decoding: temperature must be >= 0")
    if settings.num_beams < 1:
        raise ModelError("decoding: num_beams must be >= 1")
    if negative_temperature:
        raise ModelError("decoding: temperature must be >= 0")
    if settings.top_p is not None and not 0 < settings.top_p <= 1:
        raise ModelError("decoding: top_p must be in (0, 1]")
    return settings


def given_fields(settings: Any, *names: str) -> dict[str, Any]:
    """The named attributes of ``settings`` that are set (not None), in the order named."""
    values = {name: getattr(settings, name) for name in names}
    return {name: value for name, value in values.items() if value is not None}


# --------------------------------------------------------------------------------------------
# Decoding: the settings of the repository-code adapters and the serving backends
# --------------------------------------------------------------------------------------------

#: default ``max_new_tokens`` of :class:`Decoding` (the transformers adapters keep their own)
DEFAULT_MAX_NEW_TOKENS = 512


@dataclass(frozen=True)
class Decoding:
    """Decoding settings in one vocabulary; ``temperature == 0`` means greedy."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    num_beams: int = 1
    repetition_penalty: float | None = None
    seed: int | None = None

    @property
    def sampling(self) -> bool:
        """True when tokens are sampled (temperature above zero)."""
        return self.temperature > 0


def _temperature_sampling(do_sample: Any, temperature: Any) -> dict[str, Any]:
    if do_sample is False:
        temperature = 0.0
    elif temperature is None:
        temperature = 1.0 if do_sample else 0.0
    return {"temperature": float(temperature)}


def decoding_from(config: Mapping[str, Any] | None,
                  default_max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> Decoding:
    """Validate an entry's ``decoding`` mapping into :class:`Decoding` (greedy by default;
    keys, conversions and range checks are those of :func:`parse_decoding`).

    ``max_tokens`` is accepted as an alias of ``max_new_tokens``; ``do_sample: false`` forces
    greedy, ``do_sample: true`` without a temperature samples at 1.0.
    """
    return parse_decoding(config, Decoding, _temperature_sampling,
                          default_max_new_tokens=default_max_new_tokens,
                          temperature_checked_first=True)


def hf_generate_kwargs(decoding: Decoding) -> dict[str, Any]:
    """Keyword arguments for a transformers ``generate``/``GenerationConfig``."""
    kwargs: dict[str, Any] = {"max_new_tokens": decoding.max_new_tokens,
                              "do_sample": decoding.sampling, "num_beams": decoding.num_beams}
    if decoding.sampling:
        kwargs["temperature"] = decoding.temperature
        kwargs.update(given_fields(decoding, "top_p", "top_k"))
    kwargs.update(given_fields(decoding, "repetition_penalty"))
    return kwargs
