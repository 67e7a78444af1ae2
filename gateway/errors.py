"""One exception tree for the whole gateway, each class with a stable error code.

Codes are part of the contract with admins and operators: they appear in logs, in
`validate` output and in status-02 refusal reasons, and the README (Error codes) explains
what to do about each. Never renumber or reuse a code; add new ones.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    code: str = "GW000"
    title: str = "gateway error"

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        location = f" (at {self.where})" if self.where else ""
        return f"{self.code} {self.title}: {self.message}{location}"


# --- format layer: reading and checking edXML --------------------------------------------


class FormatError(GatewayError):
    """The bytes are not an acceptable edXML message."""

    code = "EDX100"
    title = "not acceptable edXML"


class MalformedXML(FormatError):
    code = "EDX101"
    title = "malformed XML"


class ForbiddenXML(FormatError):
    """DOCTYPE, entity declarations or other constructs edXML never carries."""

    code = "EDX102"
    title = "forbidden XML construct"


class LimitExceeded(FormatError):
    code = "EDX103"
    title = "size limit exceeded"


class SchemaViolation(FormatError):
    code = "EDX104"
    title = "schema violation"


class StructureError(FormatError):
    """Well-formed and schema-shaped, but missing, duplicated or misplaced elements."""

    code = "EDX105"
    title = "invalid edXML structure"


class InvalidValue(FormatError):
    """A field holds a value outside its code list, format or range."""

    code = "EDX106"
    title = "invalid value"


class AttachmentError(FormatError):
    """Manifest and attachments disagree, bad base64, duplicate ContentId."""

    code = "EDX107"
    title = "invalid attachment"


class AgencyCodeError(FormatError):
    code = "EDX108"
    title = "invalid agency code"


class BuildError(GatewayError):
    """A model cannot be written as edXML (e.g. text XML cannot carry)."""

    code = "EDX110"
    title = "cannot build edXML"


# --- signatures ---------------------------------------------------------------------------


class SignatureError(GatewayError):
    """A signature is present but cannot be trusted. Unsigned is not an error here."""

    code = "SIG200"
    title = "invalid signature"


class SignatureMissing(SignatureError):
    """Raised only where a signature is required and the message carries none (or a placeholder)."""

    code = "SIG201"
    title = "unsigned message"


class SignatureMismatch(SignatureError):
    """Digest or signature value does not match: the signed content was changed."""

    code = "SIG202"
    title = "signature does not match content"


class SignatureCoverage(SignatureError):
    """The signature does not cover exactly the parts it must (wrapping, moved or missing references)."""

    code = "SIG203"
    title = "signature does not cover the message"


class WeakAlgorithm(SignatureError):
    code = "SIG204"
    title = "algorithm not allowed"


class UntrustedCertificate(SignatureError):
    code = "SIG205"
    title = "certificate not trusted"


class CertificateExpired(SignatureError):
    code = "SIG206"
    title = "certificate outside its validity period"


class CertificateUsage(SignatureError):
    code = "SIG207"
    title = "certificate not allowed to sign documents"


class SignerMismatch(SignatureError):
    """The certificate names another agency than the message's sender."""

    code = "SIG208"
    title = "certificate does not belong to the sender"


class TransformRefused(SignatureError):
    """A Reference or SignedInfo uses a transform, canonicalization or parameter outside the accepted set."""

    code = "SIG209"
    title = "signature transform not accepted"


class CertificateRevoked(SignatureError):
    """A certificate of the signer's path was revoked before the moment that counts."""

    code = "SIG210"
    title = "certificate revoked"


class RevocationUnknown(SignatureError):
    """No usable CRL could be had for the signer's path, and the policy is hard."""

    code = "SIG211"
    title = "revocation status unknown"


class KeyMaterialError(GatewayError):
    """A private key or certificate file cannot be used."""

    code = "PKI300"
    title = "unusable key or certificate"


class TokenUnavailable(KeyMaterialError):
    """The PKCS#11 token cannot sign: absent, locked, a wrong PIN, no such key. At start the
    gateway does not start; later, what was to be signed waits and is signed when it is back."""

    code = "PKI301"
    title = "signing token unavailable"


class UsageError(GatewayError):
    """Wrong command-line use; the CLI exits 2."""

    code = "CLI400"
    title = "usage error"


class StoreError(GatewayError):
    """The SQLite database cannot be opened or used (corrupt, locked, read-only, disk full)."""

    code = "DB700"
    title = "database error"


class IllegalTransition(StoreError):
    """A message was to move between two states the transition table does not connect (a bug, or a race)."""

    code = "DB701"
    title = "illegal state change"


class AxisError(GatewayError):
    """The axis refused a request; ``axis_code`` is its ErrorCode (see gateway/vxp/answers.py)."""

    code = "AXS600"
    title = "refused by the axis"

    def __init__(self, message: str, *, axis_code: str = "", where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.axis_code = axis_code


class AxisUnavailable(GatewayError):
    """The axis could not be reached or did not answer in time; the request may be retried."""

    code = "AXS601"
    title = "axis unavailable"


class AxisRefusesGateway(AxisUnavailable):
    """The axis refuses every call of ours: credentials (ErrorCode 15) or clock skew (16).

    An AxisUnavailable, so every worker pauses and probes at a bounded rate until an admin
    fixes the cause; nothing queued is failed for it.
    """

    code = "AXS602"
    title = "axis refuses this gateway"

    def __init__(self, message: str, *, axis_code: str, where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.axis_code = axis_code


class IntakeError(GatewayError):
    """A document handed over by the document system cannot be sent as it is."""

    code = "INT800"
    title = "document refused at intake"


class RecipientNotInDirectory(IntakeError):
    """A recipient the axis directory, as last read, does not list."""

    code = "INT802"
    title = "recipient not in the axis directory"


class DocumentIdReused(IntakeError):
    """Another document under a DocumentId this gateway already sent or queued."""

    code = "INT801"
    title = "DocumentId already used"


class DeliveryError(GatewayError):
    """A received document cannot be delivered to the inbox (disk full, permissions)."""

    code = "DLV900"
    title = "delivery to the inbox failed"


class FolderError(GatewayError):
    """A file or folder this account cannot read, write or create (owner, mode, a full disk)."""

    code = "CFG501"
    title = "file or folder cannot be used"


class AlreadyRunning(GatewayError):
    """Another gateway or axis process already works on the same data folder."""

    code = "RUN951"
    title = "already running"


class AddressError(GatewayError):
    """The address an axis or `pki serve` is configured to listen at is taken or not this host's."""

    code = "RUN952"
    title = "cannot listen at the address"


class ServiceError(GatewayError):
    """A child process (axis or gateway started by the demo or a test) failed or did not start."""

    code = "RUN950"
    title = "child process failed"
