"""The province's shape: Tiền Giang's 45 installations and the 1,174 agency codes they host, and
the agencies outside it (on the national axis) that write to it and receive from it.

What is published (Q3 2023 report): 45 installations (UBND tỉnh, 33 sở/ban/ngành, 11 UBND
huyện) holding 1,174 codes. How the codes split among the installations is not published;
ours follows the administrative structure:
- each UBND huyện hosts its phòng chuyên môn (12, the usual number under Nghị định 37/2014 as
  amended by 108/2020) and its xã/phường/thị trấn: the province's 172 commune-level units,
  split among the 11 district-level units approximately as the 2023 administrative list has
  them (the split by district is ours, the total is the list's);
- the 33 sở/ban/ngành host the remaining 825 codes (chi cục, trung tâm, schools, hospitals),
  in proportion to a weight of ours for each (education and health the largest);
- UBND tỉnh hosts none (its office is one of the 33).
Codes follow QĐ 20 (edxml-facts.md §4): UBND tỉnh 000.00.00.H58, sở/ban/ngành 000.00.01–33.H58,
huyện 000.00.34–44.H58, their units 000.NN.PP.H58 (level 3), beyond 99 units level 4
(NNN.01.PP.H58). The district numbers are ours, not the province's real ones.

Outside: the Government Office (VPCP, 000.00.00.G22) on its own installation, ministries on
one installation and other provinces' UBND on another (in reality each runs its own; three
processes stand in for them, which the exchange cannot tell apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

PROVINCE_CODE = "000.00.00.H58"
PROVINCE_NAME = "UBND tỉnh Tiền Giang"
UNITS_PER_DISTRICT_OFFICE = 12
PUBLISHED_CODES = 1174
PUBLISHED_INSTALLATIONS = 45

# name, weight (its share of the 825 sub-unit codes)
DEPARTMENTS: tuple[tuple[str, int], ...] = (
    ("Văn phòng UBND tỉnh", 8),
    ("Sở Nội vụ", 10),
    ("Sở Tư pháp", 10),
    ("Sở Kế hoạch và Đầu tư", 8),
    ("Sở Tài chính", 8),
    ("Sở Công Thương", 10),
    ("Sở Nông nghiệp và Phát triển nông thôn", 30),
    ("Sở Giao thông vận tải", 10),
    ("Sở Xây dựng", 8),
    ("Sở Tài nguyên và Môi trường", 16),
    ("Sở Thông tin và Truyền thông", 6),
    ("Sở Lao động - Thương binh và Xã hội", 16),
    ("Sở Văn hóa, Thể thao và Du lịch", 12),
    ("Sở Khoa học và Công nghệ", 6),
    ("Sở Giáo dục và Đào tạo", 70),
    ("Sở Y tế", 45),
    ("Thanh tra tỉnh", 4),
    ("Ban Quản lý các khu công nghiệp", 4),
    ("Ban Quản lý dự án đầu tư xây dựng", 4),
    ("Đài Phát thanh và Truyền hình", 4),
    ("Báo Ấp Bắc", 2),
    ("Trường Chính trị", 3),
    ("Trường Đại học Tiền Giang", 6),
    ("Trường Cao đẳng Tiền Giang", 4),
    ("Quỹ Đầu tư phát triển", 2),
    ("Liên minh Hợp tác xã", 2),
    ("Văn phòng Đoàn ĐBQH và HĐND tỉnh", 3),
    ("Ban Quản lý Khu di tích", 2),
    ("Vườn Quốc gia và Khu bảo tồn", 2),
    ("Trung tâm Phục vụ hành chính công", 3),
    ("Ban An toàn giao thông", 2),
    ("Hội Nông dân tỉnh", 4),
    ("Tỉnh Đoàn", 4),
)

# name, its commune-level units (together 172)
DISTRICTS: tuple[tuple[str, int], ...] = (
    ("UBND thành phố Mỹ Tho", 17),
    ("UBND thành phố Gò Công", 12),
    ("UBND thị xã Cai Lậy", 16),
    ("UBND huyện Cái Bè", 25),
    ("UBND huyện Cai Lậy", 16),
    ("UBND huyện Châu Thành", 23),
    ("UBND huyện Chợ Gạo", 19),
    ("UBND huyện Tân Phước", 12),
    ("UBND huyện Gò Công Tây", 13),
    ("UBND huyện Gò Công Đông", 13),
    ("UBND huyện Tân Phú Đông", 6),
)

OUTSIDE_PROVINCES: tuple[tuple[str, str], ...] = (
    ("000.00.00.H57", "UBND tỉnh Thừa Thiên Huế"),
    ("000.00.00.H29", "UBND Thành phố Hồ Chí Minh"),
    ("000.00.00.H13", "UBND thành phố Cần Thơ"),
    ("000.00.00.H30", "UBND tỉnh Hậu Giang"),
    ("000.00.00.H41", "UBND tỉnh Nghệ An"),
    ("000.00.00.H17", "UBND thành phố Đà Nẵng"),
    ("000.00.00.H36", "UBND tỉnh Lâm Đồng"),
    ("000.00.00.H53", "UBND tỉnh Tây Ninh"),
)
MINISTRIES: tuple[tuple[str, str], ...] = (
    ("000.00.00.G09", "Bộ Nội vụ"),
    ("000.00.00.G12", "Bộ Tài chính"),
    ("000.00.00.G17", "Bộ Xây dựng"),
    *((f"000.00.00.G{n:02d}", f"Bộ, ngành trung ương G{n:02d}") for n in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11)),
)
GOVERNMENT_OFFICE = ("000.00.00.G22", "Văn phòng Chính phủ")


class Role(StrEnum):
    PROVINCE = "province"  # UBND tỉnh
    DEPARTMENT = "department"  # sở, ban, ngành
    DISTRICT = "district"  # UBND huyện, thị xã, thành phố
    UNIT = "unit"  # a sở's chi cục, trung tâm, school, hospital
    OFFICE = "office"  # a huyện's phòng
    COMMUNE = "commune"  # xã, phường, thị trấn
    OUTSIDE = "outside"  # a ministry, the Government Office, another province


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    role: Role
    installation: str  # the code of the installation hosting it (its own code for an installation)
    parent: str | None  # the agency above it (None: UBND tỉnh, and outside agencies)

    @property
    def is_installation(self) -> bool:
        return self.code == self.installation


@dataclass(frozen=True)
class Installation:
    code: str
    name: str
    outside: bool
    hosted: tuple[Agency, ...]  # besides its own agency


@dataclass(frozen=True)
class Shape:
    agencies: dict[str, Agency]
    installations: dict[str, Installation]

    @property
    def province(self) -> list[Agency]:
        return [a for a in self.agencies.values() if a.role is not Role.OUTSIDE]

    @property
    def outside(self) -> list[Agency]:
        return [a for a in self.agencies.values() if a.role is Role.OUTSIDE]

    def children(self, code: str) -> list[Agency]:
        return [a for a in self.agencies.values() if a.parent == code]


def _shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, largest remainders first: they sum to ``total``."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    shares = [int(x) for x in exact]
    for index in sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)[: total - sum(shares)]:
        shares[index] += 1
    return shares


def _unit_code(index: int, level2: int) -> str:
    """The code of a level-2 body's ``index``-th unit (1-based): level 3, then level 4 under unit 01."""
    if index <= 99:
        return f"000.{index:02d}.{level2:02d}.H58"
    return f"{index - 99:03d}.01.{level2:02d}.H58"


def build() -> Shape:
    agencies: dict[str, Agency] = {}
    installations: dict[str, Installation] = {}

    def add(agency: Agency) -> Agency:
        agencies[agency.code] = agency
        return agency

    add(Agency(PROVINCE_CODE, PROVINCE_NAME, Role.PROVINCE, PROVINCE_CODE, None))
    installations[PROVINCE_CODE] = Installation(PROVINCE_CODE, PROVINCE_NAME, False, ())
    district_units = [UNITS_PER_DISTRICT_OFFICE + communes for _, communes in DISTRICTS]
    remaining = PUBLISHED_CODES - PUBLISHED_INSTALLATIONS - sum(district_units)
    unit_counts = _shares(remaining, [weight for _, weight in DEPARTMENTS])
    for number, ((name, _), count) in enumerate(zip(DEPARTMENTS, unit_counts, strict=True), start=1):
        code = f"000.00.{number:02d}.H58"
        own = add(Agency(code, name, Role.DEPARTMENT, code, PROVINCE_CODE))
        hosted = tuple(
            add(Agency(_unit_code(i, number), f"Đơn vị {i} thuộc {name}", Role.UNIT, code, own.code))
            for i in range(1, count + 1)
        )
        installations[code] = Installation(code, name, False, hosted)
    for offset, (name, communes) in enumerate(DISTRICTS):
        number = len(DEPARTMENTS) + 1 + offset
        code = f"000.00.{number:02d}.H58"
        add(Agency(code, name, Role.DISTRICT, code, PROVINCE_CODE))
        place, offices_count = name.split(" ", 1)[1], UNITS_PER_DISTRICT_OFFICE
        offices = [
            add(Agency(_unit_code(i, number), f"Phòng {i} {place}", Role.OFFICE, code, code))
            for i in range(1, UNITS_PER_DISTRICT_OFFICE + 1)
        ]
        wards = [
            add(Agency(_unit_code(offices_count + i, number), f"UBND xã {i} {place}", Role.COMMUNE, code, code))
            for i in range(1, communes + 1)
        ]
        installations[code] = Installation(code, name, False, tuple(offices + wards))
    outside_groups = (
        (GOVERNMENT_OFFICE,),
        MINISTRIES,
        OUTSIDE_PROVINCES,
    )
    for group in outside_groups:
        own_code, own_name = group[0]
        hosted = tuple(add(Agency(c, n, Role.OUTSIDE, own_code, None)) for c, n in group[1:])
        add(Agency(own_code, own_name, Role.OUTSIDE, own_code, None))
        installations[own_code] = Installation(own_code, own_name, True, hosted)
    shape = Shape(agencies, installations)
    province_installations = [i for i in installations.values() if not i.outside]
    assert len(province_installations) == PUBLISHED_INSTALLATIONS, len(province_installations)
    assert len(shape.province) == PUBLISHED_CODES, len(shape.province)
    return shape
