from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AddCheckpointRequest(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    def __init__(self, body: _Optional[bytes] = ...) -> None: ...

class AddCheckpointResponse(_message.Message):
    __slots__ = ("cosignatures",)
    COSIGNATURES_FIELD_NUMBER: _ClassVar[int]
    cosignatures: bytes
    def __init__(self, cosignatures: _Optional[bytes] = ...) -> None: ...
