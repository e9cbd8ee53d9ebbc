"""Escaping for plain-text channel syntaxes: e-mail headers and IM robot Markdown.

HTML autoescape protects HTML only (RELIABILITY "Templates"). A customer's answer that lands in
an e-mail subject must not add headers (RELIABILITY 15), and one that lands in a DingTalk or
WeCom Markdown message must not become a link, a mass mention or formatting (RELIABILITY 16).
"""

from __future__ import annotations

import re

__all__ = ["header_text", "neutralise_markdown"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

# Markdown (and the HTML subset WeCom accepts) made inert by swapping each syntax character for
# its full-width twin: it reads the same to a Chinese reader and no client parses it, unlike
# backslash escapes, which the robots' Markdown dialects do not all honour. '@' stops @all,
# @所有人 and @mobile mentions; '://' and 'www.' stop auto-linking.
_MARKDOWN_TWINS = str.maketrans({
    "[": "［", "]": "］", "(": "（", ")": "）", "*": "＊", "_": "＿", "`": "｀", "#": "＃",
    ">": "＞", "<": "＜", "!": "！", "~": "～", "|": "｜", "@": "＠", "\\": "＼", "&": "＆",
})
_AUTOLINK = re.compile(r"(?i)(://|www\.)")


def header_text(value: str) -> str:
    """`value` made safe for one e-mail header line: CR, LF and other control characters become
    single spaces, so no text can start a new header (`x\\r\\nBcc: victim`)."""
    return _CONTROL.sub(" ", value).strip()


def neutralise_markdown(value: str) -> str:
    """`value` made inert in DingTalk/WeCom Markdown: no links, mentions, images or formatting.

    Line breaks are kept (a multi-line answer stays readable); every other control character
    becomes a space.
    """
    lines = [_CONTROL.sub(" ", line) for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text = "\n".join(lines).translate(_MARKDOWN_TWINS)
    return _AUTOLINK.sub(lambda m: "：//" if m.group(1) == "://" else m.group(1)[:-1] + "．", text)
