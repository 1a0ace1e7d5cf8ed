import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.common.genproto.vizsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_COMPLETED_WITH_FAILURES: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_COMPLETED_WITH_FAILURES: JobState
JOB_STATE_FAILED: JobState

class DatasetConfig(_message.Message):
    __slots__ = ("box_margin",)
    BOX_MARGIN_FIELD_NUMBER: _ClassVar[int]
    box_margin: float
    def __init__(self, box_margin: _Optional[float] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("name", "config", "images", "objects", "failed", "last_job")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: DatasetConfig
    images: int
    objects: int
    failed: int
    last_job: Job
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[DatasetConfig, _Mapping]] = ..., images: _Optional[int] = ..., objects: _Optional[int] = ..., failed: _Optional[int] = ..., last_job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class CreateDatasetRequest(_message.Message):
    __slots__ = ("name", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: DatasetConfig
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[DatasetConfig, _Mapping]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("names_only",)
    NAMES_ONLY_FIELD_NUMBER: _ClassVar[int]
    names_only: bool
    def __init__(self, names_only: _Optional[bool] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteDatasetResponse(_message.Message):
    __slots__ = ("deleted_entries",)
    DELETED_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    deleted_entries: int
    def __init__(self, deleted_entries: _Optional[int] = ...) -> None: ...

class ScanDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class JobFailure(_message.Message):
    __slots__ = ("key", "reason")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key: str
    reason: str
    def __init__(self, key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "dataset", "state", "total", "done", "failed", "skipped", "failures", "throughput", "eta_seconds", "created_at", "finished_at", "kind", "model_version", "objects", "annotation_errors", "error", "started_at", "duplicates", "suspects", "map")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATION_ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    SUSPECTS_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset: str
    state: JobState
    total: int
    done: int
    failed: int
    skipped: int
    failures: _containers.RepeatedCompositeFieldContainer[JobFailure]
    throughput: float
    eta_seconds: float
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    kind: str
    model_version: str
    objects: int
    annotation_errors: int
    error: str
    started_at: _timestamp_pb2.Timestamp
    duplicates: DuplicateSearch
    suspects: SuspectSearch
    map: MapProjection
    def __init__(self, id: _Optional[str] = ..., dataset: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., total: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[JobFailure, _Mapping]]] = ..., throughput: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., model_version: _Optional[str] = ..., objects: _Optional[int] = ..., annotation_errors: _Optional[int] = ..., error: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duplicates: _Optional[_Union[DuplicateSearch, _Mapping]] = ..., suspects: _Optional[_Union[SuspectSearch, _Mapping]] = ..., map: _Optional[_Union[MapProjection, _Mapping]] = ...) -> None: ...

class DuplicateSearch(_message.Message):
    __slots__ = ("datasets", "threshold")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedScalarFieldContainer[str]
    threshold: float
    def __init__(self, datasets: _Optional[_Iterable[str]] = ..., threshold: _Optional[float] = ...) -> None: ...

class FindDuplicatesRequest(_message.Message):
    __slots__ = ("dataset", "against", "threshold")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    AGAINST_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    against: _containers.RepeatedScalarFieldContainer[str]
    threshold: float
    def __init__(self, dataset: _Optional[str] = ..., against: _Optional[_Iterable[str]] = ..., threshold: _Optional[float] = ...) -> None: ...

class GetDuplicatesRequest(_message.Message):
    __slots__ = ("dataset", "job_id", "limit", "offset")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    job_id: str
    limit: int
    offset: int
    def __init__(self, dataset: _Optional[str] = ..., job_id: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class DuplicateGroup(_message.Message):
    __slots__ = ("images", "min_similarity", "max_similarity", "exact")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    MIN_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectRef]
    min_similarity: float
    max_similarity: float
    exact: bool
    def __init__(self, images: _Optional[_Iterable[_Union[_common_pb2.ObjectRef, _Mapping]]] = ..., min_similarity: _Optional[float] = ..., max_similarity: _Optional[float] = ..., exact: _Optional[bool] = ...) -> None: ...

class GetDuplicatesResponse(_message.Message):
    __slots__ = ("job", "groups", "total_groups", "duplicate_images")
    JOB_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_GROUPS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_IMAGES_FIELD_NUMBER: _ClassVar[int]
    job: Job
    groups: _containers.RepeatedCompositeFieldContainer[DuplicateGroup]
    total_groups: int
    duplicate_images: int
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., groups: _Optional[_Iterable[_Union[DuplicateGroup, _Mapping]]] = ..., total_groups: _Optional[int] = ..., duplicate_images: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("dataset", "limit")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    limit: int
    def __init__(self, dataset: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class SuspectSearch(_message.Message):
    __slots__ = ("neighbours", "min_agreement")
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    MIN_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    neighbours: int
    min_agreement: float
    def __init__(self, neighbours: _Optional[int] = ..., min_agreement: _Optional[float] = ...) -> None: ...

class FindSuspectLabelsRequest(_message.Message):
    __slots__ = ("dataset", "neighbours", "min_agreement")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    MIN_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    neighbours: int
    min_agreement: float
    def __init__(self, dataset: _Optional[str] = ..., neighbours: _Optional[int] = ..., min_agreement: _Optional[float] = ...) -> None: ...

class GetSuspectLabelsRequest(_message.Message):
    __slots__ = ("dataset", "job_id", "limit", "offset", "label")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    job_id: str
    limit: int
    offset: int
    label: str
    def __init__(self, dataset: _Optional[str] = ..., job_id: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., label: _Optional[str] = ...) -> None: ...

class SuspectNeighbour(_message.Message):
    __slots__ = ("key", "box", "label", "similarity")
    KEY_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    key: str
    box: _common_pb2.Box
    label: str
    similarity: float
    def __init__(self, key: _Optional[str] = ..., box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ..., label: _Optional[str] = ..., similarity: _Optional[float] = ...) -> None: ...

class SuspectLabel(_message.Message):
    __slots__ = ("key", "box", "label", "suggested_label", "agreement", "neighbours", "width", "height")
    KEY_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_LABEL_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    key: str
    box: _common_pb2.Box
    label: str
    suggested_label: str
    agreement: float
    neighbours: _containers.RepeatedCompositeFieldContainer[SuspectNeighbour]
    width: int
    height: int
    def __init__(self, key: _Optional[str] = ..., box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ..., label: _Optional[str] = ..., suggested_label: _Optional[str] = ..., agreement: _Optional[float] = ..., neighbours: _Optional[_Iterable[_Union[SuspectNeighbour, _Mapping]]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class GetSuspectLabelsResponse(_message.Message):
    __slots__ = ("job", "suspects", "total_suspects")
    JOB_FIELD_NUMBER: _ClassVar[int]
    SUSPECTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SUSPECTS_FIELD_NUMBER: _ClassVar[int]
    job: Job
    suspects: _containers.RepeatedCompositeFieldContainer[SuspectLabel]
    total_suspects: int
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., suspects: _Optional[_Iterable[_Union[SuspectLabel, _Mapping]]] = ..., total_suspects: _Optional[int] = ...) -> None: ...

class MapProjection(_message.Message):
    __slots__ = ("level", "max_points")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    level: str
    max_points: int
    def __init__(self, level: _Optional[str] = ..., max_points: _Optional[int] = ...) -> None: ...

class MakeMapRequest(_message.Message):
    __slots__ = ("dataset", "level", "max_points")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    level: str
    max_points: int
    def __init__(self, dataset: _Optional[str] = ..., level: _Optional[str] = ..., max_points: _Optional[int] = ...) -> None: ...

class GetMapRequest(_message.Message):
    __slots__ = ("dataset", "job_id", "level", "points")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    job_id: str
    level: str
    points: int
    def __init__(self, dataset: _Optional[str] = ..., job_id: _Optional[str] = ..., level: _Optional[str] = ..., points: _Optional[int] = ...) -> None: ...

class MapPoint(_message.Message):
    __slots__ = ("x", "y", "dataset", "key", "labels", "box")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    dataset: str
    key: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    box: _common_pb2.Box
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., dataset: _Optional[str] = ..., key: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ...) -> None: ...

class GetMapResponse(_message.Message):
    __slots__ = ("job", "points", "total_points")
    JOB_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_POINTS_FIELD_NUMBER: _ClassVar[int]
    job: Job
    points: _containers.RepeatedCompositeFieldContainer[MapPoint]
    total_points: int
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., points: _Optional[_Iterable[_Union[MapPoint, _Mapping]]] = ..., total_points: _Optional[int] = ...) -> None: ...
