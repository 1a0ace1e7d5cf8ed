from services.common.genproto.vizsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmbedTextsRequest(_message.Message):
    __slots__ = ("texts",)
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, texts: _Optional[_Iterable[str]] = ...) -> None: ...

class EmbedTextsResponse(_message.Message):
    __slots__ = ("model", "vectors")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelInfo
    vectors: _containers.RepeatedCompositeFieldContainer[_common_pb2.Vector]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ..., vectors: _Optional[_Iterable[_Union[_common_pb2.Vector, _Mapping]]] = ...) -> None: ...

class EmbedImagesRequest(_message.Message):
    __slots__ = ("images", "fail_on_item_error")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    FAIL_ON_ITEM_ERROR_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[_common_pb2.ImageInput]
    fail_on_item_error: bool
    def __init__(self, images: _Optional[_Iterable[_Union[_common_pb2.ImageInput, _Mapping]]] = ..., fail_on_item_error: _Optional[bool] = ...) -> None: ...

class ImageEmbedding(_message.Message):
    __slots__ = ("vector", "error", "width", "height", "sha256", "boxes")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    vector: _common_pb2.Vector
    error: _common_pb2.ItemError
    width: int
    height: int
    sha256: str
    boxes: _containers.RepeatedCompositeFieldContainer[BoxEmbedding]
    def __init__(self, vector: _Optional[_Union[_common_pb2.Vector, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., sha256: _Optional[str] = ..., boxes: _Optional[_Iterable[_Union[BoxEmbedding, _Mapping]]] = ...) -> None: ...

class BoxEmbedding(_message.Message):
    __slots__ = ("vector", "error", "box")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    vector: _common_pb2.Vector
    error: _common_pb2.ItemError
    box: _common_pb2.Box
    def __init__(self, vector: _Optional[_Union[_common_pb2.Vector, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ..., box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ...) -> None: ...

class EmbedImagesResponse(_message.Message):
    __slots__ = ("model", "results")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelInfo
    results: _containers.RepeatedCompositeFieldContainer[ImageEmbedding]
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelInfo, _Mapping]] = ..., results: _Optional[_Iterable[_Union[ImageEmbedding, _Mapping]]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
