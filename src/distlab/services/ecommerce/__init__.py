"""The course's e-commerce application: users, catalog and orders, three FastAPI services.

Each service is its own ASGI app with its own SQLite database (database per service);
placing an order checks the user, reserves stock in the catalog and records the order,
as a saga (see ``orders``). Services call each other with httpx through a circuit
breaker, a bulkhead and a timeout per dependency (``remote``), find each other through
the discovery registry, and pass an ``X-Request-ID`` through every hop (``common``).

    common        settings, the database, request ids, JSON errors, health endpoints
    users         ``create_app``: who may order
    catalog       ``create_app``: products, stock, idempotent reservations
    orders        ``create_app``: idempotent orders, the saga and its repair step
    remote        one dependency, called through the resilience layer
    consistency   do orders and stock agree?
    inprocess     ``Shop``: the whole application in one process, in virtual time
    launcher      ``python -m distlab.services.ecommerce.launcher``: real processes

Real servers: ``uvicorn --factory distlab.services.ecommerce.users:create_app`` (and
``catalog``, ``orders``), or all of them with ``make services``.
"""
