"""What a gateway's per-message lookups cost with a quarter of history kept.

    python bench/history.py                      # 90,000 exchanges: UBND tỉnh's quarter at scale 1
    python bench/history.py --exchanges 10000

A gateway keeps every row it ever wrote. Each exchange here leaves what one document received,
answered and recalled, and one document sent, leave in the store (two incoming and two outgoing
rows); a quarter of the province's busiest installation is about 90,000 of them. The store is
built once through its own API and grown by copying rows under other names in SQL; then each
lookup made for an answer (`status`, a status file) and for a received status is timed.

Prints a table and one JSON line: ms per lookup, and per answer (the three lookups it makes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.sqlite import transaction
from gateway.store import GatewayStore, NewOutgoing
from gateway.store.records import Settled
from gateway.store.states import IncomingState
from gateway.vxp.vocabulary import MessageType

HOSTED = "000.01.00.H58"
PEER = "000.00.11.H58"
RECEIVED = f"{PEER},2023/07/03,0/UBND"
SENT = f"{HOSTED},2023/07/03,0/STC"


def first_exchange(store: GatewayStore) -> None:
    """A document received (inbox folder inbox-0, axis DocId doc-0) and answered 03, a recall
    of it received, and a document sent."""
    store.incoming.note_listed("doc-0", MessageType.EDOC, PEER, to_code=HOSTED)
    delivered = Settled(IncomingState.DELIVERED, from_code=PEER, document_id=RECEIVED, inbox_id="inbox-0")
    store.incoming.settle("doc-0", delivered)
    store.incoming.note_listed("recall-0", MessageType.STATUS, PEER, to_code=HOSTED)
    recall = Settled(IncomingState.RECORDED, from_code=PEER, document_id=RECEIVED, status_code="13")
    store.incoming.settle("recall-0", recall)
    answer = NewOutgoing(MessageType.STATUS, RECEIVED, "03", (PEER,), status_code="03", answers="doc-0")
    store.outgoing.queue("answer-0", answer, source_key="answer:0", deadline_seconds=3600, body=b"<s/>")
    sent = NewOutgoing(MessageType.EDOC, SENT, "Văn bản", (PEER,), from_code=HOSTED)
    store.outgoing.queue("sent-0", sent, source_key="sent:0", deadline_seconds=3600, body=b"<d/>")


def grow(store: GatewayStore, copies: range) -> None:
    """The first exchange's rows copied under other names (name~n for each n of ``copies``), as
    later exchanges would leave them."""
    renamed = {
        "incoming": {"axis_doc_id", "document_id", "inbox_id"},
        "outgoing": {"id", "document_id", "source_key", "answers"},
    }
    with transaction(store.db) as db:
        for table, keys in renamed.items():
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            picked = ", ".join(f"{c} || '~' || :n" if c in keys else c for c in columns)
            original = f"{columns[0]} NOT LIKE '%~%'"  # copies are named name~n
            last = db.execute(f"SELECT max(rowid) FROM {table} WHERE {original}").fetchone()[0]  # noqa: S608
            originals = f"FROM {table} WHERE rowid <= {last} AND {original}"  # rows 1 to last: no copy walked
            sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {picked} {originals}"
            db.executemany(sql, [{"n": n} for n in copies])


def timed(lookup: Callable[[], object], repeat: int = 30) -> float:
    """Median ms of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        lookup()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exchanges", type=int, default=90_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = GatewayStore(Path(folder))
        first_exchange(store)
        started = time.perf_counter()
        grow(store, range(1, args.exchanges))
        built = time.perf_counter() - started
        lookups: dict[str, Callable[[], object]] = {
            "answer: the document named (delivered_to)": lambda: store.incoming.delivered_to("inbox-0"),
            "answer: statuses sent before (statuses_answering)": lambda: store.reports.statuses_answering(["doc-0"]),
            "answer: recalls received (recalls_received)": lambda: store.reports.recalls_received([RECEIVED]),
            "received status: its document (sent_document)": lambda: store.outgoing.sent_document(SENT),
        }
        figures = {name: timed(lookup) for name, lookup in lookups.items()}
        store.close()
    per_answer = sum(ms for name, ms in figures.items() if name.startswith("answer"))
    rows = f"{2 * args.exchanges:,} incoming and as many outgoing rows"
    print(f"history: {args.exchanges:,} exchanges ({rows}), built in {built:.1f} s")
    for name, ms in figures.items():
        print(f"  {name:55} {ms:8.3f} ms")
    print(f"  {'an answer, its three lookups':55} {per_answer:8.3f} ms")
    print(
        json.dumps(
            {
                "exchanges": args.exchanges,
                "ms": {name.split("(")[1].rstrip(")"): round(ms, 4) for name, ms in figures.items()},
                "ms_per_answer": round(per_answer, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
