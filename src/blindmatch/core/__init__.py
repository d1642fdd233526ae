"""The sans-IO protocol core: messages, session state machines and the encrypted index.

Nothing here touches sockets, files or clocks; callers feed messages in and send the
messages that come out.
"""
