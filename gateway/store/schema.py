"""The gateway database's tables and indexes, and the migrations from each earlier version."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from gateway.errors import StoreError
from gateway.sqlite import refuse_newer, transaction

SCHEMA_VERSION = 11
DOCUMENTS_QUEUED = "documents_queued"  # meta key of the running number (documents_queued); ":CODE" per agency
OWNER = "owner"  # meta key: the installation's own agency, which rows from before v7 belong to


def readable_as_it_is(connection: sqlite3.Connection) -> None:
    """For a connection that only reads (health, track, list, report): the database must be of
    this release's version, since nothing brings it up to date from here."""
    version = refuse_newer(connection, SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"the database is of an earlier edxml-gateway (schema version {version}; this one knows"
            f" {SCHEMA_VERSION}): start the gateway once, which brings it up to date",
            where=connection.execute("PRAGMA database_list").fetchone()[2],
        )


def migrate(connection: sqlite3.Connection) -> None:
    """Bring a database of any earlier version up to SCHEMA_VERSION, in one transaction."""
    if refuse_newer(connection, SCHEMA_VERSION) == SCHEMA_VERSION:
        return
    db = sqlite_utils.Database(connection)
    with transaction(connection):
        _create(db)
        # v2: the document's own time (its sender's first TraceHeader, Vietnam time), for reports
        for table in ("outgoing", "incoming"):
            if "document_time" not in db[table].columns_dict:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN document_time TEXT")
        connection.execute("CREATE INDEX IF NOT EXISTS outgoing_time ON outgoing(kind, document_time)")
        connection.execute("CREATE INDEX IF NOT EXISTS incoming_time ON incoming(message_type, document_time)")
        # v3: what retry looks for every few seconds, indexed apart from the history (a year of
        # it made those two queries cost 150 ms a run, 3 % of a core at idle)
        connection.execute(
            "CREATE INDEX IF NOT EXISTS incoming_unacknowledged ON incoming(next_attempt_at)"
            " WHERE acked = 0 AND state != 'listed'"
        )
        connection.execute(
            "CREATE INDEX IF NOT EXISTS outgoing_queued_deadline ON outgoing(deadline_at) WHERE state = 'queued'"
        )
        # v4 indexed who sent a delivered DocumentId (incoming_document); v11 replaced it
        # v5: when the axis says it accepted an incoming message: the time its signer's
        # certificate is judged at (a time written in the message could be anyone's)
        if "accepted_at" not in db["incoming"].columns_dict:
            connection.execute("ALTER TABLE incoming ADD COLUMN accepted_at REAL")
        # v6: a failed message a person gave up on: who, when and why (state 'abandoned')
        # and the digest of a document's content, which tells a resend from another document under its DocumentId
        columns = (
            ("abandoned_at", "REAL"),
            ("abandoned_by", "TEXT"),
            ("abandon_reason", "TEXT"),
            ("content_digest", "TEXT"),
        )
        for column, kind in columns:
            if column not in db["outgoing"].columns_dict:
                connection.execute(f"ALTER TABLE outgoing ADD COLUMN {column} {kind}")
        # and `track` by the axis's DocId of something we sent
        connection.execute("CREATE INDEX IF NOT EXISTS outgoing_axis_doc_id ON outgoing(axis_doc_id)")
        # v7: one installation hosts many agencies: which one sent (outgoing.from_code) and which
        # one received (incoming.to_code) each message; NULL in older rows until GatewayStore.claim
        # names the installation's own agency. A document to two hosted agencies is delivered
        # to each: once per (recipient, sender, DocumentId), no longer once per (sender, DocumentId).
        if "from_code" not in db["outgoing"].columns_dict:
            connection.execute("ALTER TABLE outgoing ADD COLUMN from_code TEXT")
        if "to_code" not in db["incoming"].columns_dict:
            connection.execute("ALTER TABLE incoming ADD COLUMN to_code TEXT")
        # v8: whether a received document's PDFs carried valid signatures (1 all, 0 not all,
        # NULL no PDF or received before the check), for the quarterly report
        if "pdf_signed" not in db["incoming"].columns_dict:
            connection.execute("ALTER TABLE incoming ADD COLUMN pdf_signed INTEGER")
        # v9: what answering a delivered document needs (its ResponseFor), kept at delivery so
        # that an answer is composed without parsing the envelope again; NULL in older rows
        if "answering" not in db["incoming"].columns_dict:
            connection.execute("ALTER TABLE incoming ADD COLUMN answering TEXT")
        # v10: the signed bytes of a small outgoing message kept beside its row and committed with
        # it, instead of a file of its own (a file, an fsync and a folder's fsync a message);
        # a large one still has its file (outgoing.file names it; '' when the bytes are here)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS outgoing_body"
            " (id TEXT PRIMARY KEY REFERENCES outgoing(id), signed BLOB NOT NULL)"
        )
        connection.execute("DROP INDEX IF EXISTS incoming_once")
        connection.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS incoming_once_per_agency ON incoming(to_code, from_code, document_id)"
            " WHERE state = 'delivered'"
        )
        # v11: what each answer and each received status looks up, indexed apart from the history.
        # A gateway's history only grows (a quarter of UBND tỉnh's is about 190,000 received and
        # 135,000 sent rows): the lookups by DocumentId, inbox folder and answered DocId scanned
        # every row of one kind or state, 40-60 ms each at that size against 0.01-0.03 ms now.
        connection.execute("DROP INDEX IF EXISTS incoming_document")  # covered by incoming_about
        connection.execute("DROP INDEX IF EXISTS idx_outgoing_document_id")  # covered by outgoing_document
        connection.execute("CREATE INDEX IF NOT EXISTS incoming_about ON incoming(document_id, message_type, state)")
        connection.execute("CREATE INDEX IF NOT EXISTS incoming_inbox ON incoming(inbox_id) WHERE inbox_id IS NOT NULL")
        connection.execute("CREATE INDEX IF NOT EXISTS outgoing_document ON outgoing(document_id, kind, created_at)")
        connection.execute("CREATE INDEX IF NOT EXISTS outgoing_answers ON outgoing(answers) WHERE answers IS NOT NULL")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _create(db: sqlite_utils.Database) -> None:
    """Tables and indexes of version 1 (all created only if missing)."""
    db["outgoing"].create(
        {
            "id": str,
            "kind": str,
            "document_id": str,
            "source_key": str,
            "file": str,
            "state": str,
            "axis_doc_id": str,
            "attempts": int,
            "next_attempt_at": float,
            "deadline_at": float,
            "last_error": str,
            "created_at": float,
            "sent_at": float,
            "subject": str,
            "status_code": str,
            "paper": int,
            "digitized": int,
            "to_codes": str,
            "answers": str,
        },
        pk="id",
        not_null={
            "kind",
            "document_id",
            "source_key",
            "file",
            "state",
            "attempts",
            "next_attempt_at",
            "deadline_at",
            "created_at",
            "subject",
            "paper",
            "digitized",
            "to_codes",
        },
        if_not_exists=True,
    )
    db["outgoing"].create_index(["source_key"], unique=True, if_not_exists=True)
    db["outgoing"].create_index(["kind", "state", "next_attempt_at"], if_not_exists=True)
    db["incoming"].create(
        {
            "axis_doc_id": str,
            "message_type": str,
            "state": str,
            "acked": int,
            "from_code": str,
            "document_id": str,
            "subject": str,
            "status_code": str,
            "reason": str,
            "attempts": int,
            "next_attempt_at": float,
            "listed_at": float,
            "finished_at": float,
            "inbox_id": str,
            "paper": int,
            "digitized": int,
        },
        pk="axis_doc_id",
        not_null={
            "message_type",
            "state",
            "acked",
            "from_code",
            "attempts",
            "next_attempt_at",
            "listed_at",
            "paper",
            "digitized",
        },
        if_not_exists=True,
    )
    db["incoming"].create_index(["state", "next_attempt_at"], if_not_exists=True)
    db["receipts"].create(
        {
            "axis_doc_id": str,
            "outgoing_id": str,
            "from_code": str,
            "status_code": str,
            "description": str,
            "status_time": str,
            "received_at": float,
        },
        pk="axis_doc_id",
        foreign_keys=[("outgoing_id", "outgoing", "id")],
        not_null={"outgoing_id", "from_code", "status_code", "received_at"},
        if_not_exists=True,
    )
    db["receipts"].create_index(["outgoing_id"], if_not_exists=True)
    db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
