"""The fetch guard, against real listeners on loopback: what it refuses and what it lets through."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from videos import netguard
from videos.netguard import BlockedURL

TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class Listener:
    """A real HTTP server on 127.0.0.1 that records each request it gets.

    ``routes`` maps a path to (content type, body); other paths answer a short text.
    """

    def __init__(self, routes: dict[str, tuple[str, bytes]] | None = None) -> None:
        self.hits: list[dict[str, str]] = []
        self.routes = routes or {}
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener.hits.append({"path": self.path, "host": self.headers.get("Host", "")})
                url = urlsplit(self.path)
                if url.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", parse_qs(url.query)["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                content_type, body = listener.routes.get(
                    url.path, ("text/plain", b"hello from loopback")
                )
                if url.path == "/big":
                    body = b"x" * (2 * 1024 * 1024)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def fake_dns(monkeypatch):
    """Names of our choosing resolve to addresses of our choosing; the rest resolve as usual."""
    real = socket.getaddrinfo
    names: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        answers = names.get(str(host).lower())
        if answers is None:
            return real(host, port, *args, **kwargs)
        if callable(answers):
            answers = answers()
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port),
            )
            for ip in answers
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def fetch(url: str, **options) -> httpx.Response:
    with netguard.client(timeout=TIMEOUT, **options) as http:
        return http.get(url)


# --- refused ------------------------------------------------------------------------------------


def test_a_fetch_of_a_loopback_address_is_refused_before_connecting(listener):
    url = f"http://127.0.0.1:{listener.port}/ok"
    with pytest.raises(BlockedURL) as checked:
        netguard.check_url(url)
    assert checked.value.message == (
        "This link points at a private or local address, which the studio does not fetch."
    )
    with pytest.raises(BlockedURL):
        fetch(url)
    assert listener.hits == []


def test_a_public_looking_name_that_resolves_to_loopback_is_refused(listener, fake_dns):
    fake_dns["images.example.com"] = ["127.0.0.1"]
    url = f"http://images.example.com:{listener.port}/ok"
    with pytest.raises(BlockedURL):
        netguard.check_url(url)
    with pytest.raises(BlockedURL):
        fetch(url)
    assert listener.hits == []


def test_a_name_with_one_public_and_one_loopback_answer_is_refused(listener, fake_dns):
    fake_dns["mixed.example.com"] = ["93.184.216.34", "127.0.0.1"]
    with pytest.raises(BlockedURL):
        netguard.check_url(f"http://mixed.example.com:{listener.port}/ok")
    with pytest.raises(BlockedURL):
        fetch(f"http://mixed.example.com:{listener.port}/ok")
    assert listener.hits == []


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused_at_connect(listener, fake_dns):
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    fake_dns["rebind.example.com"] = lambda: next(answers)
    url = f"http://rebind.example.com:{listener.port}/ok"
    netguard.check_url(url)  # the first answer is public
    with pytest.raises(BlockedURL):
        fetch(url)  # the second is not, and it is the one the client would dial
    assert listener.hits == []


def test_a_redirect_from_an_allowed_host_to_loopback_is_refused(listener, fake_dns, settings):
    fake_dns["storage.internal"] = ["127.0.0.1"]
    settings.FETCH_ALLOWED_HOSTS = ["storage.internal"]
    allowed = f"http://storage.internal:{listener.port}"
    response = fetch(f"{allowed}/ok")
    assert response.status_code == 200 and response.content == b"hello from loopback"

    with pytest.raises(BlockedURL):
        fetch(f"{allowed}/redirect?to=http://127.0.0.1:{listener.port}/ok")
    assert [hit["path"] for hit in listener.hits] == [
        "/ok",
        f"/redirect?to=http://127.0.0.1:{listener.port}/ok",
    ]


def test_a_redirect_to_a_file_url_is_refused(listener, fake_dns, settings):
    fake_dns["storage.internal"] = ["127.0.0.1"]
    settings.FETCH_ALLOWED_HOSTS = ["storage.internal"]
    with pytest.raises(BlockedURL) as refused:
        fetch(f"http://storage.internal:{listener.port}/redirect?to=file:///etc/passwd")
    assert refused.value.message == "Only http:// and https:// links can be fetched."


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://example.com/a.png", "a.png"],
)
def test_links_that_are_not_web_links_are_refused(url):
    with pytest.raises(BlockedURL):
        netguard.check_url(url)
    with pytest.raises(BlockedURL):
        fetch(url)


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",  # cloud metadata
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "[::1]",
        "[fe80::1]",
        "[fd00::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[64:ff9b::a9fe:a9fe]",  # NAT64 for 169.254.169.254
        "[2002:7f00:1::]",  # 6to4 for 127.0.0.1
    ],
)
def test_private_local_and_reserved_addresses_are_refused(host):
    with pytest.raises(BlockedURL):
        netguard.check_url(f"http://{host}/latest/meta-data/")
    with pytest.raises(BlockedURL):
        fetch(f"http://{host}/latest/meta-data/")


def test_an_allowed_host_does_not_open_its_address_to_other_names(fake_dns, settings):
    fake_dns["storage.internal"] = ["10.0.0.7"]
    fake_dns["evil.example.com"] = ["10.0.0.7"]
    settings.FETCH_ALLOWED_HOSTS = ["storage.internal"]
    netguard.check_url("http://storage.internal/bucket/a.mp4")
    with pytest.raises(BlockedURL):
        netguard.check_url("http://evil.example.com/bucket/a.mp4")


# --- let through --------------------------------------------------------------------------------


def test_allow_private_fetches_loopback(listener):
    url = f"http://127.0.0.1:{listener.port}/ok"
    netguard.check_url(url, allow_private=True)
    response = fetch(url, allow_private=True)
    assert response.status_code == 200 and response.content == b"hello from loopback"


def test_public_addresses_pass_the_check(fake_dns):
    fake_dns["cdn.example.com"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    netguard.check_url("https://cdn.example.com/shot.png")
    netguard.check_url("http://8.8.8.8/")


def test_the_checked_address_is_dialled_with_the_links_own_host_name(listener, fake_dns, settings):
    fake_dns["storage.internal"] = ["127.0.0.1"]
    settings.FETCH_ALLOWED_HOSTS = ["storage.internal"]
    fetch(f"http://storage.internal:{listener.port}/ok")
    assert listener.hits[0]["host"] == f"storage.internal:{listener.port}"


def test_proxies_from_the_environment_are_not_used(listener, fake_dns, monkeypatch):
    # Through a proxy the guard would vet the proxy's address and the proxy would fetch
    # the link: the client dials the link's own (checked) address instead.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener.port}")
    fake_dns["direct.example.com"] = ["127.0.0.2"]  # nothing listens there
    with pytest.raises(httpx.ConnectError):
        fetch("http://direct.example.com/x.png", allow_private=True)
    assert listener.hits == []


def test_a_name_that_does_not_resolve_is_unknown_not_private(fake_dns):
    fake_dns["nowhere.example.com"] = []
    with pytest.raises(netguard.UnknownHost) as unknown:
        netguard.check_url("https://nowhere.example.com/a.png")
    assert unknown.value.message == "The studio could not find the server this link names."
    with pytest.raises(httpx.ConnectError):
        fetch("https://nowhere.example.com/a.png")


def test_read_limited_stops_past_the_limit(listener):
    with netguard.client(allow_private=True, timeout=TIMEOUT) as http:
        with (
            http.stream("GET", f"http://127.0.0.1:{listener.port}/big") as response,
            pytest.raises(netguard.TooLarge, match="larger than 1 MB"),
        ):
            netguard.read_limited(response, 1024 * 1024)
        with http.stream("GET", f"http://127.0.0.1:{listener.port}/ok") as response:
            assert netguard.read_limited(response, 1024) == b"hello from loopback"


# --- the sandbox twins call back only to this studio ---------------------------------------------
# The twins run inside the studio: a callback URL elsewhere would make the studio's own server
# POST wherever a sandbox key holder likes. They refuse it as a bad parameter, in each
# provider's own error shape (kie: HTTP 200, body code 422; Kling: HTTP 400, code 1201).

ELSEWHERE = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5:6379/",
    "https://hooks.example.net/clipchain",
    "http://[fd00::1]/hook",
]


def _kie_generate(client, callback_url: str):
    return client.post(
        "/sandbox/kie/api/v1/veo/generate",
        {"prompt": "Bees over a meadow", "model": "veo3_fast", "callBackUrl": callback_url},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sk-sandbox-kie-0001",
    )


def _kling_generate(client, callback_url: str):
    return client.post(
        "/sandbox/kling/v1/videos/text2video",
        {"model_name": "kling-v1", "prompt": "Fireflies", "callback_url": callback_url},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sk-sandbox-kling-0001",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("url", ELSEWHERE)
def test_the_kie_twin_refuses_a_callback_elsewhere_as_a_bad_parameter(client, url):
    from sandbox.models import SandboxTask

    response = _kie_generate(client, url)
    body = response.json()
    assert response.status_code == 200 and body["code"] == 422 and body["data"] is None
    assert body["msg"].startswith("callBackUrl must point at this studio")
    assert not SandboxTask.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ELSEWHERE)
def test_the_kling_twin_refuses_a_callback_elsewhere_as_a_bad_parameter(client, url):
    from sandbox.models import SandboxTask

    response = _kling_generate(client, url)
    body = response.json()
    assert response.status_code == 400 and body["code"] == 1201
    assert body["message"].startswith("callback_url must point at this studio")
    assert not SandboxTask.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/callbacks/kie/1/",
        "http://localhost:8000/callbacks/kie/1/",
        "http://[::1]:8000/callbacks/kie/1/",
        "https://studio.example.com/callbacks/kie/1/",  # PUBLIC_URL's host
        "https://clips.example.org/callbacks/kie/1/",  # in ALLOWED_HOSTS
    ],
)
def test_the_twins_call_back_to_the_studios_own_addresses(client, settings, url):
    settings.PUBLIC_URL = "https://studio.example.com"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, ".example.org", "*"]
    settings.SANDBOX_TASK_SECONDS = 3600  # no delivery during the test
    assert _kie_generate(client, url).json()["code"] == 200
    assert _kling_generate(client, url).json()["code"] == 0


def test_a_bare_star_in_allowed_hosts_does_not_open_callbacks_to_anywhere(settings):
    from sandbox import callbacks

    settings.ALLOWED_HOSTS = ["*"]
    settings.PUBLIC_URL = ""
    assert not callbacks.is_studio_address("https://hooks.example.net/x")
    assert callbacks.is_studio_address("http://127.0.0.1:9/x")
    assert not callbacks.is_studio_address("gopher://127.0.0.1:9/x")
