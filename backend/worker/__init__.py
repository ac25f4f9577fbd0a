"""The worker: Celery tasks for the slow, retryable side effects (chain writes, receipts).

Modules: `celery_app` (the app, broker choice, beat schedule), `tasks` (the task bodies),
`sender` (the operator key's transaction sender with nonce management), `outbox` (the relay from
the backend's transactional outbox to the broker), `email` (receipt backends), `reconcile`
(DB-versus-chain drift), `models` (the worker's own tables).
"""
