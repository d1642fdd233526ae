from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MODE_MEMBERSHIP: _ClassVar[Mode]
    MODE_CARDINALITY: _ClassVar[Mode]
MODE_UNSPECIFIED: Mode
MODE_MEMBERSHIP: Mode
MODE_CARDINALITY: Mode

class GetInfoRequest(_message.Message):
    __slots__ = ("official",)
    OFFICIAL_FIELD_NUMBER: _ClassVar[int]
    official: str
    def __init__(self, official: _Optional[str] = ...) -> None: ...

class IndexInfo(_message.Message):
    __slots__ = ("kind", "digest", "size_bytes", "entries")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    kind: Mode
    digest: bytes
    size_bytes: int
    entries: int
    def __init__(self, kind: _Optional[_Union[Mode, str]] = ..., digest: _Optional[bytes] = ..., size_bytes: _Optional[int] = ..., entries: _Optional[int] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_batch", "max_session_elements", "max_message_bytes", "index_chunk_bytes")
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSION_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    INDEX_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_batch: int
    max_session_elements: int
    max_message_bytes: int
    index_chunk_bytes: int
    def __init__(self, max_batch: _Optional[int] = ..., max_session_elements: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., index_chunk_bytes: _Optional[int] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("session_max_records", "organisation_day_remaining", "organisation_30d_remaining", "official_day_remaining", "official_30d_remaining")
    SESSION_MAX_RECORDS_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_DAY_REMAINING_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_30D_REMAINING_FIELD_NUMBER: _ClassVar[int]
    OFFICIAL_DAY_REMAINING_FIELD_NUMBER: _ClassVar[int]
    OFFICIAL_30D_REMAINING_FIELD_NUMBER: _ClassVar[int]
    session_max_records: int
    organisation_day_remaining: int
    organisation_30d_remaining: int
    official_day_remaining: int
    official_30d_remaining: int
    def __init__(self, session_max_records: _Optional[int] = ..., organisation_day_remaining: _Optional[int] = ..., organisation_30d_remaining: _Optional[int] = ..., official_day_remaining: _Optional[int] = ..., official_30d_remaining: _Optional[int] = ...) -> None: ...

class HolderInfo(_message.Message):
    __slots__ = ("protocol_version", "key_id", "schema_fingerprint", "indexes", "limits", "budget", "audit_public_key", "schema_name", "schema_version", "oprf_public_key", "organisation", "key_rotations")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    OPRF_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    KEY_ROTATIONS_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    key_id: bytes
    schema_fingerprint: bytes
    indexes: _containers.RepeatedCompositeFieldContainer[IndexInfo]
    limits: Limits
    budget: Budget
    audit_public_key: bytes
    schema_name: str
    schema_version: int
    oprf_public_key: bytes
    organisation: str
    key_rotations: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, protocol_version: _Optional[int] = ..., key_id: _Optional[bytes] = ..., schema_fingerprint: _Optional[bytes] = ..., indexes: _Optional[_Iterable[_Union[IndexInfo, _Mapping]]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., audit_public_key: _Optional[bytes] = ..., schema_name: _Optional[str] = ..., schema_version: _Optional[int] = ..., oprf_public_key: _Optional[bytes] = ..., organisation: _Optional[str] = ..., key_rotations: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DownloadIndexRequest(_message.Message):
    __slots__ = ("kind", "digest", "offset")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    kind: Mode
    digest: bytes
    offset: int
    def __init__(self, kind: _Optional[_Union[Mode, str]] = ..., digest: _Optional[bytes] = ..., offset: _Optional[int] = ...) -> None: ...

class IndexChunk(_message.Message):
    __slots__ = ("offset", "data", "total_bytes", "digest")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    total_bytes: int
    digest: bytes
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ..., digest: _Optional[bytes] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol_version", "session_id", "mode", "key_id", "schema_fingerprint", "index_digest", "element_count", "batch_size", "batch_digests", "authorization")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    INDEX_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ELEMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    BATCH_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    session_id: bytes
    mode: Mode
    key_id: bytes
    schema_fingerprint: bytes
    index_digest: bytes
    element_count: int
    batch_size: int
    batch_digests: _containers.RepeatedScalarFieldContainer[bytes]
    authorization: bytes
    def __init__(self, protocol_version: _Optional[int] = ..., session_id: _Optional[bytes] = ..., mode: _Optional[_Union[Mode, str]] = ..., key_id: _Optional[bytes] = ..., schema_fingerprint: _Optional[bytes] = ..., index_digest: _Optional[bytes] = ..., element_count: _Optional[int] = ..., batch_size: _Optional[int] = ..., batch_digests: _Optional[_Iterable[bytes]] = ..., authorization: _Optional[bytes] = ...) -> None: ...

class Accept(_message.Message):
    __slots__ = ("session_id", "max_batch")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    max_batch: int
    def __init__(self, session_id: _Optional[bytes] = ..., max_batch: _Optional[int] = ...) -> None: ...

class ElementBatch(_message.Message):
    __slots__ = ("seq", "elements", "proof")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    seq: int
    elements: bytes
    proof: bytes
    def __init__(self, seq: _Optional[int] = ..., elements: _Optional[bytes] = ..., proof: _Optional[bytes] = ...) -> None: ...

class Abort(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Close(_message.Message):
    __slots__ = ("session_id", "transcript_hash", "signature", "signer_key", "checkpoint_note")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_HASH_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNER_KEY_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_NOTE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    transcript_hash: bytes
    signature: bytes
    signer_key: bytes
    checkpoint_note: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., transcript_hash: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., signer_key: _Optional[bytes] = ..., checkpoint_note: _Optional[bytes] = ...) -> None: ...

class Closed(_message.Message):
    __slots__ = ("session_id", "transcript_hash", "element_count", "signature", "signer_key", "checkpoint_note")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_HASH_FIELD_NUMBER: _ClassVar[int]
    ELEMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNER_KEY_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_NOTE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    transcript_hash: bytes
    element_count: int
    signature: bytes
    signer_key: bytes
    checkpoint_note: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., transcript_hash: _Optional[bytes] = ..., element_count: _Optional[int] = ..., signature: _Optional[bytes] = ..., signer_key: _Optional[bytes] = ..., checkpoint_note: _Optional[bytes] = ...) -> None: ...

class MatchClientMessage(_message.Message):
    __slots__ = ("hello", "blinded", "close", "abort")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    BLINDED_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    blinded: ElementBatch
    close: Close
    abort: Abort
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., blinded: _Optional[_Union[ElementBatch, _Mapping]] = ..., close: _Optional[_Union[Close, _Mapping]] = ..., abort: _Optional[_Union[Abort, _Mapping]] = ...) -> None: ...

class MatchServerMessage(_message.Message):
    __slots__ = ("accept", "evaluated", "closed")
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    accept: Accept
    evaluated: ElementBatch
    closed: Closed
    def __init__(self, accept: _Optional[_Union[Accept, _Mapping]] = ..., evaluated: _Optional[_Union[ElementBatch, _Mapping]] = ..., closed: _Optional[_Union[Closed, _Mapping]] = ...) -> None: ...
