"""A merchandising rule from the console to the report, in a real browser against `recommender serve`.

A marketer signs in (Debian's headless Chromium, selenium), creates a promotion on the
rules page, previews it on real customers, activates it; the next API list for a
customer of the preview shows the promotion (an admin key sees the rule's effects on
the list); clicks and a purchase sent with the list's id make the rule's line appear
in the report (API, CLI and the console's overview). Expected values come from
outside the console: the database read with sqlite3 and the API's own answers.

Screenshots (``rules-1280.png``, ``rules-390.png``, ``rule-preview-1280.png``) go to
``$CONSOLE_SCREENSHOTS`` when set (``docs/screenshots``), else to the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_console_browser import (  # the browser helpers of the console's own test; skips without a browser
    chromium,
    cli,
    sample_shop,
    start_server,
)

# A real server and Chromium from a new rule to its report line: .ci/run runs it with the slow tests.
pytestmark = pytest.mark.slow

RULE = "candles-week"


def api(base: str, method: str, path: str, key: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return sample_shop(tmp_path_factory.mktemp("rules-shop"))


@pytest.fixture(scope="module")
def server(shop):
    proc, base = start_server(shop["db"])
    yield base
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    target = os.environ.get("CONSOLE_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def page_shot(driver, folder: Path, name: str, width: int) -> None:
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height + 120, 600), 6000))
    driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.set_window_size(1280, 900)


def wait_title(driver, words: str, seconds: int = 60) -> None:
    WebDriverWait(driver, seconds).until(lambda d: words in d.title)


def candles(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM products WHERE category = 'candles'")}


def test_a_marketer_creates_previews_and_activates_a_promotion_that_the_api_serves_and_the_report_measures(
    shop, server, browser, shots
):
    driver = browser
    driver.delete_all_cookies()
    driver.get(server + "/console/rules")
    assert "/console/sign-in" in driver.current_url
    driver.find_element(By.NAME, "key").send_keys(shop["marketer"])
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 60).until(lambda d: "/console/rules" in d.current_url and "sign-in" not in d.current_url)

    # create: the form in the shop's words
    driver.find_element(By.ID, "new-rule").click()
    wait_title(driver, "New rule")
    form = driver.find_element(By.ID, "rule-form")
    form.find_element(By.NAME, "name").send_keys(RULE)
    form.find_element(By.NAME, "description").send_keys("Candles in two of the first three places")
    form.find_element(By.XPATH, ".//label[contains(., 'Reserve slots')]/input[@type='radio']").click()
    form.find_element(By.NAME, "action.condition.categories").send_keys("candles")
    form.find_element(By.NAME, "action.slots").send_keys("2")
    form.find_element(By.NAME, "action.of").send_keys("3")
    zone = form.find_element(By.NAME, "schedule.timezone")
    zone.clear()
    zone.send_keys("Europe/Paris")
    form.find_element(By.ID, "preview-button").click()

    # preview: before/after side by side for real customers, and how many lists it touches
    wait_title(driver, "Rule preview")
    touched = int(driver.find_element(By.ID, "touched").text.replace(",", ""))
    previewed = int(driver.find_element(By.ID, "previewed").text.replace(",", ""))
    assert previewed == 20 and 0 < touched <= previewed
    with sqlite3.connect(shop["db"]) as conn:
        assert conn.execute("SELECT count(*) FROM rules").fetchone()[0] == 0  # nothing saved by a preview
    changed = [
        c
        for c in driver.find_elements(By.CSS_SELECTOR, ".customer")
        if "changed" in c.find_element(By.TAG_NAME, "h3").text
        and "unchanged" not in c.find_element(By.TAG_NAME, "h3").text
    ]
    assert len(changed) == touched
    customer = changed[0].get_attribute("data-customer")
    after = [
        li.find_element(By.TAG_NAME, "code").text for li in changed[0].find_elements(By.CSS_SELECTOR, "ol.after li")
    ]
    assert len(set(after[:3]) & candles(shop["db"])) >= 2
    page_shot(driver, shots, "rule-preview", 1280)

    # activate
    driver.find_element(By.ID, "activate").click()
    WebDriverWait(driver, 60).until(lambda d: "saved=" in d.current_url)
    assert f"Rule {RULE} activated" in driver.find_element(By.ID, "saved").text
    row = driver.find_element(By.CSS_SELECTOR, f"tr[data-rule='{RULE}']")
    assert "Reserve 2 of the first 3 places for products in candles" in row.text and "running" in row.text
    with sqlite3.connect(shop["db"]) as conn:
        (status,) = conn.execute("SELECT status FROM rules WHERE name = ?", [RULE]).fetchone()
        (actor,) = conn.execute("SELECT actor FROM rule_audit WHERE rule = ? ORDER BY id DESC", [RULE]).fetchone()
    assert status == "active" and actor == "console:mia"
    for width in (1280, 390):
        page_shot(driver, shots, "rules", width)

    # the next API list for that customer shows it; an admin key sees the rule's effects
    status, listing = api(server, "GET", f"/v1/customers/{customer}/recommendations?n=10", shop["admin"])
    assert status == 200
    ids = [i["product_id"] for i in listing["items"]]
    assert ids[:3] == after[:3]
    effects = listing["rules"][RULE]  # placed from further down, or moved up from within the list
    placed = (effects.get("placed") or effects.get("moved"))[0]
    assert placed in candles(shop["db"]) and placed in ids[:3]

    # clicks and a purchase on the promoted product, sent with the list's id
    events = [
        {"customer_id": customer, "product_id": placed, "event_type": "view", "list_id": listing["list_id"]},
        {
            "customer_id": customer,
            "product_id": placed,
            "event_type": "purchase",
            "quantity": 2,
            "list_id": listing["list_id"],
        },
    ]
    assert api(server, "POST", "/v1/events", shop["admin"], {"events": events})[0] == 201
    with sqlite3.connect(shop["db"]) as conn:
        (price,) = conn.execute("SELECT price FROM products WHERE id = ?", [placed]).fetchone()

    deadline, line = time.time() + 30, None
    while time.time() < deadline and line is None:  # the other worker writes its decision log within a second
        _, report = api(server, "GET", "/v1/admin/metrics/online", shop["admin"])
        line = next((r for r in report["rules"] if r["rule"] == RULE and r["surface"] == "recommendations"), None)
        time.sleep(0.3)
    assert line is not None, report["rules"]
    assert line["touched"]["lists"] == 1 and line["touched"]["clicks"] == 1 and line["touched"]["purchases"] == 1
    assert line["touched"]["revenue"] == pytest.approx(round(2 * price, 2))
    text = cli(shop["db"], "report", "online")
    assert any(r.startswith(RULE) and "touched" in r for r in text.splitlines()), text

    # and on the console's overview
    driver.get(server + "/console/")
    card = driver.find_element(By.ID, "rule-report")
    cells = card.find_element(By.CSS_SELECTOR, f"tr[data-rule='{RULE}']").text
    assert "recommendations" in cells and f"{2 * price:,.2f} / " in cells
