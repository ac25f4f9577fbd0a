"""Developer tools: offline stand-ins for third-party services (tests and the local demo)."""
