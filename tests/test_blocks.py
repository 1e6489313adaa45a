"""Secrets from Prefect blocks (docs/credentials.md): settings without S3 keys, and settings
that name no block.

As operated (`stir blocks` from a shell holding the secrets, then a worker of the installed
package on a host holding none, and a block that goes missing) it is tested with the installed
wheel: `tests/test_installed_wheel.py`.
"""

from __future__ import annotations

import pytest

from stir.serving.export import s3_function
from stir.settings import S3Settings, describe, get_settings
from stir.tasks.credentials import settings_with_blocks

# --- unit: S3 without keys --------------------------------------------------------------------


def test_settings_without_s3_keys_are_valid_and_shown_unset(stir_env: pytest.MonkeyPatch) -> None:
    stir_env.setenv("STIR_S3_EMBEDDED", "false")
    stir_env.setenv("STIR_S3_ENDPOINT_URL", "https://s3.eu-west-1.amazonaws.com")
    settings = get_settings()
    assert settings.s3.access_key_id is None
    assert settings.s3.secret_access_key is None
    shown = {row.env: row.value for row in describe(settings)}
    assert shown["STIR_S3_ACCESS_KEY_ID"] == "(not set)"
    assert shown["STIR_S3_SECRET_ACCESS_KEY"] == "(not set)"


def test_s3_keys_come_in_pairs_and_the_embedded_server_gets_its_own(
    stir_env: pytest.MonkeyPatch,
) -> None:
    # The embedded moto server gets its local keys, as before.
    assert get_settings().s3.access_key_id is not None
    stir_env.setenv("STIR_S3_ACCESS_KEY_ID", "AKIAONLYONE")
    with pytest.raises(Exception, match="set together or not at all"):
        get_settings()


def test_the_export_without_keys_carries_no_credential() -> None:
    bare = S3Settings(endpoint_url="https://s3.amazonaws.com", embedded=False)
    function, params = s3_function(bare)
    # No keys and no NOSIGN: ClickHouse signs with its own server-side credentials.
    assert function == "s3({url:String}, {fmt:String})"
    assert params == {}
    collection = S3Settings(
        endpoint_url="https://s3.amazonaws.com", embedded=False, named_collection="stir_s3"
    )
    function, params = s3_function(collection)
    assert function.startswith("s3(`stir_s3`, url = {url:String}")
    assert params == {}


def test_the_export_with_keys_passes_them_as_parameters_only() -> None:
    keyed = S3Settings(
        endpoint_url="https://s3.amazonaws.com",
        embedded=False,
        access_key_id="AKIAEXAMPLE",
        secret_access_key="very-secret",
    )
    function, params = s3_function(keyed)
    assert "AKIAEXAMPLE" not in function
    assert "very-secret" not in function
    assert params == {"key": "AKIAEXAMPLE", "secret": "very-secret"}


async def test_settings_naming_no_block_are_used_as_they_are(stir_env: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert await settings_with_blocks(settings) is settings  # no Prefect API needed
