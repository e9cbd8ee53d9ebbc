"""Why an upload was refused, with a message for the person who sent it (en, zh-CN)."""

from __future__ import annotations

from typing import Any

from engine.types import translate

__all__ = ["MESSAGES", "UploadRefused"]

MESSAGES: dict[str, dict[str, str]] = {
    "empty": {"en": "The file is empty.", "zh-CN": "文件是空的。"},
    "too_large": {"en": "The file is larger than {max_mb} MB.", "zh-CN": "文件不能超过 {max_mb} MB。"},
    "too_many_pixels": {
        "en": "The image is {width} x {height} pixels; at most {max_pixels:,} pixels and {max_side:,} "
              "pixels a side are accepted.",
        "zh-CN": "图片为 {width} x {height} 像素，最多接受 {max_pixels:,} 像素、单边 {max_side:,} 像素。"},
    "active_content": {
        "en": "Web pages, SVG images and files carrying scripts are not accepted.",
        "zh-CN": "不接受网页、SVG 图片或带有脚本的文件。"},
    "unknown_type": {
        "en": "This kind of file is not accepted. Accepted: {accepted}.",
        "zh-CN": "不接受此类文件。可接受：{accepted}。"},
    "not_accepted": {
        "en": "A {found} file is not accepted here. Accepted: {accepted}.",
        "zh-CN": "此处不接受 {found} 文件。可接受：{accepted}。"},
    "zip_bomb": {
        "en": "The document expands to far more than its size (a compression bomb?) and is not accepted.",
        "zh-CN": "该文档解压后远大于其本身，疑似压缩炸弹，不予接受。"},
    "macros": {"en": "Documents with macros are not accepted.", "zh-CN": "不接受带宏的文档。"},
    "malformed": {"en": "The file is damaged or not what it claims to be.", "zh-CN": "文件已损坏或与其类型不符。"},
    "no_room": {
        "en": "Files cannot be received just now: please try again later, or send the form without them.",
        "zh-CN": "暂时无法接收文件，请稍后再试，或先提交不含文件的表单。"},
}

STATUS = {"empty": 400, "malformed": 400, "too_large": 413, "too_many_pixels": 413, "zip_bomb": 413,
          "active_content": 415, "unknown_type": 415, "not_accepted": 415, "macros": 415, "no_room": 503}
"""The HTTP status of each refusal: 413 for every "too large", 415 for a refused type."""


class UploadRefused(Exception):
    """An upload broke a rule; `code` names it, `text(locale)` explains it to the sender."""

    def __init__(self, code: str, **params: Any):
        self.code = code
        self.params = params
        super().__init__(self.text("en"))

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)

    def text(self, locale: str = "en") -> str:
        return translate(MESSAGES, self.code, locale, **self.params)
