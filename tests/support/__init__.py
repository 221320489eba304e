"""Helpers the tests share, one concept a module: ``polling`` (wait for a condition with a
deadline), ``ports`` (a free loopback port), ``processes`` (find and watch OS processes),
``attempts`` (run one attempt on an executor) and ``served`` (the daemon's app, in process or
served by uvicorn in a thread)."""
