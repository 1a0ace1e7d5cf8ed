"""`vizsearch ingest` uploads a folder, follows the job, and says what happened."""

import json

import pytest

from tests import imagegen
from tests.conftest import TEST_KEYS
from vizsearch import cli

pytestmark = pytest.mark.stack


def test_ingest_uploads_through_the_gateway_follows_and_reports(stack, tmp_path, capsys):
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


def test_ingest_refuses_a_missing_folder_and_a_bad_name(stack, tmp_path, capsys):
    gateway = ["--url", f"http://127.0.0.1:{stack.settings.gateway_http_port}", "--api-key", TEST_KEYS["writer"][0]]
    assert cli.main([*gateway, "ingest", str(tmp_path / "nope"), "--dataset", "x"]) == 1
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "a.jpg").write_bytes(imagegen.encode(imagegen.scene(64, 64, seed=1)))
    assert cli.main([*gateway, "ingest", str(tmp_path), "--dataset", "bad name"]) == 1
    assert "dataset name 'bad name' is invalid" in capsys.readouterr().err


def test_every_command_speaks_json_and_takes_global_options_after_it(stack, tmp_path, capsys):
    url, key = f"http://127.0.0.1:{stack.settings.gateway_http_port}", TEST_KEYS["admin"][0]
    folder = tmp_path / "verbs"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.jpg").write_bytes(imagegen.encode(imagegen.scene(96, 64, seed=300 + i)))
    assert cli.main(["ingest", str(folder), "--dataset", "verbs", "--url", url, "--api-key", key, "--json"]) == 0
    job = _last_json(capsys)
    assert job["state"] == "succeeded" and job["done"] == 2
    assert cli.main(["datasets", "--json", "--url", url, "--api-key", key]) == 0
    assert "verbs" in [d["name"] for d in json.loads(capsys.readouterr().out)]
    assert cli.main(["--url", url, "--api-key", key, "jobs", "--dataset", "verbs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == job["id"]
    assert cli.main(["job", job["id"], "--url", url, "--api-key", key]) == 0
    assert f"job {job['id']}: succeeded: 2 indexed" in capsys.readouterr().out
    assert cli.main(["scan", "verbs", "--wait", "--json", "--url", url, "--api-key", key]) == 0
    assert _last_json(capsys)["skipped"] == 2
    search = ["search", "a scene", "--dataset", "verbs", "--json", "--url", url, "--api-key", key]
    assert cli.main([*search, "--prefix", "1", "--width", "90:100", "--height", ":64"]) == 0
    assert [r["key"] for r in json.loads(capsys.readouterr().out)["results"]] == ["1.jpg"]
    assert cli.main([*search, "--width", "97:"]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == []
    with pytest.raises(SystemExit):
        cli.main([*search, "--width", "wide"])
    assert "is not MIN:MAX in pixels" in capsys.readouterr().err
    exported = tmp_path / "results.json"
    assert cli.main([*search[:-5], "--export", "coco", "-o", str(exported), "--url", url, "--api-key", key]) == 0
    assert sorted(i["file_name"] for i in json.loads(exported.read_text())["images"]) == ["0.jpg", "1.jpg"]
    assert cli.main([*search[:-5], "--export", "csv", "--url", url, "--api-key", key]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("rank,dataset,key,score")
    out = tmp_path / "copy.jpg"
    assert cli.main(["download", "verbs", "1.jpg", "-o", str(out), "--url", url, "--api-key", key]) == 0
    assert out.read_bytes() == (folder / "1.jpg").read_bytes()
    capsys.readouterr()
    assert cli.main(["delete", "verbs", "--yes", "--json", "--url", url, "--api-key", key]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted_entries": 2}


def _last_json(capsys) -> dict:
    """The JSON document a command printed (after any progress lines)."""
    text = capsys.readouterr().out
    return json.loads(text[text.index("{"):])


def test_login_is_saved_privately_and_used(stack, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("VIZSEARCH_URL", raising=False)
    monkeypatch.delenv("VIZSEARCH_API_KEY", raising=False)
    url = f"http://127.0.0.1:{stack.settings.gateway_http_port}"
    assert cli.main(["login", "--url", url, "--api-key", "wrong"]) == 1
    assert "401: unknown API key" in capsys.readouterr().err and not cli.config_path().exists()
    assert cli.main(["login", "--url", url, "--api-key", TEST_KEYS["reader"][0]]) == 0
    saved = cli.config_path()
    assert saved.stat().st_mode & 0o777 == 0o600
    assert json.loads(saved.read_text()) == {"url": url, "api_key": TEST_KEYS["reader"][0]}
    assert cli.main(["datasets"]) == 0, "URL and key from the saved login"
    assert cli.main(["logout"]) == 0 and not saved.exists()


def test_version_help_with_defaults_and_completion(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("vizsearch ")
    with pytest.raises(SystemExit):
        cli.main(["search", "--help"])
    assert "(default: 10)" in capsys.readouterr().out
    assert cli.main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete -F _vizsearch vizsearch" in script and "ingest)" in script and "--dataset" in script
