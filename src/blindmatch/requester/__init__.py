"""The requester's side: configuration, job store, the client of the holder, the job runner and daemon."""
