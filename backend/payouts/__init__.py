"""Provider money as the chain moved it: escrow released to withdrawable, and withdrawals."""
