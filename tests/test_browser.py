"""A reviewer in a real browser: Debian's headless Chromium through chromedriver, against uvicorn.

It opens a sample run's transcript, signs in with a reviewer token, flags the run, and sees on
the hypothesis page that the run's score is withheld. Text holding ``<script>`` (from a KB
chunk, a model reply and a hypothesis title) must show as text and never run.
Skips, saying why, where ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is absent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import seed_debated_sample
from sqlalchemy import select, update

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
    pytest.skip(
        "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver")

import uvicorn
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from debate.core.config import load_settings
from debate.core.scoring import display_score
from debate.server.api import create_app
from debate.store import tables as t
from debate.store.db import ensure_schema, session_scope

pytestmark = pytest.mark.slow

TOKEN = "tok-alice-browser-0123456789"
SOD1 = "h-9878fd9b"
SCRIPT = '<script>document.title="pwned";window.pwned=1</script>'


def _seed(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path}/debate.db"
    run_id = seed_debated_sample(url, load_settings(database_url=url))
    engine = ensure_schema(url)
    with session_scope(engine) as s:
        ev = s.execute(select(t.Evidence).where(t.Evidence.run_id == run_id, t.Evidence.eid == "E1")).scalar_one()
        ev.text = f"KB text {SCRIPT} ends here"
        s.add(ev)
        s.execute(
            update(t.Turn)
            .where(t.Turn.run_id == run_id, t.Turn.role == "critic")
            .values(raw_reply=f"model reply {SCRIPT}")
        )
        s.execute(update(t.Hypothesis).where(t.Hypothesis.id == "h-1c05c34d").values(title=f"BACE1 {SCRIPT}"))
    return url, run_id


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """uvicorn serving the app on 127.0.0.1 at a free port, in a thread."""
    url, run_id = _seed(tmp_path)
    app = create_app(
        load_settings(database_url=url, reviewer_tokens=json.dumps({"alice": TOKEN})), backends=("offline",)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield {"base": f"http://127.0.0.1:{port}", "run_id": run_id, "engine": ensure_schema(url)}
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _no_script_ran(driver: Any) -> None:
    assert driver.title != "pwned"  # what the script would have set (a title may show the text itself)
    assert driver.execute_script("return window.pwned === undefined")
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - raises when no alert is open
    assert driver.find_elements(By.CSS_SELECTOR, "main script") == []


def test_reviewer_flags_a_run_and_its_score_is_withheld(server: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    base, run_id = server["base"], server["run_id"]
    wait = WebDriverWait(browser, 20)
    with session_scope(server["engine"]) as s:
        run = s.get(t.Run, run_id)
        prior = s.get(t.Hypothesis, SOD1).prior_score  # type: ignore[union-attr]
        assert run is not None and run.score is not None and prior is not None
        run_score = display_score(run.score)

    # The transcript: the debate round by round, untrusted text shown as text.
    browser.get(f"{base}/runs/{run_id}")
    assert browser.find_elements(By.CSS_SELECTOR, ".round .turn.proposer")
    assert browser.find_elements(By.CSS_SELECTOR, ".round .turn.critic")
    assert browser.find_element(By.ID, "judge-scores")
    assert f"KB text {SCRIPT} ends here" in browser.find_element(By.ID, "ev-E1").text
    _no_script_ran(browser)

    # Sign in from the transcript and come back to it.
    browser.find_element(By.ID, "review-sign-in").click()
    wait.until(ec.presence_of_element_located((By.ID, "token"))).send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in-submit").click()
    wait.until(ec.presence_of_element_located((By.ID, "review-form")))
    assert browser.current_url.startswith(f"{base}/runs/{run_id}")
    assert "Signed in as alice" in browser.find_element(By.CSS_SELECTOR, "header").text

    # Flag the run.
    browser.find_element(By.ID, "action-flag").click()
    browser.find_element(By.ID, "note").send_keys("Cites a trial the evidence does not contain.")
    browser.find_element(By.ID, "review-submit").click()
    done = wait.until(ec.presence_of_element_located((By.ID, "review-done")))
    assert done.text == "Recorded: flag."
    assert browser.find_element(By.ID, "review-status").text == "flagged"
    assert browser.find_element(By.ID, "run-withheld").is_displayed()

    # The hypothesis page: the flagged run's score is withheld, the prior shows instead.
    browser.find_element(By.ID, "hypothesis-link").click()
    withheld = wait.until(ec.presence_of_element_located((By.ID, "withheld")))
    assert "Score withheld" in withheld.text and run_id in withheld.text
    shown = browser.find_element(By.ID, "shown-score").text
    assert shown == display_score(prior) and shown != run_score
    browser.save_screenshot(str(tmp_path / "hypothesis.png"))
    with session_scope(server["engine"]) as s:
        review = s.execute(select(t.Review).where(t.Review.run_id == run_id)).scalar_one()
        assert (review.action, review.by) == ("flag", "alice")


def test_script_text_renders_as_text(server: dict[str, Any], browser: Any) -> None:
    base = server["base"]
    browser.get(f"{base}/?q=bace1")
    link = browser.find_element(By.CSS_SELECTOR, "#hypotheses tbody a")
    assert link.text == f"BACE1 {SCRIPT}"
    _no_script_ran(browser)
    browser.get(f"{base}/runs/{server['run_id']}")
    browser.find_element(By.CSS_SELECTOR, ".turn.critic details:last-of-type summary").click()
    raw = browser.find_element(By.CSS_SELECTOR, ".turn.critic details:last-of-type pre")
    assert f"model reply {SCRIPT}" in raw.text
    _no_script_ran(browser)
    browser.get(f"{base}/hypotheses/h-1c05c34d")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"BACE1 {SCRIPT}"
    _no_script_ran(browser)
