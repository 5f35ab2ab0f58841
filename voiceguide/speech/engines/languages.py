"""Languages by their names in English, so that `--voice French` finds a French voice.

Engines list a voice's languages as codes (espeak-ng's `fr-fr`, Piper's
`fr_FR`, macOS's `fr_FR`) and name voices as they like ("French (France)",
"Thomas"): a language's name is looked up here, and the voices that speak it
are ordered so that the main country's comes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from voiceguide.errors import InputError

# A language's name in English -> its codes (ISO 639), most used first.
CODES = {
    "afrikaans": ("af",), "arabic": ("ar",), "basque": ("eu",), "bengali": ("bn",), "bulgarian": ("bg",),
    "cantonese": ("yue",), "catalan": ("ca",), "chinese": ("zh", "cmn", "yue"), "croatian": ("hr",),
    "czech": ("cs",), "danish": ("da",), "dutch": ("nl",), "english": ("en",), "estonian": ("et",),
    "finnish": ("fi",), "french": ("fr",), "galician": ("gl",), "german": ("de",), "greek": ("el",),
    "hebrew": ("he",), "hindi": ("hi",), "hungarian": ("hu",), "icelandic": ("is",), "indonesian": ("id",),
    "irish": ("ga",), "italian": ("it",), "japanese": ("ja",), "korean": ("ko",), "latvian": ("lv",),
    "lithuanian": ("lt",), "malay": ("ms",), "mandarin": ("cmn", "zh"), "norwegian": ("nb", "no"),
    "persian": ("fa",), "polish": ("pl",), "portuguese": ("pt",), "romanian": ("ro",), "russian": ("ru",),
    "serbian": ("sr",), "slovak": ("sk",), "slovenian": ("sl",), "spanish": ("es",), "swahili": ("sw",),
    "swedish": ("sv",), "tamil": ("ta",), "telugu": ("te",), "thai": ("th",), "turkish": ("tr",),
    "ukrainian": ("uk",), "urdu": ("ur",), "vietnamese": ("vi",), "welsh": ("cy",),
}
# A language's main countries where they are not named like it (French: fr-fr, German: de-de go without):
# the United States before Great Britain for English, as more speakers learn it.
REGIONS = {
    "en": ("us", "gb"), "pt": ("pt", "br"), "zh": ("cn",), "cmn": ("cn",), "yue": ("hk",), "sv": ("se",),
    "da": ("dk",), "el": ("gr",), "ja": ("jp",), "ko": ("kr",), "cs": ("cz",), "uk": ("ua",), "hi": ("in",),
    "he": ("il",), "fa": ("ir",), "nb": ("no",), "vi": ("vn",), "sl": ("si",), "et": ("ee",), "ga": ("ie",),
    "cy": ("gb",), "sr": ("rs",), "ms": ("my",), "ar": ("eg", "sa"), "ur": ("pk",), "sw": ("ke",),
    "ca": ("es",), "eu": ("es",), "gl": ("es",), "af": ("za",), "bn": ("bd",), "ta": ("in",), "te": ("in",),
}
# Ranks beyond these: a variety of no listed region, after every listed one.
OTHER = 100


def speaks(name: str, voice_name: str, languages: Sequence[str]) -> int | None:
    """How much a voice is the one meant by a language's ``name`` (0 best), or None if it does not speak it.

    A voice speaks the language when one of its codes is the language's, or
    its own name is the language's, as in espeak-ng's "French (Belgium)".
    """
    wanted = name.casefold()
    codes = CODES.get(wanted, ())
    ranks = [_rank(code, codes) for code in languages]
    found = [rank for rank in ranks if rank is not None]
    if found:
        return min(found)
    if voice_name.split(" (")[0].casefold() == wanted:
        return OTHER
    return None


def _rank(code: str, codes: tuple[str, ...]) -> int | None:
    """The main country's variety first (en-us), then one of no country (de), then the other main ones."""
    primary, _, region = code.casefold().replace("_", "-").partition("-")
    if primary not in codes:
        return None
    region = region.split("-")[0]
    main = REGIONS.get(primary, (primary,))
    order = codes.index(primary) * (OTHER + 1)  # Chinese: Mandarin before Cantonese
    if not region:
        return order + 1
    if region in main:
        index = main.index(region)
        return order + (0 if index == 0 else index + 1)
    return order + OTHER


def code_of(text: str) -> str | None:
    """The language code ``text`` means, a code (de, pt-BR) or a name in English (German); None if unknown."""
    folded = text.strip().casefold().replace("_", "-")
    if folded in CODES:
        return CODES[folded][0]
    primary = folded.partition("-")[0]
    return folded if any(primary in codes for codes in CODES.values()) else None


def name_of(code: str) -> str:
    """The English name of the language of ``code``, for messages: German."""
    primary = code.casefold().partition("-")[0]
    return next((name.capitalize() for name, codes in CODES.items() if codes[0] == primary), code)


def speaks_code(code: str, languages: Sequence[str]) -> int | None:
    """How much a voice with these ``languages`` is the one for the language ``code`` (0 best), or None if it does
    not speak it. A code with a country (pt-br) puts that country's voice first."""
    wanted, _, region = code.casefold().replace("_", "-").partition("-")
    ranks = []
    for language in languages:
        rank = _rank(language, (wanted,))
        if rank is None:
            continue
        its_region = language.casefold().replace("_", "-").partition("-")[2].split("-")[0]
        ranks.append((0 if its_region == region else 1 + rank) if region else rank)
    return min(ranks, default=None)


class Voiced(Protocol):
    """Anything with a voice's languages (VoiceInfo lives with the engines, which import this module)."""

    @property
    def languages(self) -> tuple[str, ...]: ...


V = TypeVar("V", bound=Voiced)


def speaking(voices: Sequence[V], language: str) -> list[V]:
    """The ``voices`` that speak ``language`` (a code, de or pt-br, or a name in English), the best first; raise
    InputError when the language is not known."""
    code = code_of(language)
    if code is None:
        raise InputError(f"unknown language '{language}': give a code such as de, fr or pt-br, or a name such as German")
    ranked = [(rank, index, voice) for index, voice in enumerate(voices)
              if (rank := speaks_code(code, voice.languages)) is not None]
    return [voice for _, _, voice in sorted(ranked, key=lambda found: found[:2])]
