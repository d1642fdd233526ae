"""The peer daemons: holder and requester services around the sans-IO core (gRPC, mTLS, storage)."""
