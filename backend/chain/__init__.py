"""Chain access: deployments, ABIs, RPC clients, the local toolchain."""
