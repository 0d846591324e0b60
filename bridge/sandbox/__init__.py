"""Local emulators of Slack, X (and later Meta), and a harness running the real bridge against them.

Shipped in the package because ``dmbridge demo`` runs on them; the test suite
and the benchmarks use the same ones. The bridge reaches them only through its
ordinary configuration (``SLACK_API_URL``, ``X_API_URL``, tokens).
"""
