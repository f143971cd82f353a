"""The cheaper paths through cleaning give the answers of the slow ones they replaced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.clean import BinaryContent, clean_html, decode_bytes
from worker.clean.base import _check_input
from worker.clean.decode import _mostly_utf8
from worker.clean.html import _paragraphs
from worker.clean.language import _detect_language
from worker.tagging.cache import cached_tagger

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "tests" / "data" / "pages"


def test_control_characters_are_counted_in_c_as_before() -> None:
    text = "ok text " * 100
    _check_input(text + "\x01" * 10, "t")  # 1 % controls: text
    with pytest.raises(BinaryContent, match="control characters"):
        _check_input(text + "\x01\x02\x03" * 10, "t")  # over 2 %
    _check_input(text + "\t\n\r\x0b\x0c\x1b" * 10, "t")  # whitespace and ESC are text


def test_mostly_utf8_counts_high_bytes_like_the_loop_did() -> None:
    mixed = "Café crème – déjà vu ".encode() * 20 + b"\xe9t\xe9"  # UTF-8, a few cp1252 bytes
    assert _mostly_utf8(mixed)
    assert not _mostly_utf8("Café crème déjà vu ".encode("cp1252") * 20)
    assert decode_bytes(mixed).startswith("Café crème – déjà vu")


def test_declared_single_byte_charset_with_valid_utf8_is_utf8() -> None:
    body = "<meta charset='iso-8859-1'><p>Zürich – Genève</p>".encode()
    assert "Zürich – Genève" in decode_bytes(body)
    assert "Zürich" in decode_bytes("<p>Zürich</p>".encode("cp1252"), "iso-8859-1")


def test_paragraphs_one_regex_over_the_text() -> None:
    raw = "  First\u00a0 line\t here \n\n\n Second   line \r\n\t\nThird"
    assert _paragraphs(raw) == "First line here\nSecond line\nThird"


def test_language_from_a_sample_is_the_language_of_the_whole() -> None:
    for page, lang in (("liberation-1", "fr"), ("folha", "pt"), ("nytimes-1", "en")):
        text = clean_html((PAGES / f"{page}.html").read_text(encoding="utf-8")).text
        assert _detect_language(text) == lang
    assert _detect_language("Это статья о переговорах. " * 30) == "ru"


def test_byline_markup_is_read_only_when_nothing_else_names_the_author() -> None:
    body = "".join(
        f"<p>Paragraph {i} of a story long enough to be an article here.</p>" for i in range(8)
    )
    html = (
        "<html><head><title>T</title></head><body><article><h1>Talks resume</h1>"
        '<div class="byline">By Jane Roe</div>' + body + "</article></body></html>"
    )
    assert clean_html(html).authors == ["Jane Roe"]
    with_meta = html.replace("<title>", '<meta name="author" content="John Doe"><title>')
    assert clean_html(with_meta).authors[0] == "John Doe"


def test_tagger_cache_builds_once_then_loads(tmp_path: Path) -> None:
    configs = ROOT / "configs"
    args = (configs / "topics.yaml", configs / "countries.yaml", None)
    built = cached_tagger(*args, cache_dir=tmp_path)
    files = list(tmp_path.glob("tagger-*.pickle"))
    assert len(files) == 1
    loaded = cached_tagger(*args, cache_dir=tmp_path)
    text = "Russia and the United States held arms control talks in Vienna on New START."
    assert loaded.tag(None, text) == built.tag(None, text)
    files[0].write_bytes(b"not a pickle")  # a corrupt cache is rebuilt, not fatal
    assert cached_tagger(*args, cache_dir=tmp_path).tag(None, text) == built.tag(None, text)
    assert re.fullmatch(r"tagger-[0-9a-f]{32}\.pickle", files[0].name)
