"""QdrantReplica on the client's in-memory local mode, with injected failures.

No Qdrant server can run here: the server path differs only in the connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from headrace.errors import ConfigError, ModelMismatchError, ReplicaRejectedError, StoreError
from headrace.sinks.base import StoredChunk
from headrace.sinks.filters import SearchFilters
from headrace.sinks.qdrant import (
    QdrantConfig,
    QdrantReplica,
    classify,
    point_id,
    rejects_data,
)
from headrace.testing.qdrant import FlakyQdrantClient

DIM = 8


def chunk(n: int, **meta: object) -> StoredChunk:
    rng = np.random.default_rng(n)
    vector = rng.random(DIM, dtype=np.float32)
    cid = uuid.UUID(int=n + 1).hex
    base: dict[str, object] = {"project": "p", "session": "s", "tools": [], "ts": float(n)}
    base.update(meta)
    return StoredChunk(
        cid, f"/t/{n % 3}.jsonl", f"text {n}", n, 1, 2, 0, 9, None, base, vector.tobytes()
    )


@pytest.fixture
def inner() -> Iterator[QdrantClient]:
    client = QdrantClient(location=":memory:")
    yield client
    client.close()


def replica(client: object, **config: object) -> QdrantReplica:
    cfg = QdrantConfig(path=":memory:", **{"batch_size": 4, **config})  # type: ignore[arg-type]
    return QdrantReplica(
        cfg, dim=DIM, model_id="m", owner="o1", client=client, sleep=lambda _s: None
    )


def held(r: QdrantReplica) -> list[str]:
    return sorted(r.ids())


def test_point_ids_are_the_chunk_ids_as_uuids() -> None:
    cid = "0123456789abcdef0123456789abcdef"
    assert point_id(cid) == "01234567-89ab-cdef-0123-456789abcdef"
    assert uuid.UUID(point_id(cid)).hex == cid


def test_upsert_is_idempotent_and_delete_removes(inner: QdrantClient) -> None:
    r = replica(inner)
    chunks = [chunk(n) for n in range(10)]
    r.upsert(chunks)
    r.upsert(chunks[:5])  # a replay
    assert held(r) == sorted(c.id for c in chunks)
    assert r.count() == 10
    r.delete([c.id for c in chunks[:3]] + ["f" * 32])  # an unknown id is a no-op
    assert held(r) == sorted(c.id for c in chunks[3:])


def test_transient_failures_are_retried_and_lose_nothing(inner: QdrantClient) -> None:
    flaky = FlakyQdrantClient(
        inner, {"upsert": {1: "timeout", 2: "unavailable", 4: "ack-lost", 5: "timeout"}}
    )
    r = replica(flaky)
    chunks = [chunk(n) for n in range(12)]  # 3 batches of 4
    r.upsert(chunks)
    assert r.retries == 4
    assert flaky.calls["upsert"] == 3 + 4
    assert held(r) == sorted(c.id for c in chunks)
    assert r.count() == 12  # the "ack-lost" batch was applied twice: overwritten, not doubled


def test_a_permanent_error_of_the_store_fails_at_once(inner: QdrantClient) -> None:
    flaky = FlakyQdrantClient(inner, {"upsert": {2: "forbidden"}})
    r = replica(flaky)
    with pytest.raises(StoreError, match="permanent") as raised:
        r.upsert([chunk(n) for n in range(8)])
    assert not isinstance(raised.value, ReplicaRejectedError)  # the run stops
    assert (r.retries, r.splits) == (0, 0)
    assert flaky.calls["upsert"] == 2


def test_a_refused_point_is_isolated_and_the_rest_is_written(inner: QdrantClient) -> None:
    chunks = [chunk(n) for n in range(8)]  # 2 batches of 4
    bad = chunks[6].id
    flaky = FlakyQdrantClient(inner, refuse=lambda p: p.payload["chunk_id"] == bad)
    r = replica(flaky)
    with pytest.raises(ReplicaRejectedError, match="refused 1 of 8 points") as raised:
        r.upsert(chunks)
    assert raised.value.chunk_ids == (bad,)
    assert held(r) == sorted(c.id for c in chunks if c.id != bad)
    # batch 2 (4 points) -> 2 + 2 -> the bad half -> 1 + 1: two splits, 3 refusals
    assert (r.splits, flaky.refused, r.retries) == (2, 3, 0)
    assert flaky.calls["upsert"] == 1 + 1 + 2 + 2


def test_a_one_off_bad_request_costs_a_split_not_the_batch(inner: QdrantClient) -> None:
    flaky = FlakyQdrantClient(inner, {"upsert": {2: "bad-request"}})
    r = replica(flaky)
    r.upsert([chunk(n) for n in range(8)])  # the halves of batch 2 are accepted
    assert r.count() == 8
    assert r.splits == 1


def test_a_refused_delete_names_its_chunks(inner: QdrantClient) -> None:
    flaky = FlakyQdrantClient(inner, {"delete": {1: "bad-request"}})
    r = replica(flaky)
    with pytest.raises(ReplicaRejectedError) as raised:
        r.delete([chunk(1).id, chunk(2).id])
    assert raised.value.chunk_ids == (chunk(1).id, chunk(2).id)


def test_a_refused_part_of_a_delete_does_not_stop_the_other_parts(inner: QdrantClient) -> None:
    r = replica(inner, batch_size=500)
    r.upsert([chunk(n) for n in range(1500)])
    r.client = FlakyQdrantClient(inner, {"delete": {1: "bad-request"}})  # part 1 of 2
    ids = [chunk(n).id for n in range(1500)]
    with pytest.raises(ReplicaRejectedError) as raised:
        r.delete(ids)
    assert raised.value.chunk_ids == tuple(ids[:1000])
    assert held(r) == sorted(ids[:1000])  # the second part was deleted anyway


def test_data_refusals_are_told_from_store_failures() -> None:
    for status in (400, 413, 422):
        assert rejects_data(UnexpectedResponse(status, "x", b"", httpx.Headers()))
    for status in (401, 403, 404, 409):
        assert not rejects_data(UnexpectedResponse(status, "x", b"", httpx.Headers()))
    assert rejects_data(ValueError("Wrong input: Vector dimension error"))


def test_transient_failures_that_outlast_the_attempts_raise(inner: QdrantClient) -> None:
    flaky = FlakyQdrantClient(inner, {"delete": dict.fromkeys(range(1, 10), "timeout")})
    r = replica(flaky, max_attempts=3)
    with pytest.raises(StoreError, match="after 3 attempts"):
        r.delete([chunk(1).id])
    assert flaky.calls["delete"] == 3


def test_backoff_grows_and_is_jittered(inner: QdrantClient) -> None:
    waits: list[float] = []
    flaky = FlakyQdrantClient(inner, {"upsert": dict.fromkeys(range(1, 6), "timeout")})
    cfg = QdrantConfig(path=":memory:", max_attempts=6, backoff_s=1.0, backoff_max_s=100.0)
    r = QdrantReplica(cfg, dim=DIM, model_id="m", owner="o", client=flaky, sleep=waits.append)
    r.upsert([chunk(1)])
    assert len(waits) == 5
    assert all(0 <= w <= 2**i for i, w in enumerate(waits, 1))  # full jitter under 2^n


def test_error_classification() -> None:
    timeout = ResponseHandlingException(httpx.ReadTimeout("t"))
    assert classify(timeout) == "transient"
    assert classify(TimeoutError()) == "transient"
    assert classify(ConnectionRefusedError()) == "transient"
    for status in (429, 502, 503, 504):
        assert classify(UnexpectedResponse(status, "x", b"", httpx.Headers())) == "transient"
    for status in (400, 401, 403, 404, 422):
        assert classify(UnexpectedResponse(status, "x", b"", httpx.Headers())) == "permanent"
    assert classify(ValueError("Wrong input: Vector dimension error")) == "permanent"

    class Code:
        def __init__(self, name: str) -> None:
            self.name = name

    class Rpc(Exception):
        def __init__(self, name: str) -> None:
            self._name = name

        def code(self) -> Code:
            return Code(self._name)

    assert classify(Rpc("UNAVAILABLE")) == "transient"
    assert classify(Rpc("INVALID_ARGUMENT")) == "permanent"


def test_search_applies_the_filters_as_payload_conditions(inner: QdrantClient) -> None:
    r = replica(inner)
    chunks = [
        chunk(1, project="a", tools=["Bash"], concepts=["testing"], files=["/w/x.py"],
              file_names=["x.py"], session="s1"),
        chunk(2, project="a", tools=["Read"], concepts=[], files=[], file_names=[], session="s2"),
        chunk(3, project="b", tools=["Bash"], concepts=[], files=[], file_names=[], session="s1"),
    ]  # fmt: skip
    r.upsert(chunks)
    query = np.frombuffer(chunks[0].vector, dtype=np.float32).tolist()

    def found(**kw: object) -> list[str]:
        return sorted(h.path for h in r.search(query, 10, SearchFilters(**kw)))  # type: ignore[arg-type]

    assert len(found()) == 3
    assert found(project="a") == ["/t/1.jsonl", "/t/2.jsonl"]
    assert found(tool="Bash", project="b") == ["/t/0.jsonl"]
    assert found(file="x.py") == ["/t/1.jsonl"] == found(file="/w/x.py")
    assert found(concept="testing") == ["/t/1.jsonl"]
    assert found(since=2.0, until=3.0) == ["/t/0.jsonl", "/t/2.jsonl"]
    assert found(session="s1", until=1.0) == ["/t/1.jsonl"]
    hit = r.search(query, 1, None)[0]
    assert hit.chunk_id == chunks[0].id
    assert hit.text == "text 1"
    assert hit.metadata["project"] == "a"
    assert "owner" not in hit.metadata


def test_owners_share_a_collection_without_seeing_each_other(inner: QdrantClient) -> None:
    mine, theirs = replica(inner), replica(inner)
    theirs.owner = "o2"
    mine.upsert([chunk(1)])
    theirs.upsert([chunk(2)])
    assert held(mine) == [chunk(1).id]
    assert held(theirs) == [chunk(2).id]


def test_another_vector_size_is_refused(inner: QdrantClient) -> None:
    replica(inner).upsert([chunk(1)])
    other = QdrantReplica(
        QdrantConfig(path=":memory:"), dim=DIM * 2, model_id="m2", owner="o", client=inner
    )
    with pytest.raises(ModelMismatchError):
        other.ensure_collection()


def test_config_needs_exactly_one_connection() -> None:
    with pytest.raises(ConfigError):
        QdrantConfig()
    with pytest.raises(ConfigError):
        QdrantConfig(url="http://localhost:6333", path="/tmp/q")
