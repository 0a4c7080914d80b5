"""Settings are read in a fresh process each time, as a server would read them."""

from tests.support import manage_env, run_manage


def test_without_secret_key_and_debug_off_the_server_refuses_with_one_line(tmp_path):
    result = run_manage("check", env=manage_env(SECRET_KEY=None, DEBUG="0", DATA_DIR=str(tmp_path)))
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / ".secret_key").exists()


def test_in_development_a_secret_key_is_generated_once_and_kept(tmp_path):
    environment = manage_env(SECRET_KEY=None, DEBUG="1", DATA_DIR=str(tmp_path))
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = run_manage("shell", "--no-imports", "-c", code, env=environment)
    second = run_manage("shell", "--no-imports", "-c", code, env=environment)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / ".secret_key").read_text().strip()
    assert len(key) >= 50
    assert first.stdout.strip() == second.stdout.strip() == key
    assert (tmp_path / ".secret_key").stat().st_mode & 0o077 == 0


def test_a_malformed_value_names_the_variable_in_one_line():
    result = run_manage("check", env=manage_env(DEBUG="1", DATABASE_URL="nonsense://x"))
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "DATABASE_URL" in result.stderr


def test_provider_keys_and_base_urls_use_the_sdk_names():
    code = (
        "from django.conf import settings; p = settings.PROVIDERS; "
        "print(p['openai']['api_key'], p['openai']['base_url'], p['anthropic']['base_url'],"
        " p['gemini']['api_key'])"
    )
    environment = manage_env(
        DEBUG="1",
        OPENAI_API_KEY="sk-op",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1/",
        ANTHROPIC_BASE_URL="http://127.0.0.1:8/",
        GEMINI_API_KEY="g-key",
    )
    result = run_manage("shell", "--no-imports", "-c", code, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "sk-op",
        "http://127.0.0.1:9/v1",
        "http://127.0.0.1:8",
        "g-key",
    ]


def test_a_misspelt_boolean_is_refused_not_read_as_off():
    result = run_manage("check", env=manage_env(DEBUG="ture"))
    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


def test_error_lines_never_echo_a_database_password():
    result = run_manage("check", env=manage_env(DEBUG="1", DATABASE_URL="mysql://u:hunter2@db/x"))
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr
