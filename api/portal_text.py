"""The debtor portal's words, in Dutch and English."""

from __future__ import annotations

LANGUAGES = ("nl", "en")

TEXT: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Uw openstaande facturen",
        "hello": "Beste {name},",
        "intro": "Hieronder staan de facturen van {creditor} die nog openstaan. U kunt hier direct betalen, "
                 "een betaaldatum afspreken of laten weten dat er iets niet klopt.",
        "invoice": "Factuur", "amount_open": "Openstaand", "due": "Vervaldatum", "download": "Factuur downloaden (PDF)",
        "pay": "Nu betalen", "pay_title": "Betalen", "pay_term": "Termijn betalen", "pay_all": "Alles betalen",
        "promise_title": "Betaalafspraak", "promise_intro": "Ik betaal het openstaande bedrag uiterlijk op:",
        "promise_button": "Afspraak vastleggen",
        "dispute_title": "Klopt er iets niet?", "dispute_reason": "Reden", "dispute_text": "Toelichting (optioneel)",
        "dispute_button": "Verstuur", "reason_not_received": "Ik heb de factuur of het product niet ontvangen",
        "reason_wrong_amount": "Het bedrag klopt niet", "reason_already_paid": "Ik heb al betaald",
        "reason_quality": "Ik ben niet tevreden over de levering", "reason_other": "Iets anders",
        "plan_title": "Betalen in termijnen",
        "plan_intro": "Kunt u niet alles in één keer betalen? Kies een regeling. De eerste termijn betaalt u een week "
                      "na uw keuze, daarna elke maand één. Voor elke termijn krijgt u een herinnering.",
        "plan_option": "{count} termijnen", "plan_button": "Deze regeling kiezen",
        "plan_current": "Uw betalingsregeling", "plan_term": "Termijn", "plan_status": "Stand",
        "plan_paid": "betaald", "plan_open": "nog te betalen", "plan_missed": "te laat",
        "done_plan": "Dank u wel. Uw betalingsregeling is vastgelegd; voor elke termijn ontvangt u een herinnering.",
        "done_promise": "Dank u wel. Uw betaalafspraak is vastgelegd; tot die datum ontvangt u geen herinneringen.",
        "done_dispute": "Dank u wel. Wij bekijken uw bericht; tot die tijd sturen wij geen herinneringen.",
        "done_paid": "Dank u wel, uw betaling is ontvangen.",
        "done_returned": "Dank u wel. Zodra de bank uw betaling bevestigt, verwerken wij die.",
        "done_failed": "De betaling is niet gelukt. U kunt het opnieuw proberen.",
        "nothing_open": "Er staan geen facturen meer open. Dank u wel!",
        "questions": "Vragen? Bel {phone} of mail {email}.",
        "language": "English",
        "error_title": "Deze link werkt niet", "error_invalid": "Deze link is niet geldig",
        "error_expired": "Deze link is verlopen",
        "error_text": "{problem}. Neem contact op met {creditor} voor een nieuwe link.",
        "testpay_title": "Testbetaling (geen echt geld)", "testpay_intro": "Dit is de testomgeving van de betaalprovider. "
                         "Kies de uitkomst van de betaling van {amount} voor factuur {invoice}.",
        "testpay_success": "Betaling gelukt", "testpay_failure": "Betaling mislukt",
    },
    "en": {
        "title": "Your open invoices",
        "hello": "Dear {name},",
        "intro": "These invoices from {creditor} are still open. You can pay them here, agree a date on which "
                 "you will pay, or tell us if something is wrong.",
        "invoice": "Invoice", "amount_open": "Open", "due": "Due date", "download": "Download the invoice (PDF)",
        "pay": "Pay now", "pay_title": "Pay", "pay_term": "Pay the instalment", "pay_all": "Pay everything",
        "promise_title": "Agree a payment date", "promise_intro": "I will pay the open amount by:",
        "promise_button": "Confirm the date",
        "dispute_title": "Something wrong?", "dispute_reason": "Reason", "dispute_text": "Details (optional)",
        "dispute_button": "Send", "reason_not_received": "I did not receive the invoice or the goods",
        "reason_wrong_amount": "The amount is wrong", "reason_already_paid": "I have already paid",
        "reason_quality": "I am not satisfied with what was delivered", "reason_other": "Something else",
        "plan_title": "Pay in instalments",
        "plan_intro": "Can't pay it all at once? Choose a plan. The first instalment is due one week after you "
                      "choose, then one every month. You will get a reminder before each instalment.",
        "plan_option": "{count} instalments", "plan_button": "Choose this plan",
        "plan_current": "Your payment plan", "plan_term": "Instalment", "plan_status": "Status",
        "plan_paid": "paid", "plan_open": "to be paid", "plan_missed": "overdue",
        "done_plan": "Thank you. Your payment plan is agreed; you will get a reminder before each instalment.",
        "done_promise": "Thank you. Your payment date is recorded; you will get no reminders until then.",
        "done_dispute": "Thank you. We will look into your message; until then we send no reminders.",
        "done_paid": "Thank you, your payment has been received.",
        "done_returned": "Thank you. As soon as the bank confirms your payment, we will process it.",
        "done_failed": "The payment did not go through. You can try again.",
        "nothing_open": "No invoices are open any more. Thank you!",
        "questions": "Questions? Call {phone} or email {email}.",
        "language": "Nederlands",
        "error_title": "This link does not work", "error_invalid": "This link is not valid",
        "error_expired": "This link has expired",
        "error_text": "{problem}. Please contact {creditor} for a new link.",
        "testpay_title": "Test payment (no real money)", "testpay_intro": "This is the payment provider's test page. "
                         "Choose how the payment of {amount} for invoice {invoice} ends.",
        "testpay_success": "Payment succeeded", "testpay_failure": "Payment failed",
    },
}

DISPUTE_REASONS = ("not_received", "wrong_amount", "already_paid", "quality", "other")
