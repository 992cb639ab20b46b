"""The Management API (``/api/management``): the user lifecycle for back-office
tools, as staff members act in the back-office. Each endpoint calls the
back-office's own flows and selectors, with an ``Actor`` acting on the account
(``ctx.subject``), so the same permission and guard-rail checks apply."""
