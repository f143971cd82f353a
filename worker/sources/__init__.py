"""Sources: where raw records come from.

- :mod:`worker.sources.http`: the one safe HTTP fetcher (timeouts, size cap, manual
  redirects, per-host limit, private-address guard) used for feeds and pages.
- :mod:`worker.sources.feeds`: ``configs/feeds.yaml``, feed parsing and polling.
- :mod:`worker.sources.feedstate`: per-feed polling state in Redis.

Kept import-free so that importing one source does not pull in the others.
"""
