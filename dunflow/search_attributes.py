"""The search attributes every case keeps current, so operators can filter cases in the Temporal UI.

Only ids, statuses and amounts: never a debtor's name, email or phone number.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CURRENT_STEP = SearchAttributeKey.for_keyword("CurrentStep")
FLOW_NAME = SearchAttributeKey.for_keyword("FlowName")
FLOW_VERSION = SearchAttributeKey.for_int("FlowVersion")
DEBTOR_ID = SearchAttributeKey.for_keyword("DebtorId")
INVOICE_NUMBER = SearchAttributeKey.for_keyword("InvoiceNumber")
AMOUNT_OPEN_CENTS = SearchAttributeKey.for_int("AmountOpenCents")
PLAN_STATUS = SearchAttributeKey.for_keyword("PlanStatus")  # set once a case has had a plan

ALL_KEYS = (CASE_STATUS, CURRENT_STEP, FLOW_NAME, FLOW_VERSION, DEBTOR_ID, INVOICE_NUMBER, AMOUNT_OPEN_CENTS,
            PLAN_STATUS)


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags that register them on the Temporal CLI dev server."""
    flags = []
    for key in ALL_KEYS:
        kind = "Keyword" if key.value_type is str else "Int"
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


def case_search_attributes(
    *, status: str, step: str, amount_open_cents: int, flow_name: str, flow_version: int,
    debtor_id: str, invoice_number: str, plan_status: str | None = None,
) -> list[SearchAttributeUpdate]:
    plan = [PLAN_STATUS.value_set(plan_status)] if plan_status is not None else []
    return plan + [
        CASE_STATUS.value_set(status),
        CURRENT_STEP.value_set(step),
        AMOUNT_OPEN_CENTS.value_set(amount_open_cents),
        FLOW_NAME.value_set(flow_name),
        FLOW_VERSION.value_set(flow_version),
        DEBTOR_ID.value_set(debtor_id),
        INVOICE_NUMBER.value_set(invoice_number),
    ]



async def register_search_attributes(client) -> None:
    """Make sure the namespace knows every case search attribute (a no-op for those it has)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))
        known = set(listed.custom_attributes)
    except RPCError as error:
        if error.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server cannot list
            raise
        known = set()
    missing = {
        key.name: (IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD if key.value_type is str
                   else IndexedValueType.INDEXED_VALUE_TYPE_INT)
        for key in ALL_KEYS
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing))
