"""The names the HTTP API, the stored entries and the logs use for the wire's enums:
one mapping each way, so every door and store spells them alike."""

import time

from services.common.genproto.vizsearch.v1 import common_pb2, indexer_pb2, query_pb2

# An object box's source: the HTTP name is also the value stored in Milvus's `source` field.
GROUND_TRUTH = "ground_truth"
PREDICTION = "prediction"
SOURCE_NAMES = {query_pb2.OBJECT_SOURCE_GROUND_TRUTH: GROUND_TRUTH, query_pb2.OBJECT_SOURCE_PREDICTION: PREDICTION}
SOURCE_ENUMS = {name: value for value, name in SOURCE_NAMES.items()}
LEVEL_NAMES = {query_pb2.LEVEL_IMAGES: "images", query_pb2.LEVEL_OBJECTS: "objects"}
LEVEL_ENUMS = {name: value for value, name in LEVEL_NAMES.items()}
JOB_STATE_NAMES = {value: name.removeprefix("JOB_STATE_").lower() for name, value in indexer_pb2.JobState.items()}
JOB_STATE_ENUMS = {name: value for value, name in JOB_STATE_NAMES.items()}
FINISHED_JOB_STATES = frozenset(
    {indexer_pb2.JOB_STATE_SUCCEEDED, indexer_pb2.JOB_STATE_COMPLETED_WITH_FAILURES, indexer_pb2.JOB_STATE_FAILED})

# How long a service trusts the embedder's model description: a model switch is noticed
# within this, and a busy service asks for it twice a minute, not once per request.
MODEL_INFO_TTL_S = 30.0


class ModelInfoCache:
    """The embedder's model description, as last read, until it is MODEL_INFO_TTL_S old."""

    def __init__(self):
        self._read: tuple[float, common_pb2.ModelInfo] | None = None

    def fresh(self) -> common_pb2.ModelInfo | None:
        read = self._read
        return read[1] if read and time.monotonic() - read[0] < MODEL_INFO_TTL_S else None

    def keep(self, info: common_pb2.ModelInfo) -> common_pb2.ModelInfo:
        self._read = (time.monotonic(), info)
        return info
