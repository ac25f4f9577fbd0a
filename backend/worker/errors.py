"""Errors the task bodies tell apart: retry later, or give up."""

from __future__ import annotations


class WorkerError(Exception):
    """Base of the worker's own errors."""


class RetryableError(WorkerError):
    """Try again later: RPC unreachable, node lagging, a lock or a race lost."""


class ChainUnavailableError(RetryableError):
    """The node could not be reached or answered with an unexpected error."""


class TxNotMinedError(RetryableError):
    """The transaction is recorded and broadcast but has no receipt yet."""

    def __init__(self, tx_hash: str, nonce: int) -> None:
        super().__init__(f"transaction {tx_hash} (nonce {nonce}) not mined yet")
        self.tx_hash = tx_hash
        self.nonce = nonce


class PermanentError(WorkerError):
    """Retrying cannot help: bad data, missing configuration, a contract that refuses."""


class TxWouldRevertError(PermanentError):
    """Gas estimation reverted: the contract refuses the call in the current state."""


class TxRevertedError(PermanentError):
    """The transaction was mined with status 0."""

    def __init__(self, tx_hash: str) -> None:
        super().__init__(f"transaction {tx_hash} reverted")
        self.tx_hash = tx_hash


class NotDeployedError(RetryableError):
    """No deployment file (or contract) for the configured network yet: `tuition deploy` may
    still be running, so this is retried rather than failed."""
