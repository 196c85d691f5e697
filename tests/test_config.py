"""Config is validated at load: every malformed file names its key, what was found and what was expected."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import describe_schema, read_secret
from gate import config

EXAMPLE = Path(__file__).parent.parent / "config" / "gate.example.toml"


def write_variant(tmp_path, old, new, name="gate.toml"):
    text = EXAMPLE.read_text()
    assert old in text, f"example no longer contains {old!r}"
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


def test_example_gate_config_loads_into_typed_objects():
    cfg = config.load_gate(EXAMPLE)
    assert cfg.gate.direction == "departure"
    assert cfg.devices.door.watchdog_ms == 1000
    assert cfg.eligibility.nationals == ("TWN",)
    assert cfg.storage.data_dir.is_absolute()
    with pytest.raises(AttributeError):
        cfg.gate.lane = 9  # frozen


def test_config_remembers_its_file_and_refuses_source_as_a_key(tmp_path):
    assert config.load_gate(EXAMPLE).source == EXAMPLE
    path = write_variant(tmp_path, '[gate]\n', '[gate]\n', name="g.toml")
    path.write_text('source = "x"\n' + path.read_text())
    with pytest.raises(ConfigError) as err:
        config.load_gate(path)
    assert err.value.key == "source" and err.value.found == "an unknown key"


MALFORMED = [
    # (old text, new text, key the error must name, words of the expectation)
    ('lane = 7', 'lane = "seven"', "gate.lane", "an integer"),
    ('lane = 7', 'lane = 0', "gate.lane", "1..999"),
    ('direction = "departure"', 'direction = "sideways"', "gate.direction", "'arrival', 'departure'"),
    ('watchdog_ms = 1000', 'watchdog_ms = 50', "devices.door.watchdog_ms", "200..10000"),
    ('watchdog_ms = 1000', 'watchdog_ms = 1000\nwatchdog = 5', "devices.door.watchdog", "one of"),
    ('baudrate = 115200\nwatchdog_ms', 'baudrate = true\nwatchdog_ms', "devices.door.baudrate", "an integer"),
    ('face_fmr = 0.001', 'face_fmr = 0.5', "thresholds.face_fmr", "0.1"),
    ('face_fmr = 0.001', 'face_fmr = "low"', "thresholds.face_fmr", "a number"),
    ('nationals = ["TWN"]', 'nationals = "TWN"', "eligibility.nationals", "a list of a string"),
    ('nationals = ["TWN"]', 'nationals = ["TWN", 7]', "eligibility.nationals[1]", "a string"),
    ('require_passive_auth = true', 'require_passive_auth = "yes"', "eligibility.require_passive_auth", "true or false"),
    ('[storage]\ndata_dir = "../var/gate"', '[storage]\ndata_dir = "../var/gate"\nsigning_key = "nope.pem"', "storage.signing_key", "an existing file"),
    ('id = "TPE-T1-D-07"\n', '', "gate.id", "a string"),
    ('id = "TPE-T1-D-07"', 'id = ""', "gate.id", "a non-empty string"),
    ('[timeouts]', '[timeout]', "timeout", "one of"),
    ('[devices.camera]\nsource = "0"', '[devices.camera]\nsource = 0', "devices.camera.source", "a string"),
    ('level = "info"', 'level = "verbose"', "logging.level", "'debug'"),
    ('languages = ["zh-TW", "en", "ja", "ko"]', 'languages = ["zh-TW", "fr"]', "devices.screen.languages[1]",
     "'en', 'ja', 'ko', 'zh-TW'"),
]


@pytest.mark.parametrize("old,new,key,expected", MALFORMED, ids=[m[2] for m in MALFORMED])
def test_malformed_config_names_file_key_and_expectation(tmp_path, old, new, key, expected):
    path = write_variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        config.load_gate(path)
    assert err.value.key == key
    assert expected in err.value.expected
    message = str(err.value)
    assert str(path) in message and key in message and "found" in message


def test_syntax_error_and_missing_file_are_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[gate\nid = 1")
    with pytest.raises(ConfigError, match="valid TOML"):
        config.load_gate(bad)
    with pytest.raises(ConfigError, match="no such file"):
        config.load_gate(tmp_path / "absent.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="UTF-8"):
        config.load_gate(binary)


def test_referenced_files_resolve_relative_to_the_config(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "sign.pem").write_text("secret material")
    path = write_variant(tmp_path, '[storage]\ndata_dir = "../var/gate"',
                         '[storage]\ndata_dir = "var"\ntemplate_key = "keys/sign.pem"')
    cfg = config.load_gate(path)
    assert cfg.storage.template_key == tmp_path / "keys" / "sign.pem"
    secret = read_secret(cfg.storage.template_key)
    assert secret.reveal() == b"secret material"
    assert "secret material" not in repr(secret) and "secret material" not in str(secret)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gate", *args], capture_output=True, text=True, timeout=60)


def test_cli_config_check_exit_codes(tmp_path):
    ok = run_cli("config", "check", str(EXAMPLE))
    assert ok.returncode == 0, ok.stderr
    assert "valid gate config" in ok.stdout
    bad = write_variant(tmp_path, 'lane = 7', 'lane = -1')
    res = run_cli("config", "check", str(bad))
    assert res.returncode == 2
    assert re.search(r"gate\.lane: expected an integer in 1\.\.999, found int -1", res.stderr), res.stderr


def test_schema_reference_covers_every_example_key():
    import tomllib

    def flatten(table, prefix=""):
        for k, v in table.items():
            yield from flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k]

    keys = {row[0] for row in describe_schema(config.GateConfig)}
    example = set(flatten(tomllib.loads(EXAMPLE.read_text())))
    assert example <= keys and {"gate.id", "devices.door.watchdog_ms", "storage.data_dir"} <= example
    assert {"sync.backup_url", "sync.offsite_url", "sync.failover_after"} <= keys


def test_docs_configuration_is_generated_from_the_schema():
    doc = EXAMPLE.parent.parent / "docs" / "configuration.md"
    assert doc.read_text() == config.reference_markdown(), "run: egate config reference > docs/configuration.md"


UNSUPPORTED = [
    # (section header in the example, line added under it, key the error must name, expectation)
    ("[thresholds]", "face_quality_min = 0.6", "thresholds.face_quality_min", "no such key"),
    ("[thresholds]", "face_attempts = 2", "thresholds.face_attempts", "no such key"),
]


@pytest.mark.parametrize("section,line,key,expected", UNSUPPORTED, ids=[u[2] for u in UNSUPPORTED])
def test_settings_the_code_does_not_honour_are_refused(tmp_path, section, line, key, expected):
    path = write_variant(tmp_path, section + "\n", f"{line}\n{section}\n" if line.startswith("[") else f"{section}\n{line}\n")
    with pytest.raises(ConfigError) as err:
        config.load_gate(path)
    assert err.value.key == key and err.value.expected == expected
    assert "not supported yet" in err.value.found


def test_secret_files_the_code_does_not_use_yet_are_refused(tmp_path):
    (tmp_path / "sign.key").write_text("k")
    (tmp_path / "signer.pem").write_text("c")
    for old, new, key in (("[logging]", '[pki]\nwatchlist_signer = "signer.pem"\n[logging]', "pki.watchlist_signer"),):
        with pytest.raises(ConfigError, match="not supported yet") as err:
            config.load_gate(write_variant(tmp_path, old, new))
        assert err.value.key == key


def test_the_height_limit_must_be_the_beam_row_that_measures_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        config.load_gate(write_variant(tmp_path, "[eligibility]\n", "[eligibility]\nmin_height_cm = 110\n"))
    assert err.value.key == "eligibility.min_height_cm" and "devices.door.high_row_cm" in err.value.expected
    moved = write_variant(tmp_path, "[eligibility]\n", "[eligibility]\nmin_height_cm = 110\n")
    moved.write_text(moved.read_text().replace("[devices.door]", "[devices.door]\nhigh_row_cm = 110\n", 1))
    assert config.load_gate(moved).eligibility.min_height_cm == 110
    off = write_variant(tmp_path, "[eligibility]\n", "[eligibility]\nmin_height_cm = 0\n")
    assert config.load_gate(off).eligibility.min_height_cm == 0


def test_the_honoured_value_of_a_partly_supported_setting_loads(tmp_path):
    path = write_variant(tmp_path, "[eligibility]\n", "[eligibility]\nmin_height_cm = 120\nchip_authentication = \"required\"\n")
    cfg = config.load_gate(path)
    assert cfg.eligibility.min_height_cm == 120 and cfg.eligibility.chip_authentication == "required"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
@pytest.mark.parametrize("old,key", [("face_fmr = 0.001", "thresholds.face_fmr"), ("passage_s = 60", "timeouts.passage_s")])
def test_non_finite_numbers_are_refused(tmp_path, value, old, key):
    name = old.split(" = ")[0]
    path = write_variant(tmp_path, old, f"{name} = {value}")
    with pytest.raises(ConfigError) as err:
        config.load_gate(path)
    assert err.value.key == key and err.value.expected.startswith("a finite number")


def test_deeply_nested_values_are_a_config_error_not_a_crash(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        config.load_gate(path)
    res = run_cli("config", "check", str(path))
    assert res.returncode == 2 and "Traceback" not in res.stderr and "nested too deeply" in res.stderr
