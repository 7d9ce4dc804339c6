"""The tournament submission service: HTTP intake, a durable queue, verifier workers.

`efflab tournament serve` (efflab.tournaments.service.app on uvicorn) takes signed
uploads, keeps them in a SQLite queue (queue.py), hands them to verifier workers
(worker.py: the local one the server starts, or `efflab tournament worker` on another
machine) and appends what they report to the ledger — the server is the ledger's only
writer. client.py is the participant's side (`efflab tournament submit --server`).
"""
