"""A user's own Temporal code, written the way Temporal's Python samples are
(samples-python ``hello/hello_activity_retry.py``), with nothing of wfmon in it."""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

#: What the flaky activity says when it fails (the test finds it on the execution page).
UNAVAILABLE = "greeting service unavailable"


@dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


@activity.defn
async def compose_greeting(input: ComposeGreetingInput) -> str:
    # Fail the first 2 attempts, succeed the 3rd.
    if activity.info().attempt < 3:
        raise RuntimeError(f"{UNAVAILABLE} (attempt {activity.info().attempt})")
    return f"{input.greeting}, {input.name}!"


@activity.defn
async def send_postcard(text: str) -> str:
    raise ApplicationError("printer jammed", type="PrinterJammed")


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                maximum_interval=timedelta(seconds=2),
                maximum_attempts=5,
            ),
        )
        try:
            await workflow.execute_activity(
                send_postcard,
                greeting,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=100), maximum_attempts=2
                ),
            )
        except ActivityError:
            workflow.logger.info("no postcard today")
        return greeting
