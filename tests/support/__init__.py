"""What the test suites share, one module per concern, imported as `support.<module>`.

- `procs`: free ports, polling; `anvil`: a private anvil node.
- `db`: migrated databases per backend; `factories`: rows built the way the services build them.
- `api`: SIWE messages, the fake chain client, the app harness the API fixtures swap services on.
- `emitter`: the log-emitter contract the indexer suite drives; `indexer`: indexer runners,
  fault-injecting transports and counting queries.
- `market`: the real contracts deployed on anvil (worker suite); `worker`: worker processes and
  their environment; `spawned`: functions the worker tests run in child processes.
- `stack`: the end-to-end stack (chain as a wallet sees it, API users); `web`: browser-suite
  helpers (an operator, fresh keys, mining); `wallet`: the EIP-1193 test wallet pages get.
- `signing`: EIP-712 signatures (permits, vouchers) for the contract suite and the stack.
"""
