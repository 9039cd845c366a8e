"""carpool.yml: the typed run configuration and where the pseudonymization key comes from."""
from datetime import date
from pathlib import Path

import pytest

from etl.config import KEY_ENV, load_config, pseudonym_key
from etl.errors import ConfigError

VALID = """\
study: demo
cutoff_date: 2023-03-01
output_dir: out
pseudonym_key:
  env: {env}
{key_lines}
sites:
  - id: center_a
    mapping: sites/center_a/mapping.yml
  - id: center_b
    mapping: sites/center_b/mapping.yml
    enabled: false
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "carpool.yml"
    p.write_text(text, encoding="utf-8")
    return p


def config_text(env: str = KEY_ENV, key_lines: str = "") -> str:
    return VALID.format(env=env, key_lines=key_lines)


def test_valid_file_loads(tmp_path):
    cfg = load_config(write(tmp_path, config_text()))
    assert cfg.study == "demo"
    assert cfg.cutoff_date == date(2023, 3, 1)
    assert [s.id for s in cfg.sites] == ["center_a", "center_b"]
    assert cfg.sites[1].enabled is False
    assert cfg.out == tmp_path / "out"
    assert cfg.resolve(cfg.sites[0].mapping) == tmp_path / "sites/center_a/mapping.yml"
    assert cfg.site("center_b").id == "center_b"


def test_unknown_site_lookup_names_known_sites(tmp_path):
    cfg = load_config(write(tmp_path, config_text()))
    with pytest.raises(ConfigError, match="center_a, center_b"):
        cfg.site("center_z")


def test_unknown_key_names_file_line_and_key_path(tmp_path):
    text = config_text().replace("    enabled: false", "    enabeld: false")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    line = text.splitlines().index("    enabeld: false") + 1
    msg = str(exc.value)
    assert f"{path}:{line}: sites.1.enabeld: unknown key" in msg
    assert "Traceback" not in msg


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "cutof_date: 2023-01-01\n" + config_text())
    with pytest.raises(ConfigError, match=r"carpool.yml:1: cutof_date: unknown key"):
        load_config(path)


def test_bad_date_names_the_key(tmp_path):
    path = write(tmp_path, config_text().replace("2023-03-01", "2023-13-45"))
    with pytest.raises(ConfigError, match=r"carpool.yml:2: cutoff_date"):
        load_config(path)


def test_duplicate_site_ids_rejected(tmp_path):
    path = write(tmp_path, config_text().replace("id: center_b", "id: center_a"))
    with pytest.raises(ConfigError, match="repeated: center_a"):
        load_config(path)


@pytest.mark.parametrize("bad", ["Center_A", "1center", "center-a", "x" * 41])
def test_bad_site_id_rejected(tmp_path, bad):
    path = write(tmp_path, config_text().replace("id: center_b", f"id: {bad}"))
    with pytest.raises(ConfigError, match=r"sites\.1\.id"):
        load_config(path)


def test_no_sites_rejected(tmp_path):
    text = "cutoff_date: 2023-03-01\nsites: []\n"
    with pytest.raises(ConfigError, match="at least one site"):
        load_config(write(tmp_path, text))


def test_invalid_yaml_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"carpool.yml: line \d+ invalid YAML"):
        load_config(write(tmp_path, "cutoff_date: [2023\nsites: x\n"))


def test_empty_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file is empty"):
        load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yml")


def test_key_file_under_output_dir_rejected(tmp_path):
    path = write(tmp_path, config_text(key_lines="  file: out/key.txt"))
    with pytest.raises(ConfigError, match="must not be under output_dir"):
        load_config(path)


def test_key_file_outside_output_dir_accepted(tmp_path):
    cfg = load_config(write(tmp_path, config_text(key_lines="  file: secrets/key.txt")))
    assert cfg.pseudonym_key.file == Path("secrets/key.txt")


ENV = "CARPOOL_TEST_KEY_ENV"


def test_key_resolution_env_beats_file_beats_demo(tmp_path, monkeypatch):
    (tmp_path / "key.txt").write_text("file-key-0123456789abcdef\n")
    cfg = load_config(write(tmp_path, "demo: true\n" + config_text(
        env=ENV, key_lines="  file: key.txt\n  demo_key: demo-key")))
    monkeypatch.setenv(ENV, "env-key-0123456789")
    assert pseudonym_key(cfg) == (b"env-key-0123456789", "env")
    monkeypatch.delenv(ENV)
    key, where = pseudonym_key(cfg)
    assert key == b"file-key-0123456789abcdef"  # stripped of the newline
    assert where == "file"
    cfg = load_config(write(tmp_path, "demo: true\n" + config_text(env=ENV, key_lines="  demo_key: demo-key")))
    assert pseudonym_key(cfg) == (b"demo-key", "demo")


def test_demo_key_needs_demo_true(tmp_path, monkeypatch):
    """Regression (issue 15): the published demo key was used silently for any config that named it."""
    monkeypatch.delenv(ENV, raising=False)
    cfg = load_config(write(tmp_path, config_text(env=ENV, key_lines="  demo_key: demo-key")))
    with pytest.raises(ConfigError, match="demo: true"):
        pseudonym_key(cfg)


@pytest.mark.parametrize("value", ["", "   ", "x", "fifteen-bytes!!"])
def test_empty_or_short_env_key_is_a_config_error_not_the_demo_key(tmp_path, monkeypatch, value):
    """Regression (issue 15): CARPOOL_PSEUDONYM_KEY="" fell back to the published demo key,
    and a 1-byte environment key was accepted while a key file needed 16 bytes."""
    cfg = load_config(write(tmp_path, "demo: true\n" + config_text(env=ENV, key_lines="  demo_key: demo-key")))
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ConfigError, match=f"{ENV}.*(empty|shorter than 16 bytes)") as err:
        pseudonym_key(cfg)
    assert err.value.exit_code == 2
    monkeypatch.setenv(ENV, "sixteen-bytes-ok")
    assert pseudonym_key(cfg) == (b"sixteen-bytes-ok", "env")


def test_no_key_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    cfg = load_config(write(tmp_path, config_text(env=ENV)))
    with pytest.raises(ConfigError, match="no pseudonymization key"):
        pseudonym_key(cfg)


def test_key_file_missing_or_short(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    cfg = load_config(write(tmp_path, config_text(env=ENV, key_lines="  file: key.txt")))
    with pytest.raises(ConfigError, match="key.txt"):
        pseudonym_key(cfg)
    (tmp_path / "key.txt").write_text("short")
    with pytest.raises(ConfigError, match="shorter than 16 bytes"):
        pseudonym_key(cfg)


def test_repo_config_loads():
    cfg = load_config(Path(__file__).resolve().parents[2] / "carpool.yml")
    assert {s.id for s in cfg.sites} >= {"center_a", "center_b", "center_c", "center_d"}


def test_impossible_date_is_config_error_not_traceback(tmp_path):
    """Regression: `cutoff_date: 2023-02-30` raised a bare ValueError from the YAML
    constructor (a traceback), not a ConfigError naming file, line and key."""
    text = config_text().replace("2023-03-01", "2023-02-30")
    path = write(tmp_path, "# comment\n" + text)
    with pytest.raises(ConfigError, match=r"carpool.yml:3: cutoff_date: invalid value"):
        load_config(path)


def test_impossible_nested_date_names_its_key(tmp_path):
    """The bad scalar is found below an earlier, valid mapping and list."""
    text = config_text().replace("  - id: center_b\n", "  - id: center_b\n    when: 2023-02-30\n")
    with pytest.raises(ConfigError, match=r"carpool.yml:\d+: sites.1.when: invalid value"):
        load_config(write(tmp_path, text))
