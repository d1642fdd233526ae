"""The holder's daemon: configuration, key and index store, index build, the gRPC Match service."""
