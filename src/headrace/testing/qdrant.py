"""``FlakyQdrantClient``: a Qdrant client that fails on cue, for the replica's tests.

It wraps a real client (the embedded local mode) and, for chosen calls, raises
instead of (or after) doing the work:

- ``"timeout"``: a transport timeout before the request reached the store;
- ``"unavailable"``: an HTTP 503 answer (transient);
- ``"bad-request"``: an HTTP 400 answer (permanent);
- ``"ack-lost"``: the call *is applied*, then the client times out, as when the
  acknowledgement is lost on the way back; a retry must overwrite, not duplicate.

``failures`` maps a method name to ``{call number (1-based): kind}``; ``calls``
counts every call per method. Any other attribute is the wrapped client's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx

FAILURE_KINDS = ("timeout", "unavailable", "bad-request", "ack-lost")


def _error(kind: str) -> Exception:
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if kind in {"timeout", "ack-lost"}:
        return ResponseHandlingException(httpx.ReadTimeout("injected timeout"))
    status, phrase = (503, "Service Unavailable") if kind == "unavailable" else (400, "Bad Request")
    return UnexpectedResponse(status, phrase, b'{"status":"injected"}', httpx.Headers())


class FlakyQdrantClient:
    """Delegates to ``inner`` except for the injected failures (see the module doc)."""

    def __init__(self, inner: Any, failures: Mapping[str, Mapping[int, str]]) -> None:
        unknown = {k for plan in failures.values() for k in plan.values()} - set(FAILURE_KINDS)
        if unknown:
            raise ValueError(f"unknown failure kinds {sorted(unknown)}")
        self.inner = inner
        self.failures = {name: dict(plan) for name, plan in failures.items()}
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name not in self.failures or not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            kind = self.failures[name].get(self.calls[name])
            if kind is None:
                return target(*args, **kwargs)
            if kind == "ack-lost":
                target(*args, **kwargs)
            raise _error(kind)

        return call


__all__ = ["FAILURE_KINDS", "FlakyQdrantClient"]
