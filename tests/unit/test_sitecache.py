"""Site input hashes: content decides; the (path, size, mtime) digest cache only saves reading."""
import os

from warehouse import sitecache


def _site(tmp_path):
    site = tmp_path / "site"
    (site / "export").mkdir(parents=True)
    (site / "mapping.yml").write_text("site_id: x\n")
    export = site / "export" / "data.csv"
    export.write_text("id\n1\n")
    return site, export


def test_changed_export_changes_the_hash_with_or_without_the_cache(tmp_path):
    site, export = _site(tmp_path)
    digests = sitecache.load_digests(tmp_path)
    before = sitecache.input_hash([export], site, "v1", digests)
    export.write_text("id\n2\n3\n")
    assert sitecache.input_hash([export], site, "v1", digests) != before
    assert sitecache.input_hash([export], site, "v1") != before


def test_touched_but_identical_file_keeps_its_hash(tmp_path):
    site, export = _site(tmp_path)
    digests = sitecache.load_digests(tmp_path)
    before = sitecache.input_hash([export], site, "v1", digests)
    os.utime(export, ns=(1, 1))
    assert sitecache.input_hash([export], site, "v1", digests) == before


def test_code_version_is_part_of_the_hash(tmp_path):
    site, export = _site(tmp_path)
    assert sitecache.input_hash([export], site, "v1") != sitecache.input_hash([export], site, "v2")


def test_digest_cache_forgets_files_not_seen_this_run(tmp_path):
    site, export = _site(tmp_path)
    digests = sitecache.load_digests(tmp_path)
    sitecache.input_hash([export], site, "v1", digests)
    sitecache.save_digests(tmp_path, digests)
    export.write_text("id\n9\n")                 # new size: a new cache key
    digests = sitecache.load_digests(tmp_path)
    sitecache.input_hash([export], site, "v1", digests)
    sitecache.save_digests(tmp_path, digests)
    keys = [k for k in sitecache.load_digests(tmp_path) if "data.csv" in k]
    assert len(keys) == 1
