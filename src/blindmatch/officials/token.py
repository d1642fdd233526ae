"""An official's Ed25519 key held in a PKCS#11 token (smart card, HSM, SoftHSM).

The private key never leaves the token: the token signs each prepared request with
``CKM_EDDSA`` (pure Ed25519, RFC 8032, no context), and only the public key and the
signatures come out. The binding is ``python-pkcs11`` (the ``pkcs11`` extra), a
maintained, typed Cython wrapper that knows Ed25519 keys (``KeyType.EC_EDWARDS``) and
``Mechanism.EDDSA``; blindmatch writes no PKCS#11 calls of its own.

Each use loads the module, logs in with the PIN, works and finalises the module again
(``C_Finalize``), so nothing stays logged in and a module that reads its configuration
at initialisation (SoftHSM's ``SOFTHSM2_CONF``) sees the current one. The PIN is never
logged nor put into an error message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from blindmatch.crypto.ed25519 import WeakPublicKeyError, load_public_key_strict, verify_strict
from blindmatch.officials.config import TokenConfig
from blindmatch.vocabulary import BlindmatchError

if TYPE_CHECKING:
    from pkcs11 import Session

ED25519_OID = "1.3.101.112"  # RFC 8410 id-Ed25519, the EC_PARAMS of an Ed25519 key
_DER_OCTET_STRING_32 = b"\x04\x20"


class TokenError(BlindmatchError, ValueError):
    """The token, its module, the PIN or the key is not usable; the message names which."""


def _where(config: TokenConfig) -> str:
    return f"token {config.token_label!r} ({config.source})"


@contextlib.contextmanager
def token_session(config: TokenConfig, pin: str, *, write: bool = False) -> Iterator[Session]:
    """A logged-in session on the configured token; every failure is a :class:`TokenError`."""
    try:
        import pkcs11
        from pkcs11 import exceptions as p11e
    except ImportError:
        raise TokenError(f"{config.source}: PKCS#11 support is not installed; "
                         "install it with: pip install 'blindmatch[pkcs11]'") from None
    if not config.library.is_file():
        raise TokenError(f"{config.source}: PKCS#11 library {config.library} does not exist "
                         "(pkcs11.library must name the token vendor's module)")
    try:
        lib = pkcs11.lib(str(config.library))
    except p11e.PKCS11Error as exc:
        raise TokenError(f"{config.source}: cannot load PKCS#11 library {config.library}: {exc}") from None
    try:
        try:
            token = lib.get_token(token_label=config.token_label)
        except p11e.NoSuchToken:
            raise TokenError(f"{config.source}: no token labelled {config.token_label!r} "
                             f"in {config.library}") from None
        except p11e.MultipleTokensReturned:
            raise TokenError(f"{config.source}: more than one token is labelled {config.token_label!r}") from None
        try:
            with token.open(user_pin=pin, rw=write) as session:
                yield session
        except p11e.PinIncorrect:
            raise TokenError(f"wrong PIN for {_where(config)}") from None
        except p11e.PinLocked:
            raise TokenError(f"the PIN of {_where(config)} is locked (too many wrong PINs)") from None
        except (p11e.PinInvalid, p11e.PinLenRange):
            raise TokenError(f"the PIN given for {_where(config)} is not a valid PIN for it") from None
        except p11e.PinExpired:
            raise TokenError(f"the PIN of {_where(config)} has expired; change it with the token's tools") from None
        except p11e.PKCS11Error as exc:
            raise TokenError(f"{_where(config)}: the token refused: {exc.__class__.__name__}") from None
    finally:
        with contextlib.suppress(p11e.PKCS11Error):
            lib.finalize()


def _raw_point(encoded: bytes, config: TokenConfig) -> bytes:
    """CKA_EC_POINT of an Ed25519 key: the 32-byte key, DER-wrapped (PKCS#11 3.0) or raw (some tokens)."""
    raw = encoded[2:] if len(encoded) == 34 and encoded[:2] == _DER_OCTET_STRING_32 else encoded
    try:
        load_public_key_strict(raw, what=f"public key {config.key_label!r} on {_where(config)}")
    except WeakPublicKeyError as exc:
        raise TokenError(f"{exc} (is it an Ed25519 key?)") from None
    return raw


def _find_keys(session: Session, config: TokenConfig) -> tuple[object, bytes]:
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11 import exceptions as p11e

    found = {}
    for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
        try:
            found[object_class] = session.get_key(object_class=object_class, key_type=KeyType.EC_EDWARDS,
                                                  label=config.key_label)
        except p11e.NoSuchKey:
            half = "private" if object_class is ObjectClass.PRIVATE_KEY else "public"
            raise TokenError(f"no Ed25519 {half} key labelled {config.key_label!r} on {_where(config)} "
                             "(check pkcs11.key_label; `official keygen --official-config` creates one)") from None
        except p11e.MultipleObjectsReturned:
            raise TokenError(f"more than one key is labelled {config.key_label!r} on {_where(config)}") from None
    public = _raw_point(bytes(found[ObjectClass.PUBLIC_KEY][Attribute.EC_POINT]), config)
    return found[ObjectClass.PRIVATE_KEY], public


def token_public_key(config: TokenConfig, pin: str) -> bytes:
    """The 32-byte public key of the configured key pair."""
    with token_session(config, pin) as session:
        return _find_keys(session, config)[1]


def sign_on_token(config: TokenConfig, pin: str, messages: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
    """``(public key, signatures)``: the token signs each message with CKM_EDDSA.

    Each signature is verified strictly against the token's public key before it is
    returned: a token that answers with anything else is refused here, not by the holder.
    """
    from pkcs11 import Mechanism
    from pkcs11.types import SignMixin

    with token_session(config, pin) as session:
        private, public = _find_keys(session, config)
        assert isinstance(private, SignMixin)
        signatures = [bytes(private.sign(message, mechanism=Mechanism.EDDSA)) for message in messages]
    for n, (message, signature) in enumerate(zip(messages, signatures, strict=True)):
        if not verify_strict(public, signature, message):
            raise TokenError(f"{_where(config)} returned signature {n} that does not verify under its public key")
    return public, signatures


def generate_on_token(config: TokenConfig, pin: str) -> bytes:
    """Create the configured Ed25519 key pair inside the token (private half sensitive,
    not extractable); refuses when a key with that label exists. Returns the public key."""
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_named_curve_parameters

    with token_session(config, pin, write=True) as session:
        if list(session.get_objects({Attribute.LABEL: config.key_label})):
            raise TokenError(f"{_where(config)} already holds an object labelled {config.key_label!r}; "
                             "refusing to create a second key under that label")
        public, _ = session.generate_keypair(
            KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True, label=config.key_label,
            public_template={Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID), Attribute.VERIFY: True},
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True},
        )
        return _raw_point(bytes(public[Attribute.EC_POINT]), config)
