"""Flows: each user-visible operation as one function that every surface calls
(settings pages, back-office, management commands, and the APIs).

A flow is keyword-only and typed, takes ``ctx: Actor`` (never a request) and, in
this order: checks the field policy, the re-authentication rule and the
impersonation guard (``accounts.flows.gate.check``); checks access to the objects
named (``accounts.access``); consumes rate limits (``accounts.limits``); writes and
audits in one transaction (``accounts.services``); and schedules notifications and
text messages on commit (``accounts.notifications``). Refusals are exceptions from
``accounts.flows.errors`` (and the policy's ``PolicyDenied`` / ``Http404``).
"""
