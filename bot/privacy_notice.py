"""`runbot privacy-notice`: docs/privacy-notice.md with its placeholders filled in from the config (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings
from bot.core.consent_text import ConsentText

TEMPLATE = Path(__file__).resolve().parent.parent / "docs" / "privacy-notice.md"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_COMMENT = re.compile(r"\A<!--.*?-->\s*", re.S)

#: the law behind explicit consent for health data, and where to complain, by safety.region
LAW = {
    "uk": ("UK GDPR Article 9(2)(a)", "the Information Commissioner's Office (ico.org.uk)"),
    "ie": ("GDPR Article 9(2)(a)", "the Data Protection Commission (dataprotection.ie)"),
    "eu": ("GDPR Article 9(2)(a)", "your country's data protection authority (listed at edpb.europa.eu)"),
    "ca": ("your province's and Canada's privacy law", "the Office of the Privacy Commissioner of Canada (priv.gc.ca)"),
    "au": ("the Privacy Act 1988 (sensitive information)", "the OAIC (oaic.gov.au)"),
    "us": ("the privacy law of your state", "your state's attorney general"),
}


class NoticeError(Exception):
    """The template names a placeholder runbot does not fill."""


def render(settings: Settings, consent: ConsentText, template: str | None = None) -> str:
    """The notice for this operator: every {placeholder} filled, unknown ones an error, the template's comment gone."""
    try:
        text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    except OSError as exc:
        raise NoticeError(f"cannot read the privacy notice template {TEMPLATE}: {exc.strerror or exc}") from None
    text = _COMMENT.sub("", text)
    p = settings.privacy
    law, authority = LAW[settings.safety.region]
    values = {
        "operator_name": p.operator_name or "[operator name: set privacy.operator_name]",
        "operator_contact": p.operator_contact or "[contact: set privacy.operator_contact]",
        "retention_days": str(p.retention_days),
        "triage_days": str(p.triage_days),
        "consent_version": consent.version,
        "law": law,
        "authority": authority,
        "storage": (
            "a PostgreSQL database on the operator's database server" if settings.database.postgres
            else f"one SQLite file ({settings.database.path}) on the server that runs the bot"
        ),
    }
    unknown = sorted({m for m in _PLACEHOLDER.findall(text) if m not in values})
    if unknown:
        raise NoticeError(f"unknown placeholder(s) in the privacy notice: {', '.join(unknown)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
