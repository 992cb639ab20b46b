"""Reads shared by views, the back-office, commands and the APIs, one module per
concern: ``activity``, ``sessions``, ``mfa``, ``users``, ``verification``."""
