"""`edxml-gateway demo`: a country on one machine, exchanging documents for real.

Three axes: the national one (the Government Office's gateway under it) and two provincial
axes bridged to it, Tiền Giang's and Thừa Thiên Huế's. Under Tiền Giang's, three
installations: the province UBND, hosting Văn phòng UBND tỉnh; a department; a district
(UBND huyện Cái Bè) hosting two of its phòng and two xã, as the province deploys them
([[hosted]]: one gateway per unit, every code under it). Each process has its own
configuration and database, each agency its own key, drop folder and inbox. Documents
cross all four levels with real attachments: inside the province, between hosted agencies
of one installation, up to the Government Office and back, and across both bridges to the
other province. The demo plays each agency's document system: it drops job folders (two
senders use the CLI instead, one with `send --from`), moves received documents through 03,
04, 05, 06, refuses one (02) and recalls one (13, answered with 15). It prints progress,
then a summary per agency, and exits 0 only when every document reached its expected final
state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gateway import config as config_module
from gateway import country, demo_signatures, workspace
from gateway.daemon import commands
from gateway.errors import GatewayError
from gateway.processes import Service
from gateway.store import GatewayStore

MINISTRY, PROVINCE, DEPARTMENT, DISTRICT = "000.00.00.G22", "000.00.00.H58", "000.00.11.H58", "000.00.31.H58"
OFFICE = "000.00.01.H58"
COMMUNE, COMMUNE_2, HOME_AFFAIRS, FINANCE = "000.01.31.H58", "000.02.31.H58", "000.21.31.H58", "000.22.31.H58"
HUE = "000.00.00.H57"
AGENCIES = {  # the installations under Tiền Giang's provincial axis: one gateway each
    PROVINCE: "UBND tỉnh Tiền Giang",
    DEPARTMENT: "Sở Nội vụ tỉnh Tiền Giang",
    DISTRICT: "UBND huyện Cái Bè",
}
HOSTED = {  # the agencies an installation hosts ([[hosted]])
    PROVINCE: {OFFICE: "Văn phòng UBND tỉnh Tiền Giang"},
    DISTRICT: {
        HOME_AFFAIRS: "Phòng Nội vụ huyện Cái Bè",
        FINANCE: "Phòng Tài chính - Kế hoạch huyện Cái Bè",
        COMMUNE: "UBND xã Hậu Thành",
        COMMUNE_2: "UBND xã An Hữu",
    },
}
PLANS = [  # three axes: the national one, and two provinces' bridged to it
    country.AxisPlan("national", MINISTRY, {MINISTRY: "Văn phòng Chính phủ"}),
    country.AxisPlan("tien-giang", PROVINCE, AGENCIES, HOSTED, upstream="national"),
    country.AxisPlan("thua-thien-hue", HUE, {HUE: "UBND tỉnh Thừa Thiên Huế"}, upstream="national"),
]
FINISHED, REFUSED, RECALLED = "06", "02", "15"
STEPS = {FINISHED: ("01", "03", "04", "05", "06"), REFUSED: ("01", "02"), RECALLED: ("01", "15")}
FURTHEST = ("-", "01", "03", "04", "05", "06", "02", "16", "15")
REFUSAL = "Văn bản không thuộc thẩm quyền giải quyết, đề nghị gửi đúng đơn vị"


@dataclass(frozen=True)
class Planned:
    number: int
    sender: str
    recipients: tuple[str, ...]
    subject: str
    via: str  # "drop" or "cli"
    outcome: str  # what each recipient ends with: 06, 02 or 15

    @property
    def notation(self) -> str:
        return "VPCP-TTĐT" if self.sender == MINISTRY else "UBND-VP"


def plan(documents: int) -> list[Planned]:
    base = [
        # the Government Office's document comes down the national axis and its bridge
        Planned(1, MINISTRY, (PROVINCE,), "Chỉ thị về đẩy mạnh chuyển đổi số", "cli", FINISHED),
        Planned(2, PROVINCE, (DISTRICT, COMMUNE), "Kế hoạch triển khai văn bản điện tử năm 2026", "drop", FINISHED),
        # a hosted xã to its huyện and to the province: it stays in the provincial axis
        Planned(3, COMMUNE, (DISTRICT, PROVINCE), "Báo cáo kết quả thực hiện quý III", "drop", FINISHED),
        # up to the Government Office, and across both bridges to another province
        Planned(4, PROVINCE, (MINISTRY, HUE), "Báo cáo tình hình kinh tế - xã hội", "drop", FINISHED),
        Planned(5, PROVINCE, (DEPARTMENT,), "Văn bản gửi nhầm đơn vị", "drop", REFUSED),
        Planned(6, PROVINCE, (DISTRICT,), "Quyết định ban hành nhầm, sẽ thu hồi", "drop", RECALLED),
        Planned(7, HOME_AFFAIRS, (COMMUNE, FINANCE), "Hướng dẫn tuyển dụng công chức cấp xã", "cli", FINISHED),
        Planned(8, HUE, (PROVINCE,), "Công văn trao đổi kinh nghiệm", "drop", FINISHED),
        Planned(9, OFFICE, (DEPARTMENT, HOME_AFFAIRS), "Thông báo kết luận của Chủ tịch UBND tỉnh", "drop", FINISHED),
        Planned(10, DEPARTMENT, (DISTRICT, COMMUNE_2), "Kế hoạch thi tuyển công chức năm 2026", "drop", FINISHED),
    ]
    routes = [
        (PROVINCE, DEPARTMENT),
        (DISTRICT, PROVINCE),
        (MINISTRY, DISTRICT),
        (DEPARTMENT, COMMUNE),
        (COMMUNE, DISTRICT),
        (PROVINCE, MINISTRY),
        (FINANCE, OFFICE),
        (COMMUNE_2, HOME_AFFAIRS),
        (MINISTRY, HUE),
        (HUE, COMMUNE),
    ]
    extra = [
        Planned(
            n, routes[n % len(routes)][0], (routes[n % len(routes)][1],), f"Công văn trao đổi số {n}", "drop", FINISHED
        )
        for n in range(len(base) + 1, documents + 1)
    ]
    return base[:documents] + extra


def _furthest(status: str) -> int:
    return FURTHEST.index(status) if status in FURTHEST else 0


class Demo:
    def __init__(self, root: Path, documents: int, out: TextIO) -> None:
        self.root = root
        self.out = out
        self.plan = plan(documents)
        self.crl_reservation = demo_signatures.reserve_port()
        self.crl_port: int = self.crl_reservation.getsockname()[1]
        self.layout = country.create(root, PLANS, crl_url=f"http://127.0.0.1:{self.crl_port}")
        self.everyone = {**self.layout.agencies, **self.layout.hosted}  # every agency, hosted or not
        self.services: dict[str, Service] = {}
        self.document_ids: dict[int, str] = {}
        self.handled: set[tuple[str, str]] = set()  # (agency, inbox id) the document system dealt with
        self.recall_answered: set[tuple[str, str]] = set()
        self.recalled: set[int] = set()
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # --- the province ---------------------------------------------------------------------------

    def start(self) -> None:
        self.services["CRL server"] = demo_signatures.serve_crls(self.root, self.crl_port)
        self.crl_reservation.close()
        self.say(f"CRLs of the development CA (root → issuing CA → agencies) at http://127.0.0.1:{self.crl_port}")
        for name, (service, url) in country.start_axes(self.layout).items():
            self.services[f"axis {name}"] = service
            # the configurations are a real deployment's; the demo's short intervals are an override
            workspace.configure_gateways(self.layout.axes[name], url, timing="")
            above = self.layout.plans[name].upstream
            self.say(f"axis {name} listening at {url}" + (f", bridged to the {above} axis" if above else ""))
        timing = self.root / "demo-timing.toml"
        timing.write_text(workspace.QUICK_TIMING, encoding="utf-8")
        for code, agency in self.layout.agencies.items():
            self.services[code] = workspace.start_gateway(agency, overrides=timing)
            hosted = [unit for unit in self.layout.hosted.values() if unit.hosted_by == code]
            if hosted:  # documents to them are refused as unknown until the axis has them
                self.services[code].wait_for(lambda e: e.get("event") == "agencies_registered", "the registration")
            also = f", hosting {', '.join(f'{unit.code} {unit.name}' for unit in hosted)}" if hosted else ""
            self.say(f"gateway {code} {agency.name} ({self.layout.axis_of(code)} axis): running{also}")

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()

    def config(self, code: str) -> config_module.Config:
        """The configuration of the installation that hosts ``code`` (or is it)."""
        return config_module.load(self.everyone[code].config, daemon=True)

    def installation(self, code: str) -> str:
        return self.everyone[code].hosted_by or code

    # --- the senders' document systems ----------------------------------------------------------

    def submit(self) -> None:
        files = self.root / "files"
        files.mkdir(exist_ok=True)
        for item in self.plan:
            attachment = demo_signatures.signed_pdf(self.root / "pki", item.sender, item.number, item.subject)
            if item.via == "cli":
                path = files / f"van-ban-{item.number}.pdf"
                path.write_bytes(attachment)
                result = subprocess.run(
                    [
                        sys.executable,
                        "-P",  # the installed gateway, never a checkout in the working directory
                        "-m",
                        "gateway",
                        "send",
                        "--config",
                        str(self.everyone[item.sender].config),
                        "--from",
                        item.sender,
                        *(arg for code in item.recipients for arg in ("--to", code)),
                        "--subject",
                        item.subject,
                        "--code-number",
                        str(item.number),
                        "--code-notation",
                        item.notation,
                        str(path),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    cwd=self.root,
                )
                if result.returncode != 0:
                    raise GatewayError(f"edxml-gateway send failed: {result.stderr.strip()}")
                self.document_ids[item.number] = result.stdout.strip().splitlines()[-1]
                self.say(f"#{item.number} {item.sender} → {', '.join(item.recipients)} by `edxml-gateway send`")
                continue
            outbox = self.everyone[item.sender].outbox
            outbox.mkdir(parents=True, exist_ok=True)
            hidden = outbox / f".job-{item.number}"
            hidden.mkdir()
            job = {
                "to": list(item.recipients),
                "subject": item.subject,
                "code_number": str(item.number),
                "code_notation": item.notation,
                "paper": item.number % 5 == 0,
            }
            (hidden / "document.json").write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
            (hidden / f"Văn bản {item.number}.pdf").write_bytes(attachment)
            hidden.rename(outbox / f"job-{item.number}")  # complete, then visible: the drop-folder contract
            self.say(f"#{item.number} {item.sender} → {', '.join(item.recipients)} through the drop folder")

    # --- the recipients' document systems -------------------------------------------------------

    def by_document_id(self, document_id: str) -> Planned | None:
        number = next((n for n, d in self.document_ids.items() if d == document_id), None)
        if number is None:  # a drop-folder job: its number is in its DocumentId
            try:
                number = int(document_id.rsplit(",", 1)[1].split("/", 1)[0])
            except (IndexError, ValueError):
                return None
        return next((p for p in self.plan if p.number == number), None)

    def act(self) -> None:
        for code, agency in self.everyone.items():
            if not agency.inbox.is_dir():
                continue
            for folder in sorted(agency.inbox.iterdir()):
                if folder.name.startswith(".") or not (folder / "document.json").is_file():
                    continue
                header = json.loads((folder / "document.json").read_text(encoding="utf-8"))
                item = self.by_document_id(header["document_id"])
                if item is None:
                    continue
                self.document_ids.setdefault(item.number, header["document_id"])
                recall_requested = (folder / "events").is_dir() and any((folder / "events").glob("*-13.json"))
                if (code, folder.name) not in self.handled:
                    self.handled.add((code, folder.name))
                    self._on_delivered(code, folder.name, item, header["document_id"])
                if recall_requested and (code, folder.name) not in self.recall_answered:
                    self.recall_answered.add((code, folder.name))
                    commands.respond(
                        self.config(code),
                        folder.name,
                        code="15",
                        description="Đồng ý thu hồi",
                        staff="Văn thư",
                        agency_code=code,
                    )

    def _on_delivered(self, code: str, inbox_id: str, item: Planned, document_id: str) -> None:
        settings = self.config(code)
        if item.outcome == FINISHED:
            for status in ("03", "04", "05", "06"):
                commands.respond(settings, inbox_id, code=status, description=None, staff="Văn thư", agency_code=code)
        elif item.outcome == REFUSED:
            commands.respond(settings, inbox_id, code="02", description=REFUSAL, staff="Văn thư", agency_code=code)
        elif item.outcome == RECALLED and item.number not in self.recalled:
            self.recalled.add(item.number)
            commands.recall(self.config(item.sender), document_id, reason="Ban hành nhầm, đề nghị trả lại")

    # --- watching -------------------------------------------------------------------------------

    def reached(self) -> dict[tuple[int, str], list[str]]:
        """Statuses each sender has received, per (document, recipient)."""
        seen: dict[tuple[int, str], list[str]] = {}
        for code, agency in self.layout.agencies.items():
            if not agency.database.is_file():
                continue
            store = GatewayStore(agency.database.parent)
            try:
                received = store.reports.statuses_received()
            finally:
                store.close()
            for document_id, receipt in received:
                item = self.by_document_id(document_id)
                if item is not None and self.installation(item.sender) == code:
                    seen.setdefault((item.number, receipt.from_code), []).append(receipt.status_code)
        return seen

    def missing(self, seen: dict[tuple[int, str], list[str]]) -> list[str]:
        gaps = []
        for item in self.plan:
            for recipient in item.recipients:
                got = seen.get((item.number, recipient), [])
                lacking = [s for s in STEPS[item.outcome] if s not in got]
                if lacking:
                    gaps.append(f"#{item.number} {item.sender} → {recipient}: has {got or 'nothing'}, lacks {lacking}")
        return gaps

    def progress(self, seen: dict[tuple[int, str], list[str]]) -> str:
        pairs = sum(len(p.recipients) for p in self.plan)
        delivered = len(self.handled)
        counts = Counter(status for statuses in seen.values() for status in statuses)
        codes = " ".join(
            f"{code}:{counts[code]}" for code in ("01", "02", "03", "04", "05", "06", "15") if counts[code]
        )
        return (
            f"[{time.monotonic() - self.started:5.1f} s] delivered {delivered}/{pairs}, "
            f"statuses back at the senders: {codes or 'none yet'}"
        )

    def summary(self, seen: dict[tuple[int, str], list[str]], *, folders: bool) -> None:
        self.say("")
        self.say(f"{'agency':<15}{'name':<40}{'sent':>5}{'received':>9}  final statuses of what it sent")
        for code, agency in self.everyone.items():
            sent = [p for p in self.plan if p.sender == code]
            received = sum(1 for p in self.plan for r in p.recipients if r == code)
            # the furthest status each recipient reached (they may arrive out of order)
            finals = Counter(max(seen.get((p.number, r), ["-"]), key=_furthest) for p in sent for r in p.recipients)
            text = ", ".join(f"{status}×{n}" for status, n in sorted(finals.items())) or "-"
            self.say(f"{code:<15}{agency.name[:39]:<40}{len(sent):>5}{received:>9}  {text}")
        if folders:
            self.say("")
            for code, agency in self.everyone.items():
                self.say(
                    f"{code}: config {agency.config}" + (f" (hosted by {agency.hosted_by})" if agency.hosted_by else "")
                )
                indent = " " * len(code)
                self.say(f"{indent}  outbox {agency.outbox}  inbox {agency.inbox}")
                self.say(f"{indent}  log {agency.folder / 'gateway.log'}")
        refused = [p for p in self.plan if p.outcome == REFUSED]
        for item in refused:
            self.say(f"#{item.number} refused (02) by {', '.join(item.recipients)}: {REFUSAL}")
        found = demo_signatures.verdicts((code, agency.inbox) for code, agency in self.everyone.items())
        valid = sum(1 for _, _, ok, _ in found if ok)
        self.say(f"PDF signatures checked on arrival: {valid} of {len(found)} valid")
        for code, subject, ok, why in found:
            if not ok:
                self.say(f"  {code} reports the PDF of '{subject}': {why}")

    def pdfs_as_planned(self) -> bool:
        """Every delivered PDF valid but the one changed after signing, which each recipient reports."""
        found = demo_signatures.verdicts((code, agency.inbox) for code, agency in self.everyone.items())
        altered = next((p.subject for p in self.plan if p.number == demo_signatures.ALTERED), None)
        return bool(found) and all(ok == (subject != altered) for _, subject, ok, _ in found)


def run(
    *, workdir: Path | None, documents: int, keep: bool, timeout: float | None = None, out: TextIO = sys.stdout
) -> int:
    root = Path(tempfile.mkdtemp(prefix="edxml-demo-")) if workdir is None else workdir
    if workdir is not None:
        if root.exists() and any(root.iterdir()):
            raise GatewayError(f"{root} is not empty: give an empty or new folder", where=str(root))
        root.mkdir(parents=True, exist_ok=True)
    limit = timeout or max(60.0, 6.0 * documents)
    demo = Demo(root, documents, out)
    installations = sum(len(plan.installations) for plan in PLANS)
    everyone = installations + sum(len(units) for units in HOSTED.values())
    demo.say(
        f"edxml-gateway demo: {len(PLANS)} axes, {installations} installations hosting {everyone} agencies, in {root}"
    )
    ok = False
    try:
        demo.start()
        demo.submit()
        last = 0.0
        seen: dict[tuple[int, str], list[str]] = {}
        while time.monotonic() - demo.started < limit:
            demo.act()
            seen = demo.reached()
            if not demo.missing(seen):
                ok = True
                break
            if time.monotonic() - last >= 1.0:
                demo.say(demo.progress(seen))
                last = time.monotonic()
            time.sleep(0.2)
        demo.say(demo.progress(seen))
        demo.summary(seen, folders=keep or not ok)
        if ok and not demo.pdfs_as_planned():
            ok = False
            demo.say("NOT AS PLANNED: a signed PDF was not judged valid, or the altered one was not reported")
        if ok:
            demo.say(f"every document reached its final state in {time.monotonic() - demo.started:.1f} s")
        else:
            demo.say(f"NOT DONE after {limit:.0f} s:")
            for gap in demo.missing(seen):
                demo.say(f"  {gap}")
    finally:
        demo.stop()
        if keep or not ok:
            demo.say(f"workspace kept: {root} (configuration files there are a real deployment's)")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1
