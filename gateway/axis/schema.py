"""The axis's tables: agencies, documents, deliveries and the replay memory of requests."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from gateway.sqlite import refuse_newer, transaction

# 2: seen_requests indexed by expiry; 3: an agency's parent as registered (pcode);
# 4: the bridge to an upstream axis (forwards, inbound, upstream_agencies, bridge_meta);
# 5: a forward whose outside recipients are all settled upstream leaves 'sent' for 'settled'
SCHEMA_VERSION = 5
# A forward (f) one of whose outside recipients the upstream has not yet reported done or failed:
# what kept it 'sent' when v5 settled the forwards of an older database, once. Since, the bridge
# settles each forward as it hears of it (BridgeStore.outside_states), a failed recipient too
# once the upstream has had a week to deliver it after all.
OUTSIDE_UNSETTLED = (
    "SELECT 1 FROM deliveries d WHERE d.sender_doc_id = f.sender_doc_id AND d.state NOT IN ('done', 'fail')"
    " AND d.to_code IN (SELECT value FROM json_each(f.to_codes))"
)


def migrate(connection: sqlite3.Connection) -> None:
    """Create the tables and indexes this version needs, once (PRAGMA user_version says)."""
    if refuse_newer(connection, SCHEMA_VERSION) == SCHEMA_VERSION:
        return
    db = sqlite_utils.Database(connection)
    with transaction(connection):
        db["agencies"].create(
            {"code": str, "name": str, "mail": str, "system_id": str, "locked": int, "source": str},
            pk="code",
            not_null={"name", "mail", "locked", "source"},
            if_not_exists=True,
        )
        db["documents"].create(
            {
                "sender_doc_id": str,
                "message_type": str,
                "system_id": str,
                "from_code": str,
                "dedup_key": str,
                "document_id": str,
                "title": str,
                "notation": str,
                "status_code": str,
                "file": str,
                "sha256": str,
                "size": int,
                "received_at": float,
            },
            pk="sender_doc_id",
            not_null={
                "message_type",
                "system_id",
                "from_code",
                "dedup_key",
                "file",
                "sha256",
                "size",
                "received_at",
            },
            if_not_exists=True,
        )
        db["documents"].create_index(["dedup_key"], unique=True, if_not_exists=True)
        db["deliveries"].create(
            {
                "doc_id": str,
                "sender_doc_id": str,
                "to_code": str,
                "message_type": str,
                "state": str,
                "available_at": float,
                "created_at": float,
                "updated_at": float,
                "fetched_at": float,
                "done_at": float,
            },
            pk="doc_id",
            foreign_keys=[("sender_doc_id", "documents", "sender_doc_id")],
            not_null={
                "sender_doc_id",
                "to_code",
                "message_type",
                "state",
                "available_at",
                "created_at",
                "updated_at",
            },
            if_not_exists=True,
        )
        db["deliveries"].create_index(["sender_doc_id", "to_code"], unique=True, if_not_exists=True)
        db["deliveries"].create_index(["to_code", "message_type", "state", "available_at"], if_not_exists=True)
        # What lists and long-polls look at: only what is not done, however many are done.
        db.execute(
            "CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(to_code, message_type, available_at)"
            " WHERE state != 'done'"
        )
        db["seen_requests"].create(
            {"call": str, "hash_header": str, "expires_at": float},
            pk=("call", "hash_header"),
            not_null={"expires_at"},
            if_not_exists=True,
        )
        db.execute("CREATE INDEX IF NOT EXISTS seen_requests_expiry ON seen_requests(expires_at)")
        if "parent" not in db["agencies"].columns_dict:
            connection.execute("ALTER TABLE agencies ADD COLUMN parent TEXT")
        # v4, the bridge: a document with recipients outside this axis is forwarded upstream once
        # (forwards: queued -> sent with the upstream's DocId -> settled (v5), or failed); what the upstream
        # delivered to us is known by its upstream DocId (inbound), committed before it is
        # acknowledged there; the national directory as last read (upstream_agencies).
        db["forwards"].create(
            {
                "sender_doc_id": str,
                "state": str,
                "to_codes": str,
                "upstream_doc_id": str,
                "attempts": int,
                "next_attempt_at": float,
                "last_error": str,
                "created_at": float,
                "sent_at": float,
                "checked_at": float,
            },
            pk="sender_doc_id",
            not_null={"state", "to_codes", "attempts", "next_attempt_at", "created_at"},
            if_not_exists=True,
        )
        db.execute("CREATE INDEX IF NOT EXISTS forwards_due ON forwards(next_attempt_at) WHERE state = 'queued'")
        db["inbound"].create(
            {
                "upstream_doc_id": str,
                "message_type": str,
                "sender_doc_id": str,
                "to_code": str,
                "acked": int,
                "received_at": float,
            },
            pk="upstream_doc_id",
            not_null={"message_type", "sender_doc_id", "to_code", "acked", "received_at"},
            if_not_exists=True,
        )
        db["upstream_agencies"].create(
            {"code": str, "name": str, "pid": str, "mail": str}, pk="code", not_null={"name"}, if_not_exists=True
        )
        db["bridge_meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
        # v5: the receipts check (BridgeStore.to_check) asks every few seconds for forwards with
        # an outside recipient not yet settled upstream. It walked every forward ever sent; a
        # quarter of the province's is about 320,000. Settled ones now leave 'sent', and the
        # rest are read in the order they were last asked about.
        connection.execute(
            f"UPDATE forwards AS f SET state = 'settled' WHERE state = 'sent' AND NOT EXISTS ({OUTSIDE_UNSETTLED})"  # noqa: S608
        )
        connection.execute("CREATE INDEX IF NOT EXISTS forwards_to_check ON forwards(checked_at) WHERE state = 'sent'")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
