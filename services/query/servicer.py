"""The Query gRPC service (protos/vizsearch/v1/query.proto): a thin layer over search.py."""

import grpc

from services.common.genproto.vizsearch.v1 import query_pb2_grpc
from services.query.search import Searcher, SearchError


class QueryServicer(query_pb2_grpc.QueryServicer):
    def __init__(self, searcher: Searcher | None = None):
        self.searcher = searcher  # set once the backends answer

    async def Search(self, request, context):
        if self.searcher is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the query service is still connecting to its backends")
        try:
            return await self.searcher.search(request, context.time_remaining())
        except SearchError as error:
            await context.abort(error.code, str(error))
