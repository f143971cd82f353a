"""The seed folder: saved articles (HTML, text, or ready raw records as JSON) as raw records.

A file that cannot become a record (binary, unreadable, too large, an invalid
JSON record) raises :class:`SeedError` with a reason; the replay command turns
it into a dead letter so that it is visible downstream, and goes on.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from worker.events import RawRecord, Source

SUFFIXES = {
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "text",
    ".text": "text",
    ".json": "json",
}
IGNORED_NAMES = ("readme", "license", "notice")
MAX_SEED_BYTES = 10 * 1024 * 1024


class SeedError(Exception):
    """A seed file that cannot be read as an article. ``reason`` is a short code."""

    retriable = False

    def __init__(self, path: Path, reason: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = reason


def list_seed_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """-> (files to replay, files ignored), in name order. Hidden files and README/LICENSE
    notes are ignored; so are files whose suffix is not an article format."""
    if not folder.exists():
        raise FileNotFoundError(f"no such folder: {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder: {folder}")
    take: list[Path] = []
    ignored: list[Path] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.stem.lower().startswith(IGNORED_NAMES) or path.suffix.lower() not in SUFFIXES:
            ignored.append(path)
            continue
        take.append(path)
    return take, ignored


def file_facts(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """What a dead letter carries about a file that never became a record."""
    facts: dict[str, Any] = {"path": str(path)}
    if data is not None:
        facts["size"] = len(data)
        facts["sha256"] = hashlib.sha256(data).hexdigest()
    return facts


def read_seed(
    path: Path,
    *,
    source_kind: str = "seed",
    source_name: str | None = None,
    max_bytes: int = MAX_SEED_BYTES,
) -> RawRecord:
    """Read one saved article into a raw record. Raises :class:`SeedError`."""
    from worker.clean import BinaryContent, decode_bytes, sniff_kind

    source = Source(kind=source_kind, name=source_name or path.parent.name or "seeds")  # type: ignore[arg-type]
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SeedError(path, "too-large", f"file is {size} bytes, over the {max_bytes} cap")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SeedError(path, "missing", "no such file") from exc
    except IsADirectoryError as exc:
        raise SeedError(path, "not-a-file", "is a folder, not a file") from exc
    except PermissionError as exc:
        raise SeedError(path, "unreadable", "permission denied") from exc
    except OSError as exc:
        raise SeedError(path, "unreadable", f"cannot read: {exc.strerror or exc}") from exc

    kind = SUFFIXES.get(path.suffix.lower(), "text")
    if kind == "json":
        return _json_record(path, data, source)
    try:
        text = decode_bytes(data)
    except BinaryContent as exc:
        raise SeedError(path, "binary", f"not a text or HTML file ({exc})") from exc
    if not text.strip():
        raise SeedError(path, "empty", "the file is empty")
    content_type = sniff_kind(text, path.name) if kind == "text" else "html"
    return RawRecord(
        record_id=uuid.uuid4().hex,
        source=source,
        path=path.name,
        content_type=content_type,  # type: ignore[arg-type]
        body=text,
    )


def _json_record(path: Path, data: bytes, source: Source) -> RawRecord:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SeedError(path, "invalid-json", f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise SeedError(path, "invalid-record", "a .json seed must hold one raw record object")
    obj.setdefault("record_id", uuid.uuid4().hex)
    obj.setdefault("source", source.model_dump())
    obj.setdefault("path", path.name)
    try:
        return RawRecord.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise SeedError(
            path, "invalid-record", f"not a valid raw record: {where}: {first['msg']}"
        ) from exc


def iter_seed_records(folder: Path, **kw: Any) -> Iterator[tuple[Path, RawRecord | SeedError]]:
    files, _ = list_seed_files(folder)
    for path in files:
        try:
            yield path, read_seed(path, **kw)
        except SeedError as exc:
            yield path, exc
