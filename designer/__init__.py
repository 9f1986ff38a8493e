"""The process designers' flow editor (BPMN): see README; built in its own issue."""
