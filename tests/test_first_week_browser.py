"""A shop's first week in a real browser: from its own two exports to a campaign run, on a fresh shop.

The test writes an order export in Online Retail columns and a customers export in Shopify's
columns (birthdays, Accepts Email Marketing), then walks what a new shop does: init,
import-transactions, import customers --map shopify, the checklist, train --publish, sign in
to the console, the Campaigns page, preview, run, and back to the overview, where the
first-week checklist is gone because every step is done. The CLI and the server are the real
ones (subprocesses); expected values are written by hand from the two files.

Screenshots of the checklist at 1280 and 390 px go to ``$CONSOLE_SCREENSHOTS`` when set
(``docs/screenshots``: ``first-week-1280.png``, ``first-week-390.png``), else to tmp.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By  # noqa: E402
from test_console_browser import (  # the browser helpers of the console's own test; skips without a browser
    CLI,
    chromium,
    layout_problems,
    preview_and_run,
    sign_in,
    start_server,
    text,
)

# A real server and Chromium for a whole first week: .ci/run runs it with the slow tests.
pytestmark = pytest.mark.slow

CUSTOMERS = 24  # customer ids 20001.. ; every third one has a birthday in the coming days
PRODUCTS = 15


def run(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*CLI, *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=db.parent,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done


def write_exports(folder: Path, today: dt.date) -> tuple[Path, Path, int, int]:
    """orders.csv (Online Retail columns) and customers.csv (Shopify's customers export, with a Birthday column).

    Returns the two paths, how many customers accept marketing and how many of those have a birthday within
    the next 7 days.
    """
    orders = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    invoice = 536365
    for c in range(CUSTOMERS):
        for k in range(6):
            day = dt.date(2011, 1, 3) + dt.timedelta(days=7 * k + c % 5)
            product = (c * 2 + k * 3) % PRODUCTS
            orders.append(
                f"{invoice},8512{product:02d},GIFT NUMBER {product},{1 + k % 3},{day} 10:{c:02d}:00,"
                f"{2.5 + product:.2f},{20001 + c}.0,United Kingdom"
            )
            invoice += 1
    (folder / "orders.csv").write_text("\n".join(orders) + "\n", encoding="utf-8")

    customers = [
        "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address City,"
        "Default Address Country Code,Phone,Total Spent,Total Orders,Tags,Birthday"
    ]
    accepting = soon = 0
    for c in range(CUSTOMERS):
        marketing = "yes" if c % 4 != 3 else "no"
        upcoming = c % 3 == 0
        if upcoming:
            day = today + dt.timedelta(days=1 + c % 5)
            birthday = day.replace(year=1980) if (day.month, day.day) != (2, 29) else dt.date(1980, 2, 29)
        else:
            birthday = dt.date(1975, 1 + c % 12, 1 + c % 27) if c % 2 else None
            if birthday and 0 <= ((birthday.replace(year=today.year) - today).days) <= 7:
                birthday = None
        accepting += marketing == "yes"
        soon += marketing == "yes" and upcoming
        customers.append(
            f"{20001 + c},Name{c},Family{c},customer{c}@example.com,{marketing},Leeds,GB,,"
            f"{10 * c}.00,6,,{birthday.isoformat() if birthday else ''}"
        )
    (folder / "customers.csv").write_text("\n".join(customers) + "\n", encoding="utf-8")
    return folder / "orders.csv", folder / "customers.csv", accepting, soon


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    target = os.environ.get("CONSOLE_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("first-week-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def checklist_shot(driver, folder: Path, width: int) -> None:
    """The top of the overview, where the checklist card is, at ``width`` px: ``first-week-<width>.png``."""
    driver.set_window_size(width, 900)
    time.sleep(0.2)
    card = driver.find_element(By.ID, "first-week")
    bottom = driver.execute_script("return arguments[0].getBoundingClientRect().bottom + window.scrollY", card)
    driver.set_window_size(width, int(bottom) + 220)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(folder / f"first-week-{width}.png"))
    driver.set_window_size(1280, 900)


def test_first_week_from_two_exports_to_a_campaign_run(tmp_path, browser, shots):
    driver, db = browser, tmp_path / "shop.db"
    today = dt.datetime.now(dt.UTC).date()
    orders, customers, accepting, soon = write_exports(tmp_path, today)
    assert soon > 0

    run(db, "init")
    imported = run(db, "import-transactions", str(orders), "--grant", "personalization")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), (SELECT count(*) FROM products) FROM customers").fetchone() == (
            CUSTOMERS,
            PRODUCTS,
        )
    # orders alone: the one line that says what campaigns lack and the command that adds it
    assert imported.stderr.splitlines() == [
        "note: campaigns need birthdays, e-mails and marketing consent, which an order file does not carry: import "
        "the shop's customer export with `recommender import customers --map shopify customers.csv` (presets: "
        "shopify, woocommerce, magento; see docs/operations.md)"
    ]

    # the Shopify preset keys customers by e-mail; these orders name them by the shop's customer id
    added = run(db, "import", "customers", "--map", "shopify,id=Customer ID", str(customers))
    assert added.stdout.splitlines()[1:] == [
        "columns: id=Customer ID, email=Email, name=First Name+Last Name, birth_date=Birthday, "
        "marketing=Accepts Email Marketing",
        f"consent from the file: marketing: {accepting} granted, {CUSTOMERS - accepting} refused",
    ]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == CUSTOMERS  # met the orders' ids
        assert conn.execute("SELECT name, email FROM customers WHERE id = '20001'").fetchone() == (
            "Name0 Family0",
            "customer0@example.com",
        )

    steps = json.loads(run(db, "checklist", "--json").stdout)["steps"]
    assert [(s["key"], s["done"]) for s in steps] == [
        ("data", True),
        ("consent", True),
        ("model", False),
        ("campaign", False),
        ("measure", False),
    ]
    assert steps[2]["fix"] == "recommender train --publish"

    run(db, "train", "--publish", "--force")
    admin = json.loads(run(db, "keys", "create", "--role", "admin", "--name", "owner", "--json").stdout)["key"]
    proc, server = start_server(db, workers=1, env={"RECOMMENDER_ONLINE_CONTROL_SHARE": "0.1"})
    try:
        sign_in(driver, server, admin)
        assert "Overview" in driver.title
        card = driver.find_element(By.ID, "first-week")
        assert "4 of 5 steps done" in card.text
        assert "No campaign has run yet." in driver.find_element(By.ID, "step-campaign").text
        for key in ("data", "consent", "model", "measure"):
            assert "done" in driver.find_element(By.ID, f"step-{key}").get_attribute("class").split(), key
        assert layout_problems(driver, 390) == []
        checklist_shot(driver, shots, 1280)
        checklist_shot(driver, shots, 390)

        # the step's link leads to the Campaigns page; preview and run this week's birthdays there
        driver.get(server + "/console/")
        driver.find_element(By.CSS_SELECTOR, "#step-campaign a").click()
        assert "Campaigns" in driver.title
        campaign_id, _, made = preview_and_run(driver, server, today.isoformat(), 7)
        with sqlite3.connect(db) as conn:
            assert (
                conn.execute("SELECT count(*) FROM offers WHERE campaign_id = ?", [campaign_id]).fetchone()[0] == made
            )
        assert 0 < made <= soon

        driver.get(server + "/console/")
        assert driver.find_elements(By.ID, "first-week") == []  # every step done: the card is gone
        assert "Measurement is on" in text(driver) and driver.find_element(By.ID, "headline").text
        done = run(db, "checklist", env={"RECOMMENDER_ONLINE_CONTROL_SHARE": "0.1"})  # the server's settings
        assert done.stdout.splitlines()[-1] == "all done"
    finally:
        proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: no wait for the browser's keep-alive socket
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
