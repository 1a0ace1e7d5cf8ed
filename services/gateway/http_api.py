"""The public HTTP API (v1): typed JSON in and out, errors as RFC 9457 problem
details. Each route converts to the same protobuf requests the gRPC door takes
and calls services/gateway/core.py, so both doors answer alike."""

import base64
import binascii
import functools
from pathlib import Path
from urllib.parse import quote
from datetime import timezone
from http import HTTPStatus
from typing import Annotated, Literal

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, Security, UploadFile
from fastapi import Query as QueryParameter
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common import images, tracing
from services.common.http_observability import RequestObservability
from services.common.wire import JOB_STATE_NAMES, LEVEL_ENUMS, SOURCE_ENUMS, SOURCE_NAMES
from services.common.genproto.vizsearch.v1 import common_pb2, embedder_pb2, indexer_pb2, query_pb2
from services.gateway.auth import Principal
from services.gateway.core import DEFAULT_THUMBNAIL, Gateway, GatewayError, Thumbnail
from vizsearch.export import FORMATS, GROUP_FORMATS, export, export_groups, export_points, export_suspects
from vizsearch.models import (MAP_POINTS_SHOWN, MAX_MAP_POINTS, MAX_OFFSET, MAX_SIDE, Dataset, DatasetList, Deleted, DuplicateGroup, DuplicateSearch,
                              Duplicates, DuplicatesBody, Embeddings, EmbeddingsBody, ExportBody, Failure, FilesCheck,
                              FilesCheckBody, ImageRef, ImageSpec, Job, JobList, Map, MapBody, MapPoint,
                              MapProjection, ModelInfo, ObjectResult, Problem, Query, SearchBody, SearchResponse,
                              SearchResult, SuspectLabel, SuspectNeighbour, SuspectSearch, Suspects, SuspectsBody,
                              ThumbnailItem, Thumbnails, ThumbnailsBody, UploadedFile)
from vizsearch.names import check_text

PROBLEM = "application/problem+json"
WEB_APP = Path(__file__).parent / "web"  # the web app's files, served as they are (no build step)
BEARER = HTTPBearer(auto_error=False, description="An API key (when the gateway requires keys).")
PROBLEMS = {status: {"model": Problem, "description": HTTPStatus(status).phrase}
            for status in (401, 403, 404, 409, 413, 422, 429, 503, 504)}
# Thumbnails are named by the image's version: a browser may use one for five minutes, and
# a day more while it checks in the background (a replaced image shows within minutes).
THUMBNAIL_CACHE_CONTROL = "private, max-age=300, stale-while-revalidate=86400"
API_PREFIX = "/v1/"


# -- conversions -----------------------------------------------------------
def _image_input(spec: ImageSpec, path: str) -> common_pb2.ImageInput:
    image = common_pb2.ImageInput()
    if spec.data is not None:
        try:
            image.data = base64.b64decode(spec.data, validate=True)
        except (binascii.Error, ValueError) as error:
            raise GatewayError(422, f"{path}.data is not valid base64: {error}") from error
    else:
        image.ref.dataset, image.ref.key = spec.dataset, spec.key
    if spec.box is not None:
        image.box.CopyFrom(common_pb2.Box(x1=spec.box[0], y1=spec.box[1], x2=spec.box[2], y2=spec.box[3]))
    return image


def query_term(query: Query, path: str = "query") -> query_pb2.QueryTerm:
    if query.text is not None:
        return query_pb2.QueryTerm(text=query.text)
    if query.image is not None:
        return query_pb2.QueryTerm(image=_image_input(query.image, f"{path}.image"))
    if query.object is not None:
        return query_pb2.QueryTerm(object=_image_input(query.object, f"{path}.object"))
    terms = [query_pb2.WeightedQuery(query=query_term(t.query, f"{path}.all[{i}].query"), weight=t.weight)
             for i, t in enumerate(query.all)]
    return query_pb2.QueryTerm(all=query_pb2.Combination(terms=terms))


def search_request(term: query_pb2.QueryTerm, *, sources=(), min_box_area=None, level=None, top_k=20, offset=0,
                   min_score=None, **filters) -> query_pb2.SearchRequest:
    """`filters`: the Filters fields as they are named there (datasets, labels, key_prefix, ...)."""
    request = query_pb2.SearchRequest(
        query=term, level=LEVEL_ENUMS.get(level, query_pb2.LEVEL_UNSPECIFIED), top_k=top_k, offset=offset,
        filters=query_pb2.Filters(sources=[SOURCE_ENUMS[s] for s in sources], **filters),
    )
    if min_box_area is not None:
        request.filters.min_box_area = min_box_area
    if min_score is not None:
        request.min_score = min_score
    return request


def model_info(model: common_pb2.ModelInfo) -> ModelInfo:
    return ModelInfo(model_id=model.model_id, dimension=model.dimension, version=model.version,
                     image_size=model.image_size, max_text_tokens=model.max_text_tokens, runtime=model.runtime,
                     jpeg_decode=model.jpeg_decode)


def image_url(base_url: str, dataset: str, key: str) -> str:
    return f"{base_url}v1/images/{quote(dataset, safe='')}/{quote(key, safe='/')}"


def search_response(reply: query_pb2.SearchResponse, base_url: str) -> SearchResponse:
    return SearchResponse(model=model_info(reply.model), took_ms=reply.took_ms, results=[
        SearchResult(
            dataset=r.dataset, key=r.key, score=r.score, width=r.width, height=r.height,
            url=image_url(base_url, r.dataset, r.key),
            objects=[ObjectResult(box=[o.box.x1, o.box.y1, o.box.x2, o.box.y2], label=o.label,
                                  source=SOURCE_NAMES.get(o.source, ""), score=o.score,
                                  detector_score=o.detector_score if o.HasField("detector_score") else None)
                     for o in r.objects])
        for r in reply.results])


def job(j: indexer_pb2.Job) -> Job:
    return Job(id=j.id, dataset=j.dataset, kind=j.kind, state=JOB_STATE_NAMES[j.state], total=j.total, done=j.done,
               failed=j.failed, skipped=j.skipped, objects=j.objects, annotation_errors=j.annotation_errors,
               failures=[Failure(key=f.key, reason=f.reason) for f in j.failures], throughput=j.throughput,
               eta_seconds=j.eta_seconds, error=j.error, model_version=j.model_version,
               duplicates=DuplicateSearch(datasets=list(j.duplicates.datasets),
                                          threshold=round(j.duplicates.threshold, 6))
               if j.HasField("duplicates") else None,
               suspects=SuspectSearch(neighbours=j.suspects.neighbours,
                                      min_agreement=round(j.suspects.min_agreement, 6))
               if j.HasField("suspects") else None,
               map=MapProjection(level=j.map.level, max_points=j.map.max_points) if j.HasField("map") else None,
               **{field: getattr(j, field).ToDatetime(tzinfo=timezone.utc)
                  for field in ("created_at", "started_at", "finished_at") if j.HasField(field)})


def duplicates(reply: indexer_pb2.GetDuplicatesResponse, base_url: str) -> Duplicates:
    return Duplicates(job=job(reply.job), total_groups=reply.total_groups, duplicate_images=reply.duplicate_images,
                      groups=[DuplicateGroup(images=[ImageRef(dataset=i.dataset, key=i.key,
                                                              url=image_url(base_url, i.dataset, i.key))
                                                     for i in g.images],
                                             min_similarity=round(g.min_similarity, 6),
                                             max_similarity=round(g.max_similarity, 6), exact=g.exact)
                              for g in reply.groups])


def thumbnail_item(thumbnail: Thumbnail | GatewayError) -> ThumbnailItem:
    if isinstance(thumbnail, GatewayError):
        status = thumbnail.status
        return ThumbnailItem(error=Problem(title=HTTPStatus(status).phrase, status=status, detail=str(thumbnail)))
    return ThumbnailItem(content_type=thumbnail.content_type, data=base64.b64encode(thumbnail.data).decode(),
                         etag=thumbnail.etag)


def dataset(d: indexer_pb2.Dataset) -> Dataset:
    return Dataset(name=d.name, images=d.images, objects=d.objects, failed=d.failed,
                   box_margin=d.config.box_margin, last_job=job(d.last_job) if d.HasField("last_job") else None)


def _corners(box: common_pb2.Box) -> list[float]:
    return [box.x1, box.y1, box.x2, box.y2]


def suspects(reply: indexer_pb2.GetSuspectLabelsResponse, base_url: str) -> Suspects:
    dataset = reply.job.dataset
    return Suspects(job=job(reply.job), total_suspects=reply.total_suspects, suspects=[
        SuspectLabel(dataset=dataset, key=s.key, url=image_url(base_url, dataset, s.key), width=s.width,
                     height=s.height, box=_corners(s.box),
                     label=s.label, suggested_label=s.suggested_label, agreement=round(s.agreement, 6),
                     neighbours=[SuspectNeighbour(key=n.key, url=image_url(base_url, dataset, n.key),
                                                  box=_corners(n.box), label=n.label,
                                                  similarity=round(n.similarity, 6))
                                 for n in s.neighbours])
        for s in reply.suspects])


def map_reply(reply: indexer_pb2.GetMapResponse) -> Map:
    return Map(job=job(reply.job), total_points=reply.total_points, points=[
        MapPoint(x=round(p.x, 5), y=round(p.y, 5), dataset=p.dataset, key=p.key, labels=list(p.labels),
                 box=_corners(p.box) if p.HasField("box") else None) for p in reply.points])


# -- the app ---------------------------------------------------------------
def problem(status: int, detail: str, title: str | None = None, headers: dict | None = None) -> JSONResponse:
    title = title or HTTPStatus(status).phrase
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status_code=status, media_type=PROBLEM, headers=headers)


def error_problem(error: GatewayError) -> JSONResponse:
    return problem(error.status, str(error), headers={"Retry-After": str(error.retry_after)} if error.retry_after else None)


class Admission:
    """Admits an API request before any of its body is read: authenticates the key and
    checks its rate (401, 403, 429 cost the caller nothing but headers), then refuses a
    body over VIZSEARCH_MAX_BODY_BYTES, declared or found while it is read (413). The
    principal is left in the request's state for the routes."""

    def __init__(self, app, gateway: Gateway):
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        client = scope["client"][0] if scope.get("client") else "unknown"
        upload = scope["method"] == "PUT" and "/files/" in scope["path"]
        limit = self.gateway.settings.max_upload_bytes if upload else self.gateway.settings.max_body_bytes
        # Many small requests make one user action (a page's images, a folder's files): they
        # count against a larger budget of their own.
        bulk = upload or (scope["method"] == "GET" and scope["path"].startswith("/v1/images/"))
        try:
            principal = await self.gateway.admit(headers.get("authorization"), client, bulk=bulk)
            declared = headers.get("content-length")
            if declared is not None and not declared.isdigit():
                raise GatewayError(400, f"Content-Length {declared[:40]!r} is not a number of bytes")
            if declared is not None and int(declared) > limit:
                raise GatewayError(413, f"the body is {declared} bytes, over the {limit}-byte limit")
        except GatewayError as error:
            return await error_problem(error)(scope, receive, send)
        scope.setdefault("state", {})["principal"] = principal
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:  # a chunked body with no declared length
                raise StarletteHTTPException(413, f"the body is over the {limit}-byte limit")
            return message

        await self.app(scope, limited, send)


def create_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="vizsearch", version="1", description="Multi-modal search over image datasets.",
                  docs_url=None, redoc_url=None)
    app.add_middleware(Admission, gateway=gateway)
    app.add_middleware(RequestObservability, service="gateway")  # added last: the outermost
    tracing.instrument_app(app)
    api = APIRouter(responses=PROBLEMS)

    @app.exception_handler(GatewayError)
    async def gateway_error(request, error: GatewayError):
        return error_problem(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error: RequestValidationError):
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if p != "body")
        return problem(422, f"{field}: {first['msg']}" if field else first["msg"], "Invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error: StarletteHTTPException):
        return problem(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    async def caller(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]) -> Principal:
        return request.state.principal  # admitted by Admission before the body was read

    Caller = Annotated[Principal, Depends(caller)]

    @app.get("/", include_in_schema=False)
    async def web_app():
        return FileResponse(WEB_APP / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/app", StaticFiles(directory=WEB_APP), name="web-app")
    app.mount("/static/docs", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="vizsearch API",
                                   swagger_js_url="/static/docs/swagger-ui-bundle.js",
                                   swagger_css_url="/static/docs/swagger-ui.css",
                                   swagger_favicon_url="/static/docs/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return get_redoc_html(openapi_url="/openapi.json", title="vizsearch API",
                              redoc_js_url="/static/docs/redoc.standalone.js",
                              redoc_favicon_url="/static/docs/favicon.png", with_google_fonts=False)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        down = await gateway.unready_backends()
        if down:
            return problem(503, f"not ready: {', '.join(down)} not serving", "Service Unavailable")
        return {"status": "ready"}

    @api.get("/v1/model", response_model=ModelInfo)
    async def get_model(principal: Caller):
        return model_info(await gateway.model(principal))

    @api.post("/v1/search", response_model=SearchResponse)
    async def search(body: SearchBody, request: Request, principal: Caller):
        request_message = search_request(query_term(body.query), **body.model_dump(exclude={"query"}))
        reply = await gateway.search(principal, request_message)
        return search_response(reply, str(request.base_url))

    @api.post("/v1/search/export", response_class=Response,
              responses={200: {"description": "the results as a file",
                               "content": {media: {} for media, _ in FORMATS.values()}}})
    async def search_export(body: ExportBody, request: Request, principal: Caller):
        """The same search, its results as a file to download (top_k and offset page through more)."""
        request_message = search_request(query_term(body.query), **body.model_dump(exclude={"query", "format"}))
        reply = await gateway.search(principal, request_message)
        media_type, extension = FORMATS[body.format]
        return Response(export(search_response(reply, str(request.base_url)).results, body.format),
                        media_type=media_type,
                        headers={"Content-Disposition": f'attachment; filename="vizsearch-results.{extension}"'})

    @api.post("/v1/search/upload", response_model=SearchResponse)
    async def search_upload(
        request: Request,
        principal: Caller,
        file: Annotated[UploadFile, File(description="the query image")],
        box: Annotated[str | None, Form(description="x1,y1,x2,y2: search for this object")] = None,
        datasets: Annotated[str, Form(description="comma-separated")] = "",
        labels: Annotated[str, Form(description="comma-separated")] = "",
        exclude_labels: Annotated[str, Form(description="comma-separated")] = "",
        all_labels: Annotated[str, Form(description="comma-separated")] = "",
        key_prefix: Annotated[str, Form(max_length=1024)] = "",
        min_width: Annotated[int, Form(ge=0, le=MAX_SIDE)] = 0,
        max_width: Annotated[int, Form(ge=0, le=MAX_SIDE)] = 0,
        min_height: Annotated[int, Form(ge=0, le=MAX_SIDE)] = 0,
        max_height: Annotated[int, Form(ge=0, le=MAX_SIDE)] = 0,
        level: Annotated[Literal["images", "objects"] | None, Form()] = None,
        top_k: Annotated[int, Form(ge=1, le=1000)] = 20,
        offset: Annotated[int, Form(ge=0, le=MAX_OFFSET)] = 0,
        min_score: Annotated[float | None, Form(ge=-1, le=1)] = None,
    ):
        data = await file.read(gateway.settings.max_image_bytes + 1)
        if len(data) > gateway.settings.max_image_bytes:
            raise GatewayError(413, f"file is over the {gateway.settings.max_image_bytes}-byte limit")
        image = common_pb2.ImageInput(data=data)
        if box is not None:
            region = _box(box)
            image.box.CopyFrom(common_pb2.Box(x1=region.x1, y1=region.y1, x2=region.x2, y2=region.y2))
        term = query_pb2.QueryTerm(object=image) if box is not None else query_pb2.QueryTerm(image=image)
        request_message = search_request(
            term, datasets=_split(datasets), labels=_split(labels), exclude_labels=_split(exclude_labels),
            all_labels=_split(all_labels), key_prefix=_form_text(key_prefix), min_width=min_width,
            max_width=max_width, min_height=min_height, max_height=max_height, level=level, top_k=top_k,
            offset=offset, min_score=min_score)
        reply = await gateway.search(principal, request_message)
        return search_response(reply, str(request.base_url))

    @api.post("/v1/embeddings", response_model=Embeddings)
    async def embeddings(body: EmbeddingsBody, principal: Caller):
        if body.texts is not None:
            reply = await gateway.embed_texts(principal, embedder_pb2.EmbedTextsRequest(texts=body.texts))
            vectors = [list(v.values) for v in reply.vectors]
        else:
            images = [_image_input(spec, f"images[{i}]") for i, spec in enumerate(body.images)]
            reply = await gateway.embed_images(principal, embedder_pb2.EmbedImagesRequest(images=images))
            vectors = [list(r.vector.values) for r in reply.results]
        return Embeddings(model=model_info(reply.model), vectors=vectors)

    @api.get("/v1/datasets", response_model=DatasetList)
    async def list_datasets(principal: Caller):
        return DatasetList(datasets=[dataset(d) for d in (await gateway.list_datasets(principal)).datasets])

    @api.get("/v1/datasets/{name}", response_model=Dataset)
    async def get_dataset(name: str, principal: Caller):
        return dataset(await gateway.get_dataset(principal, name))

    @api.post("/v1/datasets/{name}/files/check", response_model=FilesCheck)
    async def check_files(name: str, body: FilesCheckBody, principal: Caller):
        """Which of these files (key, size, sha256) to upload: those not stored with the same bytes."""
        upload, unchanged = await gateway.check_files(principal, name, [(f.key, f.size, f.sha256) for f in body.files])
        return FilesCheck(upload=upload, unchanged=unchanged)

    @api.put("/v1/datasets/{name}/files/{key:path}", response_model=UploadedFile, status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {}}}})
    async def put_file(name: str, key: str, request: Request, principal: Caller):
        """Stores the request body as <name>/<key> in the bucket (write role); the dataset is
        indexed by its next scan, or at once when the bucket notifies the indexer."""
        content_type = request.headers.get("content-type", "application/octet-stream")
        size, sha = await gateway.put_file(principal, name, key, request.stream(), content_type)
        return UploadedFile(key=key, size=size, sha256=sha)

    @api.post("/v1/datasets/{name}/scan", response_model=Job, status_code=202)
    async def scan_dataset(name: str, principal: Caller):
        return job(await gateway.scan(principal, name))

    @api.post("/v1/datasets/{name}/duplicates", response_model=Job, status_code=202)
    async def find_duplicates(name: str, principal: Caller, body: DuplicatesBody | None = None):
        """Starts a job that finds the dataset's duplicate images (write role): the same file, or
        embeddings at least `threshold` alike, within it and against the datasets named."""
        body = body or DuplicatesBody()
        request = indexer_pb2.FindDuplicatesRequest(dataset=name, against=body.against)
        if body.threshold is not None:
            request.threshold = body.threshold
        return job(await gateway.find_duplicates(principal, request))

    @api.get("/v1/datasets/{name}/duplicates", response_model=Duplicates)
    async def get_duplicates(name: str, request: Request, principal: Caller, job_id: Annotated[str, QueryParameter(
                                 alias="job", description="a duplicates job of the dataset; default: its latest")] = "",
                             limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
                             offset: Annotated[int, QueryParameter(ge=0, le=2**31 - 1)] = 0):
        """The latest (or the named) duplicates job and, once it has finished, a page of its groups."""
        reply = await gateway.duplicates(principal, indexer_pb2.GetDuplicatesRequest(
            dataset=name, job_id=job_id, limit=limit, offset=offset))
        return duplicates(reply, str(request.base_url))

    @api.post("/v1/datasets/{name}/suspects", response_model=Job, status_code=202)
    async def find_suspects(name: str, principal: Caller, body: SuspectsBody | None = None):
        """Starts a job that finds the dataset's annotated boxes whose nearest annotated boxes
        agree on another label (write role)."""
        body = body or SuspectsBody()
        request = indexer_pb2.FindSuspectLabelsRequest(dataset=name)
        if body.neighbours is not None:
            request.neighbours = body.neighbours
        if body.min_agreement is not None:
            request.min_agreement = body.min_agreement
        return job(await gateway.find_suspects(principal, request))

    @api.get("/v1/datasets/{name}/suspects", response_model=Suspects)
    async def get_suspects(name: str, request: Request, principal: Caller,
                           job_id: Annotated[str, QueryParameter(
                               alias="job", description="a suspect-labels job; default: the latest")] = "",
                           label: Annotated[str, QueryParameter(description="only boxes labelled this")] = "",
                           limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
                           offset: Annotated[int, QueryParameter(ge=0, le=2**31 - 1)] = 0):
        """The latest (or the named) suspect-labels job and, once it has finished, a page of its
        suspects, most certain first."""
        reply = await gateway.suspects(principal, indexer_pb2.GetSuspectLabelsRequest(
            dataset=name, job_id=job_id, label=label, limit=limit, offset=offset))
        return suspects(reply, str(request.base_url))

    @api.get("/v1/datasets/{name}/duplicates/export", response_class=Response,
             responses={200: {"description": "the groups as a file",
                              "content": {FORMATS[f][0]: {} for f in GROUP_FORMATS}}, 409: PROBLEMS[409]})
    async def export_duplicates(name: str, request: Request, principal: Caller,
                                format: Literal["jsonl", "csv"] = "jsonl", job_id: Annotated[str, QueryParameter(
                                    alias="job", description="default: the dataset's latest duplicates job")] = ""):
        """Every group of a finished duplicates job as a file: a group per JSON line, or a CSV row per image."""
        async def page(job: str, offset: int):
            reply = duplicates(await gateway.duplicates(principal, indexer_pb2.GetDuplicatesRequest(
                dataset=name, job_id=job, limit=1000, offset=offset)), str(request.base_url))
            return reply.job, reply.groups, reply.total_groups

        groups = await _every_page(page, job_id)
        return _download(export_groups(groups, format), format, f"{name}-duplicates")

    @api.get("/v1/datasets/{name}/suspects/export", response_class=Response,
             responses={200: {"description": "the suspects as a file",
                              "content": {media: {} for media, _ in FORMATS.values()}}, 409: PROBLEMS[409]})
    async def export_suspects_file(name: str, request: Request, principal: Caller,
                                   format: Literal["jsonl", "csv", "coco"] = "jsonl",
                                   job_id: Annotated[str, QueryParameter(
                                       alias="job", description="default: the latest suspect-labels job")] = "",
                                   label: Annotated[str, QueryParameter(description="only boxes labelled this")] = ""):
        """Every suspect of a finished suspect-labels job as a file: JSON lines, CSV, or COCO (each
        suspect box an annotation of its current label, with the suggested one beside it)."""
        async def page(job: str, offset: int):
            reply = suspects(await gateway.suspects(principal, indexer_pb2.GetSuspectLabelsRequest(
                dataset=name, job_id=job, label=label, limit=1000, offset=offset)), str(request.base_url))
            return reply.job, reply.suspects, reply.total_suspects

        found = await _every_page(page, job_id)
        return _download(export_suspects(found, format), format, f"{name}-suspects")

    @api.post("/v1/datasets/{name}/map", response_model=Job, status_code=202)
    async def make_map(name: str, principal: Caller, body: MapBody | None = None):
        """Starts a job that projects the dataset's image (or object) vectors to 2-D with UMAP
        (write role)."""
        body = body or MapBody()
        request = indexer_pb2.MakeMapRequest(dataset=name, level=body.level)
        if body.max_points is not None:
            request.max_points = body.max_points
        return job(await gateway.make_map(principal, request))

    @api.get("/v1/datasets/{name}/map", response_model=Map)
    async def get_map(name: str, principal: Caller, level: Literal["images", "objects"] = "images",
                      job_id: Annotated[str, QueryParameter(
                          alias="job", description="default: the latest of the level")] = "",
                      points: Annotated[int, QueryParameter(ge=1, le=MAX_MAP_POINTS, description="the most returned")
                                        ] = MAP_POINTS_SHOWN):
        """The latest map job of the level (or the named one) and, once it has finished, its
        points: all of them, or a fixed random sample of `points`."""
        return map_reply(await gateway.map(principal, indexer_pb2.GetMapRequest(
            dataset=name, job_id=job_id, level=level, points=points)))

    @api.get("/v1/datasets/{name}/map/export", response_class=Response,
             responses={200: {"description": "the points as a file",
                              "content": {FORMATS[f][0]: {} for f in GROUP_FORMATS}}, 409: PROBLEMS[409]})
    async def export_map(name: str, principal: Caller, level: Literal["images", "objects"] = "images",
                         format: Literal["jsonl", "csv"] = "jsonl", job_id: Annotated[str, QueryParameter(
                             alias="job", description="default: the latest of the level")] = ""):
        """Every point of a finished map job as a file: x, y, the image, its labels (and box)."""
        reply = map_reply(await gateway.map(principal, indexer_pb2.GetMapRequest(
            dataset=name, job_id=job_id, level=level, points=MAX_MAP_POINTS)))
        _check_finished(reply.job)
        return _download(export_points(reply.points, format), format, f"{name}-map-{reply.job.map.level}")

    @api.delete("/v1/datasets/{name}", response_model=Deleted)
    async def delete_dataset(name: str, principal: Caller):
        return Deleted(deleted_entries=(await gateway.delete_dataset(principal, name)).deleted_entries)

    @api.get("/v1/jobs/{job_id}", response_model=Job)
    async def get_job(job_id: str, principal: Caller):
        return job(await gateway.get_job(principal, job_id))

    @api.get("/v1/jobs", response_model=JobList)
    async def list_jobs(principal: Caller, dataset: str = "", limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50):
        reply = await gateway.list_jobs(principal, indexer_pb2.ListJobsRequest(dataset=dataset, limit=limit))
        return JobList(jobs=[job(j) for j in reply.jobs])

    @api.post("/v1/thumbnails", response_model=Thumbnails)
    async def thumbnails(body: ThumbnailsBody, request: Request, principal: Caller):
        image_format = body.format or ("webp" if "image/webp" in request.headers.get("accept", "") else "jpeg")
        items = [(i.dataset, i.key, body.size, images.Box(*i.box) if i.box else None, image_format)
                 for i in body.images]
        return Thumbnails(thumbnails=[thumbnail_item(t) for t in await gateway.thumbnails(principal, items)])

    @api.get("/v1/images/{dataset_name}/{key:path}", response_class=StreamingResponse,
             responses={200: {"content": {"image/*": {}}}, 304: {"description": "the cached thumbnail is current"},
                        307: {"description": "presigned storage URL"}})
    async def get_image(
        dataset_name: str, key: str, request: Request, principal: Caller,
        size: Annotated[int | None, QueryParameter(description="a thumbnail at most this many pixels on its longer "
                                                               "side (16 to 1024)")] = None,
        box: Annotated[str | None, QueryParameter(description="x1,y1,x2,y2: only this region (a crop)")] = None,
        format: Annotated[Literal["webp", "jpeg"] | None, QueryParameter(
            description="the thumbnail's format (default: webp if the client accepts it)")] = None,
    ):
        if size is not None or box is not None:
            accepts_webp = "image/webp" in request.headers.get("accept", "")
            thumb = await gateway.thumbnail(
                principal, dataset_name, key, size or DEFAULT_THUMBNAIL, _box(box) if box is not None else None,
                format or ("webp" if accepts_webp else "jpeg"), request.headers.get("if-none-match"))
            headers = {"ETag": thumb.etag, "Cache-Control": THUMBNAIL_CACHE_CONTROL, "Vary": "Accept"}
            if not thumb.data:
                return Response(status_code=304, headers=headers)
            return Response(thumb.data, media_type=thumb.content_type, headers=headers)
        if gateway.settings.image_redirect:
            return RedirectResponse(await gateway.image_url(principal, dataset_name, key), status_code=307)
        content_type, size_bytes, chunks = await gateway.image(principal, dataset_name, key)
        return StreamingResponse(chunks, media_type=content_type, headers={"Content-Length": str(size_bytes)})

    app.include_router(api)
    app.openapi = functools.partial(_openapi, app)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document, with errors declared as what they are: application/problem+json."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for operation in (op for path in document["paths"].values() for op in path.values()):
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    content[PROBLEM] = content.pop("application/json")
        app.openapi_schema = document
    return app.openapi_schema


async def _every_page(page, job_id: str) -> list:
    """Every result of an analysis job, a page at a time: page(job, offset) -> (job, items, total).
    The first page names the job, so every page reads the same one."""
    job, items, total = await page(job_id, 0)
    _check_finished(job)
    found = list(items)
    while items and len(found) < total:
        _, items, total = await page(job.id, len(found))
        found += items
    return found


def _check_finished(job: Job) -> None:
    """An analysis job is exported once it has ended well, never half done."""
    if job.state in ("queued", "running"):
        raise GatewayError(409, f"the {job.kind} job {job.id} has not finished: export it when it has")
    if job.state == "failed":
        raise GatewayError(409, f"the {job.kind} job {job.id} failed ({job.error}): nothing to export")


def _download(data: bytes, format: str, name: str) -> Response:
    media_type, extension = FORMATS[format]
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{quote(name, safe="")}.{extension}"'})


def _box(text: str) -> images.Box:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError as error:
        raise GatewayError(422, f"box is {text[:60]!r}: give x1,y1,x2,y2") from error
    return images.Box(x1, y1, x2, y2)


def _form_text(text: str) -> str:
    """A form field's text, if it is valid Unicode."""
    try:
        return check_text(text)
    except ValueError as error:
        raise GatewayError(422, f"{text[:40]!r} {error}") from error


def _split(text: str) -> list[str]:
    return [part.strip() for part in _form_text(text).split(",") if part.strip()]
