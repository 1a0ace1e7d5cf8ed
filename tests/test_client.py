"""The Python client's own logic: waiting out a rate limit as the gateway asks."""

import httpx
import pytest

from vizsearch.client import ApiError, Client


def limited_then(status: int, limited: int):
    calls = []

    def handle(request):
        calls.append(request)
        if len(calls) <= limited:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"detail": "rate limit of 5 requests"})
        return httpx.Response(status, json={"model_id": "m", "dimension": 4, "version": "v", "image_size": 224,
                                            "max_text_tokens": 77})
    return handle, calls


def client_with(handler, retries: int) -> Client:
    client = Client(rate_limit_retries=retries)
    client.http = httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(handler))
    return client


def test_a_rate_limited_request_is_sent_again_after_the_named_wait():
    handler, calls = limited_then(200, limited=2)
    assert client_with(handler, retries=3).model().model_id == "m"
    assert len(calls) == 3


def test_the_limit_is_raised_once_the_retries_are_spent():
    handler, calls = limited_then(200, limited=5)
    with pytest.raises(ApiError) as error:
        client_with(handler, retries=1).model()
    assert error.value.status == 429 and "rate limit" in error.value.detail and len(calls) == 2
