"""The example app's storefront page (``examples/storefront/``) in a real browser.

Headless Chromium, driven by Selenium, uses the page against the example app served as
``make run`` serves it, on ``http://127.0.0.1:PORT``. What the test clients elsewhere only
imitate with headers set by hand is done here by the browser itself: the token cookie and
its flags, the ``Origin`` and ``Sec-Fetch-Site`` headers, SameSite, the cleared cookie. A
page of another origin (another port of 127.0.0.1, or ``localhost``: another site) tries
cookie-authenticated writes the way a malicious page would.

It needs Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; ``CHROMIUM_PATH`` and ``CHROMEDRIVER_PATH`` name others) and is
skipped without them, except under CI (``CI`` set), where their absence is a failure. Both
paths are always given to Selenium, so Selenium Manager never runs (it would try to
download a browser).
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest

from .live_server import LiveServer, make_run


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


try:
    from selenium.webdriver import Chrome, ChromeOptions
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the test extra installs it
    if _in_ci():
        raise
    pytest.skip("selenium is not installed", allow_module_level=True)

# Debian's packages; elsewhere, point these variables at a Chromium and its driver.
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER_PATH", "/usr/bin/chromedriver"))
CHROMIUM_ARGUMENTS = [
    "--headless=new",
    "--no-sandbox",  # tests may run as root, in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a container's /dev/shm may be too small for the renderer
    "--disable-quic",
    "--no-first-run",
    # No traffic of the browser's own: the machine may have no network at all.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds any one step may take, and between two looks.
WAIT = 15
POLL = 0.02
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
ORIGIN_REFUSED = "Cross-site requests with cookie credentials are not allowed"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Outcome:
    """What the page's status line said after an action."""

    state: str
    message: str
    http_status: int | None


class Page:
    """The storefront page in one browser: its fields, buttons and status line, and
    requests made by the page's own origin (so with its cookie and its Origin)."""

    def __init__(self, driver: Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str = "/") -> None:
        """Load the page (or a URL of the shop) and wait until its script is ready."""
        self.driver.get(path if path.startswith("http") else self.base_url + path)
        self.wait(
            lambda: (
                self.driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
            )
        )

    def wait(self, condition: Callable[[], object], timeout: float = WAIT) -> Any:
        """Wait until ``condition`` is truthy; its value."""
        wait = WebDriverWait(self.driver, timeout, poll_frequency=POLL)
        return wait.until(lambda _driver: condition())

    def element(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return self.element(element_id).text

    def shown(self, element_id: str) -> bool:
        return self.element(element_id).is_displayed()

    def fill(self, fields: dict[str, str]) -> None:
        """Type into the inputs named by id, replacing what they hold."""
        for element_id, value in fields.items():
            field = self.element(element_id)
            field.clear()
            field.send_keys(value)

    def status(self) -> Outcome:
        status = self.element("status")
        http_status = status.get_attribute("data-http-status")
        return Outcome(
            state=status.get_attribute("data-state") or "",
            message=status.text,
            http_status=int(http_status) if http_status else None,
        )

    def act(self, target: str | WebElement) -> Outcome:
        """Click a button (an id, or an element) and wait for the outcome it reports."""
        before = self.element("status").get_attribute("data-seq")
        button = self.element(target) if isinstance(target, str) else target
        button.click()
        self.wait(lambda: self.element("status").get_attribute("data-seq") != before)
        return self.status()

    def fetch(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """A request from the page's origin with its cookie: the status and JSON body."""
        script = """
            const [method, path, body, done] = arguments;
            const init = {method, credentials: "same-origin", headers: {}};
            if (body !== null) {
                init.headers["Content-Type"] = "application/json";
                init.body = JSON.stringify(body);
            }
            fetch(path, init).then(
                async (response) => done([response.status, await response.json()]),
                (error) => done([0, String(error)]),
            );
        """
        status, payload = self.driver.execute_async_script(script, method, path, body)
        return int(status), payload

    def token_cookie(self) -> dict[str, Any] | None:
        return cast("dict[str, Any] | None", self.driver.get_cookie("token"))

    def items(self, list_id: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, f"#{list_id} > li")

    def csp_violations(self) -> list[str]:
        # Selenium leaves get_log without annotations.
        get_log = cast("Callable[[str], list[dict[str, Any]]]", self.driver.get_log)
        return [
            entry["message"]
            for entry in get_log("browser")
            if "Content Security Policy" in entry["message"]
        ]


class AttackerSite:
    """Another origin's pages (another port of 127.0.0.1, or ``localhost``), set by the
    test: what a malicious page could make a logged-in visitor's browser do."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _page_handler(self.pages))
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT)


def _page_handler(pages: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            page = pages.get(self.path)
            body = (page or "not found").encode()
            self.send_response(200 if page is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            """Quiet: pytest would show these lines on a failure."""

    return Handler


# --- Fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> None:
    """Skip (fail under CI) when the browser or its driver is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        reason = f"{', '.join(missing)} missing: apt install chromium chromium-driver"
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One example app for the module; each test uses customers of its own."""
    with make_run(tmp_path_factory.mktemp("storefront")) as server:
        yield server


@pytest.fixture
def page(chromium: None, live: LiveServer, tmp_path: Path) -> Iterator[Page]:
    """A fresh headless Chromium (a profile of its own, so no cookie yet) on the shop."""
    options = ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_script_timeout(WAIT)
        driver.set_page_load_timeout(WAIT)
        yield Page(driver, live.url)
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def attacker() -> Iterator[AttackerSite]:
    site = AttackerSite()
    yield site
    site.close()


# --- Helpers -------------------------------------------------------------------------------


def sign_up(page: Page, email: str, full_name: str = "Alice Example") -> Outcome:
    page.open()
    page.fill(
        {
            "register-full-name": full_name,
            "register-email": email,
            "register-password": PASSWORD,
        }
    )
    return page.act("register-submit")


def log_in(page: Page, email: str, password: str = PASSWORD) -> Outcome:
    page.fill({"login-email": email, "login-password": password})
    return page.act("login-submit")


def signed_up_and_in(page: Page, email: str, full_name: str = "Alice Example") -> None:
    assert sign_up(page, email, full_name).state == "ok"
    outcome = log_in(page, email)
    assert outcome == Outcome("ok", f"Logged in as {email}.", 200)


def call(
    live: LiveServer,
    method: str,
    path: str,
    body: object = None,
    *,
    token: str | None = None,
    user_agent: str = "test",
) -> tuple[int, Any]:
    """A request from outside the browser (another device): the status and JSON body."""
    headers = {"User-Agent": user_agent}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(live.url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def device_login(live: LiveServer, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in from a phone, by bearer token: ``{"token", "sid"}``."""
    status, body = call(
        live,
        "POST",
        "/api/customers/sessions",
        {"email": email, "password": password},
        user_agent="ExamplePhone/1.0",
    )
    assert status == 200, body
    return cast("dict[str, str]", body["data"])


def log_lines(live: LiveServer, since: int = 0) -> str:
    """The server's log from offset ``since``, without terminal colours."""
    return ANSI.sub("", live.log()[since:])


def own_sid(page: Page) -> str:
    status, body = page.fetch("GET", "/api/customers/me/sessions")
    assert status == 200, body
    [current] = [item for item in body["data"]["items"] if item["current"]]
    return cast(str, current["sid"])


# --- The page, as a customer uses it -------------------------------------------------------


def test_register_log_in_and_the_cookie_the_browser_keeps(page: Page) -> None:
    page.open()
    assert page.status() == Outcome("idle", "You are not logged in.", 401)
    assert page.shown("signed-out") and not page.shown("account")
    # Rendered as text, never as markup.
    name = '<b id="injected">Alice</b>'
    assert sign_up(page, "alice@example.com", name) == Outcome(
        "ok", "Account created for alice@example.com. You can log in now.", 200
    )
    assert page.token_cookie() is None
    assert log_in(page, "alice@example.com", "wrong password") == Outcome(
        "error", "Invalid email or password (400)", 400
    )
    assert log_in(page, "alice@example.com").state == "ok"
    assert page.shown("account") and not page.shown("signed-out")
    assert page.text("profile-full-name") == name
    assert page.driver.find_elements(By.ID, "injected") == []

    cookie = page.token_cookie()
    assert cookie is not None
    # EVERSHOP_CUSTOMER_COOKIE_SECURE is None, and `flask run` is neither debug nor
    # testing: Secure. Chromium keeps a Secure cookie set over http by 127.0.0.1, a
    # potentially trustworthy origin, and sends it back.
    assert cookie["secure"] is True
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert (cookie["domain"], cookie["path"]) == ("127.0.0.1", "/")
    # HttpOnly: the page's script cannot read it.
    assert "token=" not in page.driver.execute_script("return document.cookie")

    # A reload: the cookie alone logs the page in.
    page.open()
    assert page.status() == Outcome("ok", "Logged in as alice@example.com.", 200)
    assert page.csp_violations() == []


def test_see_and_edit_the_profile(page: Page, live: LiveServer) -> None:
    signed_up_and_in(page, "bob@example.com", "Bob Example")
    assert page.text("profile-full-name") == "Bob Example"
    assert page.text("profile-email") == "bob@example.com"

    page.fill({"profile-edit-full-name": "Bob Renamed"})
    assert page.act("profile-submit") == Outcome("ok", "Your profile is saved.", 200)
    assert page.text("profile-full-name") == "Bob Renamed"
    status, body = page.fetch("GET", "/api/customers/me")
    assert (status, body["data"]["full_name"]) == (200, "Bob Renamed")

    # A new email needs the current password.
    page.fill({"profile-edit-email": "robert@example.com"})
    assert page.act("profile-submit") == Outcome(
        "error", "Request data must have required property 'current_password' (400)", 400
    )
    page.fill({"profile-edit-email": "robert@example.com", "profile-current-password": PASSWORD})
    assert page.act("profile-submit").state == "ok"
    assert page.text("profile-email") == "robert@example.com"

    # The page sends the ETag it read as If-Match: an edit made elsewhere since is not
    # overwritten, and the page shows what is stored now.
    phone = device_login(live, "robert@example.com")
    status, _ = call(
        live, "PATCH", "/api/customers/me", {"full_name": "Bob (phone)"}, token=phone["token"]
    )
    assert status == 200
    page.fill({"profile-edit-full-name": "Bob (browser)"})
    assert page.act("profile-submit") == Outcome(
        "error", "The customer was changed by another request; fetch it again (412)", 412
    )
    assert page.text("profile-full-name") == "Bob (phone)"
    page.fill({"profile-edit-full-name": "Bob (browser)"})
    assert page.act("profile-submit").state == "ok"
    assert page.text("profile-full-name") == "Bob (browser)"


def address_item(page: Page, uuid: str) -> WebElement:
    return page.driver.find_element(By.CSS_SELECTOR, f'#address-list li[data-uuid="{uuid}"]')


def default_uuids(page: Page) -> list[str]:
    return [
        item.get_attribute("data-uuid") or ""
        for item in page.items("address-list")
        if item.find_elements(By.CLASS_NAME, "address-default")
    ]


def test_manage_addresses(page: Page) -> None:
    signed_up_and_in(page, "carol@example.com", "Carol Example")
    assert page.items("address-list") == []
    page.fill(
        {
            "address-full-name": "Carol Example",
            "address-address-1": "1600 Amphitheatre Parkway",
            "address-city": "Mountain View",
            "address-postcode": "94043",
            "address-telephone": "(650) 253-0000",
            "address-country": "us",
            "address-province": "us-ca",
        }
    )
    assert page.act("address-submit") == Outcome("ok", "The address is added.", 200)
    page.fill(
        {
            "address-full-name": "Carol at work",
            "address-address-1": "1 Main Street",
            "address-postcode": "GX11 1AA",
            "address-country": "GI",
        }
    )
    assert page.act("address-submit").state == "ok"
    # The API's message, naming the field.
    page.fill({"address-full-name": "X", "address-address-1": "Y", "address-postcode": "1"})
    page.fill({"address-country": "ZZ"})
    assert page.act("address-submit") == Outcome(
        "error", "/country must be an ISO 3166-1 alpha-2 code (400)", 400
    )
    page.element("address-cancel").click()

    status, body = page.fetch("GET", "/api/customers/me/addresses")
    home, work = body["data"]["items"]
    assert (home["telephone"], home["province"], home["country"]) == (
        "+16502530000",
        "US-CA",
        "US",
    )
    texts = [item.text for item in page.items("address-list")]
    assert "+16502530000" in texts[0] and "Carol at work" in texts[1]
    assert default_uuids(page) == []

    for uuid in (work["uuid"], home["uuid"]):
        button = address_item(page, uuid).find_element(By.CLASS_NAME, "address-make-default")
        assert page.act(button) == Outcome("ok", "This is now your default address.", 200)
        assert default_uuids(page) == [uuid]

    address_item(page, home["uuid"]).find_element(By.CLASS_NAME, "address-edit").click()
    assert page.text("address-form-legend") == "Edit the address"
    assert page.element("address-address-1").get_attribute("value") == home["address_1"]
    page.fill({"address-city": "Palo Alto"})
    assert page.act("address-submit") == Outcome("ok", "The address is saved.", 200)
    assert "Palo Alto" in address_item(page, home["uuid"]).text
    assert page.text("address-form-legend") == "Add an address"

    button = address_item(page, work["uuid"]).find_element(By.CLASS_NAME, "address-delete")
    assert page.act(button) == Outcome("ok", "The address is deleted.", 200)
    status, body = page.fetch("GET", "/api/customers/me/addresses")
    [left] = body["data"]["items"]
    assert (left["uuid"], left["city"], left["is_default"]) == (home["uuid"], "Palo Alto", True)
    assert [item.get_attribute("data-uuid") for item in page.items("address-list")] == [
        home["uuid"]
    ]


def test_list_and_end_sessions(page: Page, live: LiveServer) -> None:
    signed_up_and_in(page, "dave@example.com", "Dave Example")
    phone = device_login(live, "dave@example.com")
    page.open()
    sessions = page.items("session-list")
    assert len(sessions) == 2
    [mine] = [item for item in sessions if item.find_elements(By.CLASS_NAME, "session-current")]
    [other] = [item for item in sessions if item is not mine]
    assert other.get_attribute("data-sid") == phone["sid"]
    assert "ExamplePhone/1.0" in other.text and "HeadlessChrome" in mine.text
    assert mine.find_elements(By.CLASS_NAME, "session-end") == []

    button = other.find_element(By.CLASS_NAME, "session-end")
    # Which session the button ends, for a screen reader too.
    label = button.get_attribute("aria-label") or ""
    assert label.startswith("End: the session since ") and label.endswith("ExamplePhone/1.0")
    assert page.act(button) == Outcome("ok", "That session is ended.", 200)
    assert len(page.items("session-list")) == 1
    assert call(live, "GET", "/api/customers/me", token=phone["token"])[0] == 401

    phone = device_login(live, "dave@example.com")
    page.open()
    assert len(page.items("session-list")) == 2
    assert page.act("sessions-end-others") == Outcome("ok", "Every other session is ended.", 200)
    assert len(page.items("session-list")) == 1
    assert call(live, "GET", "/api/customers/me", token=phone["token"])[0] == 401
    assert page.fetch("GET", "/api/customers/me")[0] == 200


def test_reset_a_forgotten_password_with_the_link_of_the_log(page: Page, live: LiveServer) -> None:
    assert sign_up(page, "erin@example.com", "Erin Example").state == "ok"
    page.fill({"forgot-email": "erin@example.com"})
    outcome = page.act("forgot-submit")
    assert outcome.state == "ok" and "reset link is on its way" in outcome.message

    pattern = re.compile(r"Password reset link for erin@example\.com: (\S+)")
    link = page.wait(lambda: pattern.findall(log_lines(live)))[-1]
    # Built from the address the reset was requested at: this server, whatever its port.
    assert link.startswith(f"{live.url}/reset-password?token=")
    page.open(link)
    assert page.shown("reset-section")
    # The token leaves the address bar once the page has it.
    assert page.driver.current_url == f"{live.url}/"
    page.fill({"reset-password": NEW_PASSWORD})
    outcome = page.act("reset-submit")
    assert outcome.state == "ok" and "password is changed" in outcome.message
    assert not page.shown("reset-section")

    assert log_in(page, "erin@example.com").http_status == 400
    assert log_in(page, "erin@example.com", NEW_PASSWORD) == Outcome(
        "ok", "Logged in as erin@example.com.", 200
    )
    # A link is good once.
    page.open(link)
    page.fill({"reset-password": "yet another passphrase"})
    assert page.act("reset-submit") == Outcome("error", "Token is invalid or expired (400)", 400)


def test_log_out_clears_the_cookie_and_ends_the_session(page: Page, live: LiveServer) -> None:
    signed_up_and_in(page, "frank@example.com", "Frank Example")
    cookie = page.token_cookie()
    assert cookie is not None
    assert page.act("logout-button") == Outcome("ok", "You are logged out.", 200)
    assert page.shown("signed-out") and not page.shown("account")
    assert page.driver.get_cookies() == []
    assert page.text("profile-full-name") == ""
    status, body = page.fetch("GET", "/api/customers/me")
    assert (status, body) == (401, {"error": {"status": 401, "message": "Unauthorized"}})
    # Really ended: a copy of the token is refused too.
    assert call(live, "GET", "/api/customers/me", token=cookie["value"])[0] == 401
    page.open()
    assert page.status() == Outcome("idle", "You are not logged in.", 401)


# --- Another origin's page -----------------------------------------------------------------

FETCH_ATTACK = """<!doctype html>
<title>Win a prize</title>
<pre id="results"></pre>
<script>
const VICTIM = %(victim)s, SID = %(sid)s;
async function attempt(name, url, init) {
  try {
    const response = await fetch(VICTIM + url, {credentials: "include", ...init});
    return [name, `${response.type} ${response.status}`];
  } catch (error) {
    return [name, `refused: ${error.name}`];
  }
}
(async () => {
  const results = [
    // JSON: a preflight first, which the shop does not grant.
    await attempt("json-patch", "/api/customers/me", {
      method: "PATCH",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({full_name: "Mallory"}),
    }),
    // No preflight: sent, with the cookie; the answer is opaque to this page.
    await attempt("no-cors-address", "/api/customers/me/addresses", {
      method: "POST",
      mode: "no-cors",
      headers: {"Content-Type": "text/plain"},
      body: JSON.stringify({full_name: "M", address_1: "x", postcode: "1", country: "GI"}),
    }),
    await attempt("no-cors-logout", "/api/customers/sessions/" + SID, {
      method: "POST",
      mode: "no-cors",
    }),
    await attempt("read-profile", "/api/customers/me", {}),
  ];
  document.getElementById("results").textContent = JSON.stringify(results);
  document.body.dataset.done = "true";
})();
</script>
"""

FORM_ATTACK = """<!doctype html>
<title>Win a prize</title>
<form id="attack" method="post" action="%(action)s" enctype="%(enctype)s">%(fields)s</form>
<script>document.getElementById("attack").submit();</script>
"""

IMAGE_ATTACK = """<!doctype html>
<title>Win a prize</title>
<img src="%(src)s" alt="" id="attack">
<script>
const image = document.getElementById("attack");
image.onload = image.onerror = () => { document.body.dataset.done = "true"; };
</script>
"""

# A text/plain form whose body reads as JSON: {"full_name": "Mallory", "x": "="}
JSON_LOOKING_FIELD = """<input name='{"full_name": "Mallory", "x": "' value='"}'>"""


def form_attack(
    page: Page, attacker: AttackerSite, action: str, *, host: str = "127.0.0.1", **form: str
) -> Any:
    """An attacker's page that posts a form to the shop as soon as it loads; what the
    browser then shows: the shop's JSON answer."""
    name = f"/form-{len(attacker.pages)}.html"
    attacker.pages[name] = FORM_ATTACK % {
        "action": page.base_url + action,
        "enctype": form.get("enctype", "application/x-www-form-urlencoded"),
        "fields": form.get("fields", ""),
    }
    page.driver.get(attacker.url(name, host))
    page.wait(lambda: page.driver.current_url == page.base_url + action)
    return json.loads(page.wait(lambda: page.driver.find_element(By.TAG_NAME, "pre").text))


def image_attack(page: Page, attacker: AttackerSite, path: str, *, host: str) -> None:
    """An attacker's page with an image whose address is a GET of the shop."""
    name = f"/image-{len(attacker.pages)}.html"
    attacker.pages[name] = IMAGE_ATTACK % {"src": page.base_url + path}
    page.driver.get(attacker.url(name, host))
    page.wait(lambda: page.driver.find_element(By.TAG_NAME, "body").get_attribute("data-done"))


def test_another_origin_cannot_write_with_the_cookie(
    page: Page, live: LiveServer, attacker: AttackerSite
) -> None:
    """127.0.0.1 on another port is the same site but another origin: the Lax cookie
    goes along, so the library's Origin rule is what refuses the writes."""
    signed_up_and_in(page, "grace@example.com", "Grace Example")
    sid = own_sid(page)
    start = len(live.log())

    attacker.pages["/fetch.html"] = FETCH_ATTACK % {
        "victim": json.dumps(live.url),
        "sid": json.dumps(sid),
    }
    page.driver.get(attacker.url("/fetch.html"))
    page.wait(lambda: page.driver.find_element(By.TAG_NAME, "body").get_attribute("data-done"))
    results = dict(json.loads(page.text("results")))
    assert results == {
        "json-patch": "refused: TypeError",
        "no-cors-address": "opaque 0",
        "no-cors-logout": "opaque 0",
        "read-profile": "refused: TypeError",
    }
    refused = [
        '"POST /api/customers/me/addresses HTTP/1.1" 403',
        f'"POST /api/customers/sessions/{sid} HTTP/1.1" 403',
    ]
    page.wait(lambda: all(line in log_lines(live, start) for line in refused))
    log = log_lines(live, start)
    # The preflight was not granted, so the PATCH itself was never sent.
    assert '"OPTIONS /api/customers/me HTTP/1.1" 200' in log
    assert '"PATCH /api/customers/me' not in log

    refused_answer = {"error": {"status": 403, "message": ORIGIN_REFUSED}}
    assert (
        form_attack(
            page,
            attacker,
            "/api/customers/me/addresses",
            enctype="text/plain",
            fields=JSON_LOOKING_FIELD,
        )
        == refused_answer
    )
    assert form_attack(page, attacker, f"/api/customers/sessions/{sid}") == refused_answer
    logout = form_attack(page, attacker, "/customer/logout")
    assert logout == {
        "error": {"status": 403, "message": "Cross-site requests are not allowed here"}
    }

    # Nothing changed, and the session is alive: the shop's own page still works.
    page.open()
    assert page.token_cookie() is not None
    assert page.status() == Outcome("ok", "Logged in as grace@example.com.", 200)
    assert page.text("profile-full-name") == "Grace Example"
    assert page.items("address-list") == []
    assert own_sid(page) == sid


def test_another_origin_cannot_log_the_browser_out_with_a_get(
    page: Page, live: LiveServer, attacker: AttackerSite
) -> None:
    """``GET /customer/logout`` from an image of another origin carries no Origin, only
    ``Sec-Fetch-Site``: ``same-site`` from another port, ``cross-site`` from localhost."""
    signed_up_and_in(page, "heidi@example.com", "Heidi Example")
    start = len(live.log())
    for host in ("127.0.0.1", "localhost"):
        image_attack(page, attacker, "/customer/logout", host=host)
    page.wait(lambda: log_lines(live, start).count('"GET /customer/logout HTTP/1.1"') == 2)
    assert log_lines(live, start).count('"GET /customer/logout HTTP/1.1" 403') == 2
    page.open()
    assert page.token_cookie() is not None
    assert page.status() == Outcome("ok", "Logged in as heidi@example.com.", 200)


def test_another_site_s_form_gets_no_cookie(
    page: Page, live: LiveServer, attacker: AttackerSite
) -> None:
    """``localhost`` is another site than 127.0.0.1: SameSite=Lax keeps the cookie off a
    cross-site POST, so the shop sees no credentials at all."""
    signed_up_and_in(page, "ivan@example.com", "Ivan Example")
    answer = form_attack(
        page,
        attacker,
        "/api/customers/me/addresses",
        host="localhost",
        enctype="text/plain",
        fields=JSON_LOOKING_FIELD,
    )
    assert answer == {"error": {"status": 401, "message": "Unauthorized"}}
    # The login CSRF: the attacker's form would log the browser into the attacker's account.
    login = form_attack(page, attacker, "/customer/login", host="localhost")
    assert login == {
        "error": {"status": 403, "message": "Cross-site requests are not allowed here"}
    }
    page.open()
    assert page.status() == Outcome("ok", "Logged in as ivan@example.com.", 200)
    assert page.items("address-list") == []
