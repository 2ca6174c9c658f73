"""Renders messages from Jinja2 templates: pure, StrictUndefined, HTML autoescaped.

Templates: `email_subject.txt`, `email.txt`, `email.html`, `sms.txt`. A rule may have its own,
named `RULE.email.txt` and so on; a `templates_dir` in the config overrides the defaults.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from reminder_cli.models import Claimed, Message
from reminder_cli.smstext import normalise_sms, sms_info

if TYPE_CHECKING:
    import jinja2

TEMPLATE_NAMES = ("email_subject.txt", "email.txt", "email.html", "sms.txt")


class RenderError(Exception):
    """A template that could not be rendered; the text names the template."""


def default_templates_dir() -> Path:
    """The shipped templates: inside the installed package, or beside it in a source tree."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


def format_date(moment: datetime) -> str:
    return f"{moment:%A}, {moment:%B} {moment.day}, {moment.year}"


def format_short_date(moment: datetime) -> str:
    return f"{moment:%a}, {moment:%b} {moment.day}"


def format_time(moment: datetime) -> str:
    return f"{moment.hour % 12 or 12}:{moment:%M} {'AM' if moment.hour < 12 else 'PM'}"


def message_id(claimed: Claimed, sender: str) -> str:
    """A Message-ID that is the same for every send of one reminder, so a re-send is known."""
    domain = sender.rpartition("@")[2].strip(" >") or "reminder-cli.invalid"
    key = f"{claimed.appointment.id}|{claimed.rule}|{claimed.channel}|{claimed.recipient}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"<reminder-{claimed.reminder_id}.{digest}@{domain}>"


class Renderer:
    """Holds the template environment; `render` turns a claimed reminder into a Message."""

    def __init__(
        self,
        practice_name: str,
        practice_phone: str,
        sender: str,
        templates_dir: Path | None = None,
        max_segments: int = 0,
    ) -> None:
        self.max_segments = max_segments
        self.practice_name, self.practice_phone, self.sender = (
            practice_name,
            practice_phone,
            sender,
        )
        self.search = [str(templates_dir)] if templates_dir else []
        self.search.append(str(default_templates_dir()))
        self._env: jinja2.Environment | None = None
        self._templates: dict[tuple[str, str], jinja2.Template] = {}

    @property
    def env(self) -> jinja2.Environment:
        """Built on first use: a run with nothing due never loads Jinja2."""
        if self._env is None:
            import jinja2

            self._env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(self.search),
                auto_reload=False,  # a run renders thousands; templates do not change meanwhile
                undefined=jinja2.StrictUndefined,
                autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
                keep_trailing_newline=False,
            )
        return self._env

    def context(self, claimed: Claimed) -> dict[str, Any]:
        appt = claimed.appointment
        local = appt.starts_at.astimezone(ZoneInfo(appt.timezone))
        name = appt.name.strip()
        return {
            "patient_name": name,
            "greeting": f"Hello {name}," if name else "Hello,",
            "date": format_date(local),
            "short_date": format_short_date(local),
            "time": format_time(local),
            "time_zone": local.tzname() or "",
            "starts_at": local,
            "location": appt.location,
            "clinician": appt.clinician,
            "practice_name": self.practice_name,
            "practice_phone": self.practice_phone,
            "rule": claimed.rule,
            "appointment_id": appt.id,
        }

    def _render(self, name: str, rule: str, context: dict[str, Any]) -> str:
        import jinja2

        try:
            template = self._templates.get((rule, name))
            if template is None:
                template = self.env.select_template([f"{rule}.{name}", name])
                self._templates[(rule, name)] = template
            return template.render(context).strip()
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"template {exc.name or name} line {exc.lineno}: {exc.message}")
        except jinja2.TemplateNotFound:
            raise RenderError(f"template {name} not found in the templates directory")
        except jinja2.UndefinedError as exc:
            raise RenderError(f"template {name}: {exc.message}")
        except Exception as exc:  # a template can raise anything from a filter
            raise RenderError(f"template {name}: {type(exc).__name__}: {exc}")

    def render(self, claimed: Claimed) -> Message:
        context = self.context(claimed)
        if claimed.channel == "sms":
            body = normalise_sms(self._render("sms.txt", claimed.rule, context))
            info = sms_info(body)
            if self.max_segments and info.segments > self.max_segments:
                raise RenderError(
                    f"template sms.txt (rule {claimed.rule}) renders {info.length} characters in "
                    f"{info.encoding}, {info.segments} SMS segments; max_segments is "
                    f"{self.max_segments}: shorten the template"
                )
            detail: dict[str, object] = {"segments": info.segments, "encoding": info.encoding}
            return Message(claimed.reminder_id, "sms", claimed.recipient, body, detail=detail)
        return Message(
            claimed.reminder_id,
            "email",
            claimed.recipient,
            body=self._render("email.txt", claimed.rule, context),
            subject=" ".join(self._render("email_subject.txt", claimed.rule, context).split()),
            html=self._render("email.html", claimed.rule, context),
            headers={
                "Message-ID": message_id(claimed, self.sender),
                "X-Reminder-Id": str(claimed.reminder_id),
            },
        )
