"""Run the Pulumi component under ``pulumi.runtime.set_mocks`` and keep what it registered.

Pulumi's documented unit-testing route: no engine, no cloud.  The mocks give
each resource the ARNs and URLs AWS would; a monitor subclass also records each
registration's parent and dependencies, so ``depends_on`` can be asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

REGION = "eu-west-1"
ACCOUNT = "123456789012"


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)


class AwsMocks(pulumi.runtime.Mocks):
    """Gives each resource the identifiers AWS would."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        name = str(state.get("name") or args.name)
        arn = _ARNS.get(args.typ)
        identifier = f"{args.name}-id"
        if args.typ == "aws:s3/bucket:Bucket":
            name = str(state.get("bucket") or f"{args.name}-20240101")
            state["bucket"] = name
            identifier = name
        if args.typ == "aws:sqs/queue:Queue":
            identifier = state["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if arn is not None:
            state["arn"] = arn(name)
        self.created.append((args.typ, args.name, dict(args.inputs), state))
        return identifier, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        return {}


_ARNS: dict[str, Callable[[str], str]] = {
    "aws:sqs/queue:Queue": lambda n: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{n}",
    "aws:s3/bucket:Bucket": lambda n: f"arn:aws:s3:::{n}",
    "aws:cloudwatch/logGroup:LogGroup": lambda n: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{n}",
    "aws:iam/role:Role": lambda n: f"arn:aws:iam::{ACCOUNT}:role/{n}",
    "aws:iam/policy:Policy": lambda n: f"arn:aws:iam::{ACCOUNT}:policy/{n}",
    "aws:lambda/function:Function": lambda n: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{n}",
    "aws:sns/topic:Topic": lambda n: f"arn:aws:sns:{REGION}:{ACCOUNT}:{n}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": lambda n: (
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{n}"
    ),
}


class RecordingMonitor(MockMonitor):
    """The mocks' monitor, also keeping every registration's parent and dependencies."""

    def __init__(self, mocks: AwsMocks) -> None:
        super().__init__(mocks)
        self.requests: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.requests[response.urn] = request
        return response


@dataclass
class Deployment:
    resources: list[Registered]
    outputs: dict[str, Any]
    stack_outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> Registered:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        assert len(found) == 1, f"{len(found)} resources of {type_token} named {name}"
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)


def run(program: Callable[[], Any], config: dict[str, str] | None = None) -> Deployment:
    """Run ``program`` (which returns an output to wait for) and collect the resource graph."""
    # Pulumi's mocks run on asyncio.get_event_loop(); an asyncio.run() earlier in this
    # process (other suites use it) leaves none set, so set one (kept for later runs).
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = AwsMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="trainmq", stack="test", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config or {})
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def body() -> Any:
        return pulumi.Output.from_input(program()).apply(resolved.update)

    body()
    resources = []
    for urn, request in monitor.requests.items():
        registration = monitor.resources.get(urn)
        resources.append(
            Registered(
                type=request.type,
                name=request.name,
                urn=urn,
                inputs=_inputs(mocks, request.type, request.name),
                state=dict(registration.state) if registration is not None else {},
                parent=request.parent,
                dependencies=list(request.dependencies),
            )
        )
    return Deployment(resources, resolved)


def _inputs(mocks: AwsMocks, type_token: str, name: str) -> dict[str, Any]:
    for typ, created_name, inputs, _state in mocks.created:
        if (typ, created_name) == (type_token, name):
            return inputs
    return {}
