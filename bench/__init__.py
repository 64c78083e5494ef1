"""Kiro Tray benchmark suite: ``python -m bench.run [--quick] [--json FILE] [--compare OLD.json]``.

The fake Kiro (:mod:`bench.fake`) and the gateway run as separate processes on loopback so the gateway's
CPU time and memory can be read from ``/proc``; the load generator is one aiohttp client session in the
benchmark process. Benchmarks print and write JSON; they never fail on a slow machine.
"""
