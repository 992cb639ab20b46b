"""The JSON APIs (django-ninja): the Account API under ``/api/my-account`` and
``/api/verifications``. Each endpoint is a thin translation of its input into one
flow call (``accounts.flows``) and of the flow's result or refusal into JSON."""
