from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_MODE_UNSPECIFIED: _ClassVar[JobMode]
    JOB_MODE_MEMBERSHIP: _ClassVar[JobMode]
    JOB_MODE_CARDINALITY: _ClassVar[JobMode]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_REFUSED: _ClassVar[JobState]
    JOB_STATE_HOLDER_UNAVAILABLE: _ClassVar[JobState]
    JOB_STATE_AWAITING_APPROVAL: _ClassVar[JobState]
    JOB_STATE_REJECTED: _ClassVar[JobState]
JOB_MODE_UNSPECIFIED: JobMode
JOB_MODE_MEMBERSHIP: JobMode
JOB_MODE_CARDINALITY: JobMode
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_REFUSED: JobState
JOB_STATE_HOLDER_UNAVAILABLE: JobState
JOB_STATE_AWAITING_APPROVAL: JobState
JOB_STATE_REJECTED: JobState

class JobSpec(_message.Message):
    __slots__ = ("queries_path", "out_path", "mode")
    QUERIES_PATH_FIELD_NUMBER: _ClassVar[int]
    OUT_PATH_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    queries_path: str
    out_path: str
    mode: JobMode
    def __init__(self, queries_path: _Optional[str] = ..., out_path: _Optional[str] = ..., mode: _Optional[_Union[JobMode, str]] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("job_id", "resumed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    resumed: bool
    def __init__(self, job_id: _Optional[str] = ..., resumed: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ("job_id", "state", "mode", "records", "ineligible", "invalid", "elements_total", "elements_done", "matches", "error", "reason", "status_code", "out_path")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    INELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    INVALID_FIELD_NUMBER: _ClassVar[int]
    ELEMENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ELEMENTS_DONE_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    OUT_PATH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    mode: JobMode
    records: int
    ineligible: int
    invalid: int
    elements_total: int
    elements_done: int
    matches: int
    error: str
    reason: str
    status_code: str
    out_path: str
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., mode: _Optional[_Union[JobMode, str]] = ..., records: _Optional[int] = ..., ineligible: _Optional[int] = ..., invalid: _Optional[int] = ..., elements_total: _Optional[int] = ..., elements_done: _Optional[int] = ..., matches: _Optional[int] = ..., error: _Optional[str] = ..., reason: _Optional[str] = ..., status_code: _Optional[str] = ..., out_path: _Optional[str] = ...) -> None: ...
