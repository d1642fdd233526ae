from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetEpochRequest(_message.Message):
    __slots__ = ("at",)
    AT_FIELD_NUMBER: _ClassVar[int]
    at: str
    def __init__(self, at: _Optional[str] = ...) -> None: ...

class EpochInfo(_message.Message):
    __slots__ = ("issuer", "epoch", "not_before", "expires", "public_key")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    epoch: str
    not_before: str
    expires: str
    public_key: bytes
    def __init__(self, issuer: _Optional[str] = ..., epoch: _Optional[str] = ..., not_before: _Optional[str] = ..., expires: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class BlindEvaluateRequest(_message.Message):
    __slots__ = ("epoch", "blinded")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BLINDED_FIELD_NUMBER: _ClassVar[int]
    epoch: str
    blinded: bytes
    def __init__(self, epoch: _Optional[str] = ..., blinded: _Optional[bytes] = ...) -> None: ...

class BlindEvaluateReply(_message.Message):
    __slots__ = ("evaluated", "proof")
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    evaluated: bytes
    proof: bytes
    def __init__(self, evaluated: _Optional[bytes] = ..., proof: _Optional[bytes] = ...) -> None: ...
