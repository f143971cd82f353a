"""A cheap language guess from the text, and ISO 639-1 codes from declarations."""

from __future__ import annotations

import re
from collections import Counter

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


#: Characters of text the guess reads: a few paragraphs decide as well as the whole article
#: (a 20,000-character sample cost ~1 % of an extraction and changed no answer on 200 pages).
LANGUAGE_SAMPLE_CHARS = 4000
_WORD = re.compile(r"[^\W\d_]+")
_ANY_SCRIPT = re.compile("[" + "".join(chars for chars, _ in _SCRIPTS) + "]")
_SCRIPT_RES = tuple((re.compile(f"[{chars}]"), lang) for chars, lang in _SCRIPTS)
_UK = re.compile("[іїєґІЇЄҐ]")
_FA = re.compile("[پچژگ]")


def _detect_language(text: str) -> str | None:
    """A cheap guess from the first :data:`LANGUAGE_SAMPLE_CHARS` characters: dominant
    non-Latin script, else stopword counts. None when unsure."""
    sample = text[:LANGUAGE_SAMPLE_CHARS]
    # the scripts are counted only when one of them is there at all (one scan, in C)
    if not sample.isascii() and _ANY_SCRIPT.search(sample):
        letters = sum(map(len, _WORD.findall(sample)))  # words are runs of letters
        for pattern, lang in _SCRIPT_RES:
            count = len(pattern.findall(sample))
            if count > 0.3 * letters or (lang == "ja" and count > 0.05 * letters):
                if lang == "ru" and len(_UK.findall(sample)) > 0.005 * letters:
                    return "uk"
                if lang == "ar" and len(_FA.findall(sample)) > 0.005 * letters:
                    return "fa"
                return lang
    words = _WORD.findall(sample.lower())
    if len(words) < 20:
        return None
    counts = Counter(words)
    scores = sorted(
        (
            (sum(counts[w] for w in stop if w in counts) / len(words), lang)
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
