"""Agency identifier codes (mã định danh, QĐ 20/2020/QĐ-TTg; facts §4).

The strict form is ``L4.L3.L2.L1``: three digits, two, two, then a letter and two
digits, read from the right: ``000.00.00.H58`` is UBND tỉnh Tiền Giang, ``000.00.11.H58``
a unit under it, ``000.01.11.H58`` a unit under that. The lenient form accepts the other
identifiers real systems put in OrganId (``vxp.saas.03``, ``00.53.W00``, ``H37.DN.001``,
``VN:GOV:000.00.00.G22:vpcpdvcprovider``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import AgencyCodeError

_STRICT = re.compile(r"([0-9]{3})\.([0-9]{2})\.([0-9]{2})\.([A-Z][0-9]{2})")
# Letters, digits and the separators seen in the wild; no spaces, no markup.
_LENIENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")

MAX_LENGTH = 64


@dataclass(frozen=True, order=True)
class AgencyCode:
    """An agency identifier as it appears in OrganId.

    ``level`` and ``parent`` exist only for codes of the strict QĐ 20 form. The level is
    the depth in the parent chain: 1 for ``000.00.00.H58``, 2 for ``000.00.11.H58``,
    3 for ``000.01.11.H58``, 4 for ``001.01.11.H58``. A code that skips a segment
    (``001.00.10.H47``) has the level of its chain: its parent is ``000.00.10.H47``.
    """

    text: str

    @classmethod
    def strict(cls, text: str) -> AgencyCode:
        """Parse the QĐ 20 form ``ddd.dd.dd.Xdd``; anything else raises AgencyCodeError."""
        value = text.strip()
        if not _STRICT.fullmatch(value):
            raise AgencyCodeError(f"{text!r} is not an agency code of the form 000.00.00.H58 (QĐ 20)")
        return cls(value)

    @classmethod
    def lenient(cls, text: str) -> AgencyCode:
        """Accept every identifier seen in real OrganId elements (facts §4.3)."""
        value = text.strip()
        if not _LENIENT.fullmatch(value):
            raise AgencyCodeError(
                f"{text!r} is not an agency identifier (letters, digits and . _ : - only,"
                f" at most {MAX_LENGTH} characters)"
            )
        return cls(value)

    @property
    def is_qd20(self) -> bool:
        return _STRICT.fullmatch(self.text) is not None

    def _segments(self) -> tuple[str, str, str, str]:
        match = _STRICT.fullmatch(self.text)
        if match is None:
            raise AgencyCodeError(f"{self.text!r} has no QĐ 20 hierarchy (level, parent)")
        l4, l3, l2, l1 = match.groups()
        return l4, l3, l2, l1

    @property
    def top(self) -> str:
        """The level-1 body letter and number, e.g. ``H58`` (a province UBND), ``G22`` (a ministry)."""
        return self._segments()[3]

    @property
    def level(self) -> int:
        l4, l3, l2, _ = self._segments()
        return 1 + sum(1 for seg in (l4, l3, l2) if int(seg) != 0)

    @property
    def parent(self) -> AgencyCode | None:
        """The code one level up, or None for a level-1 code."""
        segments = list(self._segments())
        for index in range(3):  # L4 first: the lowest non-zero segment goes to zero
            if int(segments[index]) != 0:
                segments[index] = "0" * len(segments[index])
                return AgencyCode(".".join(segments))
        return None

    def ancestors(self) -> tuple[AgencyCode, ...]:
        """Parents from the nearest up to the level-1 code."""
        chain: list[AgencyCode] = []
        current = self.parent
        while current is not None:
            chain.append(current)
            current = current.parent
        return tuple(chain)

    def __str__(self) -> str:
        return self.text
