from services.common.genproto.vizsearch.v1 import common_pb2 as _common_pb2
from services.common.genproto.vizsearch.v1 import embedder_pb2 as _embedder_pb2
from services.common.genproto.vizsearch.v1 import indexer_pb2 as _indexer_pb2
from services.common.genproto.vizsearch.v1 import query_pb2 as _query_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetImageRequest(_message.Message):
    __slots__ = ("ref", "size", "box", "format")
    REF_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.ObjectRef
    size: int
    box: _common_pb2.Box
    format: str
    def __init__(self, ref: _Optional[_Union[_common_pb2.ObjectRef, _Mapping]] = ..., size: _Optional[int] = ..., box: _Optional[_Union[_common_pb2.Box, _Mapping]] = ..., format: _Optional[str] = ...) -> None: ...

class ImageChunk(_message.Message):
    __slots__ = ("content_type", "data")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    data: bytes
    def __init__(self, content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class GetThumbnailsRequest(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[GetImageRequest]
    def __init__(self, images: _Optional[_Iterable[_Union[GetImageRequest, _Mapping]]] = ...) -> None: ...

class Thumbnail(_message.Message):
    __slots__ = ("content_type", "data", "etag", "error")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    data: bytes
    etag: str
    error: _common_pb2.ItemError
    def __init__(self, content_type: _Optional[str] = ..., data: _Optional[bytes] = ..., etag: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class GetThumbnailsResponse(_message.Message):
    __slots__ = ("thumbnails",)
    THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    thumbnails: _containers.RepeatedCompositeFieldContainer[Thumbnail]
    def __init__(self, thumbnails: _Optional[_Iterable[_Union[Thumbnail, _Mapping]]] = ...) -> None: ...
