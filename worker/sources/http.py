"""The one safe HTTP fetcher, for feeds and pages.

Every request the worker makes goes through :class:`Fetcher`, which enforces:

- connect, read and total timeouts (``fetch_connect_timeout_s``, ``fetch_read_timeout_s``);
- a body size cap (``fetch_max_bytes``) on the *decoded* body: a ``Content-Length`` over
  the cap is refused before reading, and reading stops as soon as the cap is passed, so a
  small gzip body that inflates to gigabytes costs at most the cap;
- redirects followed by hand, each hop checked (scheme, address), with a limit
  (``fetch_max_redirects``) and loop detection; 301/308 reported as permanent;
- a per-host concurrency limit (``fetch_per_host``);
- an address guard: a host that resolves to a private, loopback, link-local, multicast,
  reserved or unspecified address is refused unless ``fetch_allow_networks`` lists it.
  The guard lives in the connector's resolver, so the address that was vetted is the
  address that is connected to (no window for DNS rebinding); IP-literal URLs, which
  aiohttp does not resolve, are checked before the request;
- gzip/deflate accepted, the project's User-Agent, no cookies, no proxy from the
  environment.

Failures are :class:`FetchError` subclasses with a ``retriable`` flag and a short
``reason``; messages never contain URL credentials.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from worker.settings import Settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ACCEPT_ANY = "*/*"
ACCEPT_FEED = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
ALLOWED_SCHEMES = frozenset({"http", "https"})
_CHUNK = 64 * 1024
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


# --- errors -------------------------------------------------------------------------------


class FetchError(Exception):
    """Base of every fetch failure. ``retriable``: would the same request later work?"""

    retriable: bool = False
    reason: str = "fetch-error"

    def __init__(
        self,
        message: str,
        *,
        url: str | URL | None = None,
        reason: str | None = None,
        retriable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.url = safe_url(url) if url is not None else None
        if reason is not None:
            self.reason = reason
        if retriable is not None:
            self.retriable = retriable


class FetchTimeout(FetchError):
    """Connect, read or total timeout."""

    retriable = True
    reason = "timeout"


class ConnectError(FetchError):
    """DNS failure, refused or reset connection, truncated body, TLS failure."""

    retriable = True
    reason = "connect"


class HTTPStatusError(FetchError):
    """A 4xx/5xx answer. Retriable for 5xx, 408 and 429; ``retry_after_s`` from Retry-After."""

    def __init__(self, status: int, *, url: str | URL, retry_after_s: float | None = None) -> None:
        self.status = status
        self.retry_after_s = retry_after_s
        msg = f"HTTP {status} from {safe_url(url)}"
        if retry_after_s is not None:
            msg += f" (retry after {retry_after_s:.0f}s)"
        super().__init__(
            msg, url=url, reason=f"http-{status}", retriable=status >= 500 or status in (408, 429)
        )


class TooLarge(FetchError):
    """The (decoded) body is over ``fetch_max_bytes``."""

    reason = "too-large"


class BlockedAddress(FetchError):
    """The host is, or resolves to, an address the guard refuses."""

    reason = "blocked-address"


class TooManyRedirects(FetchError):
    """Over ``fetch_max_redirects`` hops (reason ``too-many-redirects``) or a loop
    (reason ``redirect-loop``)."""

    reason = "too-many-redirects"


class UnsupportedScheme(FetchError):
    """Not http or https (also for a redirect to ``file:``, ``ftp:``...)."""

    reason = "unsupported-scheme"


class InvalidURL(FetchError):
    """A URL that cannot be requested (no host, unparseable, non-canonical IPv4)."""

    reason = "invalid-url"


# --- helpers ------------------------------------------------------------------------------


def safe_url(url: str | URL) -> str:
    """The URL without ``user:password@``, for logs and messages."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc:
        return text
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent
    or unparseable; never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def address_problem(ip: IPAddress, allow: tuple[IPNetwork, ...] = ()) -> str | None:
    """Why the guard refuses ``ip`` (e.g. ``"loopback"``), or None if it may be used."""
    if any(ip.version == net.version and ip in net for net in allow):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_problem(embedded, allow)
            if inner is not None:
                return inner
    for attr, name in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attr):
            return name
    if not ip.is_global:
        return "non-global"
    return None


def _blocked(host: str, ip: str, problem: str) -> BlockedAddress:
    shown = host if host == ip else f"{host} ({ip})"
    return BlockedAddress(
        f"refused to connect to {shown}: {problem} address "
        "(allow it with WORKER_FETCH_ALLOW_NETWORKS)"
    )


class GuardedResolver(AbstractResolver):
    """``loop.getaddrinfo`` (aiohttp's ThreadedResolver), then the address guard.

    The connector connects only to the addresses returned here, so what was checked is
    what is used. A host with any refused address is refused as a whole.
    """

    def __init__(self, allow: tuple[IPNetwork, ...]) -> None:
        self._inner = ThreadedResolver()
        self._allow = allow

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await self._inner.resolve(host, port, family)
        for info in infos:
            ip = ipaddress.ip_address(info["host"].split("%", 1)[0])
            problem = address_problem(ip, self._allow)
            if problem is not None:
                raise _blocked(host, str(ip), problem)
        return infos

    async def close(self) -> None:
        await self._inner.close()


# --- result -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class FetchResult:
    status: int
    url: str  # final URL, after redirects
    body: bytes  # decoded (gunzipped) body; b"" for a 304
    headers: Mapping[str, str]  # case-insensitive
    charset: str | None  # from Content-Type, if declared
    permanent_redirect_to: str | None  # where the leading run of 301/308 hops ended
    not_modified: bool
    elapsed_s: float
    redirects: int = 0

    @property
    def content_type(self) -> str | None:
        """The media type, lower case, without parameters (``text/html``)."""
        value = self.headers.get("Content-Type")
        if not value:
            return None
        return value.split(";", 1)[0].strip().lower() or None

    def text(self, fallback: str = "utf-8") -> str:
        try:
            return self.body.decode(self.charset or fallback, errors="replace")
        except LookupError:
            return self.body.decode(fallback, errors="replace")

    def __repr__(self) -> str:
        moved = self.permanent_redirect_to and safe_url(self.permanent_redirect_to)
        return (
            f"FetchResult(status={self.status}, url={safe_url(self.url)!r}, "
            f"body=<{len(self.body)} bytes>, not_modified={self.not_modified}, "
            f"permanent_redirect_to={moved!r})"
        )


@dataclass(frozen=True, slots=True)
class _Hop:
    status: int
    url: URL
    headers: CIMultiDictProxy[str]
    body: bytes
    charset: str | None
    location: str | None


# --- fetcher ------------------------------------------------------------------------------


class Fetcher:
    """``async with Fetcher(settings) as f: result = await f.get(url)``. One ClientSession."""

    def __init__(self, settings: Settings, *, total_timeout_s: float | None = None) -> None:
        self._settings = settings
        self._allow = settings.allow_networks
        self._max_bytes = settings.fetch_max_bytes
        self._max_redirects = settings.fetch_max_redirects
        self._per_host = settings.fetch_per_host
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout_s
            or settings.fetch_connect_timeout_s + 3 * settings.fetch_read_timeout_s,
            sock_connect=settings.fetch_connect_timeout_s,
            sock_read=settings.fetch_read_timeout_s,
        )
        self._session: aiohttp.ClientSession | None = None
        self._host_sems: dict[tuple[str, int | None], asyncio.Semaphore] = {}
        self._host_users: dict[tuple[str, int | None], int] = {}

    async def __aenter__(self) -> Fetcher:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._allow),
            limit=100,
            limit_per_host=self._per_host,
            ttl_dns_cache=60,
            family=socket.AF_UNSPEC,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={
                "User-Agent": self._settings.user_agent,
                "Accept-Encoding": "gzip, deflate",
            },
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = ACCEPT_ANY,
    ) -> FetchResult:
        """GET ``url`` with every guard. Returns 2xx and 304 answers; raises FetchError."""
        if self._session is None:
            raise RuntimeError("Fetcher used outside 'async with'")
        started = time.monotonic()
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified

        current = self._check_url(url)
        visited = {str(current)}
        permanent_to: str | None = None
        permanent_run = True
        redirects = 0
        while True:
            hop = await self._hop(current, headers)
            if hop.status in REDIRECT_STATUSES and hop.location:
                redirects += 1
                try:
                    target = current.join(URL(hop.location))
                except ValueError as exc:
                    raise InvalidURL(
                        f"bad redirect Location from {safe_url(current)}", url=current
                    ) from exc
                if redirects > self._max_redirects:
                    raise TooManyRedirects(
                        f"more than {self._max_redirects} redirects from {safe_url(url)}",
                        url=url,
                    )
                target = self._check_url(target)
                if str(target) in visited:
                    raise TooManyRedirects(
                        f"redirect loop: {safe_url(current)} -> {safe_url(target)}",
                        url=url,
                        reason="redirect-loop",
                    )
                visited.add(str(target))
                if permanent_run and hop.status in PERMANENT_REDIRECTS:
                    permanent_to = str(target)
                else:
                    permanent_run = False
                current = target
                continue
            if hop.status == 304:
                not_modified = True
            elif 200 <= hop.status < 300:
                not_modified = False
            else:
                retry_after = None
                if hop.status in (429, 503):
                    retry_after = parse_retry_after(hop.headers.get("Retry-After"))
                raise HTTPStatusError(hop.status, url=current, retry_after_s=retry_after)
            elapsed = time.monotonic() - started
            log.debug(
                "fetched %s: %s, %d bytes in %.2fs",
                safe_url(current),
                hop.status,
                len(hop.body),
                elapsed,
            )
            return FetchResult(
                status=hop.status,
                url=str(current),
                body=hop.body,
                headers=hop.headers,
                charset=hop.charset,
                permanent_redirect_to=permanent_to,
                not_modified=not_modified,
                elapsed_s=elapsed,
                redirects=redirects,
            )

    # --- internals ------------------------------------------------------------------------

    def _check_url(self, url: str | URL) -> URL:
        try:
            parsed = url if isinstance(url, URL) else URL(url)
        except (ValueError, TypeError) as exc:
            raise InvalidURL(f"not a URL: {safe_url(str(url))!r}") from exc
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise UnsupportedScheme(
                f"unsupported scheme {parsed.scheme or '(none)'!r} in {safe_url(parsed)}",
                url=parsed,
            )
        host = parsed.raw_host
        if not host:
            raise InvalidURL(f"no host in {safe_url(parsed)}", url=parsed)
        try:
            ip = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return parsed  # a name: the resolver checks what it resolves to
        problem = address_problem(ip, self._allow)
        if problem is not None:
            raise _blocked(host, str(ip), problem)
        return parsed

    @asynccontextmanager
    async def _host_slot(self, url: URL) -> AsyncIterator[None]:
        key = ((url.raw_host or "").lower(), url.port)
        sem = self._host_sems.get(key)
        if sem is None:
            sem = self._host_sems[key] = asyncio.Semaphore(self._per_host)
        self._host_users[key] = self._host_users.get(key, 0) + 1
        try:
            async with sem:
                yield
        finally:
            self._host_users[key] -= 1
            if not self._host_users[key]:
                del self._host_users[key]
                del self._host_sems[key]

    async def _hop(self, url: URL, headers: dict[str, str]) -> _Hop:
        assert self._session is not None
        shown = safe_url(url)
        try:
            async with self._host_slot(url):
                async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
                    resp_headers = CIMultiDictProxy(CIMultiDict(resp.headers))
                    if status >= 300:
                        return _Hop(
                            status,
                            url,
                            resp_headers,
                            b"",
                            resp.charset,
                            resp.headers.get("Location"),
                        )
                    declared = resp.content_length
                    if declared is not None and declared > self._max_bytes:
                        raise TooLarge(
                            f"{shown}: Content-Length {declared} is over the "
                            f"{self._max_bytes}-byte cap",
                            url=url,
                        )
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise TooLarge(
                                f"{shown}: body is over the {self._max_bytes}-byte cap "
                                "(after decompression)",
                                url=url,
                            )
                    return _Hop(status, url, resp_headers, bytes(body), resp.charset, None)
        except FetchError as exc:
            if exc.url is None:
                exc.url = shown
            raise
        except TimeoutError as exc:
            raise FetchTimeout(f"timed out fetching {shown}", url=url) from exc
        except aiohttp.InvalidURL as exc:
            raise InvalidURL(f"invalid URL {shown}: {exc}", url=url) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise ConnectError(
                f"TLS certificate refused for {shown}", url=url, reason="tls", retriable=False
            ) from exc
        except aiohttp.ClientConnectorDNSError as exc:
            raise ConnectError(
                f"cannot resolve {url.host}: {_os_reason(exc)}", url=url, reason="dns"
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise ConnectError(
                f"bad or truncated body from {shown}: {exc}", url=url, reason="payload"
            ) from exc
        except aiohttp.ClientError as exc:
            raise ConnectError(f"cannot fetch {shown}: {_os_reason(exc)}", url=url) from exc
        except OSError as exc:
            raise ConnectError(f"cannot fetch {shown}: {exc}", url=url) from exc


def _os_reason(exc: BaseException) -> str:
    inner: Any = getattr(exc, "os_error", None) or exc.__cause__ or exc
    return getattr(inner, "strerror", None) or str(inner) or type(inner).__name__
