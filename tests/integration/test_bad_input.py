"""Bad input never stops the worker: every bad page ends as a dead letter with its reason,
the good records around it are enriched, and the counts add up.

Records carry only a URL (no body), so the worker fetches each page itself, through the
same guarded fetcher as the feeds, from a real HTTP server on loopback.
"""

from __future__ import annotations

from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


EXPECTED_DEAD = {
    # path: (stage, error class) of the dead letter
    "/binary": ("decode", "BinaryContent"),
    "/empty": ("clean", "EmptyContent"),
    "/gzip-bomb": ("fetch", "TooLarge"),
    "/huge": ("fetch", "TooLarge"),
    "/slow": ("fetch", "FetchTimeout"),
    "/loop-a": ("fetch", "TooManyRedirects"),
    "/to-metadata": ("fetch", "BlockedAddress"),
    "/404": ("fetch", "HTTPStatusError"),
}


def test_bad_pages_become_dead_letters_and_good_ones_flow(worker_env_factory, pages, tmp_path):
    w = worker_env_factory(
        WORKER_FETCH_READ_TIMEOUT_S="1", WORKER_FETCH_MAX_BYTES="2000000", WORKER_MAX_ATTEMPTS="2"
    )
    folder = tmp_path / "records"
    folder.mkdir()
    paths = ["/ok", "/mixed-encoding", *EXPECTED_DEAD]
    for i, path in enumerate(paths):
        (folder / f"{i:02d}.json").write_bytes(orjson.dumps({"url": pages.url(path)}))
    # and a record that points at a private address outright (the guard refuses it)
    (folder / "99.json").write_bytes(orjson.dumps({"url": "http://10.255.255.1/x"}))
    proc = w.start_worker()
    w.cli("replay", "-q", str(folder), check=True)

    n_dead = len(EXPECTED_DEAD) + 1
    dlq = w.wait_for("articles.dlq", n_dead, proc=proc, timeout=180)
    got = {m["value"]["original"]["url"]: m["value"] for m in dlq}
    for path, (stage, error_class) in EXPECTED_DEAD.items():
        letter = got[pages.url(path)]
        assert (letter["stage"], letter["error_class"]) == (stage, error_class), letter
        assert letter["message"]
    private = got["http://10.255.255.1/x"]
    assert private["error_class"] == "BlockedAddress" and "10.255.255.1" in private["message"]
    # a retriable failure (the timeout) was tried again before it was dead-lettered
    assert got[pages.url("/slow")]["attempts"] == 2 and got[pages.url("/slow")]["retriable"]
    assert got[pages.url("/404")]["attempts"] == 1  # a permanent one was not

    enriched = w.wait_for("articles.enriched", 2, proc=proc)
    by_url = {m["value"]["url"]: m["value"] for m in enriched}
    assert by_url[pages.url("/ok")]["text_origin"] == "page"
    assert "sanctions" in {t["id"] for t in by_url[pages.url("/ok")]["topics"]}
    assert (
        "Soudan caf\u00e9"
        in by_url[pages.url("/mixed-encoding")]["title"]
        + by_url[pages.url("/mixed-encoding")]["text"]
    )

    stats = w.wait_stats(lambda s: s["handled"] >= len(paths) + 1)
    assert stats["received"] == stats["enriched"] + sum(stats["skipped"].values()) + sum(
        stats["dead_letters"].values()
    )
    assert proc.poll() is None  # it kept running through all of it
