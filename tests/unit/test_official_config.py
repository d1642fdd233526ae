"""An official's own configuration (official.toml): exactly one key source, errors naming file and setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from blindmatch.officials.config import OfficialConfigError, load_signer_config


def test_a_token_config_resolves_the_module_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "official.toml"
    path.write_text('[pkcs11]\nlibrary = "lib/module.so"\ntoken_label = "alice"\nkey_label = "k"\npin_env = "PIN_1"\n')
    token = load_signer_config(path).token
    assert token is not None and token.library == tmp_path / "lib" / "module.so"
    assert (token.token_label, token.key_label, token.pin_env) == ("alice", "k", "PIN_1")


def test_a_key_file_config(tmp_path: Path) -> None:
    path = tmp_path / "official.toml"
    path.write_text('[key]\nfile = "alice.key"\n')
    config = load_signer_config(path)
    assert config.key_file == tmp_path / "alice.key" and config.token is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"exactly one of \[key\]"),
        ('[key]\nfile = "a"\n[pkcs11]\nlibrary = "l"\ntoken_label = "t"\nkey_label = "k"\n', r"exactly one of \[key\]"),
        ('[pkcs11]\nlibrary = "l"\ntoken_label = "t"\n', r"\[pkcs11\] needs key_label"),
        ('[pkcs11]\nlibrary = "l"\ntoken_label = "t"\nkey_label = "k"\npin = "1234"\n', "unknown setting pkcs11.pin"),
        ('[pkcs11]\nlibrary = "l"\ntoken_label = "t"\nkey_label = "k"\npin_env = "1 2"\n', "pin_env must name"),
        ('[pkcs11]\nlibrary = ""\ntoken_label = "t"\nkey_label = "k"\n', "pkcs11.library must be a non-empty"),
        ('[passphrase]\nvalue = "x"\n', r"unknown section \[passphrase\]"),
        ("[key\n", "is not valid TOML"),
    ],
)
def test_bad_configs_name_the_file_and_the_setting(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "official.toml"
    path.write_text(text)
    with pytest.raises(OfficialConfigError, match=message) as caught:
        load_signer_config(path)
    assert str(path) in str(caught.value)


def test_without_the_pkcs11_extra_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from blindmatch.officials.token import TokenError, token_public_key

    path = tmp_path / "official.toml"
    path.write_text('[pkcs11]\nlibrary = "module.so"\ntoken_label = "alice"\nkey_label = "k"\n')
    token = load_signer_config(path).token
    assert token is not None
    monkeypatch.setitem(sys.modules, "pkcs11", None)  # as if python-pkcs11 were not installed
    with pytest.raises(TokenError, match=r"PKCS#11 support is not installed; install it with: pip install 'blindmatch\[pkcs11\]'"):
        token_public_key(token, "1234")
