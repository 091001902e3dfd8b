"""``FlakyQdrantClient``: a Qdrant client that fails on cue, for the replica's tests.

It wraps a real client (the embedded local mode) and, for chosen calls, raises
instead of (or after) doing the work:

- ``"timeout"``: a transport timeout before the request reached the store;
- ``"unavailable"``: an HTTP 503 answer (transient);
- ``"bad-request"``: an HTTP 400 answer (permanent: the request's data);
- ``"forbidden"``: an HTTP 403 answer (permanent: the store refuses every request);
- ``"ack-lost"``: the call *is applied*, then the client times out, as when the
  acknowledgement is lost on the way back; a retry must overwrite, not duplicate.

``failures`` maps a method name to ``{call number (1-based): kind}``; ``calls``
counts every call per method. ``refuse`` marks bad *points*: an ``upsert`` whose
``points`` include one for which it is true answers HTTP 400 and writes nothing,
whatever the call number (as a server refuses a payload it cannot store), so a
batch holding it fails until the bad point is isolated. Any other attribute is the
wrapped client's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import httpx

FAILURE_KINDS = ("timeout", "unavailable", "bad-request", "forbidden", "ack-lost")
_HTTP = {
    "unavailable": (503, "Service Unavailable"),
    "bad-request": (400, "Bad Request"),
    "forbidden": (403, "Forbidden"),
}


def _error(kind: str) -> Exception:
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if kind in {"timeout", "ack-lost"}:
        return ResponseHandlingException(httpx.ReadTimeout("injected timeout"))
    status, phrase = _HTTP[kind]
    return UnexpectedResponse(status, phrase, b'{"status":"injected"}', httpx.Headers())


class FlakyQdrantClient:
    """Delegates to ``inner`` except for the injected failures (see the module doc)."""

    def __init__(
        self,
        inner: Any,
        failures: Mapping[str, Mapping[int, str]] | None = None,
        *,
        refuse: Callable[[Any], bool] | None = None,
    ) -> None:
        failures = failures or {}
        unknown = {k for plan in failures.values() for k in plan.values()} - set(FAILURE_KINDS)
        if unknown:
            raise ValueError(f"unknown failure kinds {sorted(unknown)}")
        self.inner = inner
        self.failures = {name: dict(plan) for name, plan in failures.items()}
        self.refuse = refuse
        self.refused = 0  # upserts answered 400 because of a refused point
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        watched = name in self.failures or (name == "upsert" and self.refuse is not None)
        if not watched or not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            kind = self.failures.get(name, {}).get(self.calls[name])
            if kind is None and name == "upsert" and self._refuses(kwargs.get("points", ())):
                self.refused += 1
                kind = "bad-request"
            if kind is None:
                return target(*args, **kwargs)
            if kind == "ack-lost":
                target(*args, **kwargs)
            raise _error(kind)

        return call

    def _refuses(self, points: Any) -> bool:
        return self.refuse is not None and any(self.refuse(point) for point in points)


__all__ = ["FAILURE_KINDS", "FlakyQdrantClient"]
