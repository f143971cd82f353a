from worker.dedup import article_id, canonical_url, fingerprint


def test_canonical_url_drops_tracking_and_fragment_and_sorts_query():
    assert (
        canonical_url("HTTPS://Example.COM/a/b?z=1&utm_source=rss&a=2#top")
        == "https://example.com/a/b?a=2&z=1"
    )


def test_article_id_is_stable_across_schemes_and_tracking():
    a = article_id("http://example.com/story?utm_medium=x", "")
    b = article_id("https://example.com/story", "other text")
    assert a == b and len(a) == 32
    assert article_id("https://example.com/other", "") != a


def test_article_id_without_url_hashes_normalised_text():
    assert article_id(None, "Hello   World\n") == article_id(None, "hello world")
    assert article_id(None, "hello world") != article_id(None, "hello there")
    assert article_id(None, "x") != article_id("x", "")  # url and text ids never collide


def test_fingerprint_ignores_whitespace_and_case_only():
    assert fingerprint("A  b\nc") == fingerprint("a b c")
    assert fingerprint("a b c") != fingerprint("a b d")


def test_normalised_text_is_the_regex_definition_for_every_white_space():
    """Fingerprints stored in Redis were made with ``re.sub(r"\\s+", " ", ...)``: the faster
    ``str.split`` must give the same string for every character either treats as space."""
    import re
    import unicodedata

    from worker.dedup import normalise_text

    spaces = "".join(chr(i) for i in range(0x3001) if chr(i).isspace() or re.match(r"\s", chr(i)))
    samples = [
        f"a{spaces}b",
        spaces,
        " Straße\u00a0ﬁ\u2003ＡＢＣ \u200b x\x1c\x1dy ",
        "Talks in Vienna.\n\n  Russia and the US\tagreed.",
    ]
    for text in samples:
        expected = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()
        assert normalise_text(text) == expected


def test_identify_gives_the_id_and_the_fingerprint_of_one_normalisation():
    from worker.dedup import identify

    for url, text in [
        ("https://example.com/story?utm_source=x", "Talks  in Vienna."),
        (None, "Talks  in Vienna."),
        (None, "ﬁnal ＡＢＣ\u00a0talks"),  # not NFKC: normalised first, as before
    ]:
        assert identify(url, text) == (article_id(url, text), fingerprint(text))
    assert fingerprint("ﬁnal ＡＢＣ") == fingerprint("final abc")
