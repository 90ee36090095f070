"""Room tasks: work items for the monitoring room with a deadline and escalation (one model for all)."""
