"""A small Python client for the gateway's HTTP API, with typed results.

    from vizsearch import Client
    client = Client("http://127.0.0.1:8080", api_key="...")
    for hit in client.search_text("a bus at night", datasets=["bdd"], top_k=10).results:
        print(hit.score, hit.dataset, hit.key, [o.label for o in hit.objects])
"""

import base64
import logging
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from vizsearch.models import Dataset, DatasetList, Embeddings, Job, JobList, ModelInfo, SearchResponse

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer of the API: its HTTP status and the problem's detail."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def image_spec(image: str | Path | bytes | tuple[str, str], box=None) -> dict:
    """An image given as a local file, bytes, or (dataset, key) of an indexed one."""
    if isinstance(image, tuple):
        spec = {"dataset": image[0], "key": image[1]}
    else:
        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        spec = {"data": base64.b64encode(data).decode()}
    if box is not None:
        spec["box"] = [float(v) for v in box]
    return spec


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8080", api_key: str | None = None, timeout_s: float = 60.0,
                 rate_limit_retries: int = 3):
        """`rate_limit_retries`: how often a request refused with 429 is sent again, after
        the wait its Retry-After names (at most a minute); 0 raises at once."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout_s)
        self.rate_limit_retries = rate_limit_retries

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, path, **kwargs)
        for _ in range(self.rate_limit_retries):
            if response.status_code != 429:
                break
            wait = min(60.0, float(response.headers.get("Retry-After", "1")))
            logger.warning("rate limited by the gateway: retrying %s %s in %.0f s", method, path, wait)
            time.sleep(wait)
            response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, str(detail))
        return response.json()

    def search(self, query: dict, **options) -> SearchResponse:
        """Any query: {"text": ...}, {"image": ...}, {"object": ...} or {"all": [...]}; options are
        datasets, labels, sources, min_box_area, level, top_k, offset, min_score."""
        body = {"query": query, **{k: v for k, v in options.items() if v is not None}}
        return SearchResponse.model_validate(self._call("POST", "/v1/search", json=body))

    def search_text(self, text: str, **options) -> SearchResponse:
        return self.search({"text": text}, **options)

    def search_image(self, image, box=None, **options) -> SearchResponse:
        """By example image; with a box, by the object in it."""
        kind = "object" if box is not None else "image"
        return self.search({kind: image_spec(image, box)}, **options)

    def embed_texts(self, texts: list[str]) -> Embeddings:
        return Embeddings.model_validate(self._call("POST", "/v1/embeddings", json={"texts": texts}))

    def model(self) -> ModelInfo:
        return ModelInfo.model_validate(self._call("GET", "/v1/model"))

    def datasets(self) -> list[Dataset]:
        return DatasetList.model_validate(self._call("GET", "/v1/datasets")).datasets

    def dataset(self, name: str) -> Dataset:
        return Dataset.model_validate(self._call("GET", f"/v1/datasets/{name}"))

    def scan(self, name: str) -> Job:
        return Job.model_validate(self._call("POST", f"/v1/datasets/{name}/scan"))

    def job(self, job_id: str) -> Job:
        return Job.model_validate(self._call("GET", f"/v1/jobs/{job_id}"))

    def jobs(self, dataset: str = "", limit: int = 50) -> list[Job]:
        return JobList.model_validate(self._call("GET", "/v1/jobs", params={"dataset": dataset, "limit": limit})).jobs

    def image(self, dataset: str, key: str) -> bytes:
        response = self.http.get(f"/v1/images/{quote(dataset, safe='')}/{quote(key, safe='/')}", follow_redirects=True)
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.json().get("detail", response.text))
        return response.content

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
