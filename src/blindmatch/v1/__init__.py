"""Generated protobuf and gRPC code for proto/blindmatch/v1 (do not edit; see proto/generate.py)."""
