"""`egate sim lane --write-config FILE`: an output flag that never replaces a file unasked."""
from __future__ import annotations

import pytest

from gate.cli import main


def test_an_existing_file_is_left_untouched_without_force(tmp_path, capsys):
    existing = tmp_path / "gate.example.toml"
    existing.write_text("# the shipped example\n")
    code = main(["sim", "lane", "--workdir", str(tmp_path / "lane"), "--write-config", str(existing)])
    assert code == 2
    assert existing.read_text() == "# the shipped example\n"
    err = capsys.readouterr().err
    assert str(existing) in err and "--force" in err
    assert not (tmp_path / "lane").exists()  # refused before any simulator started


def test_the_old_input_looking_flag_is_gone(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["sim", "lane", "--config", "gate.toml"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --config" in capsys.readouterr().err
