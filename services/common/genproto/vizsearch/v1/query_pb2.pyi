from services.common.genproto.vizsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Level(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEVEL_UNSPECIFIED: _ClassVar[Level]
    LEVEL_IMAGES: _ClassVar[Level]
    LEVEL_OBJECTS: _ClassVar[Level]

class ObjectSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECT_SOURCE_UNSPECIFIED: _ClassVar[ObjectSource]
    OBJECT_SOURCE_GROUND_TRUTH: _ClassVar[ObjectSource]
    OBJECT_SOURCE_PREDICTION: _ClassVar[ObjectSource]
LEVEL_UNSPECIFIED: Level
LEVEL_IMAGES: Level
LEVEL_OBJECTS: Level
OBJECT_SOURCE_UNSPECIFIED: ObjectSource
OBJECT_SOURCE_GROUND_TRUTH: ObjectSource
OBJECT_SOURCE_PREDICTION: ObjectSource

class WeightedQuery(_message.Message):
    __slots__ = ("query", "weight")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    query: QueryTerm
    weight: float
    def __init__(self, query: _Optional[_Union[QueryTerm, _Mapping]] = ..., weight: _Optional[float] = ...) -> None: ...

class Combination(_message.Message):
    __slots__ = ("terms",)
    TERMS_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.RepeatedCompositeFieldContainer[WeightedQuery]
    def __init__(self, terms: _Optional[_Iterable[_Union[WeightedQuery, _Mapping]]] = ...) -> None: ...

class QueryTerm(_message.Message):
    __slots__ = ("text", "image", "object", "all")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    text: str
    image: _common_pb2.ImageInput
    object: _common_pb2.ImageInput
    all: Combination
    def __init__(self, text: _Optional[str] = ..., image: _Optional[_Union[_common_pb2.ImageInput, _Mapping]] = ..., object: _Optional[_Union[_common_pb2.ImageInput, _Mapping]] = ..., all: _Optional[_Union[Combination, _Mapping]] = ...) -> None: ...

class Filters(_message.Message):
    __slots__ = ("datasets", "labels", "sources", "min_box_area", "exclude_labels", "all_labels", "key_prefix", "min_width", "max_width", "min_height", "max_height")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    MIN_BOX_AREA_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_LABELS_FIELD_NUMBER: _ClassVar[int]
    ALL_LABELS_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MIN_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MAX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MIN_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedScalarFieldContainer[ObjectSource]
    min_box_area: float
    exclude_labels: _containers.RepeatedScalarFieldContainer[str]
    all_labels: _containers.RepeatedScalarFieldContainer[str]
    key_prefix: str
    min_width: int
    max_width: int
    min_height: int
    max_height: int
    def __init__(self, datasets: _Optional[_Iterable[str]] = ..., labels: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[_Union[ObjectSource, str]]] = ..., min_box_area: _Optional[float] = ..., exclude_labels: _Optional[_Iterable[str]] = ..., all_labels: _Optional[_Iterable[str]] = ..., key_prefix: _Optional[str] = ..., min_width: _Optional[int] = ..., max_width: _Optional[int] = ..., min_height: _Optional[int] = ..., max_height: _Optional[int] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("query", "filters", "level", "top_k", "offset", "min_score")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    query: QueryTerm
    filters: Filters
    level: Level
    top_k: int
    offset: int
    min_score: float
    def __init__(self, query: _Optional[_Union[QueryTerm, _Mapping]] = ..., filters: _Optional[_Union[Filters, _Mapping]] = ..., level: _Optional[_Union[Level, str]] = ..., top_k: _Optional[int] = ..., offset: _Optional[int] = ..., min_score: _Optional[float] = ...) -> None: ...

class ObjectHit(_message.Message):
    __slots__ = ("box", "label", "source", "detector_score", "score")
    BOX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    box: _common_pb2.Box
    label: str
    source: ObjectSource
    detector_score: float
    score: float
    def __init__(self, box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ..., label: _Optional[str] = ..., source: _Optional[_Union[ObjectSource, str]] = ..., detector_score: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class ImageHit(_message.Message):
    __slots__ = ("dataset", "key", "score", "width", "height", "objects")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    key: str
    score: float
    width: int
    height: int
    objects: _containers.RepeatedCompositeFieldContainer[ObjectHit]
    def __init__(self, dataset: _Optional[str] = ..., key: _Optional[str] = ..., score: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., objects: _Optional[_Iterable[_Union[ObjectHit, _Mapping]]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("model", "took_ms", "results")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOOK_MS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelInfo
    took_ms: float
    results: _containers.RepeatedCompositeFieldContainer[ImageHit]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ..., took_ms: _Optional[float] = ..., results: _Optional[_Iterable[_Union[ImageHit, _Mapping]]] = ...) -> None: ...
