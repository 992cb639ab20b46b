"""SMS backends: ``console`` (default), ``file``, ``locmem`` (tests) and ``twilio``."""
