"""The confirmation UI over real HTTP on loopback: its guards and its answers."""

import socket
import time

import httpx
import pytest
from keystead.adapters.second_factor import (
    Decision,
    InMemoryPromptSource,
    RelyingParty,
    verify_answer,
)
from keystead.adapters.second_factor.ui import TOKEN_HEADER, UiServer
from keystead.core.crypto import SigningKey

KEY = SigningKey(b"\x07" * 32)
LIVE = {"phone": KEY.verify_key}
BANK = RelyingParty("bank.example")


@pytest.fixture
def source():
    return InMemoryPromptSource("phone", KEY)


@pytest.fixture
def server(source):
    with UiServer(source) as running:
        yield running


@pytest.fixture
def prompt(source):
    p = BANK.create_prompt("Log in from Berlin?", int(time.time()))
    source.add(p.to_bytes())
    return p


def api(server, method, path, **kwargs):
    headers = {TOKEN_HEADER: server.token, **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + path.lstrip("/"), headers=headers, **kwargs)


def test_listens_on_loopback_only_and_stops(source):
    server = UiServer(source)
    assert server.url.startswith("http://127.0.0.1:")
    server.start()
    assert httpx.get(server.url).status_code == 200
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
        pass


def test_the_served_page_never_carries_the_token(server):
    # Any local process can GET the page: the token reaches the person only through the
    # terminal, in the fragment of the URL it prints (which no browser sends to a server).
    r = httpx.get(server.url)
    assert r.status_code == 200
    assert server.token not in r.text and "token" not in r.text.lower()
    assert server.open_url == f"{server.url}#t={server.token}"
    assert httpx.get(server.open_url).text == r.text  # the fragment is not sent at all


def test_page_security_headers(server):
    r = httpx.get(server.url)
    assert r.status_code == 200
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


def test_pending_lists_without_the_correct_number(server, prompt):
    r = api(server, "GET", "/api/pending")
    assert r.status_code == 200
    (item,) = r.json()["prompts"]
    assert item["id"] == prompt.request_id and item["rp"] == "bank.example"
    assert item["choices"] == sorted(prompt.choices)
    assert "number" not in item


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "127.0.0.1", "[::1]:{port}"]
)
def test_other_host_headers_are_refused(server, prompt, host):
    """A DNS-rebound page reaches 127.0.0.1 under its own name: refuse it, page included."""
    for path in ("/", "/api/pending"):
        r = api(server, "GET", path, headers={"Host": host.format(port=server.port)})
        assert r.status_code == 403 and r.json()["error"] == "bad_host"


def test_localhost_name_is_accepted(server):
    r = httpx.get(server.url, headers={"Host": f"localhost:{server.port}"})
    assert r.status_code == 200


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_api_needs_the_page_token(server, prompt, source, token):
    headers = {} if token is None else {TOKEN_HEADER: token}
    url = server.url + f"api/prompts/{prompt.request_id}/approve"
    r = httpx.post(url, json={"number": prompt.number}, headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "bad_token"
    assert httpx.get(server.url + "api/pending", headers=headers).status_code == 403
    assert source.answers == {}


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}],
)
def test_cross_origin_requests_are_refused_even_with_the_token(server, prompt, source, headers):
    r = api(server, "POST", f"/api/prompts/{prompt.request_id}/approve",
            json={"number": prompt.number}, headers=headers)  # fmt: skip
    assert r.status_code == 403
    assert source.answers == {}


def test_form_posts_are_refused(server, prompt, source):
    r = api(server, "POST", f"/api/prompts/{prompt.request_id}/deny",
            content=b'{"report": false}', headers={"Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 415
    assert source.answers == {}


def test_approve_signs_an_answer_that_verifies(server, prompt, source):
    r = api(server, "POST", f"/api/prompts/{prompt.request_id}/approve",
            json={"number": prompt.number})  # fmt: skip
    assert r.status_code == 200
    answer = source.answers[prompt.request_id]
    result = verify_answer(answer, prompt.to_bytes(), "bank.example", int(time.time()), LIVE, set())
    assert result.decision is Decision.APPROVE and result.number == prompt.number
    assert api(server, "GET", "/api/pending").json()["prompts"] == []


def test_deny_and_report(server, prompt, source):
    r = api(server, "POST", f"/api/prompts/{prompt.request_id}/deny", json={"report": True})
    assert r.status_code == 200
    result = verify_answer(
        source.answers[prompt.request_id], prompt.to_bytes(), "bank.example",
        int(time.time()), LIVE, set(),
    )  # fmt: skip
    assert result.decision is Decision.REPORT


def test_bad_answers_are_4xx_and_change_nothing(server, prompt, source):
    outside = next(n for n in range(10, 100) if n not in prompt.choices)
    path = f"/api/prompts/{prompt.request_id}/approve"
    assert api(server, "POST", path, json={"number": outside}).status_code == 400
    assert api(server, "POST", path, json={"number": "42"}).status_code == 422
    assert api(server, "POST", path, json={"number": 42, "x": 1}).status_code == 422
    assert api(server, "POST", "/api/prompts/nope/approve", json={"number": 42}).status_code == 404
    assert source.answers == {}
    assert len(api(server, "GET", "/api/pending").json()["prompts"]) == 1


def test_expired_prompts_are_hidden_and_cannot_be_answered(source):
    now = [time.time()]
    source.clock = lambda: now[0]
    p = BANK.create_prompt("old", int(now[0]) - 200)  # lifetime 120: expired 80 s ago
    source.add(p.to_bytes())
    with UiServer(source, clock=lambda: now[0]) as server:
        assert api(server, "GET", "/api/pending").json()["prompts"] == []
        r = api(server, "POST", f"/api/prompts/{p.request_id}/approve", json={"number": p.number})
        assert r.status_code == 410
    assert source.answers == {}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:1"},
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
    ],
)
def test_the_page_and_its_token_are_not_served_to_other_pages_scripts(server, headers):
    r = httpx.get(server.url, headers=headers)
    assert r.status_code == 403 and server.token not in r.text


def test_a_link_from_elsewhere_still_opens_the_page(server):
    r = httpx.get(
        server.url, headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    )
    assert r.status_code == 200
