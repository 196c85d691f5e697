"""The shared base every other package builds on: errors, structured logs, the strict settings
loader, the component contract, the message catalogue, reason codes and the audit trail."""
