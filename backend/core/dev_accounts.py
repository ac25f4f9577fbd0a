"""anvil's well-known accounts (public test keys) and the roles the local stack gives them.

A leaf module: the settings' development defaults, the deploy script, the dev stack and the tests
all take the keys from here. Every key is refused as a secret outside development
(`config.PLACEHOLDER_SECRETS`).
"""

from __future__ import annotations

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
# anvil's default accounts: 0 deploys and administers, 1 is the backend's operator/issuer key,
# 2 is the demo provider, 3.. are demo learners.
DEMO_KEYS = {
    "admin": "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "operator": "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "provider": "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "learner": "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "learner2": "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
}
# The address of DEMO_KEYS["admin"]: the local stack's admin wallet in the API (the /admin view).
DEMO_ADMIN_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
