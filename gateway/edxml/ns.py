"""XML namespaces edXML uses."""

EDXML = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
XLINK = "http://www.w3.org/1999/xlink"
PREFIX = "edXML"


def q(local: str) -> str:
    """Clark name of an element in the edXML namespace."""
    return f"{{{EDXML}}}{local}"


def pretty(name: str) -> str:
    """Turn a Clark name into what a person reads in the file: ``edXML:Subject``."""
    return name.replace(f"{{{EDXML}}}", "edXML:").replace(f"{{{DSIG}}}", "ds:")
