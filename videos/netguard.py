"""The studio's guard for every server-side fetch of a link it did not make itself.

A pasted frame link or a provider's result URL names a host; the studio must never be talked
into fetching from its own machine or network (a cloud metadata address, an admin port, a
database) on someone's behalf. Two layers:

- ``check_url`` refuses early, with a message for the person who gave the link: only
  http(s), and every address the host resolves to must be public.
- ``client`` is an httpx client whose connections are checked when they are made, on the
  address actually dialled. Checking a name and then letting the HTTP library resolve it
  again leaves a gap (DNS rebinding: the first answer is public, the second is 127.0.0.1),
  so the client's own network backend resolves, checks and connects to the checked IP, once.
  Redirects open new connections through the same backend, so each hop is checked too.

Sandbox accounts point at this studio's own twins on loopback, hence ``allow_private``;
``settings.FETCH_ALLOWED_HOSTS`` names hosts an operator trusts on a private network (an
internal S3, say).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable

import httpcore
import httpx
from django.conf import settings

PRIVATE = "This link points at a private or local address, which the studio does not fetch."
NOT_WEB = "Only http:// and https:// links can be fetched."
NO_HOST = "This link names no server."
UNREADABLE = "This is not a link the studio can read."
UNKNOWN_HOST = "The studio could not find the server this link names."

# Not covered by ipaddress's is_global in every Python 3.11+ release: IETF protocol
# assignments, and site-local IPv6 (deprecated, still routed inside some networks).
_EXTRA_BLOCKED = (
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("fec0::/10"),
)
# IPv6 forms that carry an IPv4 address a gateway may forward to: NAT64 (RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedURL(Exception):
    """A link the studio will not fetch; ``message`` says why in plain words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownHost(BlockedURL):
    """The host did not resolve here. Not a verdict on the link: the name may resolve for a
    provider, or again in a minute, so callers that only vet a link for someone else may let
    it pass (every fetch is checked again when it connects)."""


class TooLarge(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the checks --------------------------------------------------------------------------------


def is_blocked(address: IPAddress) -> bool:
    """True for any address that is not plainly public unicast."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and is_blocked(embedded):
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or any(address in network for network in _EXTRA_BLOCKED)
    )


def _host_allowed(host: str) -> bool:
    allowed = {h.lower().strip("[]") for h in getattr(settings, "FETCH_ALLOWED_HOSTS", [])}
    return host.lower().strip("[]") in allowed


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnknownHost(UNKNOWN_HOST) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnknownHost(UNKNOWN_HOST)
    return addresses


def _check_addresses(addresses: Iterable[IPAddress]) -> None:
    # All of them, not the first: a name with one public and one private answer would
    # otherwise reach the private one whenever the public one is slow.
    if any(is_blocked(address) for address in addresses):
        raise BlockedURL(PRIVATE)


def _parse(url: str) -> httpx.URL:
    # httpx's own parser, so the host checked here is the host the client connects to
    # (two URL parsers disagreeing about "http://a@b@c/" is a classic way round a guard).
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise BlockedURL(UNREADABLE) from None
    if parsed.scheme not in ("http", "https"):
        raise BlockedURL(NOT_WEB)
    if not parsed.raw_host:
        raise BlockedURL(NO_HOST)
    return parsed


def check_url(url: str, *, allow_private: bool = False) -> None:
    """Refuse (BlockedURL) a link the studio must not fetch; return quietly otherwise.

    Only http(s); every address the host resolves to must be public, unless
    ``allow_private`` (sandbox accounts) or the host is in settings.FETCH_ALLOWED_HOSTS.
    A host that does not resolve raises UnknownHost, a BlockedURL.
    """
    parsed = _parse(url)
    host = parsed.raw_host.decode("ascii")
    if allow_private or _host_allowed(host):
        return
    _check_addresses(_resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80)))


# --- the client --------------------------------------------------------------------------------


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, except that it dials only addresses it has just checked.

    httpcore asks the backend for a TCP stream to (host, port) and does TLS on it afterwards
    with the URL's own host name as SNI and for certificate checks; the Host header comes
    from the request too. So connecting to the checked IP here changes nothing else.
    """

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = _resolve(host, port)
        except UnknownHost as exc:
            # A name that does not resolve is a network failure to the caller, as in httpx.
            raise httpcore.ConnectError(f"{host}: {exc.message}") from None
        if not (self._allow_private or _host_allowed(host)):
            _check_addresses(addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedURL(PRIVATE)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, *, allow_private: bool) -> None:
        super().__init__(trust_env=False)
        # httpx 0.28 takes no network backend for its default transport (encode/httpx#3749
        # is still open), so the pool it built is swapped for one that differs only there.
        self._pool = httpcore.ConnectionPool(
            # SSL_CERT_FILE / SSL_CERT_DIR still count, as for every other client here;
            # only proxies from the environment are ignored (see client()).
            ssl_context=httpx.create_ssl_context(),
            max_connections=10,
            max_keepalive_connections=5,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allow_private=allow_private),
        )


def _web_only(request: httpx.Request) -> None:
    # Runs for the first request and for every redirect httpx follows, before it is sent:
    # a redirect to file:, gopher: and the like is refused with the studio's own message.
    if request.url.scheme not in ("http", "https"):
        raise BlockedURL(NOT_WEB)


def client(
    *, allow_private: bool = False, timeout: httpx.Timeout, max_redirects: int = 5
) -> httpx.Client:
    """An httpx client that connects only to addresses check_url would allow.

    A refused address raises BlockedURL out of the request (not an httpx error, so retry
    logic written for network failures does not retry it). Environment proxies are ignored:
    through a proxy the guard would check the proxy's address, not the link's.
    """
    return httpx.Client(
        transport=_GuardedTransport(allow_private=allow_private),
        timeout=timeout,
        follow_redirects=True,
        max_redirects=max_redirects,
        trust_env=False,
        event_hooks={"request": [_web_only]},
    )


def read_limited(
    response: httpx.Response, limit: int, *, max_seconds: float | None = None
) -> bytes:
    """The body of a streamed response, refused (TooLarge) past ``limit`` bytes.

    ``max_seconds`` bounds the whole read: httpx's read timeout is per chunk, so a server
    sending a byte every few seconds would otherwise hold the caller indefinitely.
    """
    too_large = f"The file is larger than {limit / (1024 * 1024):g} MB."
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(too_large)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    body = bytearray()
    for chunk in response.iter_bytes(chunk_size=64 * 1024):
        body += chunk
        if len(body) > limit:
            raise TooLarge(too_large)
        if deadline is not None and time.monotonic() > deadline:
            raise httpx.ReadTimeout(
                "The server sent the file too slowly.", request=response.request
            )
    return bytes(body)
