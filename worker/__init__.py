"""Diplomacy news ingest worker.

Kept import-free: ``python3 -m worker.devservices`` must run before any
third-party package is installed.
"""

__version__ = "0.1.0"
