"""`make up`'s main job runs end to end: a dataset in, three kinds of query out."""

import pytest

from services.localstack import smoke
from tests.conftest import TEST_KEYS

pytestmark = pytest.mark.stack


def test_the_main_job_ingests_and_answers_three_queries(stack, capsys):
    assert smoke.run(stack, api_key=TEST_KEYS["writer"][0]) == 0
    out = capsys.readouterr().out
    assert "indexed dataset 'smoke': 12 images, 1 objects, 0 failed" in out
    assert "1.0000  smoke/scene03.jpg  block [40, 30, 200, 150]" in out, "the image query finds itself first"
    assert "object smoke/scene03.jpg [40, 30, 200, 150]: 1 results" in out
    assert "vizsearch --url" in out
