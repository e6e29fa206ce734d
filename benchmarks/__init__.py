"""Benchmarks: ``python -m benchmarks`` (or ``make bench``).

The example app runs under gunicorn beside bare Flask baselines served by the same
processes, and a keep-alive client in this process drives both, round by round, so
every figure is a ratio measured side by side. See :mod:`benchmarks.runner`.
"""
