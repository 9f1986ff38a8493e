"""Email through SendGrid's v3 Mail Send API, with case and message ids as custom args."""

from __future__ import annotations

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail

from activities.providers import OutgoingMessage, PermanentSendError
from dunflow.settings import Settings


class SendGridEmail:
    name = "sendgrid"
    records_in_store = False

    def __init__(self, settings: Settings):
        self._client = SendGridAPIClient(api_key=settings.sendgrid_api_key, host=settings.sendgrid_api_host)
        self._sender = (settings.sendgrid_from or settings.creditor_email, settings.creditor_name)

    def send(self, message: OutgoingMessage) -> str:
        mail = Mail(
            from_email=self._sender,
            to_emails=message.recipient,
            subject=message.subject,
            plain_text_content=message.body,
        )
        mail.custom_arg = [
            CustomArg("case_id", str(message.case_id)),
            CustomArg("message_id", str(message.message_id)),
        ]
        try:
            response = self._client.send(mail)
        except HTTPError as error:
            if error.status_code == 400:
                raise PermanentSendError(f"SendGrid refused the email: {error.body!r}") from None
            raise RuntimeError(f"SendGrid answered HTTP {error.status_code}: {error.body!r}") from None
        return response.headers.get("X-Message-Id", "")

    def find_sent(self, message: OutgoingMessage) -> str | None:
        return None  # SendGrid has no lookup of sent mail by content: a retry after a lost answer may repeat it
