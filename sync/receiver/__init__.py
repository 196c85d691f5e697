"""The receivers: central and backup sites' end of store-and-forward (`egate central serve`).

    config.py    the receiver's settings (strict; role central or backup)
    protocol.py  the wire protocol, both ends: paths, limits, body codecs, TLS contexts
    store.py     the database (SQLite or PostgreSQL), versioned migrations, idempotent inserts
    server.py    the aiohttp server behind mutual TLS: verify, store, answer per record
    forward.py   a backup's forwarding of what it holds to central

docs/sync.md: "Receiver", "Wire protocol", "Test PKI".
"""
