"""Code lists of edXML (facts §2.2, §3), each value with its Vietnamese meaning."""

from __future__ import annotations

import enum


class _Coded(enum.Enum):
    """An enum whose members carry (wire value, Vietnamese meaning)."""

    def __new__(cls, wire: str | int, meaning: str) -> _Coded:
        member = object.__new__(cls)
        member._value_ = wire
        member.meaning = meaning  # type: ignore[attr-defined]
        return member

    meaning: str

    @classmethod
    def from_wire(cls, text: str):
        """Look a member up by its wire text; raises ValueError naming the allowed values."""
        sample = next(iter(cls)).value
        key: str | int = text.strip()
        if isinstance(sample, int):
            try:
                key = int(key)
            except ValueError:
                key = text
        try:
            return cls(key)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in cls)
            raise ValueError(f"{text!r} is not one of {allowed}") from None

    @property
    def wire(self) -> str:
        return str(self.value)


class StatusCode(_Coded):
    """StatusCode of a status message (phản hồi)."""

    ARRIVED = ("01", "Đã đến — phần mềm QLVB đã nhận, văn thư chưa xử lý")
    REFUSED = ("02", "Từ chối tiếp nhận văn bản điện tử")
    ACCEPTED = ("03", "Đã tiếp nhận, vào sổ văn bản đến")
    ASSIGNED = ("04", "Lãnh đạo phân công xử lý")
    PROCESSING = ("05", "Đang xử lý")
    FINISHED = ("06", "Hoàn thành xử lý")
    RECALL_REQUESTED = ("13", "Yêu cầu lấy lại văn bản điện tử")
    CHANGE_ACCEPTED = ("15", "Đồng ý yêu cầu cập nhật, lấy lại")
    CHANGE_REFUSED = ("16", "Từ chối yêu cầu cập nhật, lấy lại")


class Priority(_Coded):
    """OtherInfo/Priority (độ khẩn)."""

    NORMAL = (0, "Thường")
    URGENT = (1, "Khẩn")
    VERY_URGENT = (2, "Thượng khẩn")
    EXPRESS = (3, "Hỏa tốc")
    EXPRESS_SCHEDULED = (4, "Hỏa tốc hẹn giờ")


class BusinessDocType(_Coded):
    """Bussiness/BussinessDocType: what this message does to a document."""

    NEW = (0, "Văn bản điện tử mới")
    REVOKE = (1, "Thu hồi văn bản điện tử")
    UPDATE = (2, "Cập nhật văn bản điện tử")
    REPLACE = (3, "Thay thế văn bản điện tử")


class SteeringType(_Coded):
    """MessageHeader/SteeringType (loại chỉ đạo); the 0-2 mapping, the better supported one (facts §3)."""

    NOT_STEERING = (0, "Không phải chỉ đạo")
    STEERING = (1, "Chỉ đạo")
    STEERING_REPORT = (2, "Báo cáo chỉ đạo")


class ReceiverType(_Coded):
    """BussinessDocumentInfo/ReceiverList/Receiver/ReceiverType in an update."""

    REMOVED = (0, "Bị loại khỏi danh sách nhận")
    ADDED = (1, "Được thêm vào danh sách nhận")
