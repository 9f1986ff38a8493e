"""Message templates: `templates/<channel>/<name>.<language>.j2`, rendered with Jinja2.

An email template starts with a `Subject:` line; the rest is the body. The 14-day notice's
templates start with the line NOTICE_MARK.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from dunflow.money import format_amount


NOTICE_MARK = "{# dunflow: fourteen_day_notice #}"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str


def _format_date(value, language: str = "nl") -> str:
    months = {
        "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
               "september", "oktober", "november", "december"],
        "en": ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"],
    }[language]
    return f"{value.day} {months[value.month - 1]} {value.year}"


class TemplateCatalog:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._env = Environment(
            loader=FileSystemLoader(str(self.directory)),
            undefined=StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self._env.filters["money"] = lambda cents, currency, language="nl": format_amount(cents, currency, language)
        self._env.filters["long_date"] = _format_date

    long_date = staticmethod(_format_date)

    @staticmethod
    def relative_path(channel: str, name: str, language: str) -> str:
        return f"{channel}/{name}.{language}.j2"

    def exists(self, channel: str, name: str, language: str) -> bool:
        return (self.directory / self.relative_path(channel, name, language)).is_file()

    def is_notice(self, channel: str, name: str, language: str) -> bool:
        path = self.directory / self.relative_path(channel, name, language)
        return path.is_file() and path.read_text(encoding="utf-8").startswith(NOTICE_MARK)

    def render(self, channel: str, name: str, language: str, context: dict) -> RenderedMessage:
        try:
            template = self._env.get_template(self.relative_path(channel, name, language))
        except TemplateNotFound:
            raise LookupError(f"template {self.relative_path(channel, name, language)} does not exist") from None
        text = template.render(**context, language=language).strip()
        first_line, _, rest = text.partition("\n")
        if first_line.lower().startswith("subject:"):
            return RenderedMessage(subject=first_line.split(":", 1)[1].strip(), body=rest.strip())
        return RenderedMessage(subject="", body=text)
