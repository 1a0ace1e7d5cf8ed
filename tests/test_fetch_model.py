"""The Triton pod's init container copies a checkpoint from the bucket (no internet needed)."""

import pytest

from services.common.config import StorageSettings
from services.common.storage import ObjectStore
from model.checkpoints import write_random_checkpoint
from model.fetch import FetchError, fetch

pytestmark = pytest.mark.stack


def test_a_checkpoint_is_fetched_from_the_bucket_once(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("VIZSEARCH_S3_ENDPOINT", f"127.0.0.1:{stack.settings.storage_port}")
    source_dir = write_random_checkpoint(tmp_path / "src", "tiny")
    store = ObjectStore(StorageSettings())
    files = sorted(p for p in source_dir.rglob("*") if p.is_file())
    for path in files:  # "_models" is no dataset: names starting with "_" are never indexed
        store.client.fput_object(store.bucket, f"_models/tiny/{path.relative_to(source_dir).as_posix()}", str(path))

    out = fetch("s3://vizsearch/_models/tiny", tmp_path / "models" / "clip")
    for path in files:
        assert (out / path.relative_to(source_dir)).read_bytes() == path.read_bytes()
    (out / "config.json").touch()
    stamp = (out / "config.json").stat().st_mtime_ns
    fetch("s3://vizsearch/_models/tiny", out)
    assert (out / "config.json").stat().st_mtime_ns == stamp, "already there: nothing fetched again"

    with pytest.raises(FetchError, match="no objects under s3://vizsearch/_models/none"):
        fetch("s3://vizsearch/_models/none", tmp_path / "other")
