"""Training-run pages, and the store objects they link to (and nothing outside the store)."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

from trainmq.training.runs import key_hash

from .conftest import Setup
from .seed import DATASET_SHA, seed_run


def test_runs_list_shows_status_dataset_step_loss_and_checkpoints(console: Setup) -> None:
    now = time.time()
    seed_run(console.store, "r-done", now - 3600)
    seed_run(console.store, "r-live", now, steps=2000, reached=900, finished=False)
    seed_run(console.store, "r-lost", now - 7200, reached=300, killed_at=None, finished=False)
    page = console.browser.get("/runs")
    assert page.status == 200 and "3 runs, newest first" in page.text
    rows = {
        run: row
        for run, row in re.findall(
            r'<tr><th scope="row"><a href="[^"]+">([^<]+)</a>(.*?)</tr>', page.text, re.S
        )
    }
    assert '<span class="status completed">completed</span>' in rows["r-done"]
    assert '<span class="status training">training</span>' in rows["r-live"]
    assert '<span class="status stalled">stalled</span>' in rows["r-lost"]
    assert DATASET_SHA[:12] in rows["r-done"]
    assert "900 / 2,000" in rows["r-live"]
    assert "(1 resumed)" in rows["r-done"]
    assert "newest (step 1400)" in rows["r-done"]


def test_run_page_draws_the_loss_curve_attempts_checkpoints_and_report(console: Setup) -> None:
    key = seed_run(console.store, "r-7", time.time())
    page = console.browser.get(f"/runs/{key_hash(key)}")
    assert page.status == 200
    chart = re.search(
        r'<svg class="chart"[^>]*data-train-points="(\d+)" data-val-points="(\d+)"', page.text
    )
    assert chart is not None
    assert int(chart.group(1)) == 151  # steps 0..1500 every 10, the resumed ones replaced
    assert int(chart.group(2)) == 6  # every 250 steps (the evaluation replaces step 1500)
    points = re.search(r'<polyline class="train" fill="none" points="([^"]+)"', page.text)
    assert points is not None and len(points.group(1).split()) == 151
    assert page.text.count('<circle class="val"') == 6
    assert '<line class="resume"' in page.text
    assert "resumed from step 600" in page.text
    assert "stopped: no heartbeat since" in page.text
    assert page.text.count("/checkpoints/step-") >= 7
    assert "Evaluation report" in page.text and "&quot;perplexity&quot;" in page.text
    assert "held-out loss" in page.text


def test_missing_runs_and_stores_are_clear_errors(console: Setup) -> None:
    assert console.browser.get("/runs/" + "0" * 64).status == 404
    assert console.browser.get("/runs/not-a-hash").status == 404


def test_checkpoint_links_open_store_objects_and_download(console: Setup) -> None:
    seed_run(console.store, "r-7", time.time())
    base = console.store.address
    uri = f"{base}/runs/r-7/checkpoints/step-000200.pt"
    info = console.browser.get(f"/store?uri={quote(uri, safe='')}")
    assert info.status == 200 and "Download" in info.text and "sha256" in info.text
    blob = console.browser.get(f"/store/download?uri={quote(uri, safe='')}")
    assert blob.status == 200 and blob.text == "checkpoint 200"
    assert blob.headers["content-disposition"].endswith("step-000200.pt")
    folder = console.browser.get(f"/store?uri={quote(base + '/runs/r-7/checkpoints', safe='')}")
    assert folder.status == 200 and "step-001400.pt" in folder.text
    report = console.browser.get(f"/store?uri={quote(base + '/runs/r-7/eval/report.json')}")
    assert report.status == 200 and "&quot;val_loss&quot;" in report.text
    missing = console.browser.get(f"/store?uri={quote(base + '/runs/none', safe='')}")
    assert missing.status == 404


def test_nothing_outside_the_store_can_be_read(console: Setup, tmp_path: object) -> None:
    secret = console.store.root.parent / "secret.txt"
    secret.write_text("do not show")
    base = console.store.address
    for uri in (
        secret.as_uri(),
        f"{base}/../secret.txt",
        f"{base}/%2E%2E/secret.txt",
        f"{base}/runs/%2e%2e/%2e%2e/secret.txt",
        f"{base}-other/secret.txt",
        "file:///etc/passwd",
        "s3://bucket/key",
        "",
    ):
        for path in ("/store", "/store/download"):
            answer = console.browser.get(f"{path}?uri={quote(uri, safe='')}")
            assert answer.status == 403, (uri, answer.status)
            assert "do not show" not in answer.text
