"""The course's runnable systems, built from the patterns (the layer above ``distlab.patterns``).

    distlab.services.ecommerce    users, catalog and orders: three FastAPI services, each
                                  with its own SQLite database, placing orders with a saga
    distlab.services.serverless   a durable queue (SQLite, Redis Streams), a function runtime
                                  on virtual time, functions-framework in-process and served

Each system runs two ways with the same code: in-process over ``httpx.ASGITransport``
in virtual time (lessons, tests, grading), and as real uvicorn processes on 127.0.0.1.
This package imports nothing, so ``import distlab.services`` stays light.
"""
