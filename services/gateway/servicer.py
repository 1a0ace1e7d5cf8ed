"""The Gateway gRPC service (protos/vizsearch/v1/gateway.proto): the same
operations as the HTTP API, through the same core, with the API key in the
`authorization` metadata."""

import functools

from services.common import images
from services.common.genproto.vizsearch.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc
from services.gateway.core import DEFAULT_THUMBNAIL, Gateway, GatewayError


def _unary(handler):
    """Authenticates and rate-limits the call, then runs the handler with the caller."""

    @functools.wraps(handler)
    async def wrapper(self, request, context):
        principal = await self._caller(context)
        try:
            return await handler(self, principal, request)
        except GatewayError as error:
            await context.abort(error.grpc_code, str(error))

    return wrapper


class GatewayServicer(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    async def _caller(self, context):
        metadata = dict(context.invocation_metadata() or ())
        try:
            return await self.gateway.admit(metadata.get("authorization"), context.peer())
        except GatewayError as error:
            await context.abort(error.grpc_code, str(error))

    @_unary
    async def GetModel(self, principal, request):
        return await self.gateway.model(principal)

    @_unary
    async def Search(self, principal, request):
        return await self.gateway.search(principal, request)

    @_unary
    async def EmbedTexts(self, principal, request):
        return await self.gateway.embed_texts(principal, request)

    @_unary
    async def EmbedImages(self, principal, request):
        return await self.gateway.embed_images(principal, request)

    @_unary
    async def ListDatasets(self, principal, request):
        return await self.gateway.list_datasets(principal)

    @_unary
    async def GetDataset(self, principal, request):
        return await self.gateway.get_dataset(principal, request.name)

    @_unary
    async def ScanDataset(self, principal, request):
        return await self.gateway.scan(principal, request.name)

    @_unary
    async def DeleteDataset(self, principal, request):
        return await self.gateway.delete_dataset(principal, request.name)

    @_unary
    async def GetJob(self, principal, request):
        return await self.gateway.get_job(principal, request.id)

    @_unary
    async def ListJobs(self, principal, request):
        return await self.gateway.list_jobs(principal, request)

    @_unary
    async def FindDuplicates(self, principal, request):
        return await self.gateway.find_duplicates(principal, request)

    @_unary
    async def GetDuplicates(self, principal, request):
        return await self.gateway.duplicates(principal, request)

    @_unary
    async def FindSuspectLabels(self, principal, request):
        return await self.gateway.find_suspects(principal, request)

    @_unary
    async def GetSuspectLabels(self, principal, request):
        return await self.gateway.suspects(principal, request)

    @_unary
    async def MakeMap(self, principal, request):
        return await self.gateway.make_map(principal, request)

    @_unary
    async def GetMap(self, principal, request):
        return await self.gateway.map(principal, request)

    @_unary
    async def GetThumbnails(self, principal, request):
        items = [(i.ref.dataset, i.ref.key, i.size or DEFAULT_THUMBNAIL,
                  images.Box(i.box.x1, i.box.y1, i.box.x2, i.box.y2) if i.HasField("box") else None, i.format or "webp")
                 for i in request.images]
        replies = []
        for thumbnail in await self.gateway.thumbnails(principal, items):
            if isinstance(thumbnail, GatewayError):
                replies.append(gateway_pb2.Thumbnail(error=common_pb2.ItemError(
                    code=thumbnail.grpc_code.value[0], message=str(thumbnail))))
            else:
                replies.append(gateway_pb2.Thumbnail(content_type=thumbnail.content_type, data=thumbnail.data,
                                                     etag=thumbnail.etag))
        return gateway_pb2.GetThumbnailsResponse(thumbnails=replies)

    async def GetImage(self, request: gateway_pb2.GetImageRequest, context):
        principal = await self._caller(context)
        try:
            if request.size or request.HasField("box"):
                box = request.box
                thumbnail = await self.gateway.thumbnail(
                    principal, request.ref.dataset, request.ref.key, request.size or DEFAULT_THUMBNAIL,
                    images.Box(box.x1, box.y1, box.x2, box.y2) if request.HasField("box") else None,
                    request.format or "webp")
                yield gateway_pb2.ImageChunk(content_type=thumbnail.content_type, data=thumbnail.data)
                return
            content_type, _, chunks = await self.gateway.image(principal, request.ref.dataset, request.ref.key)
        except GatewayError as error:
            await context.abort(error.grpc_code, str(error))
        first = True
        async for data in chunks:
            yield gateway_pb2.ImageChunk(content_type=content_type if first else "", data=data)
            first = False
