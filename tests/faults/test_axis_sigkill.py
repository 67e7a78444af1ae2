"""SIGKILL the axis while documents pour in: after a restart nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gateway import edxml
from gateway.axis_client import AxisClient
from gateway.errors import AxisError, AxisUnavailable
from tests.messages import full_document

MINISTRY, PROVINCE = "000.00.00.G22", "000.00.00.H58"


def documents(count: int) -> list[bytes]:
    base = full_document(sender=MINISTRY, attachments=1)
    base = dataclasses.replace(base, to=(dataclasses.replace(base.to[0], organ_id=edxml.AgencyCode(PROVINCE)),))
    return [
        edxml.build(dataclasses.replace(base, document_id=f"{MINISTRY},2026/11/25,{n}/VPCP", business=None))
        for n in range(count)
    ]


async def pour(
    axis, data: list[bytes], kill_after: int | None, errors: list[str] | None = None, batch: int = 1
) -> dict[int, str]:
    """Send everything, 8 calls at a time, each of ``batch`` messages (more than one: our axis's
    several messages per sendEdoc); SIGKILL the axis once `kill_after` answers came back OK."""
    accepted: dict[int, str] = {}
    errors = [] if errors is None else errors
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(data)):
        queue.put_nowait(index)

    tries: dict[int, int] = {}
    killed = False

    async def worker(client: AxisClient) -> None:
        nonlocal killed
        while not queue.empty():
            indexes = [queue.get_nowait() for _ in range(min(batch, queue.qsize()))]
            try:
                if batch == 1:
                    answers: list = [await client.send_edoc(data[indexes[0]], message_type="edoc", from_code=MINISTRY)]
                else:
                    answers = await client.send_many(
                        [data[i] for i in indexes], message_type="edoc", from_code=MINISTRY
                    )
            except (AxisUnavailable, AxisError) as exc:
                answers = [exc] * len(indexes)
            for index, answer in zip(indexes, answers, strict=True):
                if isinstance(answer, Exception):
                    errors.append(str(answer))
                    tries[index] = tries.get(index, 0) + 1
                    if not killed and tries[index] < 3:  # failed in passing on a loaded machine: once more
                        queue.put_nowait(index)
                    continue
                accepted[index] = answer
                if kill_after is not None and len(accepted) >= kill_after and not killed:
                    killed = True
                    axis.service.kill()

    async with AxisClient(axis.url, "sys-g22", axis.secret("sys-g22"), timeout=20) as client:
        if batch > 1:
            await client.count()  # the answer announces how many messages a call may carry
            assert client.send_batch_max and client.send_batch_max >= batch
        await asyncio.gather(*(worker(client) for _ in range(8)))
    return accepted


async def all_listed(axis) -> list:
    async with AxisClient(axis.url, "sys-h58", axis.secret("sys-h58")) as client:
        items = []
        while True:  # the list is paged at 500; acknowledge as we go so the next page comes
            page = await client.received_list()
            if not page:
                return items
            for item in page:
                edxml.read(await client.get_edoc(item.doc_id))  # every listed document is complete
                await client.update_status(item.doc_id, "done")
            items.extend(page)


@pytest.mark.parametrize(
    ("rounds", "batch"),
    [
        pytest.param(1, 1, id="one-kill"),
        pytest.param(1, 5, id="one-kill-five-messages-a-call"),
        pytest.param(4, 1, id="four-kills", marks=pytest.mark.slow),
    ],
)
def test_sigkill_during_sends_loses_and_doubles_nothing(axis_factory, tmp_path, rounds, batch):
    data = documents(120 * rounds)
    first_answers: dict[int, str] = {}
    axis = axis_factory()
    for round_number in range(rounds):
        round_errors: list[str] = []
        accepted = asyncio.run(pour(axis, data, kill_after=25 + 20 * round_number, errors=round_errors, batch=batch))
        assert len(accepted) >= 25, round_errors[:3]
        for index, doc_id in accepted.items():
            first_answers.setdefault(index, doc_id)
        assert axis.service.process.returncode == -9
        axis = axis_factory(folder=tmp_path)
    # Whatever got an answer before a kill is kept under the same DocId; sending again adds nothing.
    errors: list[str] = []
    again: dict[int, str] = {}
    for _ in range(3):  # a send may fail in passing (a loaded machine); what matters is what gets kept
        missing = [i for i in range(len(data)) if i not in again]
        answered = asyncio.run(pour(axis, [data[i] for i in missing], kill_after=None, errors=errors, batch=batch))
        again.update({missing[i]: doc_id for i, doc_id in answered.items()})
    assert len(again) == len(data), errors[:3]
    if errors:
        print(f"sends that failed in passing after the restart: {len(errors)}, e.g. {errors[0]}")
    for index, doc_id in first_answers.items():
        assert again[index] == doc_id
    listed = asyncio.run(all_listed(axis))
    assert len(listed) == len(data)
    assert len({item.doc_id for item in listed}) == len(data)
    stored = sorted(p.name for p in (tmp_path / "axis-data" / "docs").iterdir())
    assert len(stored) == len(data)  # no orphan file survives a restart
