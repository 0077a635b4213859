"""HTML mail to plain text, good enough for the reply grammar.

Block elements and ``<br>`` become line breaks, list items get a bullet, and quoted
material is marked the way plain-text mail marks it, with ``> `` at the start of each
line: ``<blockquote>`` and Gmail's ``gmail_quote`` mark their content; Outlook's
``divRplyFwdMsg``, ``#appendonsend`` and the border-top line above its header block mark
everything from there to the end, because Outlook puts the original after them.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_SKIPPED = frozenset({"head", "style", "script", "title", "template", "xml"})
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
# Ids after which Outlook (desktop, web, Mac) puts the original; "x_" is the prefix OWA
# adds when it renders a message again.
_OUTLOOK_CUT_IDS = frozenset({"divrplyfwdmsg", "appendonsend", "olk_src_body_section"})
_QUOTE_CLASSES = frozenset({"gmail_quote", "yahoo_quoted", "moz-cite-prefix"})
_BORDER_TOP = re.compile(r"border-top\s*:[^;\"']*solid", re.IGNORECASE)
_HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\n\f]+")
QUOTE_PREFIX = "> "
_MAX_OPEN = 256


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        # One entry per open non-void element: (tag, marks a quote, hides its content).
        self.stack: list[tuple[str, bool, bool]] = []
        self.quote_depth = 0
        self.hidden_depth = 0
        self.cut = False
        self.in_pre = 0

    # -- state ---------------------------------------------------------------------

    @property
    def quoted(self) -> bool:
        return self.cut or self.quote_depth > 0

    @property
    def hidden(self) -> bool:
        return self.hidden_depth > 0

    def push(self, tag: str, quote: bool, hide: bool) -> None:
        # Hostile nesting is not tracked past a bound, which keeps every step cheap.
        if len(self.stack) < _MAX_OPEN:
            self.stack.append((tag, quote, hide))
            self.quote_depth += quote
            self.hidden_depth += hide

    def pop_to(self, tag: str) -> None:
        while self.stack:
            open_tag, quote, hide = self.stack.pop()
            self.quote_depth -= quote
            self.hidden_depth -= hide
            if open_tag == tag:
                return

    def break_line(self, *, force: bool = False) -> None:
        """End the current line. Block edges only end lines that hold text; ``<br>`` and
        Outlook's ``<p>&nbsp;</p>`` also make empty lines."""
        raw = "".join(self.current)
        text = raw.strip(" \t\r\n\f\u00a0")
        self.current = []
        if text or force or "\u00a0" in raw:
            prefix = QUOTE_PREFIX if self.quoted else ""
            self.lines.append((prefix + text.replace("\u00a0", " ")).rstrip())

    # -- parser callbacks -------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): (value or "") for name, value in attrs}
        if tag == "br":
            self.break_line(force=True)
            return
        if tag in _BLOCKS:
            self.break_line()
        if self._starts_outlook_quote(tag, attributes):
            self.cut = True
        if tag == "li":
            self.current.append("- ")
        if tag in ("td", "th") and self.current:
            self.current.append("\t")
        if tag == "pre":
            self.in_pre += 1
        if tag not in _VOID:
            self.push(tag, self._starts_quote(tag, attributes), self._hides(tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            if tag in _BLOCKS:
                self.break_line()
            return
        if not any(open_tag == tag for open_tag, _, _ in self.stack):
            return
        if tag in _BLOCKS:
            self.break_line()
        self.pop_to(tag)
        if tag == "pre":
            self.in_pre = max(0, self.in_pre - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.in_pre:
            pieces = data.split("\n")
            for index, piece in enumerate(pieces):
                if index:
                    self.break_line()
                self.current.append(piece)
            return
        self.current.append(_SPACES.sub(" ", data))

    # -- what marks a quote -------------------------------------------------------------

    @staticmethod
    def _starts_quote(tag: str, attributes: dict[str, str]) -> bool:
        classes = {_unprefixed(name) for name in attributes.get("class", "").lower().split()}
        return tag == "blockquote" or bool(classes & _QUOTE_CLASSES)

    @staticmethod
    def _starts_outlook_quote(tag: str, attributes: dict[str, str]) -> bool:
        if _unprefixed(attributes.get("id", "").lower()) in _OUTLOOK_CUT_IDS:
            return True
        return tag == "div" and bool(_BORDER_TOP.search(attributes.get("style", "")))

    @staticmethod
    def _hides(tag: str, attributes: dict[str, str]) -> bool:
        return tag in _SKIPPED or bool(_HIDDEN.search(attributes.get("style", "")))


def _unprefixed(name: str) -> str:
    return name.removeprefix("x_")


def html_to_text(html: str) -> str:
    """Text of ``html`` with quoted material prefixed by ``> ``; never raises."""
    builder = _TextBuilder()
    try:
        builder.feed(html)
        builder.close()
    except (AssertionError, ValueError, IndexError):
        pass  # html.parser gives up on some broken markup; keep what was read
    builder.break_line()
    text = "\n".join(builder.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
