"""Secrets from Prefect blocks: the S3 keys, the PostgreSQL DSN, the ClickHouse password and the
Slack token, each from the block its setting names (docs/credentials.md).

The settings layer never imports Prefect, so it only carries the blocks' names
(`STIR_S3_CREDENTIALS_BLOCK`, ...). `settings_with_blocks` reads the named blocks at the start of
every flow run and returns a copy of the settings with their values filled in; everything the
run does (dbt's profile, the syncs, the locks, the health check) takes that copy. A setting
naming no block leaves the environment's value (or the default) in place.

A named block that does not exist fails the run with `CredentialsError`, naming the block, its
type and the command that creates it; the error never holds a secret. `save_blocks` is `stir
blocks`: it writes each named block from the current environment's values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.exceptions import ObjectNotFound
from prefect_aws import AwsCredentials
from pydantic import BaseModel, SecretStr, ValidationError

from stir.settings import SECTIONS, Settings, SlackSettings

log = logging.getLogger("stir.credentials")


class CredentialsError(RuntimeError):
    """A block named by the settings is missing or holds something unusable; the message says
    which block, of which type, and how to create it. It never holds a secret."""


@dataclass(frozen=True)
class CredentialBlock:
    """One secret that may come from a block: the section and fields it fills, the setting that
    names the block, the block's type."""

    section: str  # the Settings attribute: "postgres"
    name_field: str  # the field naming the block: "dsn_block"
    value_fields: tuple[str, ...]  # what the block fills: ("dsn",)
    block_type: type[Block]

    @property
    def setting(self) -> str:
        """The environment variable naming the block: STIR_POSTGRES_DSN_BLOCK."""
        return SECTIONS[self.section].env_name(self.name_field)

    @property
    def holds(self) -> str:
        """The environment variables whose values the block holds."""
        return " and ".join(SECTIONS[self.section].env_name(f) for f in self.value_fields)

    @property
    def type_slug(self) -> str:
        return self.block_type.get_block_type_slug()

    def create_hint(self) -> str:
        return (
            f"create it with `stir blocks` where {self.holds} is set, or with "
            f"`prefect block create {self.type_slug}`"
        )


CREDENTIAL_BLOCKS = (
    CredentialBlock("clickhouse", "password_block", ("password",), Secret),
    CredentialBlock(
        "s3", "credentials_block", ("access_key_id", "secret_access_key"), AwsCredentials
    ),
    CredentialBlock("postgres", "dsn_block", ("dsn",), Secret),
    CredentialBlock("slack", "token_block", ("token",), Secret),
)
_SLACK = next(spec for spec in CREDENTIAL_BLOCKS if spec.section == "slack")


async def _load(spec: CredentialBlock, name: str) -> Block:
    try:
        return await spec.block_type.aload(name)
    except ValueError as exc:
        # Prefect's "Unable to find block document" (its cause: the API's 404): ours says more.
        if isinstance(exc.__cause__, ObjectNotFound):
            raise CredentialsError(
                f"the Prefect block {name!r} of type {spec.type_slug!r}, named by "
                f"{spec.setting}, does not exist: {spec.create_hint()}"
            ) from None
        raise


def _values(spec: CredentialBlock, name: str, block: Block) -> dict[str, SecretStr | None]:
    """The section's fields as the block gives them."""
    if isinstance(block, AwsCredentials):
        key_id = block.aws_access_key_id
        secret = block.aws_secret_access_key
        if block.aws_session_token is not None:
            raise CredentialsError(
                f"the Prefect block {name!r} of type {spec.type_slug!r} holds a session token, "
                "which Stir does not pass on: give it long-lived keys, or leave the keys out "
                "everywhere to use the default AWS credential chain (an instance role)"
            )
        return {
            "access_key_id": SecretStr(key_id) if key_id else None,
            "secret_access_key": secret if secret and secret.get_secret_value() else None,
        }
    value = block.get() if isinstance(block, Secret) else None
    if not isinstance(value, str) or not value:
        raise CredentialsError(
            f"the Prefect block {name!r} of type {spec.type_slug!r}, named by {spec.setting}, "
            f"holds no text: {spec.create_hint()}"
        )
    (field,) = spec.value_fields
    return {field: SecretStr(value)}


async def _resolved_section(spec: CredentialBlock, section: BaseModel) -> BaseModel:
    """`section` with the values of the block it names; itself when it names none."""
    name = getattr(section, spec.name_field)
    if name is None:
        return section
    values = _values(spec, name, await _load(spec, name))
    try:  # validated again: a block can hold what the environment would have been refused
        resolved = type(section).model_validate({**dict(section), **values})
    except ValidationError as exc:
        reasons = "; ".join(
            str(error.get("msg", "invalid")).removeprefix("Value error, ")
            for error in exc.errors(include_url=False)
        )
        raise CredentialsError(
            f"the Prefect block {name!r} of type {spec.type_slug!r}, named by {spec.setting}, "
            f"holds an unusable value: {reasons}"
        ) from None
    log.info("%s from the Prefect block %r (%s)", spec.holds, name, spec.type_slug)
    return resolved


async def settings_with_blocks(settings: Settings) -> Settings:
    """A copy of `settings` with the secret of every block they name; `settings` itself when
    they name none (no call to the Prefect API). Raises `CredentialsError`."""
    updates: dict[str, Any] = {}
    for spec in CREDENTIAL_BLOCKS:
        section = getattr(settings, spec.section)
        resolved = await _resolved_section(spec, section)
        if resolved is not section:
            updates[spec.section] = resolved
    return settings.model_copy(update=updates) if updates else settings


async def slack_with_block(slack: SlackSettings) -> SlackSettings:
    """The Slack settings with the token of their block, if they name one (for alerts sent
    outside a run's own settings: a flow's failure hook)."""
    resolved = await _resolved_section(_SLACK, slack)
    assert isinstance(resolved, SlackSettings)
    return resolved


# --- stir blocks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockWrite:
    """What `save_blocks` did with one named block; `detail` is safe to print."""

    block: str
    type_slug: str
    setting: str
    outcome: Literal["written", "unknown"]
    detail: str


def _block_of(spec: CredentialBlock, section: BaseModel) -> Block | None:
    """The block holding the section's current value; None when it has none to hold."""
    values = [getattr(section, field) for field in spec.value_fields]
    if any(value is None or not value.get_secret_value() for value in values):
        return None
    if spec.block_type is AwsCredentials:
        key_id, secret = values
        return AwsCredentials(
            aws_access_key_id=key_id.get_secret_value(), aws_secret_access_key=secret
        )
    (value,) = values
    return Secret(value=value)


async def save_blocks(settings: Settings) -> list[BlockWrite]:
    """Create or update every block the settings name, from the settings' own values (the
    environment and .env). A block whose value is not set here is reported, not written."""
    writes = []
    for spec in CREDENTIAL_BLOCKS:
        section = getattr(settings, spec.section)
        name = getattr(section, spec.name_field)
        if name is None:
            continue
        block = _block_of(spec, section)
        if block is None:
            detail = f"{spec.holds} is not set here: not written"
            writes.append(BlockWrite(name, spec.type_slug, spec.setting, "unknown", detail))
            continue
        await block.asave(name, overwrite=True)
        writes.append(
            BlockWrite(name, spec.type_slug, spec.setting, "written", f"from {spec.holds}")
        )
    return writes
