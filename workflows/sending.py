"""Sending a message from workflow code: the one activity call the case and its plans share."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from dunflow.case import SendRequest, SendResult

SEND_TIMEOUT = timedelta(seconds=60)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["PermanentSendError"],
)


class NotSent(Exception):
    """The message could not go out (a permanent refusal, or the retries ran out)."""


async def send_message(request: SendRequest) -> SendResult:
    """The message sent once (the activity is idempotent by the request's key); NotSent with the reason."""
    try:
        return await workflow.execute_activity(
            "send_message", request, result_type=SendResult,
            start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY,
        )
    except ActivityError as error:
        raise NotSent(error.cause.message if isinstance(error.cause, ApplicationError) else str(error)) from None
