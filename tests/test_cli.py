"""`vizsearch ingest` uploads a folder, follows the job, and says what happened."""

import json

import pytest

from tests import imagegen
from tests.conftest import TEST_KEYS
from vizsearch import cli

pytestmark = pytest.mark.stack


def test_ingest_uploads_follows_and_reports(stack, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIZSEARCH_S3_ENDPOINT", f"127.0.0.1:{stack.settings.storage_port}")
    gateway = ["--url", f"http://127.0.0.1:{stack.settings.gateway_http_port}", "--api-key", TEST_KEYS["writer"][0]]
    folder = tmp_path / "drive"
    (folder / "day").mkdir(parents=True)
    (folder / "_annotations").mkdir()
    for i in range(3):
        (folder / "day" / f"{i}.jpg").write_bytes(imagegen.encode(imagegen.scene(160, 120, seed=200 + i)))
    (folder / "day" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (folder / "_annotations" / "gt.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "day/0.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50]}],
        "categories": [{"id": 1, "name": "bicycle"}]}))

    assert cli.main([*gateway, "ingest", str(folder), "--dataset", "drive"]) == 2  # finished, with a failure
    out = capsys.readouterr().out
    assert "uploaded 5 files" in out
    assert "3 indexed, 0 unchanged, 1 failed, 1 objects" in out
    assert "day/broken.jpg:" in out

    assert cli.main([*gateway, "ingest", str(folder), "--dataset", "drive"]) == 0
    out = capsys.readouterr().out
    assert "uploaded 0 files" in out and "(5 already there)" in out
    assert "0 indexed, 4 unchanged, 0 failed" in out

    assert cli.main([*gateway, "datasets"]) == 0
    assert any(line.split()[:4] == ["drive", "3", "1", "1"] for line in capsys.readouterr().out.splitlines())
    assert cli.main(["--url", "http://127.0.0.1:1", "datasets"]) == 1
    assert "cannot reach the gateway" in capsys.readouterr().err
    assert cli.main([*gateway[:2], "--api-key", "wrong", "datasets"]) == 1
    assert "401: unknown API key" in capsys.readouterr().err

    assert cli.main([*gateway, "search", "a bicycle", "--dataset", "drive", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 results" in out and "drive" in out
    assert cli.main([*gateway, "search", "--image", str(folder / "day" / "0.jpg"), "--box", "10,10,60,60",
                     "--dataset", "drive", "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["results"][0]["key"] == "day/0.jpg"
    assert reply["results"][0]["objects"][0]["label"] == "bicycle"


def test_ingest_refuses_a_missing_folder_and_a_bad_name(stack, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIZSEARCH_S3_ENDPOINT", f"127.0.0.1:{stack.settings.storage_port}")
    gateway = ["--url", f"http://127.0.0.1:{stack.settings.gateway_http_port}", "--api-key", TEST_KEYS["writer"][0]]
    assert cli.main([*gateway, "ingest", str(tmp_path / "nope"), "--dataset", "x"]) == 1
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "a.jpg").write_bytes(imagegen.encode(imagegen.scene(64, 64, seed=1)))
    assert cli.main([*gateway, "ingest", str(tmp_path), "--dataset", "bad name"]) == 1
    assert "dataset name 'bad name' is invalid" in capsys.readouterr().err
