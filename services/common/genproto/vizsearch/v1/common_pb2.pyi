from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectRef(_message.Message):
    __slots__ = ("dataset", "key")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    key: str
    def __init__(self, dataset: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class ImageInput(_message.Message):
    __slots__ = ("data", "ref", "box", "box_margin", "boxes")
    DATA_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    BOX_MARGIN_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    ref: ObjectRef
    box: Box
    box_margin: float
    boxes: _containers.RepeatedCompositeFieldContainer[Box]
    def __init__(self, data: _Optional[bytes] = ..., ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., box_margin: _Optional[float] = ..., boxes: _Optional[_Iterable[_Union[Box, _Mapping]]] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_id", "dimension", "version", "image_size", "max_text_tokens", "runtime", "jpeg_decode")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    JPEG_DECODE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    dimension: int
    version: str
    image_size: int
    max_text_tokens: int
    runtime: str
    jpeg_decode: str
    def __init__(self, model_id: _Optional[str] = ..., dimension: _Optional[int] = ..., version: _Optional[str] = ..., image_size: _Optional[int] = ..., max_text_tokens: _Optional[int] = ..., runtime: _Optional[str] = ..., jpeg_decode: _Optional[str] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
