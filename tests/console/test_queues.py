"""The queue pages over HTTP: overview, a queue, its forms, peeking and purging."""

from __future__ import annotations

import html
import re

from .conftest import Setup
from .seed import seed_queues


def _receive_count(setup: Setup, url: str) -> str:
    messages = setup.sqs.receive_message(
        QueueUrl=url, AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=0
    )["Messages"]
    return str(messages[0]["Attributes"]["ApproximateReceiveCount"])


def test_overview_lists_queues_with_counts_dead_letters_and_rates(console: Setup) -> None:
    seed_queues(console.sqs)
    console.app.traffic.record("prepare-requests", "sent", 30)
    page = console.browser.get("/")
    assert page.status == 200
    assert 'id="queues" data-refresh="5"' in page.text
    row = re.search(
        r'<tr><th scope="row"><a href="/console/queues/prepare-requests">.*?</tr>', page.text, re.S
    )
    assert row is not None
    assert re.findall(r'<td class="num">([^<]*)</td>', row.group(0))[:3] == ["9", "3", "0"]
    assert "sent 0.50/s" in row.group(0)  # 30 messages in the current 10 s bucket, of 60 s
    train = re.search(r'<a href="/console/queues/train-requests">.*?</tr>', page.text, re.S)
    assert train is not None and 'href="/console/dlq/train-requests-dlq"' in train.group(0)
    assert '<span class="depth alert">3</span>' in train.group(0)
    assert 'class="badge dlq"' in page.text
    assert "Open mode" in page.text


def test_queue_page_shows_attributes_forms_and_messages(console: Setup) -> None:
    seed_queues(console.sqs)
    page = console.browser.get("/queues/prepare-requests")
    assert page.status == 200
    assert "<h1>Queue prepare-requests</h1>" in page.text
    assert 'name="VisibilityTimeout" inputmode="numeric" value="30"' in page.text
    assert page.text.count('<article class="message"') == 12
    assert page.text.count(">in flight</span>") == 3
    assert "&quot;dataset_id&quot;: &quot;wiki-2026&quot;" in page.text  # pretty JSON, escaped


def test_a_missing_queue_is_a_clear_error_page(console: Setup) -> None:
    page = console.browser.get("/queues/nope")
    assert page.status == 400
    assert "AWS.SimpleQueueService.NonExistentQueue" in page.text
    assert console.browser.get("/queues/bad%20name").status == 404
    assert console.browser.get("/no/such/page").status == 404
    assert console.browser.post("/queues/nope").status == 405


def test_a_script_body_shows_as_text(console: Setup) -> None:
    url = console.sqs.create_queue(QueueName="jobs")["QueueUrl"]
    evil = "<script>alert('x')</script>"
    console.sqs.send_message(
        QueueUrl=url,
        MessageBody=evil,
        MessageAttributes={"note": {"DataType": "String", "StringValue": '"><img src=x>'}},
    )
    page = console.browser.get("/queues/jobs")
    assert "<script>alert" not in page.text
    assert "<img src=x>" not in page.text
    assert html.escape(evil) in page.text
    message_id = re.search(r'<a class="mid" href="[^"]+">([0-9a-f-]+)</a>', page.text)
    assert message_id is not None
    whole = console.browser.get(f"/queues/jobs/messages/{message_id.group(1)}")
    assert (
        whole.status == 200
        and html.escape(evil) in whole.text
        and "<script>alert" not in whole.text
    )


def test_peeking_leaves_receive_count_and_visibility_unchanged(console: Setup) -> None:
    url = console.sqs.create_queue(QueueName="jobs")["QueueUrl"]
    console.sqs.send_message(QueueUrl=url, MessageBody="look, don't touch")
    for _ in range(3):
        page = console.browser.get("/queues/jobs")
        assert "received 0 times" in page.text
        assert console.browser.get("/dlq/jobs").status == 200
    assert _receive_count(console, url) == "1"
    assert "received 1 times" in console.browser.get("/queues/jobs").text
    assert _receive_count(console, url) == "2"


def test_long_bodies_are_cut_in_the_list_and_pages_continue(console: Setup) -> None:
    url = console.sqs.create_queue(QueueName="jobs")["QueueUrl"]
    console.sqs.send_message(QueueUrl=url, MessageBody="x" * 10_000)
    for index in range(24):
        console.sqs.send_message(QueueUrl=url, MessageBody=f"message {index}")
    page = console.browser.get("/queues/jobs")
    assert "Showing 4,000 of 10,000 characters" in page.text
    assert page.text.count('<article class="message"') == 20
    after = re.search(r'href="/console/queues/jobs\?after=(\d+)#messages"', page.text)
    assert after is not None
    rest = console.browser.get(f"/queues/jobs?after={after.group(1)}")
    assert rest.text.count('<article class="message"') == 5
    assert "message 23" in rest.text


def test_send_form_sends_with_attributes_and_delay(console: Setup) -> None:
    url = console.sqs.create_queue(QueueName="jobs")["QueueUrl"]
    console.browser.get("/queues/jobs")
    answer = console.browser.post(
        "/queues/jobs/send",
        {"body": '{"run_id": "r-1"}', "attributes": "priority=high\n\nteam = nlp", "delay": ""},
    )
    assert answer.status == 303
    assert answer.location.startswith("/console/queues/jobs?notice=sent&message=")
    got = console.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert got[0]["Body"] == '{"run_id": "r-1"}'
    assert {k: v["StringValue"] for k, v in got[0]["MessageAttributes"].items()} == {
        "priority": "high",
        "team": "nlp",
    }
    assert "Message sent." in console.browser.get(answer.location.removeprefix("/console")).text


def test_a_bad_send_keeps_what_was_typed_and_sends_nothing(console: Setup) -> None:
    url = console.sqs.create_queue(QueueName="jobs")["QueueUrl"]
    for fields in ({"delay": "9000"}, {"attributes": "no equals sign"}):
        answer = console.browser.post("/queues/jobs/send", {"body": "keep <me>", **fields})
        assert answer.status == 400
        assert "Not sent:" in answer.text
        assert "keep &lt;me&gt;</textarea>" in answer.text
    assert console.sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_attributes_form_saves_and_refuses_bad_values(console: Setup) -> None:
    seed_queues(console.sqs)
    url = console.sqs.get_queue_url(QueueName="prepare-requests")["QueueUrl"]
    saved = console.browser.post(
        "/queues/prepare-requests/attributes",
        {
            "VisibilityTimeout": "120",
            "DelaySeconds": "5",
            "dlq": "train-requests-dlq",
            "max_receives": "4",
        },
    )
    assert saved.status == 303 and "notice=attributes" in saved.location
    values = console.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (values["VisibilityTimeout"], values["DelaySeconds"]) == ("120", "5")
    assert '"maxReceiveCount":4' in values["RedrivePolicy"].replace(" ", "")
    refused = console.browser.post(
        "/queues/prepare-requests/attributes", {"VisibilityTimeout": "99999", "dlq": ""}
    )
    assert refused.status == 400 and "Not saved:" in refused.text
    assert 'value="99999"' in refused.text  # what was typed stays in the form
    again = console.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert again["VisibilityTimeout"] == "120" and again["RedrivePolicy"]
    removed = console.browser.post("/queues/prepare-requests/attributes", {"dlq": ""})
    assert removed.status == 303
    final = console.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert not final.get("RedrivePolicy")


def test_purge_asks_first(console: Setup) -> None:
    url = console.sqs.create_queue(QueueName="jobs")["QueueUrl"]
    for index in range(3):
        console.sqs.send_message(QueueUrl=url, MessageBody=str(index))
    confirm = console.browser.get("/queues/jobs/purge")
    assert confirm.status == 200 and "3 now" in confirm.text
    unconfirmed = console.browser.post("/queues/jobs/purge")
    assert unconfirmed.status == 303 and unconfirmed.location == "/console/queues/jobs/purge"
    counts = console.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert counts["Attributes"]["ApproximateNumberOfMessages"] == "3"
    done = console.browser.post("/queues/jobs/purge", {"confirm": "jobs"})
    assert done.status == 303 and "notice=purged" in done.location
    assert console.sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    again = console.browser.post("/queues/jobs/purge", {"confirm": "jobs"})
    assert again.status == 403 and "PurgeQueueInProgress" in again.text


def test_static_assets_are_served(console: Setup) -> None:
    css = console.browser.get("/static/console.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    js = console.browser.get("/static/console.js")
    assert js.status == 200 and "data-refresh" in js.text
    assert console.browser.get("/static/../app.py").status == 404
