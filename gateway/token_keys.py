"""Private keys on a PKCS#11 token (a USB token, an HSM; SoftHSM2 in tests): the gateway asks
the token to sign, and the key never leaves it.

The binding is python-pkcs11: maintained, typed, a thin Cython layer over the PKCS#11 C API,
and the one pyHanko's own PKCS#11 signer uses, so XML and PDF signatures go through one
binding (PyKCS11, the other maintained one, is SWIG-generated and exposes the raw C calls).

A token key is shaped as cryptography's private key classes, so the format layer signs with it
exactly as with a key read from a PEM file; what a token cannot do (export, decrypt) says so.
One session per key, used under a lock (a PKCS#11 session runs one operation at a time), and
opened again after a failure: a token pulled out and put back costs the signatures in between,
which wait (TokenUnavailable), not the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from gateway import logs
from gateway.errors import TokenUnavailable

_LIBRARIES: dict[str, Any] = {}  # a PKCS#11 module is initialised once per process
_LIBRARIES_LOCK = threading.Lock()


@dataclass(frozen=True)
class TokenSettings:
    """Where the key is: [signing.pkcs11] (the PIN read from its file, never logged)."""

    module: Path
    token_label: str
    key_label: str
    pin: str = field(repr=False)

    @property
    def where(self) -> str:
        return f"token {self.token_label!r}, key {self.key_label!r} ({self.module})"


class _Token:
    """One logged-in session on one token, shared by every key on it: PKCS#11 logs a whole
    application in, so a second login to the same token is refused (UserAlreadyLoggedIn).
    Operations on a session run one at a time, under its lock."""

    def __init__(self, module: Path, label: str, pin: str) -> None:
        self.module, self.label, self.pin = module, label, pin
        self.lock = threading.Lock()
        self.session: Any = None
        self.generation = 0  # counts sessions opened: a key found in an earlier one is found again
        # A token that refused the PIN is not asked again by this process: each try counts
        # towards locking it (a replaced token, a PIN changed under a running gateway).
        self.refused: TokenUnavailable | None = None

    def open(self, where: str) -> Any:
        """The session (the caller holds the lock), opened if there is none."""
        if self.session is not None:
            return self.session
        if self.refused is not None:  # a new exception each time: one raised again grows its traceback
            raise TokenUnavailable(self.refused.message, where=self.refused.where)
        library = _library(self.module)
        try:
            token = library.get_token(token_label=self.label)
        except p11.PKCS11Error:
            if self.generation == 0:
                raise self._unreachable(where) from None
            # A token that was pulled out and put back is seen again only by a module
            # initialised anew (SoftHSM2 and OpenSC both): every session of the module ends.
            with contextlib.suppress(p11.PKCS11Error):
                library.reinitialize()
            try:
                token = library.get_token(token_label=self.label)
            except p11.PKCS11Error:
                raise self._unreachable(where) from None
        try:
            self.session = token.open(user_pin=self.pin)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            self.refused = TokenUnavailable(
                f"the token {self.label!r} refused the PIN (wrong PIN; a few more tries lock it): not tried again"
                " until the PIN file is corrected and the gateway restarted",
                where=where,
            )
            raise TokenUnavailable(self.refused.message, where=where) from None
        except p11.PinLocked:
            self.refused = TokenUnavailable(
                f"the token {self.label!r} is locked (too many wrong PINs): its security officer must unlock it,"
                " then the gateway be restarted",
                where=where,
            )
            raise TokenUnavailable(self.refused.message, where=where) from None
        except p11.PKCS11Error as exc:
            raise TokenUnavailable(f"no session on the token: {_name(exc)}", where=where) from None
        self.generation += 1
        return self.session

    def _unreachable(self, where: str) -> TokenUnavailable:
        try:
            _library(self.module).get_token(token_label=self.label)
        except p11.NoSuchToken:
            return TokenUnavailable(f"no token labelled {self.label!r} in {self.module}", where=where)
        except p11.PKCS11Error as exc:
            return TokenUnavailable(f"the token cannot be reached: {_name(exc)}", where=where)
        return TokenUnavailable("the token came and went while being reached", where=where)

    def drop(self) -> None:
        session, self.session = self.session, None
        with contextlib.suppress(Exception):  # a session on a token that is gone may not close: dropped anyway
            session.close()


_TOKENS: dict[tuple[str, str], _Token] = {}


def _token(settings: TokenSettings) -> _Token:
    with _LIBRARIES_LOCK:
        key = (str(settings.module), settings.token_label)
        token = _TOKENS.get(key)
        if token is None:
            token = _TOKENS[key] = _Token(settings.module, settings.token_label, settings.pin)
        elif token.pin != settings.pin:  # one login per token and process: one PIN
            raise TokenUnavailable(
                f"the token {settings.token_label!r} is already used with another PIN", where=settings.where
            )
        return token


class TokenSession:
    """One private key on a token, found (again) in the token's shared session."""

    def __init__(self, settings: TokenSettings) -> None:
        self.settings = settings
        self._token = _token(settings)
        self._key: Any = None
        self._generation = -1
        self._loop_noted = False  # token_signed_on_event_loop is said once per key
        with self._token.lock:
            key = self._find()  # at start: an absent token, a wrong PIN, a missing key is said now
        self.key_type = key.key_type

    def _find(self) -> Any:
        token, settings = self._token, self.settings
        session = token.open(settings.where)
        if self._key is not None and self._generation == token.generation:
            return self._key
        try:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=settings.key_label)
        except p11.NoSuchKey:
            raise TokenUnavailable(
                f"the token {settings.token_label!r} holds no private key labelled {settings.key_label!r}",
                where=settings.where,
            ) from None
        except p11.MultipleObjectsReturned:
            raise TokenUnavailable(
                f"the token {settings.token_label!r} holds several private keys labelled {settings.key_label!r}",
                where=settings.where,
            ) from None
        except p11.PKCS11Error as exc:
            token.drop()
            raise TokenUnavailable(f"the key cannot be found: {_name(exc)}", where=settings.where) from None
        if key.key_type not in (KeyType.RSA, KeyType.EC):
            raise TokenUnavailable(f"the key is {key.key_type.name}, not RSA or EC", where=settings.where)
        self._key, self._generation = key, token.generation
        return key

    def sign(self, data: bytes, mechanism: Mechanism) -> bytes:
        if not self._loop_noted and _on_event_loop():
            # A USB token may take a tenth of a second to sign (SoftHSM2 2 ms), under a lock other
            # keys of the token wait on: on the thread of an event loop that would hold every
            # delivery of the process. Each caller hands a token's signature to a worker thread
            # (the key is not ``in_memory``), the start's self-test included; one that does not is
            # a defect, said as an error line (the e2e token test reads it) rather than raised,
            # as the signature itself is good.
            self._loop_noted = True
            logs.get("token").error(
                "token_signed_on_event_loop", key=self.settings.key_label, where=self.settings.where
            )
        with self._token.lock:
            key = self._find()
            try:
                return bytes(key.sign(data, mechanism=mechanism))
            except p11.PKCS11Error as exc:
                self._token.drop()
                raise TokenUnavailable(f"the token did not sign: {_name(exc)}", where=self.settings.where) from None

    def close(self) -> None:
        with self._token.lock:
            if self._token.session is not None:
                self._token.drop()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _library(module: Path) -> Any:
    with _LIBRARIES_LOCK:
        loaded = _LIBRARIES.get(str(module))
        if loaded is None:
            if not module.is_file():
                raise TokenUnavailable(f"the PKCS#11 module {module} does not exist", where=str(module))
            try:
                loaded = pkcs11.lib(str(module))
            except (RuntimeError, OSError, p11.PKCS11Error) as exc:
                raise TokenUnavailable(
                    f"the PKCS#11 module {module} cannot be loaded: {exc}", where=str(module)
                ) from None
            _LIBRARIES[str(module)] = loaded
        return loaded


def _name(exc: Exception) -> str:
    return f"{type(exc).__name__}{f': {exc}' if str(exc) else ''}"


def unavailable_key(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, where: str) -> Any:
    """A stand-in for a token key in commands that only look (health, track, list): they read
    the certificate and never sign, so they need neither the token nor its PIN."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return TokenRSAKey(None, public_key, where)
    return TokenECKey(None, public_key, where)


def token_key(session: TokenSession, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> Any:
    """The token's key as a cryptography private key; ``public_key`` is its certificate's."""
    if session.key_type == KeyType.RSA and isinstance(public_key, rsa.RSAPublicKey):
        return TokenRSAKey(session, public_key)
    if session.key_type == KeyType.EC and isinstance(public_key, ec.EllipticCurvePublicKey):
        return TokenECKey(session, public_key)
    raise TokenUnavailable(
        f"the key on the token is {session.key_type.name}, the certificate's is {type(public_key).__name__}",
        where=session.settings.where,
    )


def _stays_on_token(*_: object, **__: object) -> NoReturn:
    raise TypeError("the private key stays on its token: it cannot be exported or used to decrypt")


def _session(key: Any) -> TokenSession:
    if key.session is None:
        raise TokenUnavailable("this command only looks: it does not open the token", where=key.where)
    return key.session


class TokenRSAKey(rsa.RSAPrivateKey):
    def __init__(self, session: TokenSession | None, public_key: rsa.RSAPublicKey, where: str = "") -> None:
        self.session, self._public, self.where = session, public_key, where

    def sign(self, data: bytes, padding_: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise TypeError("a token key signs RSA PKCS#1 v1.5 with SHA-256 only (what XMLDSig here uses)")
        return _session(self).sign(data, Mechanism.SHA256_RSA_PKCS)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    decrypt = private_numbers = private_bytes = _stays_on_token

    def __copy__(self) -> TokenRSAKey:
        return self

    def __deepcopy__(self, memo: dict) -> TokenRSAKey:
        return self


class TokenECKey(ec.EllipticCurvePrivateKey):
    def __init__(self, session: TokenSession | None, public_key: ec.EllipticCurvePublicKey, where: str = "") -> None:
        self.session, self._public, self.where = session, public_key, where

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA) or not isinstance(
            signature_algorithm.algorithm, hashes.SHA256
        ):
            raise TypeError("a token key signs ECDSA with SHA-256 only (what XMLDSig here uses)")
        # hashed here, signed as CKM_ECDSA: every token has it, not every one has CKM_ECDSA_SHA256
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        raw = _session(self).sign(digest.finalize(), Mechanism.ECDSA)  # PKCS#11 gives r‖s; cryptography speaks DER
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    exchange = private_numbers = private_bytes = _stays_on_token

    def __copy__(self) -> TokenECKey:
        return self

    def __deepcopy__(self, memo: dict) -> TokenECKey:
        return self
