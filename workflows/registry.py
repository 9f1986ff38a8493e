"""Every workflow a dunflow worker runs: the case and the installment plans it starts."""

from workflows.collection import CollectionWorkflow
from workflows.plan import InstallmentPlanWorkflow

WORKFLOWS = [CollectionWorkflow, InstallmentPlanWorkflow]
