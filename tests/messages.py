"""Example messages that use the fields of the model: what tests and benchmarks send.

Plain code, no pytest: the benchmarks import it from an installation without test tools.
"""

from __future__ import annotations

from datetime import date, datetime

from gateway.edxml import (
    AgencyCode,
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    Code,
    Document,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusMessage,
    SteeringType,
    TraceHeader,
)

PROVINCE = "000.00.00.H58"  # UBND tỉnh Tiền Giang
DEPARTMENT = "000.00.11.H58"
MINISTRY = "000.00.00.G22"  # Văn phòng Chính phủ


def organization(code: str, name: str) -> Organization:
    return Organization(
        organ_id=AgencyCode.strict(code),
        organization_in_charge=name,
        organ_name=name,
        organ_add="Số 23, đường 30/4, phường 1, Mỹ Tho, Tiền Giang",
        email="vanthu@tiengiang.gov.vn",
        telephone="0273 3873 000",
        fax="0273 3873 001",
        website="tiengiang.gov.vn",
    )


def full_document(*, attachments: int = 2, sender: str = PROVINCE) -> Document:
    """A document that uses every element of the model."""
    files = tuple(
        Attachment(
            content_id=f"att-{i}",
            attachment_name=f"Quyết định {i}.pdf",
            data=bytes(range(256)) * (i + 1),
            content_type="application/pdf",
            description=f"Tệp đính kèm số {i}",
        )
        for i in range(attachments)
    )
    return Document(
        sender=organization(sender, "UBND tỉnh Tiền Giang"),
        to=(organization(DEPARTMENT, "Sở Nội vụ"), organization("000.01.11.H58", "Phòng Tổ chức")),
        subject="Về việc triển khai gửi nhận văn bản điện tử quý III năm 2023",
        document_id=f"{sender},2023/07/03,1234/UBND-VP",
        code=Code("1234", "UBND-VP"),
        promulgation_info=PromulgationInfo("Mỹ Tho", date(2023, 7, 3)),
        document_type=DocumentType(type=1, type_detail=0, type_name="Công văn"),
        content="Đề nghị các cơ quan, đơn vị triển khai thực hiện.",
        signer_info=SignerInfo("KT. Chủ tịch", "Phó Chủ tịch", "Nguyễn Văn A"),
        due_date=date(2023, 7, 31),
        other_info=OtherInfo(
            priority=Priority.URGENT,
            sphere_of_promulgation="Lưu hành nội bộ",
            typer_notation="NVA",
            promulgation_amount=10,
            page_amount=2,
            reply_fors="",
            direction=False,
            reference_codes="",
            appendixes=("Phụ lục I", "Phụ lục II"),
        ),
        response_for=(
            ResponseFor(
                AgencyCode(MINISTRY), "7816/VPCP-TTĐT", date(2023, 6, 30), "000.00.00.G22,2023/06/30,7816/VPCP-TTĐT"
            ),
        ),
        steering_type=SteeringType.STEERING,
        response_for_task=("TASK-1",),
        application_type="QLVB",
        to_places=("Các sở, ban, ngành", "UBND các huyện"),
        trace_headers=(TraceHeader(AgencyCode.strict(sender), datetime(2023, 7, 3, 8, 30, 0)),),
        business=Business(
            business_doc_type=BusinessDocType.UPDATE,
            document_id=f"{sender},2023/07/01,1200/UBND-VP",
            business_doc_reason="Cập nhật văn bản điện tử",
            paper=True,
            document_infos=(
                BusinessDocumentInfo(
                    document_info=1,
                    document_receiver=1,
                    receivers=(
                        Receiver(AgencyCode(DEPARTMENT), ReceiverType.ADDED),
                        Receiver(AgencyCode("000.00.12.H58"), ReceiverType.REMOVED),
                    ),
                ),
            ),
            replacements=(ReplacementInfo(f"{sender},2023/06/01,999/UBND-VP", (AgencyCode(DEPARTMENT),)),),
            staff=(StaffInfo("Văn thư", "VT01", "Trần Thị B", "NV02", "b@tiengiang.gov.vn", "0912000001"),),
        ),
        attachments=files,
    )


def full_status(code: StatusCode = StatusCode.ACCEPTED, *, sender: str = DEPARTMENT) -> StatusMessage:
    return StatusMessage(
        sender=organization(sender, "Sở Nội vụ"),
        response_for=ResponseFor(
            AgencyCode(PROVINCE), "1234/UBND-VP", date(2023, 7, 3), f"{PROVINCE},2023/07/03,1234/UBND-VP"
        ),
        status_code=code,
        staff_info=StaffInfo("Văn thư", None, "Lê Văn C", None, "c@tiengiang.gov.vn", "0912000002"),
        description=code.meaning,
        timestamp=datetime(2023, 7, 3, 9, 0, 0),
    )
