"""Sign-in as an attacker tries it: saved cookies after sign-out, guessing (per address and
per account), oversized and odd forms, timing user names, and many sign-ins at once."""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from app_harness import ADMIN_TOKEN, PASSWORD, USER, App, StartApp, pool, running_app

from numerai_autopilot.sandbox.testing import RunningSandbox
from numerai_autopilot.web.dashboard import hash_password
from numerai_autopilot.web.dashboard.actions import FORM_TIMEOUT_S, MAX_FORM_BYTES
from numerai_autopilot.web.dashboard.session import (
    ACCOUNT_LIMIT,
    ADDRESS_LIMIT,
    COOKIE,
    WINDOW_S,
)


def client(app: App, address: str = "127.0.0.1") -> httpx.Client:
    """A browser on `address` (any 127.x.y.z reaches the server): a client address of its own."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=app.url, timeout=60, transport=transport)


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def attempt(browser: httpx.Client, user: str, password: str) -> httpx.Response:
    page = browser.get("/login")
    return browser.post("/login", data={"csrf": csrf(page.text), "username": user,
                                        "password": password})


def test_sign_out_ends_the_session_even_for_a_saved_cookie(start_app: StartApp) -> None:
    app = start_app({"alpha": pool("good")})
    with client(app) as browser, client(app) as other:
        assert attempt(browser, USER, PASSWORD).status_code == 303
        assert attempt(other, "", ADMIN_TOKEN).status_code == 303
        saved = browser.cookies[COOKIE]
        home = browser.get("/")
        assert home.status_code == 200
        assert browser.post("/logout", data={"csrf": csrf(home.text)}).status_code == 303
        with httpx.Client(base_url=app.url, cookies={COOKIE: saved}) as thief:
            page = thief.get("/")
            assert page.status_code == 303 and page.headers["location"] == "/login?next=/"
            assert thief.get("/api/runs").status_code == 401
            assert thief.get("/fragments/grid").status_code == 401
        assert other.get("/").status_code == 200  # another session is not ended
        assert other.get("/api/runs").status_code == 200


def test_a_new_admin_token_or_password_ends_every_session(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """A changed token or password takes effect at a restart, which ends every session: a
    cookie saved before it (still validly signed: the secret did not change) signs in no more."""
    new_token = "a-new-admin-token-after-a-leak-7d41c9e2b5"
    first = {"dashboard_user": USER,
             "dashboard_password_hash": hash_password(PASSWORD, iterations=2000)}
    with (running_app(tmp_path, sandbox, {"alpha": pool("good")}, server=first) as before,
          client(before) as browser, client(before) as admin):
        assert attempt(browser, USER, PASSWORD).status_code == 303
        assert attempt(admin, "", ADMIN_TOKEN).status_code == 303
        saved = [browser.cookies[COOKIE], admin.cookies[COOKIE]]
    server = {"admin_token": new_token, "dashboard_user": USER,
              "dashboard_password_hash": hash_password("a new password", iterations=2000)}
    with running_app(tmp_path, sandbox, {"alpha": pool("good")}, server=server) as after:
        for cookie in saved:
            with httpx.Client(base_url=after.url, cookies={COOKIE: cookie}) as thief:
                page = thief.get("/")
                assert page.status_code == 303 and page.headers["location"] == "/login?next=/"
                assert thief.get("/api/runs").status_code == 401
        old = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert httpx.get(f"{after.url}/api/runs", headers=old).status_code == 401
        with client(after) as browser:
            assert attempt(browser, USER, PASSWORD).status_code == 401
            assert attempt(browser, "", new_token).status_code == 303


def test_failed_sign_ins_are_limited_per_address_and_per_account(start_app: StartApp) -> None:
    app = start_app({"alpha": pool("good")})
    with client(app, "127.0.0.2") as guesser:
        for _ in range(ADDRESS_LIMIT):
            assert attempt(guesser, USER, "not the password at all").status_code == 401
        refused = attempt(guesser, USER, PASSWORD)  # even the right password, now
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 0 < wait <= WINDOW_S
        assert f"Too many failed sign-ins; try again in {wait} s." in refused.text
        assert guesser.get("/").status_code == 303
    with client(app, "127.0.0.3") as owner:  # the account's owner, elsewhere, gets in
        assert attempt(owner, USER, PASSWORD).status_code == 303
        assert owner.get("/").status_code == 200

    failures, host = ADDRESS_LIMIT, 10  # guesses at the same account from many addresses
    while failures < ACCOUNT_LIMIT:
        with client(app, f"127.0.0.{host}") as guesser:
            for _ in range(min(ADDRESS_LIMIT, ACCOUNT_LIMIT - failures)):
                assert attempt(guesser, USER, "still not it").status_code == 401
                failures += 1
        host += 1
    with client(app, "127.0.0.99") as fresh:
        refused = attempt(fresh, USER, PASSWORD)
        assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
        assert attempt(fresh, "", ADMIN_TOKEN).status_code == 303  # another account


def test_forms_are_bounded_before_they_are_read(start_app: StartApp) -> None:
    app = start_app({"alpha": pool("good")})
    with client(app) as browser:
        token = csrf(browser.get("/login").text)
        big = browser.post("/login", data={"csrf": token, "username": USER,
                                           "password": "x" * MAX_FORM_BYTES})
        assert big.status_code == 413
        many = browser.post("/login", content="&".join(f"f{i}=1" for i in range(100)),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert many.status_code == 400
        chunked = browser.post("/login", content=iter([b"csrf=", token.encode()]),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert chunked.status_code == 411
        upload = browser.post("/login", data={"csrf": token}, files={"f": b"contents"})
        assert upload.status_code == 400
        assert browser.post("/login", data={"username": USER, "password": PASSWORD}
                            ).status_code == 403  # no CSRF token
        assert attempt(browser, USER, PASSWORD).status_code == 303  # none counted as failures

    # 300 MB announced: refused from the headers, before any of the body is read
    host, port = app.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 314572800\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n\r\ncsrf=")
        assert raw.recv(200).startswith(b"HTTP/1.1 413 ")

    # A small form whose body never all arrives: 408 after FORM_TIMEOUT_S, connection closed
    with socket.create_connection((host, int(port)), timeout=FORM_TIMEOUT_S + 5) as raw:
        raw.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n\r\ncsrf=")
        sent = time.monotonic()
        answer = raw.recv(200)
        waited = time.monotonic() - sent
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert FORM_TIMEOUT_S - 1 <= waited <= FORM_TIMEOUT_S + 3, waited
        while raw.recv(4096):  # the rest of the answer, then the end of the connection
            pass


def test_a_wrong_user_name_takes_as_long_as_a_wrong_password(start_app: StartApp) -> None:
    """With a real hash (the default iterations), an unknown user name is checked against it
    too: its answer tells nothing the timing of a known one's would not."""
    app = start_app({"alpha": pool("good")}, server={
        "dashboard_user": USER, "dashboard_password_hash": hash_password(PASSWORD)})
    times: dict[str, list[float]] = {"known user": [], "unknown user": []}
    for host in range(20, 24):
        with client(app, f"127.0.0.{host}") as guesser:
            for label, user in (("known user", USER), ("unknown user", "eve")):
                token = csrf(guesser.get("/login").text)
                started = time.perf_counter()
                answer = guesser.post("/login", data={"csrf": token, "username": user,
                                                      "password": "a wrong password"})
                times[label].append(time.perf_counter() - started)
                assert answer.status_code == 401
    known, unknown = (statistics.median(times[k]) for k in ("known user", "unknown user"))
    assert unknown > 0.5 * known and known > 0.5 * unknown, times


def test_many_sign_ins_at_once_hash_in_a_bounded_pool_of_their_own(start_app: StartApp) -> None:
    app = start_app({"alpha": pool("good")}, server={
        "dashboard_user": USER, "dashboard_password_hash": hash_password(PASSWORD)})
    forms = []
    for host in range(30, 42):  # a form each, from 12 addresses
        browser = client(app, f"127.0.0.{host}")
        forms.append((browser, csrf(browser.get("/login").text)))

    def guess(form: tuple[httpx.Client, str]) -> httpx.Response:
        browser, token = form
        return browser.post("/login", data={"csrf": token, "username": USER,
                                            "password": "one of many guesses"})

    with ThreadPoolExecutor(len(forms)) as senders:
        answers = senders.map(guess, forms)
        health = [_timed_get(f"{app.url}/healthz") for _ in range(5)]
        answered = list(answers)
    for browser, _ in forms:
        browser.close()
    assert {a.status_code for a in answered} == {401, 429}, [a.status_code for a in answered]
    busy = next(a for a in answered if a.status_code == 429)
    assert "Too many sign-ins at once; try again in 1 s." in busy.text
    assert max(health) < 0.5, health  # the server goes on answering meanwhile
    hashing = [t.name for t in threading.enumerate() if t.name.startswith("dashboard-password")]
    assert len(hashing) == 1, hashing


def _timed_get(url: str) -> float:
    started = time.perf_counter()
    assert httpx.get(url, timeout=10).status_code == 200
    return time.perf_counter() - started
