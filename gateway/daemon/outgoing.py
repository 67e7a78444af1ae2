"""Everything we send passes here: signed, written, committed to the queue.

Three steps, so that the slow ones run in a worker thread and the database is only ever
used from the event loop's thread: sign (CPU), write (a large message's file, fsync), commit
(SQLite: the row, and a small message's bytes with it).
The daemon's workers and the commands (send, respond, recall) share this, with the
record (gateway.store), through :class:`Local`: who we are, our key, our queue.
"""

from __future__ import annotations

import getpass
import itertools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import edxml, logs
from gateway.config import Config, ConfigError, HostedSection
from gateway.daemon import compose, directory, trusting
from gateway.daemon.trusting import read_file
from gateway.errors import FolderError, GatewayError, IntakeError, KeyMaterialError, UsageError
from gateway.fsutil import write_atomic
from gateway.store import GatewayStore, NewOutgoing, Outgoing, OutgoingState, Settled
from gateway.vxp.vocabulary import MessageType


@dataclass(frozen=True)
class Pending:
    """A signed message on its way to the outgoing queue, in the pieces it is written in (a
    large attachment's base64 is encoded piece by piece as it is written, never whole), and
    what the queue records beside it."""

    signed: Iterable[bytes | memoryview]
    record: NewOutgoing


# A signed message up to this size is kept in the database with its row and committed with it
# (no file, no fsync of its own, the group commit's for the lot); a larger one gets its file.
KEPT_IN_DATABASE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Written:
    """A signed message ready for its row: its bytes (``body``, a small one) or the file it was
    written and fsynced to (``path``, a large one)."""

    outgoing_id: str
    body: bytes | None = None
    path: Path | None = None

    def discard(self) -> None:
        """Not queued after all (queued before, or the commit failed): nothing of it may stay."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def new_source_key(prefix: str) -> str:
    """A key no other message has: what a command queues is queued once per call."""
    return f"{prefix}:{uuid.uuid4()}"


class OutgoingQueue:
    def __init__(
        self,
        *,
        identity: edxml.SigningIdentity,
        limits: edxml.Limits,
        store: GatewayStore,
        deadline_seconds: float,
        log: Any,
    ) -> None:
        self.identity = identity
        self.code = identity.agency.text
        self.limits = limits
        self.store = store
        self.deadline_seconds = deadline_seconds
        self.log = log
        # Set by the runner: run a worker now instead of at its next tick (a no-op in commands).
        self.wake: Callable[[str], None] = lambda worker: None

    def next_number(self) -> int:
        """The default running number of the next document (số đến lượt)."""
        return self.store.outgoing.documents_queued(self.code) + 1

    # Three steps, so that the slow ones run in a worker thread and the database is only ever
    # used from the event loop's thread: sign (CPU), write (a large message's file, fsync),
    # commit (SQLite: the row, with a small message's bytes).

    def _sign(self, root: Any, mode: edxml.SchemaMode, lifted: edxml.Lifted = edxml.NOT_LIFTED) -> edxml.Expansion:
        return edxml.sign_outgoing(root, self.identity, mode=mode, lifted=lifted)

    def sign_document(self, composed: compose.Composed) -> Pending:
        document = composed.document
        self._note_attachments(document)
        root, lifted = edxml.build_lifted(document)
        signed = self._sign(root, edxml.SchemaMode.STRICT, lifted)
        record = NewOutgoing(
            kind=MessageType.EDOC,
            document_id=document.document_id or "",
            subject=document.subject,
            to_codes=edxml.routed_to(document),
            paper=composed.paper,
            digitized=composed.digitized,
            # every hop of our own document is under our signature
            document_time=compose.document_time(
                document, signed_hops=len(document.trace_headers), default=edxml.now_vietnam()
            ),
            content_digest=edxml.content_digest(root),
            from_code=self.code,
        )
        return Pending(signed, record)

    def sign_edxml(self, data: bytes) -> Pending:
        """A ready edXML file from the document system: ours, given our hop, checked strictly, signed."""
        root, lifted = edxml.parse_lifted(data, self.limits)
        document = edxml.message_from_tree(root, self.limits, lifted)
        if not isinstance(document, edxml.Document):
            raise IntakeError("the drop folder takes documents; statuses are sent with `respond`")
        if document.sender.organ_id.text != self.code:
            raise IntakeError(f"From/OrganId is {document.sender.organ_id}, this gateway sends for {self.code}")
        if not document.document_id:
            raise IntakeError("the document has no DocumentId")
        self._note_attachments(document)
        stamp = edxml.now_vietnam()
        edxml.append_trace_header(root, self.code, stamp)
        signed = self._sign(root, edxml.SchemaMode.STRICT, lifted)
        record = NewOutgoing(
            kind=MessageType.EDOC,
            document_id=document.document_id,
            subject=document.subject,
            to_codes=edxml.routed_to(document),
            paper=document.paper,
            digitized=compose.is_digitized(document),
            document_time=compose.document_time(document, signed_hops=len(document.trace_headers), default=stamp),
            content_digest=edxml.content_digest(root),
            from_code=self.code,
        )
        return Pending(signed, record)

    def _note_attachments(self, document: edxml.Document) -> None:
        """Sent, but said: the standard allows a document without files, a clerk rarely means one."""
        if not document.attachments:
            self.log.warning(
                "document_without_attachment",
                document_id=document.document_id,
                hint="the recipients get the header alone; the text of a document travels as its attachments",
            )

    def sign_status(self, status: edxml.StatusMessage, *, answers: str | None) -> Pending:
        record = NewOutgoing(
            kind=MessageType.STATUS,
            document_id=status.response_for.document_id or "",
            subject=status.description or status.status_code.meaning,
            to_codes=edxml.routed_to(status),
            status_code=status.status_code.wire,
            answers=answers,
            from_code=self.code,
        )
        # A status repeats the answered document's values (its sender's code, its DocumentId), which
        # may be of forms our strict schema does not emit; the answer must still go out.
        return Pending(self._sign(edxml.build_tree(status), edxml.SchemaMode.LENIENT), record)

    def write(self, pending: Pending) -> Written:
        """A small message's bytes, to be kept in the database with its row; a large one's file,
        written and fsynced."""
        outgoing_id = self.store.outgoing.new_id()
        head: list[bytes] = []
        size = 0
        pieces = iter(pending.signed)
        for piece in pieces:
            head.append(bytes(piece))  # a piece may be a view of a buffer the next one reuses
            size += len(head[-1])
            if size > KEPT_IN_DATABASE_BYTES:
                path = self.store.outgoing.path_for(outgoing_id)
                write_atomic(path, itertools.chain(head, pieces))
                return Written(outgoing_id, path=path)
        return Written(outgoing_id, body=b"".join(head))

    def prepared(self, prepare: Callable[[], Pending]) -> tuple[Pending, Written]:
        """A message signed by ``prepare`` and written (a large one's file), in one worker-thread
        hand-off (or on the loop, a small status signed with a key in memory); :meth:`commit` on the
        event loop makes it a row."""
        pending = prepare()
        return pending, self.write(pending)

    def commit(
        self,
        written: Written,
        pending: Pending,
        source_key: str,
        settling: tuple[str, Settled] | None = None,
    ) -> Outgoing:
        """Commit the row with the message's bytes or naming its file (and, with ``settling``,
        the incoming message it answers)."""
        outgoing_id = written.outgoing_id
        try:
            item = self.store.outgoing.queue(
                outgoing_id,
                pending.record,
                source_key=source_key,
                deadline_seconds=self.deadline_seconds,
                settling=settling,
                body=written.body,
            )
        except BaseException:
            written.discard()
            raise
        if item is None:  # queued before from the same source: that one stands
            written.discard()
            existing = self.store.outgoing.by_source(source_key)
            assert existing is not None
            return existing
        if item.id != outgoing_id:  # the same document under its DocumentId, queued before: it stands
            if written.path is None or item.file != written.path.name:  # unless it took this signing's file
                written.discard()
            self.log.info("document_already_queued", document_id=item.document_id, state=item.state, id=item.id)
            if item.state is OutgoingState.QUEUED:
                self.wake("push")  # a resend of a failed document put it back in the queue
            return item
        self.log.info(
            "message_queued",
            document_id=pending.record.document_id,
            peer=list(pending.record.to_codes),
            kind=pending.record.kind,
            status_code=pending.record.status_code,
            id=item.id,
        )
        self.wake("push" if pending.record.kind is MessageType.EDOC else "respond")
        return item

    def enqueue(self, pending: Pending, source_key: str) -> Outgoing:
        """All three steps in the calling thread: what the commands (send, respond, recall) use."""
        existing = self.store.outgoing.by_source(source_key)
        if existing is not None:
            return existing
        return self.commit(self.write(pending), pending, source_key)


@dataclass
class Agency:
    """One agency the installation speaks for: its own ([agency]) or a hosted one ([[hosted]]),
    with its own key, drop folder, inbox and outgoing queue (one record for them all)."""

    code: str
    me: edxml.Organization
    identity: edxml.SigningIdentity
    outgoing: OutgoingQueue
    outbox: Path
    inbox: Path
    parent: str | None
    log: Any
    key: str  # the configuration key of its section, for messages: "signing" or "hosted[3]"


@dataclass
class Local:
    """What the daemon and the commands share: the agencies this installation speaks for (its
    own first), their keys, the record and the queue. ``code``, ``me``, ``identity``,
    ``outgoing`` and ``log`` are the installation's own agency's."""

    config: Config
    code: str
    me: edxml.Organization
    identity: edxml.SigningIdentity
    store: GatewayStore
    outgoing: OutgoingQueue
    log: Any
    agencies: dict[str, Agency]
    names: dict[str, str] = field(default_factory=dict)  # the axis directory, as last refreshed
    names_at: float = 0.0  # when it was (epoch seconds; 0: never)

    @classmethod
    def open(cls, config: Config, *, looking: bool = False) -> Local:
        """Who we are and our record. ``looking`` (health, track, list) makes nothing: no folder,
        no database; a gateway that never ran is an error then, not an empty record."""
        if config.agency is None:
            raise ConfigError("[agency] is required", where=str(config.path))
        if looking and not database_of(config).is_file():
            raise UsageError(
                f"no gateway database at {database_of(config)}: the gateway has not run with this configuration",
                where=f"{config.path}: paths.data_dir",
            )
        own = edxml.AgencyCode.lenient(config.agency.code).text
        # The installation's own agency is one more section, its files under [signing] and [paths].
        signing, paths = config.signing, config.paths
        ours = HostedSection(
            config.agency.code, config.agency.name, None, signing.key, signing.cert, paths.outbox, paths.inbox
        )
        sections = [
            (ours, "signing", "paths"),
            *((h, f"hosted[{i}]", f"hosted[{i}]") for i, h in enumerate(config.hosted)),
        ]
        # keys and folders first: a configuration that cannot run leaves no database behind
        ready = [(section, key, _identity(config, section, key, looking=looking)) for section, key, _ in sections]
        if not looking:
            for section, _, folders_key in sections:
                _make_folders(config, section, folders_key)
        store = GatewayStore(config.paths.data_dir, looking=looking)
        if not looking:  # health and track only read; the daemon and the commands claim
            store.claim(own)
        deadline = config.retry.deadline_hours * 3600
        agencies: dict[str, Agency] = {}
        for section, key, identity in ready:
            code = identity.agency.text
            log = logs.get("gateway").bind(agency=code)
            queue = OutgoingQueue(
                identity=identity, limits=config.limits, store=store, deadline_seconds=deadline, log=log
            )
            me = edxml.Organization(identity.agency, organ_name=section.name)
            parent = section.parent or (None if code == own else own)
            assert section.outbox is not None and section.inbox is not None
            agencies[code] = Agency(code, me, identity, queue, section.outbox, section.inbox, parent, log, key)
        first = agencies[own]
        names, names_at = directory.recalled(store)
        return cls(config, own, first.me, first.identity, store, first.outgoing, first.log, agencies, names, names_at)

    def agency(self, code: str | None, *, option: str = "--from") -> Agency:
        """A hosted agency by its code (the installation's own when None), or an error naming ``option``."""
        if code is None:
            return self.agencies[self.code]
        try:
            found = self.agencies.get(edxml.AgencyCode.lenient(code).text)
        except GatewayError:
            found = None
        if found is None:
            raise UsageError(
                f"{option} {code}: this installation does not host that agency; it hosts {_listed(self.agencies)}",
                where=option,
            )
        return found

    def receiving(self, code: str | None) -> Agency | None:
        """The hosted agency a message listed for ``code`` is for (no code: our own), if hosted."""
        return self.agencies.get(code or self.code)

    def log_of(self, code: str | None) -> Any:
        """The log bound to a hosted agency's code (the installation's own for none, or for an
        agency no longer hosted, bound to its code all the same)."""
        agency = self.receiving(code)
        return agency.log if agency is not None else self.log.bind(agency=code)

    def set_wake(self, wake: Callable[[str], None]) -> None:
        for agency in self.agencies.values():
            agency.outgoing.wake = wake

    @property
    def inbox(self) -> Path:
        return self.config.paths.inbox

    @property
    def limits(self) -> edxml.Limits:
        return self.config.limits


def _identity(config: Config, section: HostedSection, key: str, *, looking: bool = False) -> edxml.SigningIdentity:
    """An agency's key and certificate, which must name that agency (a signature binds to its From)."""
    code = edxml.AgencyCode.lenient(section.code).text
    assert section.cert is not None
    if section.key is None and config.signing.pkcs11 is not None:
        identity = trusting.token_identity(config, code, section.cert, key, looking=looking)
    else:
        identity = _file_identity(config, section, key)
    if identity.agency.text != code:
        raise ConfigError(
            f"the certificate is for {identity.agency}, the agency is {code}", where=f"{config.path}: {key}.cert"
        )
    return identity


def _file_identity(config: Config, section: HostedSection, key: str) -> edxml.SigningIdentity:
    assert section.key is not None and section.cert is not None
    try:
        return edxml.SigningIdentity.from_pem(
            read_file(section.key, f"{config.path}: {key}.key"),
            read_file(section.cert, f"{config.path}: {key}.cert"),
        )
    except KeyMaterialError as exc:
        raise KeyMaterialError(
            f"{exc.message} ({key}.key {section.key}, {key}.cert {section.cert})", where=str(config.path)
        ) from None


def _make_folders(config: Config, section: HostedSection, key: str) -> None:
    assert section.outbox is not None and section.inbox is not None
    for folder in (section.outbox, section.outbox / "failed", section.inbox, section.inbox / ".rejected"):
        try:
            make_shared_folder(folder)
        except OSError as exc:
            raise FolderError(
                f"{folder} cannot be created by {getpass.getuser()}: {exc.strerror}", where=f"{config.path}: {key}"
            ) from None


def _listed(agencies: dict[str, Agency]) -> str:
    codes = list(agencies)
    return ", ".join(codes) if len(codes) <= 6 else f"{', '.join(codes[:5])} and {len(codes) - 5} more"


def database_of(config: Config) -> Path:
    return config.paths.data_dir / "gateway.sqlite3"


def make_shared_folder(folder: Path) -> None:
    """A folder shared with the document system, created setgid and group-writable (2770):
    what either account writes in it belongs to the folder's group (inside the outbox or the
    inbox the README makes, the exchange group), whatever the service's UMask. A folder that
    exists is left as its administrator set it. Under a unit with RestrictSUIDSGID= the setgid
    bit is refused: the folder is then 0770, and the README's install creates it 2770 beforehand."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:
        folder.chmod(0o2770)
    except PermissionError:
        folder.chmod(0o770)
