"""holder.toml and requester.toml as an operator writes them, for every test that needs one.

One text per file kind, so that the daemon tests, the loader tests and the fuzz seeds
start from the same accepted shape; each caller names only what it changes (paths,
organisations, extra keys or sections).
"""

from __future__ import annotations

HOLDER_ORG = "Example Tax Authority"
REQUESTER_ORG = "County Court of Example"


def holder_toml(*, tls_dir: str = "", client_ca: str = "ca.crt", allowed: str = REQUESTER_ORG,
                limits: str = "", sections: str = "") -> str:
    """A complete holder.toml: ``tls_dir`` prefixes the server certificate and key,
    ``limits`` adds lines to ``[holder.limits]``, ``sections`` adds tables before ``[holder.tls]``."""
    return f"""\
[holder]
organisation = "{HOLDER_ORG}"
listen = "127.0.0.1:0"
key_file = "oprf.key"
index_dir = "index"
policy = "policy.toml"
budget_db = "state/budget.sqlite3"
audit_dir = "."
[holder.limits]
max_batch = 64
max_session_elements = 4096
max_message_bytes = 24576
index_chunk_bytes = 1024
max_concurrent_sessions = 8
shutdown_grace_seconds = 20
{limits}{sections}[holder.tls]
cert = "{tls_dir}server.crt"
key = "{tls_dir}server.key"
client_ca = "{client_ca}"
allowed_organisations = ["{allowed}"]
"""


def requester_toml(*, organisation: str = REQUESTER_ORG, holder_organisation: str = HOLDER_ORG,
                   matching: str = "") -> str:
    """A minimal complete requester.toml; ``matching`` is the body of an optional ``[matching]`` table."""
    matching_table = f"[matching]\n{matching}" if matching else ""
    return f"""\
organisation = "{organisation}"
[holder]
address = "127.0.0.1:1"
organisation = "{holder_organisation}"
oprf_public_key = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"
audit_public_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
ca_cert = "ca.crt"
cert = "c.crt"
key = "c.key"
[official]
name = "Alice Clerk"
legal_basis = "Act s. 1"
{matching_table}[audit]
dir = "."
origin = "requester/org"
"""
