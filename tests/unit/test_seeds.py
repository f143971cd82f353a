from pathlib import Path

import orjson
import pytest

from worker.sources.seeds import SeedError, list_seed_files, read_seed

ROOT = Path(__file__).resolve().parents[2]


def test_project_seed_folder_lists_the_seed_article_and_ignores_notes():
    files, ignored = list_seed_files(ROOT / "seeds")
    names = [p.name for p in files]
    assert "000_f06541f7bef2d985.txt" in names
    assert all(not p.name.lower().startswith("readme") for p in files)
    assert all(
        p.name.lower().startswith("readme") or p.suffix not in (".txt", ".html") for p in ignored
    )


def test_seed_text_file_becomes_a_text_record():
    rec = read_seed(ROOT / "seeds" / "000_f06541f7bef2d985.txt")
    assert rec.content_type == "text" and rec.source.kind == "seed"
    assert rec.path == "000_f06541f7bef2d985.txt" and "New START" in (rec.body or "")
    assert len(rec.record_id) == 32


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("a.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
        ("b.txt", b"", "empty"),
        ("c.json", b"{not json", "invalid-json"),
        ("d.json", b'{"source": {"kind": "nope", "name": "x"}}', "invalid-record"),
        ("e.json", b"[1, 2]", "invalid-record"),
    ],
)
def test_broken_seed_files_raise_seed_error_with_reason(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SeedError) as info:
        read_seed(path)
    assert info.value.reason == reason
    assert name in str(info.value)


def test_missing_and_oversized_files(tmp_path):
    with pytest.raises(SeedError) as info:
        read_seed(tmp_path / "nope.txt")
    assert info.value.reason == "missing"
    big = tmp_path / "big.html"
    big.write_bytes(b"<p>" + b"a" * 2048)
    with pytest.raises(SeedError) as info:
        read_seed(big, max_bytes=1024)
    assert info.value.reason == "too-large"


def test_json_seed_carries_a_ready_raw_record(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(
        orjson.dumps(
            {
                "url": "https://example.com/a",
                "content_type": "html",
                "body": "<html><body><p>x</p></body></html>",
            }
        )
    )
    rec = read_seed(path)
    assert rec.url == "https://example.com/a" and rec.content_type == "html"
    assert rec.source.name == tmp_path.name


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        list_seed_files(tmp_path / "absent")
