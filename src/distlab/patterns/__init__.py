"""Reference implementations of the chapter's patterns, production quality and tested.

    breaker   CircuitBreaker: three states, sync and async, failure-rate window
    chapter   the chapter's own code, translated faithfully (flaws included) for lesson 06
    bulkhead  Bulkhead (asyncio: FIFO, bounded wait, metrics) and ThreadPoolBulkhead (blocking code)
    discovery ServiceRegistry (leases), its HTTP app, DiscoveryClient, Heartbeater, `serve` command

They build on ``distlab.sim`` (clocks) and ``distlab.errors`` only; the services of the
course use them. Graded exercises ask students to build some of them, so the grading
sandbox hides those modules.
"""
