"""CreateQueue, GetQueueUrl, ListQueues and DeleteQueue as the AWS API reference describes them."""

from __future__ import annotations

import pytest

NON_EXISTENT = "AWS.SimpleQueueService.NonExistentQueue"


# --- CreateQueue: names ------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "Queue_Name-1", "x" * 80, "0123456789"])
def test_create_queue_accepts_valid_standard_names(sqs, name):
    url = sqs.client.create_queue(QueueName=name)["QueueUrl"]
    assert url.endswith("/" + name)
    assert sqs.client.get_queue_url(QueueName=name)["QueueUrl"] == url


@pytest.mark.parametrize(
    "name",
    ["", "x" * 81, "has space", "dot.name", "slash/name", "colon:name", "ümlaut", "star*"],
)
def test_create_queue_rejects_invalid_names(sqs, name):
    with sqs.raises("InvalidParameterValue"):
        sqs.client.create_queue(QueueName=name)


@pytest.mark.parametrize("name", ["q.fifo", "x" * 75 + ".fifo", "A-b_9.fifo"])
def test_create_fifo_queue_accepts_names_ending_in_fifo(sqs, name):
    url = sqs.client.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    assert url.endswith("/" + name)
    assert sqs.attributes(url, "FifoQueue") == {"FifoQueue": "true"}


def test_create_fifo_queue_name_counts_the_suffix_towards_80_characters(sqs):
    with sqs.raises("InvalidParameterValue"):
        sqs.client.create_queue(QueueName="x" * 76 + ".fifo", Attributes={"FifoQueue": "true"})


def test_create_fifo_queue_requires_the_fifo_suffix(sqs):
    with sqs.raises("InvalidParameterValue"):
        sqs.client.create_queue(QueueName="plain", Attributes={"FifoQueue": "true"})


def test_create_standard_queue_rejects_the_fifo_suffix(sqs):
    sqs.xfail_on("moto", "moto accepts a .fifo name for a standard queue")
    with sqs.raises("InvalidParameterValue"):
        sqs.client.create_queue(QueueName="plain.fifo")


@pytest.mark.parametrize("name", ["bad name.fifo", "a.b.fifo"])
def test_create_fifo_queue_rejects_invalid_characters_before_the_suffix(sqs, name):
    with sqs.raises("InvalidParameterValue"):
        sqs.client.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})


def test_queue_names_are_case_sensitive(sqs):
    lower = sqs.queue("casing")
    upper = sqs.queue("CASING")
    assert lower != upper
    with sqs.raises(NON_EXISTENT):
        sqs.client.get_queue_url(QueueName="Casing")


# --- CreateQueue: idempotency ------------------------------------------------


def test_create_queue_with_same_attributes_returns_the_same_url(sqs):
    first = sqs.queue("same", VisibilityTimeout=60, DelaySeconds=5)
    second = sqs.queue("same", VisibilityTimeout=60, DelaySeconds=5)
    assert first == second
    urls = sqs.client.list_queues(QueueNamePrefix="same").get("QueueUrls", [])
    assert urls == [first]


def test_create_queue_with_different_attribute_values_is_rejected(sqs):
    sqs.queue("differs", VisibilityTimeout=60)
    with sqs.raises("QueueAlreadyExists"):
        sqs.queue("differs", VisibilityTimeout=61)
    assert sqs.attributes(sqs.queue("differs", VisibilityTimeout=60), "VisibilityTimeout") == {
        "VisibilityTimeout": "60"
    }


def test_create_queue_already_exists_error_is_modelled(sqs):
    sqs.queue("modelled", DelaySeconds=1)
    with pytest.raises(sqs.client.exceptions.QueueNameExists):
        sqs.queue("modelled", DelaySeconds=2)


# --- CreateQueue: attribute ranges ---------------------------------------------

ATTRIBUTE_RANGES = [
    ("DelaySeconds", 0, 900),
    ("MaximumMessageSize", 1024, 1048576),
    ("MessageRetentionPeriod", 60, 1209600),
    ("ReceiveMessageWaitTimeSeconds", 0, 20),
    ("VisibilityTimeout", 0, 43200),
]


@pytest.mark.parametrize(("attribute", "low", "high"), ATTRIBUTE_RANGES)
def test_create_queue_accepts_both_ends_of_each_attribute_range(sqs, attribute, low, high):
    for value in (low, high):
        url = sqs.queue(**{attribute: value})
        assert sqs.attributes(url, attribute) == {attribute: str(value)}


@pytest.mark.parametrize(("attribute", "low", "high"), ATTRIBUTE_RANGES)
@pytest.mark.parametrize("where", ["below", "above", "not a number"])
def test_create_queue_rejects_attribute_values_out_of_range(sqs, attribute, low, high, where):
    if where == "not a number" or attribute != "MaximumMessageSize":
        sqs.xfail_on("moto", "moto validates only MaximumMessageSize, and only numbers")
    value = {"below": low - 1, "above": high + 1, "not a number": "abc"}[where]
    with sqs.raises("InvalidAttributeValue"):
        sqs.queue(**{attribute: value})


def test_create_queue_rejects_unknown_attribute_names(sqs):
    sqs.xfail_on("moto", "moto ignores unknown attribute names on CreateQueue")
    with sqs.raises("InvalidAttributeName") as error:
        sqs.queue(NoSuchAttribute=1)
    assert "NoSuchAttribute" in error.message


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("ContentBasedDeduplication", "true"),
        ("DeduplicationScope", "messageGroup"),
        ("FifoThroughputLimit", "perMessageGroupId"),
    ],
)
def test_create_standard_queue_rejects_fifo_only_attributes(sqs, attribute, value):
    sqs.xfail_on("moto", "moto accepts FIFO-only attributes on standard queues")
    with sqs.raises("InvalidAttributeName"):
        sqs.queue(**{attribute: value})


def test_create_queue_applies_tags(sqs):
    name = sqs.unique()
    url = sqs.client.create_queue(QueueName=name, tags={"team": "ml", "stage": "prep"})["QueueUrl"]
    assert sqs.client.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "ml", "stage": "prep"}


# --- DeleteQueue, and what follows it ------------------------------------------


def test_delete_queue_removes_it_from_every_lookup(sqs):
    url = sqs.queue("doomed")
    keeper = sqs.queue("keeper")
    sqs.client.delete_queue(QueueUrl=url)
    assert sqs.client.list_queues().get("QueueUrls", []) == [keeper]
    with sqs.raises(NON_EXISTENT):
        sqs.client.get_queue_url(QueueName="doomed")


@pytest.mark.parametrize(
    "operation",
    ["send", "receive", "attributes", "purge", "delete", "tags"],
)
def test_operations_on_a_deleted_queue_fail(sqs, operation):
    url = sqs.queue()
    sqs.client.delete_queue(QueueUrl=url)
    calls = {
        "send": lambda: sqs.client.send_message(QueueUrl=url, MessageBody="x"),
        "receive": lambda: sqs.client.receive_message(QueueUrl=url),
        "attributes": lambda: sqs.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
        "purge": lambda: sqs.client.purge_queue(QueueUrl=url),
        "delete": lambda: sqs.client.delete_queue(QueueUrl=url),
        "tags": lambda: sqs.client.list_queue_tags(QueueUrl=url),
    }
    with sqs.raises(NON_EXISTENT):
        calls[operation]()


def test_deleting_a_queue_drops_its_messages(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue("reborn")
    sqs.client.send_message(QueueUrl=url, MessageBody="old")
    sqs.client.delete_queue(QueueUrl=url)
    sqs.advance(61)
    url = sqs.queue("reborn")
    assert sqs.receive(url) == []


def test_recreating_a_queue_within_60_seconds_of_deleting_it_is_rejected(sqs):
    sqs.xfail_on("moto", "moto does not enforce the 60-second wait after DeleteQueue")
    url = sqs.queue("recent")
    sqs.client.delete_queue(QueueUrl=url)
    with sqs.raises("AWS.SimpleQueueService.QueueDeletedRecently"):
        sqs.queue("recent")


def test_recreating_a_queue_is_allowed_once_60_seconds_have_passed(sqs_clock):
    sqs = sqs_clock
    url = sqs.queue("later")
    sqs.client.delete_queue(QueueUrl=url)
    sqs.advance(30)
    with sqs.raises("AWS.SimpleQueueService.QueueDeletedRecently"):
        sqs.queue("later")
    sqs.advance(31)
    assert sqs.queue("later").endswith("/later")


# --- GetQueueUrl ---------------------------------------------------------------


def test_get_queue_url_of_unknown_queue(sqs):
    with sqs.raises(NON_EXISTENT) as error:
        sqs.client.get_queue_url(QueueName="nowhere")
    assert error.message == "The specified queue does not exist."


def test_get_queue_url_error_is_modelled(sqs):
    with pytest.raises(sqs.client.exceptions.QueueDoesNotExist):
        sqs.client.get_queue_url(QueueName="nowhere")


# --- ListQueues ------------------------------------------------------------------


def test_list_queues_on_an_empty_account_lists_nothing(sqs):
    assert sqs.client.list_queues().get("QueueUrls", []) == []


def test_list_queues_filters_by_case_sensitive_prefix(sqs):
    urls = {name: sqs.queue(name) for name in ["alpha-1", "alpha-2", "beta-1", "Alpha-3"]}
    listed = sqs.client.list_queues(QueueNamePrefix="alpha")["QueueUrls"]
    assert sorted(listed) == sorted([urls["alpha-1"], urls["alpha-2"]])
    assert sqs.client.list_queues(QueueNamePrefix="gamma").get("QueueUrls", []) == []
    everything = sqs.client.list_queues()["QueueUrls"]
    assert sorted(everything) == sorted(urls.values())


def test_list_queues_pages_with_max_results_and_next_token(sqs):
    created = {sqs.queue(f"page-{i}") for i in range(5)}
    seen: list[str] = []
    params: dict[str, object] = {"MaxResults": 2}
    for _ in range(10):
        page = sqs.client.list_queues(**params)
        assert len(page.get("QueueUrls", [])) <= 2
        seen.extend(page.get("QueueUrls", []))
        if "NextToken" not in page:
            break
        params["NextToken"] = page["NextToken"]
    assert sorted(seen) == sorted(created)


def test_list_queues_without_max_results_returns_no_next_token(sqs):
    for i in range(3):
        sqs.queue(f"plain-{i}")
    page = sqs.client.list_queues()
    assert len(page["QueueUrls"]) == 3
    assert "NextToken" not in page


@pytest.mark.parametrize("max_results", [0, 1001])
def test_list_queues_rejects_max_results_out_of_range(sqs, max_results):
    sqs.xfail_on("moto", "moto does not validate MaxResults")
    with sqs.raises("InvalidParameterValue"):
        sqs.client.list_queues(MaxResults=max_results)
