"""Whole numbers as words in each language, as a voice should say them before a unit or when counting.

A number before a unit agrees with it where the language asks for it (German
"eine Minute", Spanish "una hora", Portuguese "duas horas"); counting uses the
form said alone ("eins", "uno", "um"). Numbers of three digits or more are
left as digits, which the voice reads in its own language: the planner never
asks for one (counts go to 10, a duration's parts stay under 60).
"""

from __future__ import annotations

from typing import Literal

# The grammatical gender of the unit a number stands before; None when counting.
Gender = Literal["m", "f"] | None


def _split(words: str) -> list[str]:
    return words.split()


_DE_ONES = _split("null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn fünfzehn "
                  "sechzehn siebzehn achtzehn neunzehn")
_DE_TENS = _split("_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig")


def german(n: int, gender: Gender) -> str:
    if n == 1 and gender is not None:
        return "eine" if gender == "f" else "ein"
    if n < 20:
        return _DE_ONES[n]
    tens, ones = divmod(n, 10)
    if not ones:
        return _DE_TENS[tens]
    return ("ein" if ones == 1 else _DE_ONES[ones]) + "und" + _DE_TENS[tens]


_FR_ONES = _split("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
                  "dix-sept dix-huit dix-neuf")
_FR_TENS = _split("_ _ vingt trente quarante cinquante soixante")


def french(n: int, gender: Gender) -> str:
    if n < 20:
        word = _FR_ONES[n]
    elif n < 70:
        tens, ones = divmod(n, 10)
        word = _FR_TENS[tens] + ("" if not ones else " et un" if ones == 1 else "-" + _FR_ONES[ones])
    elif n < 80:
        word = "soixante et onze" if n == 71 else "soixante-" + _FR_ONES[n - 60]
    else:
        word = "quatre-vingts" if n == 80 else "quatre-vingt-" + _FR_ONES[n - 80]
    # "un" is the only number word ending so: une minute, vingt et une secondes.
    return word + "e" if gender == "f" and word.endswith("un") else word


_ES_ONES = _split("cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciséis "
                  "diecisiete dieciocho diecinueve veinte veintiuno veintidós veintitrés veinticuatro veinticinco "
                  "veintiséis veintisiete veintiocho veintinueve")
_ES_TENS = _split("_ _ _ treinta cuarenta cincuenta sesenta setenta ochenta noventa")


def spanish(n: int, gender: Gender) -> str:
    if n < 30:
        word = _ES_ONES[n]
    else:
        tens, ones = divmod(n, 10)
        word = _ES_TENS[tens] + (f" y {_ES_ONES[ones]}" if ones else "")
    if gender is not None and word.endswith("uno"):
        # un minuto, veintiún segundos, treinta y una horas
        if gender == "f":
            return word[:-1] + "a"
        return "veintiún" if word == "veintiuno" else word[:-1]
    return word


_IT_ONES = _split("zero uno due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici "
                  "quindici sedici diciassette diciotto diciannove")
_IT_TENS = _split("_ _ venti trenta quaranta cinquanta sessanta settanta ottanta novanta")


def italian(n: int, gender: Gender) -> str:
    if n == 1 and gender is not None:
        return "una" if gender == "f" else "un"
    if n < 20:
        return _IT_ONES[n]
    tens, ones = divmod(n, 10)
    word = _IT_TENS[tens]
    if ones in (1, 8):  # ventuno, trentotto: the tens lose their vowel before a vowel
        word = word[:-1]
    return word + ("tré" if ones == 3 else _IT_ONES[ones] if ones else "")


_PT_ONES = _split("zero um dois três quatro cinco seis sete oito nove dez onze doze treze catorze quinze dezasseis "
                  "dezassete dezoito dezanove")
# Brazil spells three of them its own way, and says them so.
_PT_BR = {16: "dezesseis", 17: "dezessete", 19: "dezenove"}
_PT_TENS = _split("_ _ vinte trinta quarenta cinquenta sessenta setenta oitenta noventa")


def portuguese(n: int, gender: Gender, brazil: bool = False) -> str:
    def ones_word(k: int) -> str:
        return _PT_BR[k] if brazil and k in _PT_BR else _PT_ONES[k]

    if n < 20:
        word = ones_word(n)
    else:
        tens, ones = divmod(n, 10)
        word = _PT_TENS[tens] + (f" e {ones_word(ones)}" if ones else "")
    if gender == "f":
        # uma hora, duas horas, vinte e duas horas
        if word == "um" or word.endswith(" um"):
            return word + "a"
        if word == "dois" or word.endswith(" dois"):
            return word[:-4] + "duas"
    return word


_NL_ONES = _split("nul één twee drie vier vijf zes zeven acht negen tien elf twaalf dertien veertien vijftien zestien "
                  "zeventien achttien negentien")
_NL_TENS = _split("_ _ twintig dertig veertig vijftig zestig zeventig tachtig negentig")


def dutch(n: int, gender: Gender) -> str:
    if n < 20:
        return _NL_ONES[n]
    tens, ones = divmod(n, 10)
    if not ones:
        return _NL_TENS[tens]
    unit = "een" if ones == 1 else _NL_ONES[ones]
    # tweeëntwintig: a diaeresis keeps two e's apart
    return unit + ("ën" if unit.endswith("e") else "en") + _NL_TENS[tens]
