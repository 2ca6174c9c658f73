from __future__ import annotations

from pathlib import Path

from freezegun import freeze_time

from tests.conftest import FIXTURES, NOW, invoke, write_config


def test_sample_csv_is_sent_by_smtp_to_a_real_server(tmp_path: Path, smtp_server) -> None:
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    with freeze_time(NOW):
        result = invoke(config, "import", str(FIXTURES / "appointments-sample.csv"))
    assert result.exit_code == 0, result.output
    with freeze_time("2027-01-11T15:05:00Z"):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    assert smtp_server.recipients() == ["avery.lindqvist@patients.example"]
