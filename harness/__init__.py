"""The platform harness: service processes and isolated environments for tests, benchmarks and
the monitoring tests (one mechanism, used by ``tests/`` and ``bench/``).

Rules: the harness imports ``shared/`` (never ``services/``, ``tests/`` or ``bench/``), and no
deployed code imports the harness. ``tests/`` and ``bench/`` import it; ``bench/`` never imports
``tests/``.

- :mod:`harness.poll`: wait on a condition with a deadline (never a bare sleep).
- :mod:`harness.process`: a child process with its log file; a service under uvicorn on a free
  port; ``python -m module`` to completion.
- :mod:`harness.isolation`: an isolated topic prefix + migrated database + tokens file, and the
  environment a service process is started with.
"""
