"""A valid, signed document replayed later: once through the same axis, once after the axis
lost its records (restored from an old backup, or a second axis), when it comes back under a
new axis DocId. The recipient delivers it once and answers once."""

from __future__ import annotations

import shutil
import time

from gateway.vxp.vocabulary import MessageType
from tests.axis.running import start_axis
from tests.e2e.province import build_province, free_port, send_directly, signed_by, to, wait_until
from tests.messages import full_document

MINISTRY, DEPARTMENT = "000.00.00.G22", "000.00.11.H58"


def statuses_sent(agency) -> list[str]:
    with agency.store() as store:
        return [item.status_code or "" for item in store.reports.outgoing_for_kind(MessageType.STATUS)]


def test_a_document_replayed_later_is_delivered_once(tmp_path):
    province = build_province(tmp_path, [MINISTRY, DEPARTMENT], axis_port=free_port())
    try:
        department = province.start(DEPARTMENT)
        document = to(full_document(sender=MINISTRY), DEPARTMENT, document_id=f"{MINISTRY},2026/11/25,42/VPCP")
        signed = signed_by(province, MINISTRY, document)
        first = send_directly(province, MINISTRY, signed)
        wait_until(lambda: department.delivered(), "the first delivery")
        wait_until(lambda: statuses_sent(department) == ["01"], "its 01")
        with department.store() as store:
            (delivered_as,) = [item.axis_doc_id for item in store.reports.incoming_for_kind(MessageType.EDOC)]

        time.sleep(1.2)  # later: the axis's TraceHeader would carry another second
        assert send_directly(province, MINISTRY, signed) == first, "the axis took the same document twice"

        # the axis forgets everything it knew; the same bytes come back with a new DocId
        province.stop_all()
        shutil.move(province.axis.folder / "data", tmp_path / "axis-data-before")
        province.axis = start_axis(province.axis.folder, province.axis.config_path)
        province.start(DEPARTMENT)
        second = send_directly(province, MINISTRY, signed)
        assert second != first
        dropped = department.service.wait_for(lambda e: e.get("event") == "duplicate_dropped", "the replay dropped")
        assert dropped["first"] == delivered_as and dropped["axis_doc_id"] != delivered_as

        def replay_acknowledged() -> bool:
            with department.store() as store:
                replay = store.incoming.get(dropped["axis_doc_id"])
            return replay is not None and replay.acked == 1

        wait_until(replay_acknowledged, "the replay acknowledged at the axis (so it is not listed forever)")
        time.sleep(1.0)
        delivered = department.delivered()
        assert len(delivered) == 1 and delivered[0]["document_id"] == document.document_id
        assert statuses_sent(department) == ["01"], "a second 01 for a replay"
    finally:
        province.stop_all()
