"""A cheap language guess from the text, and ISO 639-1 codes from declarations."""

from __future__ import annotations

import re

# --- language -----------------------------------------------------------------------------------

_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and of to is that for it was on with as by at from this be are have has "
        "had not but said his her they which an were will would been their who its",
        "fr": "le les des et est une du dans que qui pour pas sur au aux avec il elle sont ont "
        "été cette par mais plus ne ces leur nous vous selon",
        "es": "el los las del y que en un una por con para es se su al lo como más pero sus "
        "fue ha este esta según entre",
        "pt": "o os do da dos das e que em um uma para com não por no na ao mais foi é seu "
        "sua pelo pela ele ela também",
        "de": "der die das und ist nicht ein eine zu den von mit sich auf für im dem des auch "
        "es werden wurde hat sie nach bei aus",
        "it": "il gli di e che è un una per non con del della sono da al nel alla si ma come "
        "più anche dei delle",
        "nl": "de het een en van is dat niet op te zijn voor met die aan er ook als bij wordt "
        "maar om naar",
    }.items()
}
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("\u3040-\u30ff", "ja"),
    ("\uac00-\ud7af", "ko"),
    ("\u4e00-\u9fff", "zh"),
    ("\u0400-\u04ff", "ru"),
    ("\u0600-\u06ff", "ar"),
    ("\u0590-\u05ff", "he"),
    ("\u0370-\u03ff", "el"),
    ("\u0900-\u097f", "hi"),
    ("\u0e00-\u0e7f", "th"),
)


def _detect_language(text: str) -> str | None:
    """A cheap guess: dominant non-Latin script, else stopword counts. None when unsure."""
    sample = text[:20_000]
    letters = sum(1 for c in sample if c.isalpha())
    if not letters:
        return None
    for chars, lang in _SCRIPTS:
        count = len(re.findall(f"[{chars}]", sample))
        if count > 0.3 * letters or (lang == "ja" and count > 0.05 * letters):
            if lang == "ru" and len(re.findall("[іїєґІЇЄҐ]", sample)) > 0.005 * letters:
                return "uk"
            if lang == "ar" and len(re.findall("[پچژگ]", sample)) > 0.005 * letters:
                return "fa"
            return lang
    words = re.findall(r"[^\W\d_]+", sample.lower())
    if len(words) < 20:
        return None
    scores = sorted(
        (
            (sum(1 for w in words if w in stop) / len(words), lang)
            for lang, stop in _STOPWORDS.items()
        ),
        reverse=True,
    )
    (best, lang), (second, _) = scores[0], scores[1]
    if best >= 0.12 and best >= 1.3 * second:
        return lang
    return None


def _iso639_1(value: str | None) -> str | None:
    if not value:
        return None
    code = re.split(r"[-_,;\s]", value.strip().lower(), maxsplit=1)[0]
    return code if re.fullmatch(r"[a-z]{2}", code) else None
