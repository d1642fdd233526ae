"""Who gets a token: the issuer's own rules, applied to each row of ORDERS.csv.

A row is eligible when its order is final (``final_field`` equals ``final_value``), its
order date meets the schema's legal basis (present, not in the future, not too old) and
its person has not already received tokens for ``max_addresses_per_person`` other
addresses in this epoch. The count is kept per epoch across runs in ``state_dir``, under
keyed digests (HMAC-SHA256 with a key derived from the seed), so the state file holds no
name or address in the clear.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from blindmatch.issuer.epochs import Epoch
from blindmatch.keyfile import fsync_directory
from blindmatch.normalize import Schema

STATE_KEY_DST = b"blindmatch/v1 issuer state key"

# Why a row got no token; the statuses of the issuance report (no values, only causes).
NOT_FINAL = "order not final"
OVER_ADDRESS_CAP = "address cap reached"


class StateDigest:
    """The keyed digest under which the issuer's state names persons, addresses and requests.

    HMAC-SHA256 with a key derived from the OPRF seed: the state files and the audit log
    can compare values without holding them, and nobody without the seed can test a
    guessed name or address against them.
    """

    def __init__(self, seed: bytes) -> None:
        self._key = hmac.new(seed, STATE_KEY_DST, hashlib.sha256).digest()

    def __call__(self, value: bytes) -> str:
        return hmac.new(self._key, value, hashlib.sha256).hexdigest()


@contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Serialise the commands that read, decide on and replace the issuer's state files.

    Two clerks approving at once, or an approval during an issuance, would otherwise each
    read the same state and the later write would drop the earlier one's links or counts.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / ".state.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # also releases the lock


def write_state_json(path: Path, state: object) -> None:
    """Replace ``path`` with ``state`` atomically and durably: a crash leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as handle:
        json.dump(state, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


class AddressLedger:
    """Distinct addresses per person that received tokens in one epoch (keyed digests only)."""

    def __init__(self, state_dir: Path, epoch: Epoch, seed: bytes, cap: int) -> None:
        self._path = state_dir / f"addresses-{epoch.name}.json"
        self.digest = StateDigest(seed)
        self._cap = cap
        self._state: dict[str, list[str]] = json.loads(self._path.read_text()) if self._path.exists() else {}

    def admit(self, person: bytes, address: bytes) -> bool:
        """True (and recorded) when ``address`` is known or still under the cap for ``person``."""
        addresses = self._state.setdefault(self.digest(person), [])
        digest = self.digest(address)
        if digest in addresses:
            return True
        if len(addresses) >= self._cap:
            return False
        addresses.append(digest)
        return True

    def issued(self, person: str) -> set[str]:
        """The address digests the person (a digest) received tokens for in this epoch."""
        return set(self._state.get(person, ()))

    def save(self) -> None:
        write_state_json(self._path, self._state)


def refusal(record: Mapping[str, str], schema: Schema, final_field: str, final_value: str, today: date) -> str | None:
    """Why the order of ``record`` does not qualify, or None when it does."""
    if str(record.get(final_field, "")).strip().casefold() != final_value.casefold():
        return NOT_FINAL
    return schema.check_basis(record, today)


def person_of(schema: Schema, record: Mapping[str, str], row: int) -> bytes:
    """The person of a record for the address cap: its normalised name field(s)."""
    views = schema.normalize_record(record, row)
    names = [views[f][""] for f in schema.tier_fields if schema.fields[f].split("/")[0] == "name"]
    return "\x1f".join(v if isinstance(v, str) else "\x1e".join(v) for v in names).encode("utf-8")
