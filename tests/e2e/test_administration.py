"""What an administrator meets: health as monitoring reads it, giving up on a failed message,
trust and key files set wrong, answers given out of order, output piped into `head`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from gateway.store import NewOutgoing, OutgoingState
from gateway.vxp.vocabulary import MessageType
from tests.e2e.province import wait_until

PROVINCE, DEPARTMENT = "000.00.00.H58", "000.00.11.H58"
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3


def health(province, code: str) -> tuple[int, dict]:
    result = province.run("health", "--config", str(province.agencies[code].config), "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout) if result.stdout else {}


def texts(report: dict) -> str:
    return " | ".join(p["text"] for p in report["problems"])


def test_health_is_critical_until_the_gateway_runs_and_polls_and_again_once_it_stops(province):
    agency = province.agencies[PROVINCE]
    code, report = health(province, PROVINCE)
    assert code == CRITICAL and report["status"] == "CRITICAL" and "has never run here" in texts(report)
    never = province.run("list", "--config", str(agency.config))
    assert never.returncode == 2 and "has not run with this configuration" in never.stderr
    assert not agency.database.exists(), "a look made a record"  # nor as root, owned by root
    province.start(PROVINCE)
    code, report = wait_until(lambda: (r := health(province, PROVINCE))[0] == OK and r, "an OK report")
    assert report["running_pid"] == agency.service.process.pid and report["problems"] == []
    agency.service.stop()
    # it polled a moment ago: only the lock tells that nobody is there any more
    code, report = health(province, PROVINCE)
    assert code == CRITICAL and "not running" in texts(report) and "no successful poll" not in texts(report)
    text = province.run("health", "--config", str(agency.config))
    assert text.returncode == CRITICAL and "CRITICAL: the gateway is not running" in text.stdout


def test_an_inbox_that_cannot_be_written_is_critical_and_the_log_names_the_document(province):
    for code in (PROVINCE, DEPARTMENT):
        province.start(code)
    department = province.agencies[DEPARTMENT]
    wait_until(lambda: health(province, DEPARTMENT)[0] == OK, "an OK report")
    department.inbox.rename(department.folder / "inbox-moved")
    department.inbox.write_text("not a folder")  # what a full or read-only disk looks like to the gateway
    province.drop_job(PROVINCE, "j1", {"to": [DEPARTMENT], "subject": "Văn bản", "code_number": "7"}, {})
    failed = department.service.wait_for(lambda e: e.get("event") == "delivery_failed", "the delivery to fail")
    assert failed["code"] == "DLV900" and failed["document_id"].startswith(f"{PROVINCE},")
    code, report = health(province, DEPARTMENT)
    assert code == CRITICAL and "delivering to the inbox fails since" in texts(report)
    department.inbox.unlink()
    (department.folder / "inbox-moved").rename(department.inbox)
    wait_until(lambda: department.delivered(), "the document, once the inbox is back")
    wait_until(lambda: health(province, DEPARTMENT)[0] == OK, "OK again")


def test_refused_messages_kept_for_a_look_are_a_warning_until_removed(province):
    province.start(PROVINCE)
    wait_until(lambda: health(province, PROVINCE)[0] == OK, "an OK report")
    kept = province.agencies[PROVINCE].inbox / ".rejected" / "some-refused-document"
    kept.mkdir()
    code, report = health(province, PROVINCE)
    assert code == WARNING and report["rejected"] == ["some-refused-document"] and "reason.txt" in texts(report)
    kept.rmdir()
    assert health(province, PROVINCE)[0] == OK


def test_a_failed_message_is_abandoned_with_who_and_why_and_health_no_longer_counts_it(province):
    agency = province.agencies[PROVINCE]
    document_id = f"{PROVINCE},2026/12/03,99/UBND"
    with agency.store() as store:
        message = NewOutgoing(MessageType.EDOC, document_id, "Gửi nhầm", (DEPARTMENT,))
        item = store.outgoing.queue("lost-1", message, source_key="test:lost", deadline_seconds=60)
        store.outgoing.fail(item.id, "ErrorCode 18: 000.00.99.H99 is not registered")
    _, report = health(province, PROVINCE)
    assert [f["document_id"] for f in report["failed"]] == [document_id] and "`abandon`" in texts(report)

    no_reason = province.run("abandon", "--config", str(agency.config), document_id, "--reason", " ")
    assert no_reason.returncode == 2 and "say why" in no_reason.stderr
    done = province.run("abandon", "--config", str(agency.config), document_id, "--reason", "gửi nhầm nơi nhận")
    assert done.returncode == 0 and "1 message(s) abandoned" in done.stdout, done.stderr
    again = province.run("abandon", "--config", str(agency.config), document_id, "--reason", "lần nữa")
    assert again.returncode == 2 and "only a failed message" in again.stderr
    _, report = health(province, PROVINCE)
    assert report["failed"] == [] and "`abandon`" not in texts(report)
    with agency.store() as store:
        (kept,) = store.outgoing.for_document(document_id)
    assert kept.state is OutgoingState.ABANDONED and kept.abandon_reason == "gửi nhầm nơi nhận"
    assert kept.abandoned_by and kept.abandoned_at and kept.last_error.startswith("ErrorCode 18")
    tracked = json.loads(province.run("track", "--config", str(agency.config), document_id, "--json").stdout)
    assert tracked["sent"][0]["abandoned"]["reason"] == "gửi nhầm nơi nhận"


def replace_in_config(agency, old: str, new: str) -> None:
    text = agency.config.read_text(encoding="utf-8")
    assert old in text
    agency.config.write_text(text.replace(old, new), encoding="utf-8")


def test_a_trust_file_holding_an_agency_certificate_is_refused_at_start(province):
    agency = province.agencies[PROVINCE]
    replace_in_config(agency, 'trust = "../pki/ca.pem"', f'trust = "../pki/{DEPARTMENT}.pem"')
    result = province.run("run", "--config", str(agency.config))
    assert result.returncode == 78 and "Traceback" not in result.stderr
    assert "PKI300" in result.stderr and "not a CA certificate" in result.stderr and "signing.trust" in result.stderr


def test_a_trust_file_our_own_certificate_does_not_chain_to_is_refused_at_start(province, tmp_path):
    other = tmp_path / "other-ca"
    made = province.run("pki", "init", "--dir", str(other))
    assert made.returncode == 0, made.stderr
    agency = province.agencies[PROVINCE]
    replace_in_config(agency, 'trust = "../pki/ca.pem"', f'trust = "{other / "ca.pem"}"')
    result = province.run("run", "--config", str(agency.config))
    assert result.returncode == 78 and "Traceback" not in result.stderr
    assert "our own certificate is not accepted under this trust store" in result.stderr


def test_key_files_set_wrong_are_named_never_a_traceback(province):
    agency = province.agencies[PROVINCE]
    replace_in_config(agency, f'cert = "../pki/{PROVINCE}.pem"', f'cert = "../pki/{DEPARTMENT}.pem"')
    result = province.run("run", "--config", str(agency.config))
    assert result.returncode == 78 and "PKI300" in result.stderr and "Traceback" not in result.stderr
    named = result.stderr
    assert f"{PROVINCE}.key" in named and f"{DEPARTMENT}.pem" in named and "signing.cert" in named
    replace_in_config(agency, f'cert = "../pki/{DEPARTMENT}.pem"', 'cert = "../pki"')  # a folder: unreadable as a file
    for command in ("run", "health"):
        result = province.run(command, "--config", str(agency.config))
        assert "signing.cert" in result.stderr and "Traceback" not in result.stderr
    assert result.returncode == UNKNOWN and result.stdout.startswith("UNKNOWN: CFG500")  # health could not look
    as_json = json.loads(province.run("health", "--config", str(agency.config), "--json").stdout)
    assert as_json["status"] == "UNKNOWN" and "signing.cert" in as_json["problems"][0]["text"]


def test_health_piped_into_a_reader_that_leaves_is_not_an_error(province):
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "health", "--config", str(province.agencies[PROVINCE].config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # `| head` that has read what it wanted
    _, err = process.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipe" not in err and process.returncode == CRITICAL


@pytest.mark.parametrize(
    ("steps", "refused", "why"),
    [
        (["03", "06"], "04", "06 was already sent"),
        (["03"], "03", "03 was already sent"),
        (["03"], "02", "a refusal (02) comes before 03"),
        ([], "02", "must say why"),
        (["05"], "05", None),  # progress notes may repeat
        (["06"], "16", "no recall (13) was received"),  # 15/16 answer a recall, not nothing
    ],
)
def test_answers_to_a_received_document_go_forward_and_a_refusal_says_why(province, steps, refused, why):
    for code in (PROVINCE, DEPARTMENT):
        province.start(code)
    province.drop_job(PROVINCE, "j", {"to": [DEPARTMENT], "subject": "Văn bản", "code_number": "3"}, {})
    (received,) = wait_until(province.agencies[DEPARTMENT].delivered, "the delivery")
    config = str(province.agencies[DEPARTMENT].config)
    for step in steps:
        assert province.run("respond", "--config", config, received["id"], "--code", step).returncode == 0
    reason = [] if why == "must say why" else ["--description", "Sai thẩm quyền"]
    result = province.run("respond", "--config", config, received["id"], "--code", refused, *reason)
    if why is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2 and why in result.stderr and "Traceback" not in result.stderr


def test_a_folder_that_cannot_be_created_is_named_and_health_creates_nothing(province):
    agency = province.agencies[PROVINCE]
    blocker = agency.folder / "blocked"
    blocker.write_text("a file where a folder must be")
    agency.config.write_text(agency.config.read_text(encoding="utf-8") + '\n[paths]\ninbox = "blocked/inbox"\n')
    result = province.run("run", "--config", str(agency.config))
    assert result.returncode == 78 and "CFG501" in result.stderr and "blocked/inbox" in result.stderr
    assert "Traceback" not in result.stderr and os.path.isfile(blocker)
    code, report = health(province, PROVINCE)
    assert code == CRITICAL and "never run" in texts(report)


def test_recipients_that_cannot_be_reached_are_refused_at_intake_naming_the_key(province):
    agency = province.start(PROVINCE)

    def directory_known() -> bool:
        with agency.store() as store:
            return bool(store.meta("directory"))

    wait_until(directory_known, "the axis directory")
    province.drop_job(PROVINCE, "short-code", {"to": ["H58"], "subject": "Mã thiếu"}, {})
    province.drop_job(PROVINCE, "unknown", {"to": [DEPARTMENT, "000.00.99.H99"], "subject": "Mã lạ"}, {})
    failed = agency.outbox / "failed"
    errors = wait_until(
        lambda: len(list(failed.glob("*.error.txt"))) == 2 and sorted(failed.glob("*.error.txt")), "both refused"
    )
    short, unknown = (path.read_text(encoding="utf-8") for path in errors)
    assert "INT800" in short and "short-code/document.json: to[0]" in short and "000.00.00.H58" in short
    assert "unknown/document.json: to[1]" in unknown and "not in the axis directory" in unknown
    with agency.store() as store:
        assert store.outgoing.known_files() == set()  # nothing was queued, nothing reaches the axis


def test_an_empty_attachment_is_refused_and_a_document_without_any_is_sent_with_a_warning(province):
    for code in (PROVINCE, DEPARTMENT):
        province.start(code)
    sender = province.agencies[PROVINCE]
    province.drop_job(PROVINCE, "empty-file", {"to": [DEPARTMENT], "subject": "Tệp rỗng"}, {"scan.pdf": b""})
    (error,) = wait_until(lambda: list((sender.outbox / "failed").glob("*.error.txt")), "the refusal")
    assert "'scan.pdf' is empty (0 bytes)" in error.read_text(encoding="utf-8")
    province.drop_job(PROVINCE, "no-file", {"to": [DEPARTMENT], "subject": "Không tệp", "code_number": "8"}, {})
    warned = sender.service.wait_for(lambda e: e.get("event") == "document_without_attachment", "the warning")
    assert warned["document_id"].startswith(f"{PROVINCE},") and warned["level"] == "warning"
    wait_until(province.agencies[DEPARTMENT].delivered, "the document without attachment, delivered")


def test_a_document_id_used_for_another_document_is_refused_and_a_resend_stands_once(province, tmp_path):
    config = str(province.agencies[PROVINCE].config)
    first, corrected = tmp_path / "quyet-dinh.pdf", tmp_path / "quyet-dinh-sua.pdf"
    first.write_bytes(b"%PDF-1.4 ban dau")
    corrected.write_bytes(b"%PDF-1.4 da sua loi chinh ta")

    def send(path):
        return province.run(
            "send",
            "--config",
            config,
            "--to",
            DEPARTMENT,
            "--subject",
            "Quyết định 51",
            "--code-number",
            "51",
            str(path),
        )

    sent = send(first)
    assert sent.returncode == 0, sent.stderr
    document_id = sent.stdout.strip()
    other = send(corrected)
    assert other.returncode == 1 and "INT801" in other.stderr and document_id in other.stderr
    assert "business_type 2 or 3" in other.stderr and "Traceback" not in other.stderr
    again = send(first)
    assert again.returncode == 0 and again.stdout.strip() == document_id
    with province.agencies[PROVINCE].store() as store:
        assert len(store.outgoing.for_document(document_id)) == 1
        # kept in the database, the one queued alone: nothing of the refused or the repeated one stays
        assert not list(store.outgoing_dir.iterdir())
        assert store.db.execute("SELECT count(*) FROM outgoing_body").fetchone()[0] == 1
        (item,) = store.outgoing.for_document(document_id)
        store.outgoing.fail(item.id, "deadline passed")
    resent = send(first)  # a clerk sending a failed document again: it goes back to the queue
    assert resent.returncode == 0 and resent.stdout.strip() == document_id
    with province.agencies[PROVINCE].store() as store:
        (item,) = store.outgoing.for_document(document_id)
        assert item.state is OutgoingState.QUEUED and item.last_error is None


def test_track_by_inbox_folder_tells_the_same_story_and_list_narrows_documents(province):
    for code in (PROVINCE, DEPARTMENT):
        province.start(code)
    province.drop_job(PROVINCE, "cv-4", {"to": [DEPARTMENT], "subject": "Công văn 4", "code_number": "4"}, {})
    (received,) = wait_until(province.agencies[DEPARTMENT].delivered, "the delivery")
    sender, recipient = str(province.agencies[PROVINCE].config), str(province.agencies[DEPARTMENT].config)
    refused = province.run("respond", "--config", recipient, received["id"], "--code", "02", "--description", "Sai")
    assert refused.returncode == 0, refused.stderr
    wait_until(lambda: len(province.agencies[PROVINCE].receipts()) == 2, "the 01 and the 02 at the sender")

    def track(config: str, reference: str, *more: str):
        return province.run("track", "--config", config, reference, *more)

    by_folder = json.loads(track(recipient, received["id"], "--json").stdout)
    by_document_id = json.loads(track(recipient, received["document_id"], "--json").stdout)
    folder_path = str(province.agencies[DEPARTMENT].inbox / received["id"]) + "/"  # as a shell completes it
    by_path = json.loads(track(recipient, folder_path, "--json").stdout)
    assert by_folder == by_document_id == by_path and by_folder["received"]["state"] == "delivered"
    sent = json.loads(track(sender, received["document_id"], "--json").stdout)
    by_axis_doc_id = json.loads(track(sender, sent["sent"][0]["axis_doc_id"], "--json").stdout)
    assert by_axis_doc_id["document_id"] == received["document_id"] and by_axis_doc_id["sent"] == sent["sent"]
    assert [s["status_code"] for s in by_folder["statuses_sent"]] == ["01", "02"]
    text = track(sender, received["document_id"]).stdout
    assert f"{DEPARTMENT}: 02 " in text and "— Sai" in text and "+07:00" in text and "+00:00" not in text

    def listed(config: str, *options: str) -> list[dict]:
        result = province.run("list", "--config", config, "--json", *options)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    (row,) = listed(sender)
    assert row["document_id"] == received["document_id"] and row["state"] == "sent" and row["to"] == [DEPARTMENT]
    assert listed(sender, "--state", "failed") == [] and listed(sender, "--peer", "000.00.31.H58") == []
    assert len(listed(sender, "--peer", DEPARTMENT)) == 1 and listed(sender, "--since", "2999-01-01") == []
    (incoming,) = listed(recipient, "--received", "--state", "delivered")
    assert incoming["from"] == PROVINCE and incoming["inbox_id"] == received["id"]
    wrong = province.run("list", "--config", sender, "--since", "yesterday")
    assert wrong.returncode == 2 and "yyyy-mm-dd" in wrong.stderr
    assert "nothing matches" in province.run("list", "--config", sender, "--state", "abandoned").stdout


def test_a_certificate_close_to_expiry_is_logged_once_a_day_and_warned_by_health(province, tmp_path):
    from datetime import UTC, datetime, timedelta

    from gateway.pki import issue
    from gateway.pki_folder import init_dir, load_ca

    init_dir(tmp_path / "ca")
    pair = issue(load_ca(tmp_path / "ca"), PROVINCE, "UBND tỉnh", not_after=datetime.now(UTC) + timedelta(days=10))
    (tmp_path / "short.pem").write_bytes(pair.cert_pem)
    (tmp_path / "short.key").write_bytes(pair.key_pem)
    (tmp_path / "trust.pem").write_bytes((tmp_path / "ca" / "ca.pem").read_bytes())
    agency = province.agencies[PROVINCE]
    replace_in_config(agency, f'key = "../pki/{PROVINCE}.key"', f'key = "{tmp_path / "short.key"}"')
    replace_in_config(agency, f'cert = "../pki/{PROVINCE}.pem"', f'cert = "{tmp_path / "short.pem"}"')
    replace_in_config(agency, 'trust = "../pki/ca.pem"', f'trust = "{tmp_path / "trust.pem"}"')
    province.start(PROVINCE)
    said = agency.service.wait_for(lambda e: e.get("event") == "certificate_expiring", "the expiry warning")
    assert said["level"] == "warning" and 9 < said["days_left"] <= 10 and "new certificate" in said["hint"]
    _, report = health(province, PROVINCE)
    assert "the signing certificate expires in 10 days" in texts(report)
    agency.service.stop()
    province.start(PROVINCE)  # the same day: not said again
    time.sleep(1.0)
    assert "certificate_expiring" not in agency.service.event_names()


def test_intake_names_the_document_it_took_and_a_relative_data_dir_that_cannot_be_made_says_why(province):
    agency = province.start(PROVINCE)
    province.drop_job(PROVINCE, "cv-9", {"to": [DEPARTMENT], "subject": "Công văn 9", "code_number": "9"}, {})
    taken = agency.service.wait_for(lambda e: e.get("event") == "intake_taken", "the entry taken")
    assert taken["entry"] == "cv-9" and taken["document_id"].endswith(",9/EDXML-GW")
    agency.service.stop()
    (agency.folder / "blocked").write_text("a file where the data folder's parent must be")
    agency.config.write_text(agency.config.read_text(encoding="utf-8") + '\n[paths]\ndata_dir = "blocked/var"\n')
    result = province.run("run", "--config", str(agency.config))
    assert result.returncode == 78 and "CFG500" in result.stderr and "paths.data_dir" in result.stderr
    assert "read from the configuration file's folder" in result.stderr and "absolute" in result.stderr


def test_abandon_records_the_person_behind_sudo(monkeypatch):
    from gateway.daemon import commands

    monkeypatch.setenv("SUDO_USER", "alice")
    assert commands.who_runs_this().startswith("alice (as ")
    monkeypatch.delenv("SUDO_USER")
    assert "(as" not in commands.who_runs_this()


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("[axis]\ntimeout_seconds = 0.0\n", "axis.timeout_seconds"),
        ("[retry]\ndeadline_hours = nan\n", "retry.deadline_hours"),
        ("[poll]\ninterval = inf\n", "poll.interval"),
    ],
)
def test_a_number_of_seconds_that_is_no_number_is_refused_at_start_naming_the_key(province, tmp_path, override, key):
    """Found in review: nan passed "must be positive" (and later failed a NOT NULL insert with a
    traceback), inf overflowed health's arithmetic, and axis.timeout_seconds = 0 was taken as
    "no timeout" by aiohttp: a stalled axis held a worker for ever."""
    agency = province.agencies[PROVINCE]
    overrides = tmp_path / "override.toml"
    overrides.write_text(override, encoding="utf-8")
    result = province.run("run", "--config", str(agency.config), "--overrides", str(overrides))
    assert result.returncode == 78 and "Traceback" not in result.stderr
    assert "CFG500" in result.stderr and key in result.stderr and "must be a positive number" in result.stderr


def test_signature_checks_turned_off_are_said_at_start_and_by_health(province):
    """Found in review: require_signatures = false (or revocation = "off") delivered forged and
    unsigned documents with nothing said anywhere: a test's setting forgotten in production."""
    agency = province.agencies[PROVINCE]
    replace_in_config(agency, 'trust = "../pki/ca.pem"', 'trust = "../pki/ca.pem"\nrequire_signatures = false')
    started = province.start(PROVINCE)
    said = started.service.wait_for(lambda e: e.get("event") == "signature_checks_relaxed", "the warning")
    assert said["level"] == "warning" and "require_signatures = false" in said["setting"]
    code, report = health(province, PROVINCE)
    assert code >= WARNING and "require_signatures = false: unsigned documents" in texts(report)


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to drop the capability"
)
def test_a_data_folder_the_service_cannot_write_stops_it_as_a_configuration_error(province):
    """Found in review: a data folder that exists but cannot be written (put back by root from a
    backup) made `run` print a plain-text line and exit 1: systemd restarted it five times for
    nothing, and the line broke the README's jq pipelines."""
    agency = province.agencies[PROVINCE]
    data = agency.folder / "var"
    data.mkdir(exist_ok=True)
    data.chmod(0o555)
    try:
        without_override = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
        result = subprocess.run(
            [*without_override, sys.executable, "-m", "gateway", "run", "--config", str(agency.config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        data.chmod(0o755)
    assert result.returncode == 78, result.stderr
    (line,) = result.stderr.strip().splitlines()
    said = json.loads(line)  # one JSON line, as every line of the service
    assert said["event"] == "not_started" and said["code"] == "CFG501" and ".lock" in said["where"]


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to drop the capability"
)
def test_looking_commands_read_a_record_they_may_not_write(province):
    """Found in review: health, list and track opened the database to write (a lock taken at
    open, migrations), so a member of the service's group, who may only read it, got "attempt
    to write a readonly database": UNKNOWN from health instead of CRITICAL "not running". The
    record here is root's, read without the capability that lets root write anywhere."""
    agency = province.agencies[PROVINCE]
    province.start(PROVINCE)
    wait_until(lambda: health(province, PROVINCE)[0] == OK, "an OK report")
    agency.service.stop()
    data = agency.database.parent
    modes = {path: path.stat().st_mode for path in [data, *data.iterdir()]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        reader = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-m", "gateway"]
        looked = subprocess.run(
            [*reader, "health", "--config", str(agency.config), "--json"], capture_output=True, text=True
        )
        listed = subprocess.run([*reader, "list", "--config", str(agency.config)], capture_output=True, text=True)
        files_after = sorted(p.name for p in data.iterdir())
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert looked.returncode == CRITICAL, looked.stdout + looked.stderr
    assert "the gateway is not running" in texts(json.loads(looked.stdout))
    assert listed.returncode == 0, listed.stderr
    assert files_after == sorted(p.name for p in modes if p != data)  # nothing made beside the database
