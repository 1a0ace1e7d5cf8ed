"""The Gateway gRPC service (protos/vizsearch/v1/gateway.proto): the same
operations as the HTTP API, through the same core, with the API key in the
`authorization` metadata."""

import functools

from services.common.genproto.vizsearch.v1 import gateway_pb2, gateway_pb2_grpc
from services.gateway.core import Gateway, GatewayError


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

    async def GetImage(self, request: gateway_pb2.GetImageRequest, context):
        principal = await self._caller(context)
        try:
            content_type, _, chunks = await self.gateway.image(principal, request.ref.dataset, request.ref.key)
        except GatewayError as error:
            await context.abort(error.grpc_code, str(error))
        first = True
        async for data in chunks:
            yield gateway_pb2.ImageChunk(content_type=content_type if first else "", data=data)
            first = False
