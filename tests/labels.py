"""Reading labelling records in tests: JSONL files of one object per line, keyed by ``id``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_by_id(*paths: Path) -> dict[str, dict[str, Any]]:
    """Every record of these JSONL files by its ``id``, in file and line order (a later
    record of the same id wins)."""
    return {
        (r := json.loads(line))["id"]: r
        for p in paths
        for line in p.read_text(encoding="utf-8").splitlines()
        if line
    }
