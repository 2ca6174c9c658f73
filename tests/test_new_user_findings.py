"""What a newcomer ran into: a wrong journal path, secrets in a readable config, odd input."""

from __future__ import annotations

from pathlib import Path

from freezegun import freeze_time

from tests.conftest import NOW, invoke, write_config


def test_send_due_with_a_wrong_journal_path_says_so_instead_of_creating_an_empty_one(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    wrong = tmp_path / "reminder.db"  # the journal is reminders.db
    result = invoke(config, "--db", str(wrong), "send-due")
    assert result.exit_code == 2
    assert "no journal here" in result.stderr
    assert not wrong.exists()


def test_a_config_holding_a_password_must_be_readable_by_its_owner_only(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("timeout = 5", 'timeout = 5\npassword = "pw"'))
    config.chmod(0o644)
    result = invoke(config, "status")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"reminder: {config}: email.password: a secret in a file others can read (mode 0644): "
        f"run chmod 600 {config}, or move it to the environment"
    ]
    config.chmod(0o600)
    assert "mode" not in invoke(config, "status").stderr


def test_control_characters_in_a_name_never_reach_the_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    csv = tmp_path / "a.csv"
    csv.write_text(
        "appointment_id,name,email,starts_at\n"
        'A-1,"Ana\x1b]0;pwned\x07 \x1b[2JLee",ana@patients.example,2027-01-12T09:00\n'
    )
    with freeze_time(NOW):
        assert invoke(config, "import", str(csv)).exit_code == 0
        shown = invoke(config, "show", "--appointment", "A-1")
    assert shown.exit_code == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "Ana ]0;pwned [2JLee" in shown.stdout


def test_a_year_out_of_range_is_an_invalid_row_not_a_crash(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    csv = tmp_path / "a.csv"
    csv.write_text("appointment_id,name,email,starts_at\nA-1,Ana,ana@p.example,9999-12-31T23:59\n")
    result = invoke(config, "import", str(csv))
    assert result.exit_code == 2
    assert f"{csv}:2: starts_at:" in result.stderr
