from services.common.genproto.vizsearch.v1 import common_pb2 as _common_pb2
from services.common.genproto.vizsearch.v1 import embedder_pb2 as _embedder_pb2
from services.common.genproto.vizsearch.v1 import indexer_pb2 as _indexer_pb2
from services.common.genproto.vizsearch.v1 import query_pb2 as _query_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
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
