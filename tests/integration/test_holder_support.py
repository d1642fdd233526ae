"""Shared fixtures for the holder daemon tests, plus tests of config, PKI and the index store.

A deployment is a complete holder directory made the way an operator would: PKI from
``pki init``, policy.toml, holder.toml, records CSV and an index built by
``build_index``. The Match helper drives a real ``RequesterSession`` over a raw stub.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest
from helpers.holder_deployment import (
    make_deployment,
    record,
    write_records,
)

from blindmatch.holder.config import ConfigError, load_holder_config
from blindmatch.holder.index_build import IndexBuildError, build_index
from blindmatch.holder.store import StoreError, load_key_file, open_indexes
from blindmatch.normalize import default_schema
from blindmatch.transport.pki import PkiError, init_pki, organisation_of


@pytest.mark.timeout(30)
def test_pki_init_files_modes_and_identity(tmp_path: Path) -> None:
    made = init_pki(tmp_path / "pki", ["Org One", "Org Two"], ["localhost", "127.0.0.1"])
    assert [m.directory.name for m in made] == ["org-one", "org-two"]
    for path in [tmp_path / "pki" / "ca.key", made[0].client_key, made[0].server_key]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert organisation_of(made[1].client_cert.read_bytes()) == "Org Two"
    with pytest.raises(PkiError, match="already exists"):
        init_pki(tmp_path / "pki", ["Org One"], ["localhost"])
    init_pki(tmp_path / "pki", ["Org Three"], ["localhost"])  # the CA is reused to add organisations
    assert (tmp_path / "pki" / "org-three" / "server.crt").exists()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("max_batch = 64", "max_bach = 64"), r"holder.limits.max_bach: unknown key"),
        (lambda t: t.replace('policy = "policy.toml"\n', ""), r"holder.policy: missing"),
        # A cardinality batch of 4000 with its shuffle proof is 1.28 MB: above the default 1 MiB messages.
        (lambda t: t.replace("max_batch = 64", "max_batch = 4000"),
         r"holder.limits.max_batch: 4000 elements do not fit in max_message_bytes \(1048576\): .* 1280512 bytes"),
        (lambda t: t.replace("max_batch = 64", "max_batch = 40000\nmax_message_bytes = 100000000"),
         r"holder.limits.max_batch: must be at most 32768"),
        (lambda t: t.replace('allowed_organisations = ["County Court of Example"]', "allowed_organisations = []"),
         r"holder.tls.allowed_organisations"),
        (lambda t: t.replace('listen = "127.0.0.1:0"', 'listen = "nowhere"'), r"holder.listen"),
        # Allowed organisations are written to the audit log as peers: the log's identity rule.
        (lambda t: t.replace('["County Court of Example"]', '["County Court of Example", "Two  Spaces"]'),
         r"holder.tls.allowed_organisations\[1\]: must be an identity"),
        (lambda t: t.replace('["County Court of Example"]', '["Court\\nof Example"]'),
         r"holder.tls.allowed_organisations\[0\]: must be an identity"),
        # Metrics name organisations and their budgets: never beyond this machine.
        (lambda t: t + '[holder.metrics]\nlisten = "0.0.0.0:9464"\n', r"holder.metrics.listen: must be a loopback address"),
        (lambda t: t.replace("max_batch = 64", "max_batch = 64\nmax_sessions_per_organisation = 99"),
         r"holder.limits.max_sessions_per_organisation: must not exceed max_concurrent_sessions"),
        (lambda t: t.replace("max_batch = 64", "max_batch = 64\nidle_timeout_seconds = 0"),
         r"holder.limits.idle_timeout_seconds: must be a number >= 0.1"),
        # The epoch schedule rebuilds from the records file: both or neither.
        (lambda t: t.replace('policy = "policy.toml"\n', 'policy = "policy.toml"\nepoch_days = 30\n'),
         r"holder.records: missing; a scheduled rotation"),
        (lambda t: t.replace('policy = "policy.toml"\n', 'policy = "policy.toml"\nrecords = "r.csv"\n'),
         r"holder.records: only used with holder.epoch_days"),
        (lambda t: t.replace('policy = "policy.toml"\n', 'policy = "policy.toml"\nepoch_days = 0\nrecords = "r.csv"\n'),
         r"holder.epoch_days: must be an integer >= 1"),
        (lambda t: t.replace('policy = "policy.toml"\n', 'policy = "policy.toml"\nepoch_lead_hours = 4\n'),
         r"holder.epoch_lead_hours: only used with holder.epoch_days"),
        (lambda t: t.replace('policy = "policy.toml"\n',
                             'policy = "policy.toml"\nepoch_days = 1\nrecords = "r.csv"\nepoch_lead_hours = 24\n'),
         r"holder.epoch_lead_hours: must be shorter than the epoch \(24 hours\)"),
        (lambda t: t.replace('policy = "policy.toml"\n', 'policy = "policy.toml"\nschema = "extnded"\n'),
         r"bad.toml: holder.schema: 'extnded' is neither a built-in schema"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.toml"
    good.write_text(
        '[holder]\norganisation = "H"\nlisten = "127.0.0.1:0"\npolicy = "policy.toml"\n'
        "[holder.limits]\nmax_batch = 64\n"
        '[holder.tls]\ncert = "a"\nkey = "b"\nclient_ca = "c"\nallowed_organisations = ["County Court of Example"]\n'
    )
    config = load_holder_config(good)
    assert config.policy == tmp_path / "policy.toml" and config.tls.cert == tmp_path / "a"
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(good.read_text()))
    with pytest.raises(ConfigError, match=message):
        load_holder_config(bad)


@pytest.mark.timeout(30)
def test_non_utf8_config_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "holder.toml"
    path.write_bytes(b'[holder]\norganisation = "Caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"holder.toml is not valid TOML: not UTF-8 text \(invalid byte at offset 28\)"):
        load_holder_config(path)


@pytest.mark.timeout(60)
def test_index_field_over_csv_limit_names_the_row(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, records=5)
    huge = "9" * (csv.field_size_limit() + 1)
    records = tmp_path / "huge.csv"
    write_records(records, range(2))
    records.write_text(records.read_text() + f'"Zed Zulu","{huge}","2024-01-15"\n')
    with pytest.raises(IndexBuildError) as info:
        build_index(records, dep.config, progress=False)
    message = str(info.value)
    assert message == f"{records}: row 3: a field exceeds the CSV field size limit ({csv.field_size_limit()} characters)"
    assert "Zed" not in message and "999" not in message


@pytest.mark.timeout(60)
def test_index_build_key_file_and_rejects(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, records=50)
    config = dep.config
    assert stat.S_IMODE(config.key_file.stat().st_mode) == 0o600
    rejects = (config.index_dir / "rejects.csv").read_text().splitlines()
    assert rejects == ["row,field,reason", "51,name,missing", "52,name,missing"]  # row 1 = first data row
    opened = open_indexes(config.index_dir)
    try:
        assert opened.manifest.key_id == load_key_file(config.key_file).key_id
        assert opened.manifest.records == 50
        entries = sum(len(default_schema().match_keys(record(i), "holder")) for i in range(50))
        assert {f.entries for f in opened.manifest.files.values()} == {entries}  # every tier key of every record
    finally:
        opened.close()
    os.chmod(config.key_file, 0o640)
    with pytest.raises(StoreError, match="group or others") as info:
        load_key_file(config.key_file)
    assert config.key_file.read_text().strip() not in str(info.value)  # the secret never appears in errors


@pytest.mark.timeout(60)
def test_crash_before_manifest_rename_keeps_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dep = make_deployment(tmp_path, records=30)
    index_dir = dep.config.index_dir
    before = open_indexes(index_dir)
    before.close()
    real_replace = os.replace

    def crash_on_manifest(src: object, dst: object) -> None:
        if Path(str(dst)).name == "index.json":
            raise KeyboardInterrupt("simulated crash")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", crash_on_manifest)
    write_records(tmp_path / "more.csv", range(60))
    with pytest.raises(KeyboardInterrupt):
        build_index(tmp_path / "more.csv", dep.config, progress=False)
    monkeypatch.undo()
    after = open_indexes(index_dir)  # verifies every file against the manifest's digests
    try:
        assert {k: f.digest for k, f in after.manifest.files.items()} == {k: f.digest for k, f in before.manifest.files.items()}
    finally:
        after.close()
    manifest = index_dir / "index.json"
    manifest.write_text(manifest.read_text().replace('"digest": "', '"digest": "00', 1))
    with pytest.raises(StoreError, match="does not match its digest"):
        open_indexes(index_dir)
