"""Settings come from ROSTER_* variables, under the values a caller gives."""

import pytest
from pydantic import ValidationError

from roster.settings import Settings


def test_a_variable_sets_its_setting_and_a_given_value_wins(monkeypatch):
    monkeypatch.setenv("ROSTER_HTTP_PORT", "9000")
    monkeypatch.setenv("roster_console_secure_cookies", "false")  # any case
    monkeypatch.setenv("ROSTER_NOT_A_SETTING", "ignored")
    assert Settings().http_port == 9000
    assert Settings().console_secure_cookies is False
    assert Settings(http_port=9100).http_port == 9100


def test_a_bad_value_names_its_setting(monkeypatch):
    monkeypatch.setenv("ROSTER_DATABASE_CONNECTIONS", "two")
    with pytest.raises(ValidationError, match="database_connections"):
        Settings()
