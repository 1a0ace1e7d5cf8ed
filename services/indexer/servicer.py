"""The Indexer gRPC service: datasets, scans and jobs (see protos/vizsearch/v1/indexer.proto)."""

import asyncio
import functools
import logging

import grpc
import redis
from pymilvus.exceptions import MilvusException

from services.common.genproto.vizsearch.v1 import indexer_pb2, indexer_pb2_grpc
from services.indexer.indexer import Indexer, UnknownDataset
from services.indexer.state import Transient

logger = logging.getLogger(__name__)

MAX_JOBS_LISTED = 1000


def _domain_errors(method):
    """Runs the blocking domain call on a thread and turns its errors into statuses."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await asyncio.to_thread(method, self, request)
        except UnknownDataset as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except ValueError as error:  # a bad name or setting
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except Transient as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except redis.RedisError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"Redis: {error}")
        except MilvusException as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"Milvus: {error}")
        except LookupError as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))

    return wrapper


class IndexerServicer(indexer_pb2_grpc.IndexerServicer):
    def __init__(self, indexer: Indexer):
        self.indexer = indexer

    @_domain_errors
    def CreateDataset(self, request: indexer_pb2.CreateDatasetRequest):
        margin = request.config.box_margin if request.config.HasField("box_margin") else None
        return self.indexer.create(request.name, margin)

    @_domain_errors
    def GetDataset(self, request: indexer_pb2.GetDatasetRequest):
        return self.indexer.get(request.name)

    @_domain_errors
    def ListDatasets(self, request: indexer_pb2.ListDatasetsRequest):
        if request.names_only:
            names = self.indexer.catalog.names()
            return indexer_pb2.ListDatasetsResponse(datasets=[indexer_pb2.Dataset(name=n) for n in names])
        return indexer_pb2.ListDatasetsResponse(datasets=self.indexer.all())

    @_domain_errors
    def DeleteDataset(self, request: indexer_pb2.DeleteDatasetRequest):
        return indexer_pb2.DeleteDatasetResponse(deleted_entries=self.indexer.delete(request.name))

    @_domain_errors
    def ScanDataset(self, request: indexer_pb2.ScanDatasetRequest):
        return self.indexer.scan(request.name)

    @_domain_errors
    def GetJob(self, request: indexer_pb2.GetJobRequest):
        job = self.indexer.job(request.id)
        if job is None:
            raise LookupError(f"no job {request.id!r}")
        return job

    @_domain_errors
    def ListJobs(self, request: indexer_pb2.ListJobsRequest):
        if request.limit < 0 or request.limit > MAX_JOBS_LISTED:
            raise ValueError(f"limit is {request.limit}: give 1 to {MAX_JOBS_LISTED} (0 for 50)")
        jobs = self.indexer.jobs.recent(request.dataset, limit=request.limit or 50)
        return indexer_pb2.ListJobsResponse(jobs=jobs)

    @_domain_errors
    def FindDuplicates(self, request: indexer_pb2.FindDuplicatesRequest):
        threshold = request.threshold if request.HasField("threshold") else None
        return self.indexer.find_duplicates(request.dataset, list(request.against), threshold)

    @_domain_errors
    def GetDuplicates(self, request: indexer_pb2.GetDuplicatesRequest):
        return self.indexer.duplicates(request.dataset, request.job_id, request.limit, request.offset)

    @_domain_errors
    def FindSuspectLabels(self, request: indexer_pb2.FindSuspectLabelsRequest):
        neighbours = request.neighbours if request.HasField("neighbours") else None
        min_agreement = request.min_agreement if request.HasField("min_agreement") else None
        return self.indexer.find_suspects(request.dataset, neighbours, min_agreement)

    @_domain_errors
    def GetSuspectLabels(self, request: indexer_pb2.GetSuspectLabelsRequest):
        return self.indexer.suspects(request.dataset, request.job_id, request.limit, request.offset, request.label)

    @_domain_errors
    def MakeMap(self, request: indexer_pb2.MakeMapRequest):
        max_points = request.max_points if request.HasField("max_points") else None
        return self.indexer.make_map(request.dataset, request.level, max_points)

    @_domain_errors
    def GetMap(self, request: indexer_pb2.GetMapRequest):
        return self.indexer.map(request.dataset, request.job_id, request.level, request.points)
