"""What a relay (the axis) may do to a message: append one TraceHeader, nothing else."""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from gateway.edxml import ns
from gateway.edxml.reading import Envelope
from gateway.edxml.text import format_timestamp


def append_trace_header(root: etree._Element, organ_id: str, moment: datetime) -> None:
    """Append ``TraceHeader(organ_id, moment)`` to the message's TraceHeaderList, in place.

    A document without a TraceHeaderList gets one right after MessageHeader. The signed
    parts are untouched, so the sender's signature stays valid.
    """
    frame = Envelope(root)
    traces = frame.trace_header_list
    if traces is None:
        traces = etree.Element(ns.q("TraceHeaderList"))
        frame.message_header.addnext(traces)
        traces.tail = frame.message_header.tail
    hop = etree.SubElement(traces, ns.q("TraceHeader"))
    etree.SubElement(hop, ns.q("OrganId")).text = organ_id
    etree.SubElement(hop, ns.q("Timestamp")).text = format_timestamp(moment)
