"""``QdrantReplica``: the index's published chunks mirrored into a Qdrant collection.

Connection: a server (``url`` + optional ``api_key``) or the client's embedded
local mode (``path``; ``":memory:"`` for tests). Everything else is the same code:
the local mode only lacks payload indexes (it filters by scanning) and is meant for
small collections (the client documents ~20k points).

Layout: **one shared collection** (default ``headrace``) for every project, with
keyword payload indexes on ``project`` (marked as the tenant key), ``session``,
``tools``, ``concepts``, ``files``, ``file_names``, ``path``, ``owner`` and a float
index on ``ts``. Why not one collection per project: a search across projects
(the usual question, "where did I solve this?") would fan out over every
collection, each collection carries its own HNSW graph and segment overhead, and
Qdrant's own guidance for many small tenants is payload partitioning with an
``is_tenant`` index, which keeps a per-project search as fast as a collection.

Point ids are the chunk ids read as UUIDs (chunk ids are 128-bit hex), so a replay
overwrites and a point id maps back to its chunk. Each point's payload names its
``owner`` (an id kept in the index's ``meta``) so two headrace indexes may share a
collection without reconciling each other's points away.

Every call waits for the acknowledgement (``wait=True``), has a timeout, and is
retried with exponential backoff and full jitter when the failure is transient
(timeouts, connection errors, HTTP 408/429/5xx, gRPC UNAVAILABLE …); anything else
is permanent and raises at once, as does a transient failure that outlives
``max_attempts`` (``StoreError``: the store is unusable, the run stops).

A permanent refusal of the *data* (HTTP 400/413/422, gRPC INVALID_ARGUMENT, the
client's own validation: ``ValueError``/``TypeError``) is ``ReplicaRejectedError``.
``upsert`` then splits the failing batch in halves until the refused points are
isolated, writes every other point, and raises naming the refused chunk ids, so
the caller fails only the file they belong to (a dead letter) and the run goes on.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from headrace.errors import (
    ConfigError,
    ModelMismatchError,
    ReplicaRejectedError,
    StoreError,
    TransientError,
)
from headrace.sinks.base import Hit, StoredChunk
from headrace.sinks.filters import SearchFilters

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as qm

log = logging.getLogger(__name__)
T = TypeVar("T")
_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
_TRANSIENT_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})
_REJECTED_HTTP = frozenset({400, 413, 422})  # the request's data, not the store or its config
KEYWORD_FIELDS = ("session", "tools", "concepts", "files", "file_names", "path", "owner")
_POSITION = ("ordinal", "line_start", "line_end", "byte_start", "byte_end")


@dataclass(frozen=True, slots=True)
class QdrantConfig:
    """Where and how to reach Qdrant. Exactly one of ``url`` and ``path`` is set."""

    url: str | None = None
    api_key: str | None = None
    path: str | None = None
    collection: str = "headrace"
    timeout_s: float = 10.0
    batch_size: int = 128
    max_attempts: int = 6
    backoff_s: float = 0.25
    backoff_max_s: float = 8.0

    def __post_init__(self) -> None:
        if (self.url is None) == (self.path is None):
            raise ConfigError("qdrant: set exactly one of qdrant_url (server) or qdrant_path")

    @property
    def local(self) -> bool:
        return self.path is not None


def point_id(chunk_id: str) -> str:
    """The deterministic point id of a chunk: its 128-bit hex id as a UUID string."""
    return str(uuid.UUID(hex=chunk_id))


def chunk_id_of(point: object) -> str:
    return uuid.UUID(str(point)).hex


def classify(exc: BaseException) -> Literal["transient", "permanent"]:
    """``"transient"`` or ``"permanent"`` for an exception raised by the client."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, TransientError | TimeoutError | ConnectionError):
        return "transient"
    if isinstance(exc, ResponseHandlingException):
        return "transient"  # the request never got a response (transport, timeout)
    if isinstance(exc, UnexpectedResponse):
        return "transient" if exc.status_code in _TRANSIENT_HTTP else "permanent"
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError
        try:
            name = getattr(code(), "name", "")
        except Exception:  # a foreign code() must not mask the original error
            name = ""
        return "transient" if name in _TRANSIENT_GRPC else "permanent"
    import httpx

    if isinstance(exc, httpx.TransportError):
        return "transient"
    return "permanent"


def rejects_data(exc: BaseException) -> bool:
    """Whether a permanent error refuses the request's data (not the store itself).

    Such an error belongs to the points sent, so one file's dead letter; any other
    permanent error (401, 403, 404, …) means the store is unusable for every file.
    """
    from qdrant_client.http.exceptions import UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in _REJECTED_HTTP
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError
        try:
            return getattr(code(), "name", "") == "INVALID_ARGUMENT"
        except Exception:  # a foreign code() must not mask the original error
            return False
    # The client's validation (pydantic) and the local mode ("Wrong input: …").
    return isinstance(exc, ValueError | TypeError)


class QdrantReplica:
    """A ``Replica`` (see ``sinks.base``) on one Qdrant collection.

    ``client`` replaces the connection built from ``config`` (tests inject a
    fault-injecting wrapper); ``sleep`` is the backoff's sleep (tests pass a no-op).
    """

    def __init__(
        self,
        config: QdrantConfig,
        *,
        dim: int,
        model_id: str,
        owner: str,
        client: QdrantClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.dim = dim
        self.model_id = model_id
        self.owner = owner
        self._sleep = sleep
        self._owns_client = client is None  # an injected client is its owner's to close
        self.client = client if client is not None else _connect(config)
        self.retries = 0  # transient failures retried, for statistics and tests
        self.splits = 0  # refused batches split in halves to isolate refused points
        self._ready = False

    # -- setup --------------------------------------------------------------------

    def ensure_collection(self) -> None:
        """Create the collection and its payload indexes; refuse another vector size."""
        if self._ready:
            return
        from qdrant_client.http import models

        name = self.config.collection
        if self._call("collection_exists", lambda: self.client.collection_exists(name)):
            info = self._call("get_collection", lambda: self.client.get_collection(name))
            size = _vector_size(info)
            if size is not None and size != self.dim:
                raise ModelMismatchError(
                    f"qdrant collection {name!r} holds {size}-d vectors, the model makes"
                    f" {self.dim}-d: use another qdrant_collection"
                )
        else:
            params = models.VectorParams(size=self.dim, distance=models.Distance.COSINE)
            self._call(
                "create_collection",
                lambda: self.client.create_collection(name, vectors_config=params),
            )
            self._create_indexes()
        self._ready = True

    def _create_indexes(self) -> None:
        if self.config.local:
            return  # the local mode has no payload indexes (it warns and filters by scan)
        from qdrant_client.http import models

        name = self.config.collection
        tenant = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
        specs: list[tuple[str, Any]] = [("project", tenant), ("ts", models.PayloadSchemaType.FLOAT)]
        specs += [(f, models.PayloadSchemaType.KEYWORD) for f in KEYWORD_FIELDS]
        for field_name, schema in specs:
            create = functools.partial(
                self.client.create_payload_index, name, field_name, field_schema=schema, wait=True
            )
            self._call("create_payload_index", create)

    # -- the Replica protocol -----------------------------------------------------

    def upsert(self, chunks: Sequence[StoredChunk]) -> None:
        """Write the chunks as points, acknowledged, in batches; idempotent.

        Raises ``ReplicaRejectedError`` (after writing every other point) when Qdrant
        refuses some points' data; ``StoreError`` when the store is unusable.
        """
        if not chunks:
            return
        self.ensure_collection()
        refused: list[tuple[str, str]] = []
        for start in range(0, len(chunks), self.config.batch_size):
            self._upsert_isolating(chunks[start : start + self.config.batch_size], refused)
        if refused:
            first_id, first_error = refused[0]
            raise ReplicaRejectedError(
                f"qdrant refused {len(refused)} of {len(chunks)} points (chunk {first_id}:"
                f" {first_error})",
                tuple(cid for cid, _ in refused),
            )

    def _upsert_isolating(
        self, chunks: Sequence[StoredChunk], refused: list[tuple[str, str]]
    ) -> None:
        """One batch; if its data is refused, the halves, down to the refused points."""
        from qdrant_client.http import models

        def upsert() -> None:
            # Built inside the call: the client's validation of a point is a refusal too.
            points = [
                models.PointStruct(
                    id=point_id(c.id), vector=_floats(c.vector), payload=self._payload(c)
                )
                for c in chunks
            ]
            self.client.upsert(self.config.collection, points=points, wait=True)

        try:
            self._call("upsert", upsert, data=True)
        except ReplicaRejectedError as exc:
            if len(chunks) == 1:
                refused.append((chunks[0].id, exc.message))
                return
            self.splits += 1
            middle = len(chunks) // 2
            self._upsert_isolating(chunks[:middle], refused)
            self._upsert_isolating(chunks[middle:], refused)

    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Delete the points of these chunks, acknowledged; unknown ids are a no-op.

        A refused part (of 1,000 ids) does not stop the others; afterwards
        ``ReplicaRejectedError`` names every id left undeleted.
        """
        if not chunk_ids:
            return
        self.ensure_collection()
        from qdrant_client.http import models

        left: list[str] = []
        first: ReplicaRejectedError | None = None
        for start in range(0, len(chunk_ids), 1000):
            part = tuple(chunk_ids[start : start + 1000])
            selector = models.PointIdsList(points=[point_id(c) for c in part])
            delete = functools.partial(
                self.client.delete, self.config.collection, points_selector=selector, wait=True
            )
            try:
                self._call("delete", delete, data=True)
            except ReplicaRejectedError as exc:
                first = first or exc
                left.extend(part)
        if first is not None:
            raise ReplicaRejectedError(first.message, tuple(left)) from first

    def ids(self) -> Iterator[str]:
        """Chunk ids of every point this index owns (scrolls, payload-free)."""
        self.ensure_collection()
        offset: Any = None
        owned = self._owner_filter()
        while True:
            scroll = functools.partial(
                self.client.scroll,
                self.config.collection,
                scroll_filter=owned,
                limit=1000,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            points, offset = self._call("scroll", scroll)
            for point in points:
                yield chunk_id_of(point.id)
            if offset is None:
                return

    # -- search -------------------------------------------------------------------

    def search(self, vector: Sequence[float], k: int, filters: SearchFilters | None) -> list[Hit]:
        """The ``k`` nearest points meeting ``filters`` (payload conditions)."""
        self.ensure_collection()
        condition = self._filter(filters or SearchFilters())
        result = self._call(
            "query_points",
            lambda: self.client.query_points(
                self.config.collection,
                query=list(vector),
                limit=k,
                query_filter=condition,
                with_payload=True,
            ),
        )
        return [
            _hit(p.payload or {}, float(p.score), rank) for rank, p in enumerate(result.points, 1)
        ]

    def count(self) -> int:
        self.ensure_collection()
        found = self._call(
            "count",
            lambda: self.client.count(
                self.config.collection, count_filter=self._owner_filter(), exact=True
            ),
        )
        return int(found.count)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # -- internals ----------------------------------------------------------------

    def _payload(self, c: StoredChunk) -> dict[str, Any]:
        payload: dict[str, Any] = dict(c.metadata)
        payload.update(
            chunk_id=c.id,
            path=c.path,
            text=c.text,
            heading=c.heading,
            ordinal=c.ordinal,
            line_start=c.line_start,
            line_end=c.line_end,
            byte_start=c.byte_start,
            byte_end=c.byte_end,
            model=self.model_id,
            owner=self.owner,
        )
        return payload

    def _owner_filter(self) -> qm.Filter:
        from qdrant_client.http import models

        return models.Filter(
            must=[models.FieldCondition(key="owner", match=models.MatchValue(value=self.owner))]
        )

    def _filter(self, f: SearchFilters) -> qm.Filter:
        from qdrant_client.http import models

        must: list[Any] = [
            models.FieldCondition(key="owner", match=models.MatchValue(value=self.owner))
        ]
        for key, value in (
            ("project", f.project),
            ("session", f.session),
            ("tools", f.tool),
            ("concepts", f.concept),
            (f.file_field, f.file),
        ):
            if value is not None:
                must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
        if f.since is not None or f.until is not None:
            must.append(
                models.FieldCondition(key="ts", range=models.Range(gte=f.since, lte=f.until))
            )
        return models.Filter(must=must)

    def _call(self, what: str, fn: Callable[[], T], *, data: bool = False) -> T:
        """Run one client call: transient failures retried with backoff + jitter.

        ``data``: the call carries points, so a refusal of its data is
        ``ReplicaRejectedError`` (the points' file fails), not ``StoreError``.
        """

        def attempt() -> T:
            try:
                return fn()
            except Exception as exc:
                if classify(exc) == "transient":
                    raise TransientError(f"qdrant {what}: {exc!r}") from exc
                if data and rejects_data(exc):
                    raise ReplicaRejectedError(f"qdrant {what} refused (permanent): {exc}") from exc
                raise StoreError(f"qdrant {what} failed (permanent): {exc}") from exc

        retrying = Retrying(
            stop=stop_after_attempt(self.config.max_attempts),
            wait=wait_random_exponential(
                multiplier=self.config.backoff_s, max=self.config.backoff_max_s
            ),
            retry=retry_if_exception_type(TransientError),
            sleep=self._sleep,
            before_sleep=self._note_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except TransientError as exc:
            raise StoreError(
                f"{exc} (still failing after {self.config.max_attempts} attempts)"
            ) from exc

    def _note_retry(self, state: Any) -> None:
        self.retries += 1
        log.warning("qdrant: transient failure, retrying: %s", state.outcome.exception())


def config_from(
    *,
    url: str | None,
    api_key: str | None,
    path: str | None,
    collection: str,
    timeout_s: float,
) -> QdrantConfig:
    """A ``QdrantConfig`` from the ``qdrant_*`` settings (``ConfigError`` if unusable)."""
    if url is None and path is None:
        raise ConfigError("store = qdrant needs qdrant_url (a server) or qdrant_path (local)")
    if url is not None and path is not None:
        raise ConfigError("set qdrant_url or qdrant_path, not both")
    return QdrantConfig(
        url=url, api_key=api_key, path=path, collection=collection, timeout_s=timeout_s
    )


def _connect(config: QdrantConfig) -> QdrantClient:
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ConfigError("the qdrant store needs the qdrant-client package") from exc
    timeout = max(1, round(config.timeout_s))
    try:
        if config.path == ":memory:":
            return QdrantClient(location=":memory:", timeout=timeout)
        if config.path is not None:
            # The local mode locks its folder: a second process (a running watcher)
            # gets an error here, which must name the folder, not crash.
            return QdrantClient(path=config.path, timeout=timeout)
        return QdrantClient(url=config.url, api_key=config.api_key, timeout=timeout)
    except Exception as exc:
        where = config.path or config.url
        raise StoreError(f"qdrant: cannot open {where}: {exc}") from exc


def _vector_size(info: Any) -> int | None:
    vectors = info.config.params.vectors
    size = getattr(vectors, "size", None)
    return int(size) if size is not None else None


def _floats(vector: bytes) -> list[float]:
    values: list[float] = np.frombuffer(vector, dtype=np.float32).tolist()
    return values


def _hit(payload: Mapping[str, Any], score: float, rank: int) -> Hit:
    reserved = {"chunk_id", "path", "text", "heading", "model", "owner", *_POSITION}
    meta = {k: v for k, v in payload.items() if k not in reserved}
    return Hit(
        str(payload.get("chunk_id", "")),
        str(payload.get("path", "")),
        str(payload.get("text", "")),
        score,
        int(payload.get("line_start", 0)),
        int(payload.get("line_end", 0)),
        int(payload.get("byte_start", 0)),
        int(payload.get("byte_end", 0)),
        payload.get("heading"),
        meta,
        rank,
        None,
    )


__all__ = ["QdrantConfig", "QdrantReplica", "classify", "config_from", "point_id", "rejects_data"]
