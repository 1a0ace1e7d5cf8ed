"""A small Python client for the gateway's HTTP API, with typed results.

    from vizsearch import Client
    client = Client("http://127.0.0.1:8080", api_key="...")
    for hit in client.search_text("a bus at night", datasets=["bdd"], top_k=10).results:
        print(hit.score, hit.dataset, hit.key, [o.label for o in hit.objects])
"""

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx

from vizsearch.models import (Dataset, DatasetList, Deleted, Duplicates, Embeddings, Job, JobList, Map, ModelInfo,
                              SearchResponse, Suspects)

logger = logging.getLogger(__name__)


_CHECKED_PER_CALL = 1000
_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                  ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff", ".gif": "image/gif",
                  ".json": "application/json"}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _content_type(path: Path) -> str:
    return _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _raise_for_problem(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ApiError(response.status_code, str(detail))


def _answer(response: httpx.Response) -> dict:
    _raise_for_problem(response)
    return response.json()


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
        return _answer(self._send(lambda: self.http.request(method, path, **kwargs), f"{method} {path}"))

    def _send(self, request: Callable[[], httpx.Response], what: str) -> httpx.Response:
        """request(), sent again while the gateway answers 429, after the wait it names."""
        response = request()
        for _ in range(self.rate_limit_retries):
            if response.status_code != 429:
                break
            wait = min(60.0, float(response.headers.get("Retry-After", "1")))
            logger.warning("rate limited by the gateway: retrying %s in %.0f s", what, wait)
            time.sleep(wait)
            response = request()
        return response

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

    def embed_images(self, images: list) -> Embeddings:
        """Vectors of images, each a local file, bytes or (dataset, key) as image_spec takes them."""
        specs = [image_spec(image) for image in images]
        return Embeddings.model_validate(self._call("POST", "/v1/embeddings", json={"images": specs}))

    def model(self) -> ModelInfo:
        return ModelInfo.model_validate(self._call("GET", "/v1/model"))

    def datasets(self) -> list[Dataset]:
        return DatasetList.model_validate(self._call("GET", "/v1/datasets")).datasets

    def dataset(self, name: str) -> Dataset:
        return Dataset.model_validate(self._call("GET", f"/v1/datasets/{name}"))

    def delete_dataset(self, name: str) -> Deleted:
        """Removes the dataset's vectors and records (admin role); the stored images stay."""
        return Deleted.model_validate(self._call("DELETE", f"/v1/datasets/{quote(name, safe='')}"))

    def set_api_key(self, api_key: str | None) -> None:
        self.http.headers.pop("Authorization", None)
        if api_key:
            self.http.headers["Authorization"] = f"Bearer {api_key}"

    def scan(self, name: str) -> Job:
        return Job.model_validate(self._call("POST", f"/v1/datasets/{name}/scan"))

    def job(self, job_id: str) -> Job:
        return Job.model_validate(self._call("GET", f"/v1/jobs/{job_id}"))

    def wait(self, job_id: str, poll_s: float = 0.5) -> Job:
        """The job once it has ended (succeeded, completed with failures, or failed)."""
        while (job := self.job(job_id)).state in ("queued", "running"):
            time.sleep(poll_s)
        return job

    def jobs(self, dataset: str = "", limit: int = 50) -> list[Job]:
        return JobList.model_validate(self._call("GET", "/v1/jobs", params={"dataset": dataset, "limit": limit})).jobs

    def find_duplicates(self, dataset: str, against: list[str] = (), threshold: float | None = None) -> Job:
        """Starts a job that finds the dataset's duplicate images, within it and against
        `against` (write role); follow it with job(), read its groups with duplicates()."""
        body = {"against": list(against), **({"threshold": threshold} if threshold is not None else {})}
        return Job.model_validate(self._call("POST", f"/v1/datasets/{quote(dataset, safe='')}/duplicates", json=body))

    def duplicates(self, dataset: str, job_id: str = "", limit: int = 50, offset: int = 0) -> Duplicates:
        """The dataset's latest (or the named) duplicates job, with a page of its groups once it ended."""
        params = {"limit": limit, "offset": offset, **({"job": job_id} if job_id else {})}
        return Duplicates.model_validate(
            self._call("GET", f"/v1/datasets/{quote(dataset, safe='')}/duplicates", params=params))

    def find_suspects(self, dataset: str, neighbours: int | None = None, min_agreement: float | None = None) -> Job:
        """Starts a job that finds annotated boxes whose neighbours agree on another label (write role)."""
        body = {name: value for name, value in (("neighbours", neighbours), ("min_agreement", min_agreement))
                if value is not None}
        return Job.model_validate(self._call("POST", f"/v1/datasets/{quote(dataset, safe='')}/suspects", json=body))

    def suspects(self, dataset: str, job_id: str = "", label: str = "", limit: int = 50, offset: int = 0) -> Suspects:
        """The dataset's latest (or the named) suspect-labels job, with a page of its suspects once it ended."""
        params = {"limit": limit, "offset": offset, **({"job": job_id} if job_id else {}),
                  **({"label": label} if label else {})}
        return Suspects.model_validate(
            self._call("GET", f"/v1/datasets/{quote(dataset, safe='')}/suspects", params=params))

    def upload(self, folder: str | Path, dataset: str, threads: int = 8,
               include: Callable[[str], bool] = lambda key: True,
               progress: Callable[[int], None] = lambda files: None) -> tuple[int, int]:
        """Uploads every file under `folder` (whose relative path `include` accepts, hidden
        files left out) to `<dataset>/<relative path>` through the gateway (write role). A
        file stored with the same bytes (sha256, computed here) is not sent again.
        `progress(n)` is called as files are done. Returns (uploaded, already there)."""
        root = Path(folder)
        paths = sorted(p for p in root.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(root).parts) and include(p.relative_to(root).as_posix()))
        with ThreadPoolExecutor(threads) as pool:
            hashes = list(pool.map(_sha256, paths))
        files = [{"key": p.relative_to(root).as_posix(), "size": p.stat().st_size, "sha256": h}
                 for p, h in zip(paths, hashes)]
        by_key = {f["key"]: p for f, p in zip(files, paths)}
        to_send: list[str] = []
        for start in range(0, len(files), _CHECKED_PER_CALL):
            checked = self._call("POST", f"/v1/datasets/{quote(dataset, safe='')}/files/check",
                                 json={"files": files[start:start + _CHECKED_PER_CALL]})
            to_send += checked["upload"]
            progress(len(checked["unchanged"]))

        def send(key: str) -> None:
            path, url = by_key[key], f"/v1/datasets/{quote(dataset, safe='')}/files/{quote(key, safe='/')}"

            def put() -> httpx.Response:
                with path.open("rb") as body:  # opened anew for each try: a retry sends the whole file
                    return self.http.put(url, content=body, headers={"Content-Type": _content_type(path)})

            _answer(self._send(put, f"PUT {url}"))
            progress(1)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(send, to_send))
        return len(to_send), len(files) - len(to_send)

    def make_map(self, dataset: str, level: str = "images", max_points: int | None = None) -> Job:
        """Starts a job that projects the dataset's image (or object) vectors to 2-D (write role)."""
        body = {"level": level, **({"max_points": max_points} if max_points is not None else {})}
        return Job.model_validate(self._call("POST", f"/v1/datasets/{quote(dataset, safe='')}/map", json=body))

    def map(self, dataset: str, level: str = "images", job_id: str = "", points: int = 20_000) -> Map:
        """The dataset's latest map of the level (or the named one): its points once it ended,
        a fixed random sample of `points` when it has more."""
        params = {"level": level, "points": points, **({"job": job_id} if job_id else {})}
        return Map.model_validate(self._call("GET", f"/v1/datasets/{quote(dataset, safe='')}/map", params=params))

    def export_duplicates(self, dataset: str, format: str = "jsonl", job_id: str = "") -> bytes:
        """Every group of a finished duplicates job (the dataset's latest by default) as a file: jsonl or csv."""
        return self._file(f"/v1/datasets/{quote(dataset, safe='')}/duplicates/export",
                          {"format": format, **({"job": job_id} if job_id else {})})

    def export_suspects(self, dataset: str, format: str = "jsonl", job_id: str = "", label: str = "") -> bytes:
        """Every suspect of a finished suspect-labels job (the dataset's latest by default) as a
        file: jsonl, csv or coco."""
        return self._file(f"/v1/datasets/{quote(dataset, safe='')}/suspects/export",
                          {"format": format, **({"job": job_id} if job_id else {}),
                           **({"label": label} if label else {})})

    def _file(self, path: str, params: dict) -> bytes:
        response = self._send(lambda: self.http.get(path, params=params), f"GET {path}")
        _raise_for_problem(response)
        return response.content

    def image(self, dataset: str, key: str) -> bytes:
        """The stored image's bytes."""
        path = f"/v1/images/{quote(dataset, safe='')}/{quote(key, safe='/')}"
        response = self._send(lambda: self.http.get(path, follow_redirects=True), f"GET {path}")
        _raise_for_problem(response)
        return response.content

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
