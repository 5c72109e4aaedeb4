"""Credentials from a Mage ``io_config.yaml`` profile, as inlet settings.

Mage keeps one profile per environment (``default``, ``dev``, …) with keys
such as ``AWS_ACCESS_KEY_ID`` and values that may be ``{{ env_var('X') }}``.
Only the storage keys are read; the rest of the profile (databases,
warehouses) is left alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

#: io_config key -> inlet setting
KEYS = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_REGION": "aws_region",
    "AWS_ENDPOINT": "aws_endpoint",
    "AZURE_CLIENT_ID": "azure_client_id",
    "AZURE_CLIENT_SECRET": "azure_client_secret",
    "AZURE_TENANT_ID": "azure_tenant_id",
    "AZURE_STORAGE_ACCOUNT_NAME": "account_name",
    # not in Mage's template, but what an account key (or Azurite) needs
    "AZURE_STORAGE_ACCOUNT_KEY": "access_key",
    "GOOGLE_SERVICE_ACC_KEY_FILEPATH": "google_application_credentials",
}

_ENV_VAR = re.compile(r"""\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")
_TEMPLATE = re.compile(r"\{\{.*?\}\}")


class IoConfigError(ValueError):
    """The io_config file or profile cannot be used."""


def _expand(value: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value

    def env(m: re.Match) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise IoConfigError(f"io_config key {key} reads env_var('{name}'), which is not set")
        return os.environ[name]

    value = _ENV_VAR.sub(env, value)
    if _TEMPLATE.search(value):
        raise IoConfigError(
            f"io_config key {key} uses a template inlet cannot expand outside Mage "
            "(only env_var('NAME') is expanded); put the value in an environment variable"
        )
    return value


def settings_from_io_config(path: str | os.PathLike, profile: str = "default") -> tuple[dict, dict | None]:
    """The inlet settings of ``profile`` in the io_config file at ``path``,
    and the inline ``GOOGLE_SERVICE_ACC_KEY`` (a service account's JSON) if
    the profile has one instead of a key file."""
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - PyYAML is a dependency of the wheel
        raise IoConfigError("reading io_config.yaml needs PyYAML: pip install pyyaml") from e
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as e:
        raise IoConfigError(f"cannot read io_config {p}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise IoConfigError(f"io_config {p} is not valid YAML: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get(profile), dict):
        names = [k for k, v in (doc or {}).items() if isinstance(v, dict)] if isinstance(doc, dict) else []
        raise IoConfigError(f"io_config {p} has no profile '{profile}' (its profiles: {', '.join(names) or 'none'})")
    prof = doc[profile]
    out: dict[str, Any] = {}
    for key, setting in KEYS.items():
        value = prof.get(key)
        if value is None or value == "":
            continue
        out[setting] = str(_expand(value, key))
    inline = prof.get("GOOGLE_SERVICE_ACC_KEY")
    if isinstance(inline, str) and inline.strip():
        inline = json.loads(_expand(inline, "GOOGLE_SERVICE_ACC_KEY"))
    if isinstance(inline, dict):
        inline = {k: _expand(v, f"GOOGLE_SERVICE_ACC_KEY.{k}") for k, v in inline.items()}
        # Mage's template ships placeholder values; a key without a private key is not one
        if not inline.get("private_key") or "your_private_key" in str(inline.get("private_key")):
            inline = None
    else:
        inline = None
    return out, inline
