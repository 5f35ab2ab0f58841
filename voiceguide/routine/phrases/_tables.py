"""The built-in words of each language: cue phrases, units, chapter titles, and how durations are joined.

Every phrase is said to a person with their eyes closed, mid-stretch: short,
the way a coach of that language says it, and correct whatever fills it in.
`remaining` reads right for one minute as for thirty seconds (no verb that
agrees with the number), `switch` takes a side as written in that language
(links, gauche, izquierda), and each names the side after a colon, so no
article or ending has to agree with a name the routine chooses.
"""

from __future__ import annotations

ENGLISH_PHRASES = {
    "halfway": "Halfway.",
    "remaining": "{time} left.",
    "switch": "Switch to the {side} side.",
    "next": "Next up: {title}.",
    "lead-in": "Get ready.",
    "last-round": "Last round.",
    "chapter": "{title} – round {round} of {rounds}",  # a round's chapter title, with `chapters: rounds`
}

PHRASES = {
    "en": ENGLISH_PHRASES,
    "de": {
        "halfway": "Halbzeit.",
        "remaining": "Noch {time}.",
        "switch": "Seitenwechsel: {side}.",
        "next": "Als Nächstes: {title}.",
        "lead-in": "Mach dich bereit.",
        "last-round": "Letzte Runde.",
        "chapter": "{title} – Runde {round} von {rounds}",
    },
    "fr": {
        "halfway": "Mi-temps.",
        "remaining": "Encore {time}.",
        "switch": "Changez de côté : {side}.",
        "next": "Ensuite : {title}.",
        "lead-in": "Préparez-vous.",
        "last-round": "Dernier tour.",
        "chapter": "{title} – tour {round} sur {rounds}",
    },
    "es": {
        "halfway": "Mitad del tiempo.",
        "remaining": "{time} para terminar.",
        "switch": "Cambia de lado: {side}.",
        "next": "A continuación: {title}.",
        "lead-in": "Prepárate.",
        "last-round": "Última ronda.",
        "chapter": "{title} – ronda {round} de {rounds}",
    },
    "it": {
        "halfway": "A metà.",
        "remaining": "Ancora {time}.",
        "switch": "Cambia lato: {side}.",
        "next": "A seguire: {title}.",
        "lead-in": "Preparati.",
        "last-round": "Ultimo giro.",
        "chapter": "{title} – giro {round} di {rounds}",
    },
    "pt": {
        "halfway": "Metade do tempo.",
        "remaining": "{time} para terminar.",
        "switch": "Mude de lado: {side}.",
        "next": "A seguir: {title}.",
        "lead-in": "Prepare-se.",
        "last-round": "Última volta.",
        "chapter": "{title} – volta {round} de {rounds}",
    },
    "nl": {
        "halfway": "Halverwege.",
        "remaining": "Nog {time}.",
        "switch": "Wissel van kant: {side}.",
        "next": "Hierna: {title}.",
        "lead-in": "Maak je klaar.",
        "last-round": "Laatste ronde.",
        "chapter": "{title} – ronde {round} van {rounds}",
    },
}

# Each unit in the singular (after one) and the plural, and its gender where a number agrees with it.
UNITS = {
    "en": {"second": "second", "seconds": "seconds", "minute": "minute", "minutes": "minutes",
           "hour": "hour", "hours": "hours"},
    "de": {"second": "Sekunde", "seconds": "Sekunden", "minute": "Minute", "minutes": "Minuten",
           "hour": "Stunde", "hours": "Stunden"},
    "fr": {"second": "seconde", "seconds": "secondes", "minute": "minute", "minutes": "minutes",
           "hour": "heure", "hours": "heures"},
    "es": {"second": "segundo", "seconds": "segundos", "minute": "minuto", "minutes": "minutos",
           "hour": "hora", "hours": "horas"},
    "it": {"second": "secondo", "seconds": "secondi", "minute": "minuto", "minutes": "minuti",
           "hour": "ora", "hours": "ore"},
    "pt": {"second": "segundo", "seconds": "segundos", "minute": "minuto", "minutes": "minutos",
           "hour": "hora", "hours": "horas"},
    # Dutch counts hours in the singular: twee uur.
    "nl": {"second": "seconde", "seconds": "seconden", "minute": "minuut", "minutes": "minuten",
           "hour": "uur", "hours": "uur"},
}
GENDERS: dict[str, dict[str, str]] = {
    "de": {"second": "f", "minute": "f", "hour": "f"},
    "fr": {"second": "f", "minute": "f", "hour": "f"},
    "es": {"second": "m", "minute": "m", "hour": "f"},
    "it": {"second": "m", "minute": "m", "hour": "f"},
    "pt": {"second": "m", "minute": "m", "hour": "f"},
}
# What comes before the last part of a duration: "eine Minute und dreißig Sekunden". English says none.
AND = {"en": " ", "de": " und ", "fr": " et ", "es": " y ", "it": " e ", "pt": " e ", "nl": " en "}

# The chapters voiceguide names itself: the intro, the lead-in and the outro.
TITLES = {
    "en": {"intro": "Introduction", "lead-in": "Get ready", "outro": "Closing"},
    "de": {"intro": "Einleitung", "lead-in": "Vorbereitung", "outro": "Abschluss"},
    "fr": {"intro": "Introduction", "lead-in": "Préparation", "outro": "Conclusion"},
    "es": {"intro": "Introducción", "lead-in": "Preparación", "outro": "Cierre"},
    "it": {"intro": "Introduzione", "lead-in": "Preparazione", "outro": "Chiusura"},
    "pt": {"intro": "Introdução", "lead-in": "Preparação", "outro": "Encerramento"},
    "nl": {"intro": "Inleiding", "lead-in": "Voorbereiding", "outro": "Afsluiting"},
}

# Each language's name in English and in itself, for messages and for what people write instead of the code.
NAMES = {
    "en": ("English", "english"), "de": ("German", "deutsch"), "fr": ("French", "français"),
    "es": ("Spanish", "español"), "it": ("Italian", "italiano"), "pt": ("Portuguese", "português"),
    "nl": ("Dutch", "nederlands"),
}
# The same languages as ID3 tags name them (ISO 639-2, its terminology codes, which follow the two-letter ones),
# for the lyrics and the comment.
ID3_CODES = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por", "nl": "nld"}
