"""Fuzzing every axis endpoint with mutated, signed-looking requests: each answer is the JSON
envelope with a known ErrorCode, never an internal error, and the axis stays up."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.vxp.answers import AxisCode
from tests.axis.sdk_client import SdkLikeClient

CALLS = [
    "sendEdoc",
    "getReceivedEdocList",
    "getEdoc",
    "updateStatus",
    "getSentEdocList",
    "countReceiveEdoc",
    "countReceiveStatus",
    "getAgenciesList",
    "registerAgency",
    "deleteAgency",
    "noSuchCall",
]
KNOWN = {code.wire for code in AxisCode} - {AxisCode.INTERNAL.wire}
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
# Header names must be HTTP tokens: a request with another character in a name is not HTTP, and
# aiohttp's parser answers it with a plain 400 before any handler runs.
header_name = st.from_regex(r"[A-Za-z0-9\-]{1,12}", fullmatch=True)


@st.composite
def requests(draw):
    call = draw(st.sampled_from(CALLS))
    params = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "docId",
                    "docid",
                    "status",
                    "messagetype",
                    "servicetype",
                    "to",
                    "from",
                    "hash-file",
                    "AgencyCode",
                    "systemid",
                    "timestamp",
                ]
            ),
            header_text,
            max_size=5,
        )
    )
    body = draw(st.one_of(st.binary(max_size=300), st.just(b"{}"), st.just(b"")))
    mutation = draw(st.sampled_from(["none", "drop", "change", "add", "duplicate", "garble-json"]))
    return call, params, body, mutation, draw(st.integers(0, 50)), draw(header_text), draw(header_name)


def test_every_endpoint_answers_mutated_requests_with_the_envelope(axis):
    sdk = SdkLikeClient(axis.port, "sys-h58", axis.secret("sys-h58"))

    @settings(
        max_examples=1500 if LONG else 120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(requests())
    def one(request):
        call, params, body, mutation, index, text, name_part = request
        # a fresh map each time (the SDK's leftover parameters are tested elsewhere)
        sdk.map = {key: sdk.map[key] for key in ("timestamp", "systemid")}
        headers = sdk.headers_for(params, "application/json")
        if mutation == "drop":
            del headers[index % len(headers)]
        elif mutation == "change":
            name, _ = headers[index % len(headers)]
            headers[index % len(headers)] = (name, text)
        elif mutation == "add":
            headers.append((f"XroadVnpt-{name_part}", text))
        elif mutation == "duplicate":  # a parameter twice (Content-Type twice is not HTTP: aiohttp refuses it)
            parameters = [h for h in headers if h[0].startswith("XroadVnpt-")]
            headers.append(parameters[index % len(parameters)])
        elif mutation == "garble-json":
            headers = [(n, v[: len(v) // 2] if n == "XroadVnpt-sign-header" else v) for n, v in headers]
        status, answer = sdk.post(call, headers, body)
        assert status != 500, answer
        assert {"status", "ErrorCode", "ErrorDesc"} <= set(answer) and None not in answer.values()
        assert answer["ErrorCode"] in KNOWN, answer
        if call == "sendEdoc":
            assert "DocId" in answer

    one()
    assert axis.service.process.poll() is None
    assert "internal_error" not in axis.service.event_names()
