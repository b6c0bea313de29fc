"""Benchmarks of dcr-platform (``make bench`` / ``python -m bench --help``).

Four benchmarks, each against the real Kafka and PostgreSQL started by ``deploy/scripts`` and
each isolated in its own topic prefix and database (removed afterwards):

* ``catchup``: the projection from zero to caught up over a pre-loaded log, next to a bare
  aiokafka consumer reading the same topics (the Python consume limit);
* ``ingest``: concurrent HTTP clients posting visits to intake (closed loop and fixed rate), next
  to a bare aiokafka producer with the same acks and message size;
* ``freshness``: time from a 202 to the event being visible in the read model, at a steady load;
* ``scale``: the catch-up with 1, 2 and 3 projection instances in one consumer group.

Results go to ``bench/results/<benchmark>.json`` (git-ignored) and ``bench/results/REPORT.md``.
"""
