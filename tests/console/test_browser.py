"""The console in real headless Chromium, driven by Playwright, against ``trainmq serve``.

Debian's ``chromium`` is the browser (``make test`` installs it when missing); no
browser is ever downloaded.  Without it these tests fail and say how to install it.
Screenshots of each scenario land in ``test-artifacts/console/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from trainmq.store import LocalStore
from trainmq.training.runs import key_hash

from ..server.conftest import ServerProcess
from .seed import seed_queues, seed_run

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 10_000


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "chromium is not installed, so the console's browser tests cannot run. "
            "`make test` installs it (apt-get install chromium); install it and run again."
        )
    return found


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str], str]]:
    """A server with seeded queues and a finished training run; (server, urls, run hash)."""
    directory = tmp_path_factory.mktemp("console-server")
    store_dir = directory / "store"
    server = ServerProcess(
        directory / "queues.db", directory / "server.log", "--store", str(store_dir)
    )
    try:
        server.wait_ready()
        urls = seed_queues(server.client())
        key = seed_run(LocalStore(store_dir), "r-7", time.time())
        yield server, urls, key_hash(key)
    finally:
        server.stop()


@pytest.fixture
def page(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
        assert errors == [], f"script errors in the page: {errors}"
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()


def test_queues_page_lists_queues_and_refreshes_itself(page: Page, served: Any) -> None:
    server, urls, _ = served
    page.goto(server.url + "/console/")
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    row = page.locator("tr", has=page.get_by_role("link", name="eval-requests", exact=True))
    expect(row.locator("td").nth(2)).to_have_text("1")  # delayed
    server.client().send_message(QueueUrl=urls["eval"], MessageBody="{}")
    expect(row.locator("td").first).to_have_text("1", timeout=WAIT_MS)  # visible, after refresh
    expect(page.locator("#queues[data-refreshed]")).to_have_count(1)


def test_send_a_message_through_the_form_and_find_it(page: Page, served: Any) -> None:
    server, _, _ = served
    page.goto(server.url + "/console/queues/prepare-requests")
    page.get_by_label("Body", exact=True).fill(
        '{"kind": "prepare", "note": "<b>sent from the browser</b>"}'
    )
    page.locator("#s-attrs").fill("origin=console")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_role("status")).to_contain_text("Message sent.")
    found = page.locator("article.message", has_text="sent from the browser")
    expect(found).to_have_count(1)
    expect(found.locator("pre.body")).to_contain_text('"note": "<b>sent from the browser</b>"')
    expect(found.locator("table.attributes")).to_contain_text("origin")
    expect(found.locator("time").first).to_have_class("local")  # shown in local time


def test_redrive_a_dead_letter_and_see_it_arrive(page: Page, served: Any) -> None:
    server, _, _ = served
    page.goto(server.url + "/console/dlq/train-requests-dlq")
    poison = page.locator("article.message", has_text="schema_version 7 is not supported")
    expect(poison).to_have_count(1)
    message_id = poison.locator("a.mid").inner_text()
    poison.locator("input.pick").check()
    page.get_by_role("button", name="Redrive selected").click()
    expect(page.get_by_role("status")).to_have_text("Moved 1 of 1 selected messages.")
    page.get_by_role("link", name="train-requests", exact=True).click()
    expect(page.get_by_role("heading", name="Queue train-requests")).to_be_visible()
    arrived = page.locator(f"#m-{message_id}")
    expect(arrived).to_have_count(1)
    expect(arrived.locator("pre.body")).to_contain_text('"schema_version": 7')
    expect(arrived).to_contain_text("received 0 times")


def test_training_run_page_draws_the_loss_curve(page: Page, served: Any) -> None:
    server, _, run_hash = served
    page.goto(server.url + "/console/runs")
    page.get_by_role("link", name="r-7").click()
    expect(page.get_by_role("heading", name="Run r-7")).to_be_visible()
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    points = chart.locator("polyline.train").get_attribute("points") or ""
    assert len(points.split()) > 100
    expect(chart.locator("circle.val")).to_have_count(6)
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    expect(page.locator("ol.timeline li")).to_have_count(2)
    expect(page.locator("ol.timeline")).to_contain_text("resumed from step 600")
    assert page.url.endswith(run_hash)


def test_narrow_window_and_keyboard(chromium: Browser, served: Any) -> None:
    server, _, _ = served
    context = chromium.new_context(viewport={"width": 380, "height": 800})
    tab = context.new_page()
    try:
        tab.goto(server.url + "/console/queues/train-requests")
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 380 + 1, f"the page scrolls sideways at 380 px ({width} px wide)"
        tab.keyboard.press("Tab")
        expect(tab.locator("a.skip")).to_be_focused()
        tab.keyboard.press("Enter")
        assert tab.url.endswith("#main")
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / "narrow-window.png"), full_page=True)
        context.close()
