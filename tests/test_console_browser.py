"""The console in a real browser: Debian's headless Chromium, driven by selenium, against `recommender serve`.

The shop is the sample shop made by the real CLI (init, load-sample, train
--publish); the server is the real gunicorn server. Expected values come from
outside the console: the database read with sqlite3, the files on disk, the
CSV the browser downloaded.

Screenshots go to ``$CONSOLE_SCREENSHOTS`` when set (``docs/screenshots`` makes
the README's three and every page at 1280 and 390 px, ``<page>-1280.png`` /
``<page>-390.png``), else to the test's tmp folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CLI = [sys.executable, "-c", "from recommender.cli import main; main()"]

pytest.importorskip("gunicorn")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(
        "no browser: install Debian's chromium and chromium-driver (apt-get install -y chromium "
        "chromium-driver); .ci/run does",
        allow_module_level=True,
    )

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def cli(db: Path, *args: str) -> str:
    done = subprocess.run([*CLI, *args, "--db", str(db)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_shop(root: Path) -> dict:
    """The sample shop made by the real CLI (init, load-sample, train --publish), with an admin and a marketer key."""
    db = root / "shop.db"
    cli(db, "init")
    cli(db, "load-sample")
    cli(db, "train", "--publish")
    admin = json.loads(cli(db, "keys", "create", "--role", "admin", "--name", "ops", "--json"))["key"]
    marketer = json.loads(cli(db, "keys", "create", "--role", "marketer", "--name", "mia", "--json"))["key"]
    return {"root": root, "db": db, "admin": admin, "marketer": marketer}


def start_server(db: Path, workers: int = 2, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`recommender serve` for ``db`` on a free port, once ``/healthz`` answers: the process and its base URL.

    Its stderr goes to ``server.log`` beside the database (a pipe nobody reads blocks the server once full).
    """
    port = free_port()
    environ = {**os.environ, "RECOMMENDER_DB": str(db), **(env or {})}
    environ.pop("RECOMMENDER_CONFIG", None)
    log_path = db.parent / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=db.parent,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("server did not start: " + log_path.read_text(errors="replace")[-2000:])


def chromium(profile: Path, downloads: Path | None = None):
    """Debian's headless Chromium at 1280 x 900 (saving downloads to ``downloads`` without asking, when given)."""
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,900")
    if downloads is not None:
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    if downloads is not None:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The sample shop, trained and published, with an admin and a marketer key."""
    return sample_shop(tmp_path_factory.mktemp("console-shop"))


@pytest.fixture(scope="module")
def server(shop):
    proc, base = start_server(shop["db"])
    yield base
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, downloads):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"), downloads)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Where the README's three screenshots go: ``$CONSOLE_SCREENSHOTS`` (e.g. docs/screenshots) or tmp."""
    target = os.environ.get("CONSOLE_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def extra_shots(tmp_path_factory):
    """Every other screenshot (phone width, the campaigns page): always a tmp folder, never committed."""
    return tmp_path_factory.mktemp("more-screenshots")


def snap(driver, folder: Path, name: str, width: int = 1280) -> None:
    """A full-page screenshot at ``width`` px (the page's own height)."""
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height + 120, 600), 6000))
    driver.save_screenshot(str(folder / f"{name}.png"))
    driver.set_window_size(1280, 900)


def text(driver) -> str:
    """The page's text; a page replaced while it is read (a form just posted) is read again."""
    for _ in range(50):
        try:
            return driver.find_element(By.TAG_NAME, "body").text
        except StaleElementReferenceException:
            time.sleep(0.05)
    return driver.find_element(By.TAG_NAME, "body").text


def sign_in(driver, base: str, key: str) -> None:
    driver.delete_all_cookies()
    driver.get(base + "/console/")
    assert "/console/sign-in" in driver.current_url  # no session: sent to sign in
    driver.find_element(By.NAME, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 30).until(lambda d: "/console/sign-in" not in d.current_url)


def sign_out(driver) -> None:
    driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
    WebDriverWait(driver, 30).until(lambda d: "/console/sign-in" in d.current_url)


def ledger_count(db: Path, campaign_id: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM offers WHERE campaign_id = ?", [campaign_id]).fetchone()[0]


def preview(driver, base: str, date: str, days: int) -> None:
    """Fill the preview form on the campaigns page as a person would and send it."""
    driver.get(base + "/console/campaigns")
    form = driver.find_element(By.CSS_SELECTOR, "form[action$='/campaigns/preview']")
    date_box = form.find_element(By.NAME, "date")
    driver.execute_script("arguments[0].value = arguments[1]", date_box, date)
    days_box = form.find_element(By.NAME, "days_ahead")
    days_box.clear()
    days_box.send_keys(str(days))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_title(driver, "Campaign preview", 60)


def preview_and_run(driver, base: str, date: str, days: int) -> tuple[str, str, int]:
    """Preview a campaign, run it with the confirmation; returns (campaign id, export name, offers shown)."""
    preview(driver, base, date, days)
    eligible = int(driver.find_element(By.ID, "eligible").text.replace(",", ""))
    assert eligible > 0
    run = driver.find_element(By.CSS_SELECTOR, "form[action$='/campaigns/run']")
    run.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # unticked: the browser refuses it
    assert "Campaign preview" in driver.title
    run.find_element(By.NAME, "confirm").click()
    run.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_title(driver, "Campaign run", 60)
    made = int(driver.find_element(By.ID, "made").text.replace(",", ""))
    campaign_id = driver.find_element(By.CSS_SELECTOR, ".note code").text
    name = driver.find_element(By.ID, "download").get_attribute("href").rsplit("/", 1)[1]
    return campaign_id, name, made


def wait_title(driver, words: str, seconds: float = 60) -> None:
    """Wait for a page whose title holds ``words``; on a timeout, say which page came instead."""
    try:
        WebDriverWait(driver, seconds).until(lambda d: words in d.title)
    except Exception:  # noqa: BLE001 - any failure to see the page is reported with the page we got
        raise AssertionError(f"expected {words!r}, got {driver.title!r}: {text(driver)[:1500]}") from None


def wait_for_file(path: Path, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if path.exists() and not path.with_name(path.name + ".crdownload").exists():
            return
        time.sleep(0.2)
    raise AssertionError(f"the browser did not download {path.name}")


def test_admin_preview_run_download_then_lookup_and_erase(shop, server, browser, downloads, shots, extra_shots):
    driver, db = browser, shop["db"]
    sign_in(driver, server, shop["admin"])
    assert "Overview" in driver.title and "Signed in: ops (role admin)" in text(driver)
    assert "The model" in text(driver) and "Hit rate vs bestsellers" in text(driver)
    snap(driver, shots, "overview")

    today = dt.datetime.now(dt.UTC).date().isoformat()
    driver.get(server + "/console/campaigns")
    snap(driver, extra_shots, "campaigns")
    campaign_id, name, made = preview_and_run(driver, server, today, 7)
    assert made == ledger_count(db, campaign_id) > 0

    # download through the browser: the file has one row per offer in the ledger, real codes
    driver.find_element(By.ID, "download").click()
    wait_for_file(downloads / name)
    with open(downloads / name, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == made
    assert all(r["preview"] == "false" and r["code"].startswith(("BDAY-", "ANNV-")) for r in rows)
    with sqlite3.connect(db) as conn:
        codes = {c for (c,) in conn.execute("SELECT code FROM offers WHERE campaign_id = ?", [campaign_id])}
    assert {r["code"] for r in rows} == codes

    # the ledger finds an offer by its code
    victim = rows[0]["customer_id"]
    driver.get(server + "/console/campaigns/ledger")
    box = driver.find_element(By.NAME, "q")
    box.send_keys(rows[0]["code"][:9])
    box.submit()
    WebDriverWait(driver, 30).until(lambda d: "matching" in text(d))
    assert rows[0]["code"] in text(driver)

    # a preview of the next window, for the README
    form_date = (dt.date.fromisoformat(today) + dt.timedelta(days=8)).isoformat()
    preview(driver, server, form_date, 7)
    assert "Skipped, per reason" in text(driver) and "Product spread and stock caps" in text(driver)
    snap(driver, shots, "campaign-preview")

    # customer lookup: a list served by the API shows up with its reason, then erasure
    request = urllib.request.Request(
        f"{server}/v1/customers/{victim}/recommendations?n=5", headers={"Authorization": f"Bearer {shop['admin']}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        served = json.loads(r.read())
    time.sleep(1.5)  # the decision log is written by a background thread every 0.5 s
    driver.get(server + "/console/customer")
    box = driver.find_element(By.NAME, "id")
    box.send_keys(victim)
    box.submit()
    WebDriverWait(driver, 30).until(lambda d: "Profile" in text(d))
    page = text(driver)
    assert rows[0]["code"] in page and "marketing" in page and "personalization" in page
    with sqlite3.connect(db) as conn:  # logged with the id only with personalization consent
        logged = conn.execute(
            "SELECT count(*) FROM decisions WHERE customer_id = ? AND endpoint = 'recommendations'", [victim]
        ).fetchone()[0]
    assert "Nothing in the decision log" not in page  # the campaign's offer is logged with its reason
    assert ("recommendations" in page) == (logged > 0) and served["items"]
    snap(driver, shots, "customer")

    erase = driver.find_element(By.CSS_SELECTOR, "form[action$='/erase']")
    erase.find_element(By.NAME, "confirm").send_keys(victim + "x")  # a wrong id erases nothing
    erase.find_element(By.ID, "erase").click()
    # back on the customer's page with the error beside the form (the old page goes stale: keep polling)
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_elements(By.ID, "erase-error")
    )
    assert "nothing was erased" in driver.find_element(By.ID, "erase-error").text
    assert "Profile" in text(driver) and "(422)" not in driver.find_element(By.TAG_NAME, "h1").text
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers WHERE id = ?", [victim]).fetchone()[0] == 1
    erase = driver.find_element(By.CSS_SELECTOR, "form[action$='/erase']")
    erase.find_element(By.NAME, "confirm").send_keys(victim)
    erase.find_element(By.ID, "erase").click()
    WebDriverWait(driver, 60).until(lambda d: "Customer erased" in d.title or "erased" in d.title.lower())
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers WHERE id = ?", [victim]).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM offers WHERE customer_id = ?", [victim]).fetchone()[0] == 0
    # the server's copy of the export was scrubbed too (it is a registered copy)
    with open(shop["root"] / "shop.db.private" / "campaign-exports" / name, newline="", encoding="utf-8") as fh:
        left = list(csv.DictReader(fh))
    assert len(left) == made - 1 and victim not in {r["customer_id"] for r in left}
    driver.get(f"{server}/console/customer?id={victim}")
    assert "erased on" in text(driver)
    sign_out(driver)
    driver.get(server + "/console/models")
    assert "/console/sign-in" in driver.current_url  # the session is gone


def test_marketer_runs_a_campaign_but_is_refused_erasure(shop, server, browser):
    driver, db = browser, shop["db"]
    sign_in(driver, server, shop["marketer"])
    assert "role marketer" in text(driver)
    start = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=40)).isoformat()
    campaign_id, _, made = preview_and_run(driver, server, start, 10)
    assert made == ledger_count(db, campaign_id) > 0

    with sqlite3.connect(db) as conn:
        someone = conn.execute(
            "SELECT customer_id FROM offers WHERE campaign_id = ? LIMIT 1", [campaign_id]
        ).fetchone()[0]
    driver.get(f"{server}/console/customer?id={someone}")
    assert "cannot export or erase" in text(driver)
    erase = driver.find_element(By.CSS_SELECTOR, "form[action$='/erase']")
    erase.find_element(By.NAME, "confirm").send_keys(someone)
    erase.find_element(By.ID, "erase").click()
    # the page with the form goes stale when its answer replaces it: keep polling
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "Refused (403)" in d.find_element(By.TAG_NAME, "h1").text
    )
    assert "'admin'" in text(driver) and "'marketer'" in text(driver)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers WHERE id = ?", [someone]).fetchone()[0] == 1
    driver.get(f"{server}/console/customer/{someone}/export.json")
    assert "Refused (403)" in driver.find_element(By.TAG_NAME, "h1").text
    sign_out(driver)


# Run in the page: every problem that makes a page hard to read in its box, as a list of sentences.
# A table may be wider than its box only inside a wrapper that scrolls sideways (overflow-x: auto), and that
# wrapper must itself fit; a chart must fit its box; chart text, as rendered (the SVG's font size scaled by its
# drawn width over its viewBox width), must be at least 11 CSS px. Closed <details> are opened first.
LAYOUT_PROBLEMS = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
const out = [];
const seen = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
const name = el => (el.id ? '#' + el.id : '') + ' under ' + ((el.closest('section') || document.body)
  .querySelector('h2, h1') || {textContent: '?'}).textContent.trim();
for (const table of document.querySelectorAll('main table')) {
  if (!seen(table)) continue;
  const box = table.parentElement;
  const scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
  if (!scrolls && table.getBoundingClientRect().width > box.clientWidth + 1)
    out.push('table ' + name(table) + ' is ' + Math.round(table.getBoundingClientRect().width) + 'px in a '
             + box.clientWidth + 'px box that does not scroll');
  const holder = scrolls ? box : table;
  const container = holder.parentElement.getBoundingClientRect();
  const r = holder.getBoundingClientRect();
  if (r.right > container.right + 1 || r.left < container.left - 1)
    out.push('table box ' + name(table) + ' sticks out of its container');
}
for (const svg of document.querySelectorAll('main svg')) {
  if (!seen(svg)) continue;
  const r = svg.getBoundingClientRect();
  const box = svg.parentElement.getBoundingClientRect();
  if (r.right > box.right + 1 || r.left < box.left - 1 || svg.scrollWidth > svg.parentElement.clientWidth + 1)
    out.push('chart ' + name(svg) + ' is wider than its box');
  const vb = svg.viewBox.baseVal;
  const scale = vb && vb.width ? Math.min(r.width / vb.width, r.height / vb.height) : 1;
  for (const t of svg.querySelectorAll('text')) {
    const px = parseFloat(getComputedStyle(t).fontSize) * scale;
    if (px < 11) { out.push('chart text "' + t.textContent + '" ' + name(svg) + ' is ' + px.toFixed(1) + 'px'); break; }
  }
}
if (document.documentElement.scrollWidth > window.innerWidth)
  out.push('the page is ' + document.documentElement.scrollWidth + 'px wide on a ' + window.innerWidth + 'px screen');
return out;
"""


def layout_problems(driver, width: int) -> list[str]:
    driver.set_window_size(width, 900)
    time.sleep(0.2)  # let the media queries apply
    return [f"{width}px: {p}" for p in driver.execute_script(LAYOUT_PROBLEMS)]


def page_shot(driver, folder: Path, name: str, width: int) -> None:
    """A full-page screenshot named ``<name>-<width>.png``, closed <details> left as they are."""
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height + 120, 600), 6000))
    driver.save_screenshot(str(folder / f"{name}-{width}.png"))


def rule_preview(driver, base: str) -> None:
    """Fill the new-rule form (a promotion of candles) and preview it."""
    driver.get(base + "/console/rules/new")
    form = driver.find_element(By.ID, "rule-form")
    form.find_element(By.NAME, "name").send_keys("layout-check")
    form.find_element(By.NAME, "action.condition.categories").send_keys("candles")
    form.find_element(By.NAME, "action.slots").send_keys("2")
    form.find_element(By.NAME, "action.of").send_keys("5")
    form.find_element(By.ID, "preview-button").click()
    wait_title(driver, "Rule preview", 60)


def rule_saved_paused(driver, base: str) -> None:
    """On the preview page: "Save paused", which lands on the rules list."""
    driver.find_element(By.CSS_SELECTOR, "#preview button[value=pause]").click()
    WebDriverWait(driver, 60).until(lambda d: "saved=layout-check" in d.current_url)


@pytest.mark.slow  # every page at two widths in Chromium: .ci/run runs it with the slow tests
def test_every_page_reads_well_at_390_and_1280_px(shop, server, browser, shots):
    """Every console page at a desktop's 1280 px and a phone's 390 px: no table or chart sticks out of its box
    (tables scroll inside their own box), chart text is at least 11 px; a screenshot of each at both widths."""
    driver = browser
    sign_in(driver, server, shop["admin"])
    exports = sorted((shop["root"] / "shop.db.private" / "campaign-exports").glob("*.csv"))
    with sqlite3.connect(shop["db"]) as conn:
        customer = conn.execute("SELECT customer_id FROM offers ORDER BY id DESC LIMIT 1").fetchone()
        customer = customer[0] if customer else conn.execute("SELECT id FROM customers LIMIT 1").fetchone()[0]
        profiled = conn.execute(
            "SELECT customer_id FROM customer_values ORDER BY spend_to_date DESC LIMIT 1"
        ).fetchone()
    pages = [
        ("overview", "/console/"),
        ("campaigns", "/console/campaigns"),
        ("campaign-preview", None),
        ("customer", f"/console/customer?id={customer}"),
        ("models", "/console/models"),
        ("ledger", "/console/campaigns/ledger"),
        ("value", "/console/value"),
    ]
    assert profiled, "`train --publish` ends with the nightly housekeeping, which stores customer value"
    pages.append(("customer-value", f"/console/customer?id={profiled[0]}"))
    # the rules pages (a paused rule, so the lists of the other tests stay the model's own)
    pages += [
        ("rule-new", "/console/rules/new"),
        ("rule-previewed", rule_preview),
        ("rule-list", rule_saved_paused),
        ("rule-edit", "/console/rules/edit/layout-check"),
    ]
    if exports:
        pages.insert(3, ("campaign-run", f"/console/campaigns/runs/{exports[-1].name}"))
    problems: list[str] = []
    try:
        for name, path in pages:
            driver.set_window_size(1280, 900)
            if path is None:
                start = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)).isoformat()
                preview(driver, server, start, 30)
            elif callable(path):
                path(driver, server)
            else:
                driver.get(server + path)
            assert "sign-in" not in driver.current_url, name
            for width in (1280, 390):
                page_shot(driver, shots, name, width)
                problems += [f"{name} {p}" for p in layout_problems(driver, width)]
        sign_out(driver)
        for width in (1280, 390):
            page_shot(driver, shots, "sign-in", width)
            problems += [f"sign-in {p}" for p in layout_problems(driver, width)]
    finally:
        driver.set_window_size(1280, 900)
    assert not problems, "\n".join(problems)


def test_the_consent_table_fits_its_card_at_1280_px(shop, server, browser):
    """The consent card sits in a half-width column: all of its columns (the rate included) show without scrolling."""
    driver = browser
    sign_in(driver, server, shop["admin"])
    driver.set_window_size(1280, 900)
    table = driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=h-consent] table")
    box = table.find_element(By.XPATH, "..")
    assert table.size["width"] <= box.size["width"] + 1, (table.size, box.size)
    rate = table.find_element(By.XPATH, ".//th[text()='rate']")
    assert rate.location["x"] + rate.size["width"] <= box.location["x"] + box.size["width"] + 1
