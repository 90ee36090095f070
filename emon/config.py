"""How every settings object is read from ``EMON_*`` variables: with pydantic-settings, once, by the
entry point (``emon.cli`` and friends), and then passed in.

Constructing a settings object (``Settings(http_port=8001)``) never looks at the environment; only
:meth:`EnvConfig.from_env` does. Every bad variable gives the same error: :class:`ConfigError` naming
it (``emon`` exits 2 with that message, never a traceback). Values are stripped; an empty value means
"the default".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import PlainValidator, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from emon.errors import ConfigError


class Secret(str):
    """A string that does not show itself in a repr or a log line."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('**********')"


SecretText = Annotated[Secret, PlainValidator(lambda v: v if isinstance(v, Secret) else Secret(str(v)))]
"""A field holding a :class:`Secret`; a plain string given for it is wrapped."""


class _Environ(EnvSettingsSource):
    """The environment source of pydantic-settings, over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str], skip: set[str]) -> None:
        self._environ = {k: v.strip() for k, v in environ.items() if v.strip() and k.upper() not in skip}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class EnvConfig(BaseSettings):
    """Base of the settings objects: frozen; field ``x`` is read from ``{env_prefix}X``."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # only from_env reads the environment

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> Self:
        """Read the variables (default: ``os.environ``) over the defaults, then :meth:`check` the
        result; raise :class:`ConfigError` naming the first bad variable. ``given`` fields are
        taken as they are (the nested settings objects)."""
        env = os.environ if environ is None else environ
        skip = {cls.variable(name).upper() for name in given}  # e.g. EMON_ALERTS: not a variable of ours
        try:
            config = cls(**{**_Environ(cls, env, skip)(), **given})
        except ValidationError as exc:
            raise cls._config_error(exc) from exc
        except SettingsError as exc:  # a value pydantic-settings could not even parse
            raise ConfigError(cls.__name__, str(exc)) from exc
        config.check()
        return config

    def check(self) -> None:
        """Rules across fields or beyond a type; raise :class:`ConfigError` naming the variable."""

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of a field."""
        info = cls.model_fields[field]
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if isinstance(alias, str):
            return alias
        if choices:
            return str(choices[0])
        return f"{cls.model_config.get('env_prefix', '')}{field.upper()}"

    @classmethod
    def _config_error(cls, exc: ValidationError) -> ConfigError:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        variable = cls.variable(field) if field in cls.model_fields else field or cls.__name__
        if first["type"] in ("int_parsing", "float_parsing", "int_from_float", "int_type", "float_type"):
            return ConfigError(variable, f"expected a number, got {first['input']!r}")
        message = str(first["msg"])
        return ConfigError(variable, message.removeprefix("Value error, "))
