"""One HTTP client for OpenAI-compatible endpoints, shared by the served-model backend and the judges.

- 429, 5xx and transport failures (refused connection, timeout) are retried with exponential
  backoff, waiting what the server's `Retry-After` asks, at most `max_wait_s`. Any other 4xx, and a
  reply that is not a JSON object, fail at once: asking again gets the same answer.
- At most `concurrency` requests of one client are in flight; each has its own timeout.
- Every reply's `usage` is added to a `Usage` (tokens, and a cost when prices are given), kept per
  endpoint in `METER` for the sweep summary.
- Secrets stay out of every message: URLs are shown by `public_url` (no userinfo, no query), and
  text a client puts into an error has its API key and URL userinfo masked, in case a server
  echoes them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from sftscope.errors import SftscopeError

MASK = "***"


class EndpointError(SftscopeError):
    """The endpoint failed or answered something that is not an OpenAI-style reply."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = public_url(url)
        self.problem = problem
        super().__init__(f"{self.url}: {problem}")


def public_url(url: str) -> str:
    """The URL as it may be shown and stored: without `user:password@`, query or fragment (where
    some services put keys)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def retry_after(header: str | None, default: float, limit: float) -> float:
    """Seconds to wait before a retry: the server's Retry-After (in seconds) when it sent one, at most
    `limit`; else `default`. (The HTTP-date form is rare from model servers and falls back.)"""
    try:
        seconds = float(header) if header is not None else default
    except ValueError:
        return default
    if not math.isfinite(seconds):  # "nan" and "inf" parse as floats
        return default
    return min(max(seconds, 0.0), limit)


@dataclass(frozen=True)
class Prices:
    """What an endpoint charges, per 1,000 tokens."""

    prompt_per_1k: float
    completion_per_1k: float

    @classmethod
    def parse(cls, text: str) -> Prices:
        """`PROMPT,COMPLETION`, e.g. `0.15,0.6`; ValueError otherwise."""
        problem = f"expected two prices >= 0 as PROMPT,COMPLETION per 1k tokens, got '{text}'"
        try:
            values = [float(part) for part in text.split(",")]
        except ValueError:
            raise ValueError(problem) from None
        if len(values) != 2 or not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(problem)
        return cls(*values)


@dataclass
class Usage:
    """What the requests to one endpoint cost; updated from many threads."""

    label: str
    prices: Prices | None = None
    requests: int = 0
    """Requests that got a usable reply."""
    retries: int = 0
    """Attempts that were retried (429, 5xx, transport failures)."""
    failed: int = 0
    """Requests given up on."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    unreported: int = 0
    """Replies without a `usage` object: their tokens are not in the counts."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, reply: dict[str, Any]) -> None:
        usage = reply.get("usage")
        prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
        with self._lock:
            self.requests += 1
            if isinstance(prompt, int) and isinstance(completion, int):
                self.prompt_tokens += prompt
                self.completion_tokens += completion
            else:
                self.unreported += 1

    def clear(self) -> None:
        with self._lock:
            self.requests = self.retries = self.failed = 0
            self.prompt_tokens = self.completion_tokens = self.unreported = 0

    def add(self, *, retries: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.retries += retries
            self.failed += failed

    @property
    def cost(self) -> float | None:
        if self.prices is None:
            return None
        return (
            self.prompt_tokens * self.prices.prompt_per_1k
            + self.completion_tokens * self.prices.completion_per_1k
        ) / 1000

    def line(self) -> str:
        parts = [
            f"{self.label}: {self.requests} requests",
            f"{self.retries} retried",
            f"{self.failed} failed",
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens",
        ]
        if self.unreported:
            parts.append(f"{self.unreported} replies without usage")
        cost = self.cost
        parts.append("cost: no prices given" if cost is None else f"cost {cost:.4f}")
        return ", ".join(parts)


class Meter:
    """The `Usage` of every endpoint called since the last `reset` (the CLI resets it per sweep)."""

    def __init__(self) -> None:
        self._usages: dict[str, Usage] = {}
        self._lock = threading.Lock()

    def usage(self, label: str, prices: Prices | None = None) -> Usage:
        with self._lock:
            found = self._usages.get(label)
            if found is None or found.prices != prices:
                found = self._usages[label] = Usage(label, prices)
            return found

    def reset(self) -> None:
        """Zero every count (in place: long-lived clients keep counting into the same `Usage`)."""
        with self._lock:
            for usage in self._usages.values():
                usage.clear()

    def lines(self) -> list[str]:
        with self._lock:
            return [u.line() for u in self._usages.values() if u.requests or u.failed]


METER = Meter()


class EndpointClient:
    """POSTs JSON to one URL and returns the reply's JSON object; `EndpointError` otherwise."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        retries: int = 2,
        concurrency: int = 8,
        backoff_s: float = 0.5,
        max_wait_s: float = 60.0,
        usage: Usage | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        # Credentials in the URL go as an auth header, so no request line (nor httpx's log of it)
        # carries them.
        auth = (
            httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
            if parts.username
            else None
        )
        netloc = parts.netloc.rpartition("@")[2]
        self.url = url
        self._request_url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.usage = usage or Usage(public_url(url))
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        self._secrets = [s for s in (api_key, parts.password, parts.username) if s]
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max(1, concurrency)),
            follow_redirects=False,
        )

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send `body`, retrying what may pass; the reply's JSON object."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            wait = min(self.backoff_s * 2**attempt, self.max_wait_s)
            try:
                with self._slots:
                    response = self._http.post(self._request_url, json=body)
            except httpx.TimeoutException:
                problem = f"timed out after {self._http.timeout.read}s"
            except httpx.HTTPError as exc:  # refused, reset, DNS: the server may be restarting
                problem = f"request failed: {type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 400:
                    return self._json(response)
                problem = f"HTTP {status}: {response.text[:300]}"
                # Rate limits and server errors pass; any other 4xx will not get better by retrying.
                if status != 429 and status < 500:
                    return self._fail(problem, attempt)
                wait = retry_after(response.headers.get("Retry-After"), wait, self.max_wait_s)
            if last:
                return self._fail(problem, attempt)
            self.usage.add(retries=1)
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            reply = response.json()
        except (ValueError, UnicodeDecodeError):
            return self._fail(f"malformed response: not JSON ({response.content[:120]!r})", 0)
        if not isinstance(reply, dict):
            return self._fail(f"malformed response: expected a JSON object, got {type(reply).__name__}", 0)
        self.usage.count(reply)
        return reply

    def _fail(self, problem: str, attempt: int) -> Any:
        self.usage.add(failed=1)
        tries = f" (after {attempt + 1} attempts)" if attempt else ""
        raise EndpointError(self.url, self.mask(problem) + tries)

    def mask(self, text: str) -> str:
        """`text` with this client's key and URL userinfo replaced by ***."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def close(self) -> None:
        self._http.close()
