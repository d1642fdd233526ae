"""What both daemons share on the wire: protobuf conversion, gRPC statuses, TLS certificates."""
