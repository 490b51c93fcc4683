"""The simulated world every lesson runs in.

    vtime    virtual time: an asyncio loop whose clock jumps to the next timer; ManualClock
    netsim   a seeded discrete-event network: loss, delay, duplication, partitions, crashes
    faults   FaultyTransport: an httpx transport that injects HTTP faults in virtual time
    apps     tiny in-process ASGI services to call
    history  record operation histories; check them for linearizability; draw timelines

This layer imports nothing from ``distlab.patterns``, ``distlab.lessons`` or ``distlab.course``.
"""
