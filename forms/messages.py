"""End-user messages of the form engine in each supported locale."""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, dict[str, str]] = {
    "required": {"en": "This field is required.", "zh-CN": "此项为必填项。"},
    "not_text": {"en": "Enter text.", "zh-CN": "请输入文本。"},
    "too_long": {"en": "Use at most {max} characters.", "zh-CN": "最多 {max} 个字符。"},
    "too_short": {"en": "Use at least {min} characters.", "zh-CN": "至少 {min} 个字符。"},
    "pattern": {"en": "The format is not valid.", "zh-CN": "格式不正确。"},
    "not_number": {"en": "Enter a number.", "zh-CN": "请输入数字。"},
    "not_integer": {"en": "Enter a whole number.", "zh-CN": "请输入整数。"},
    "too_small": {"en": "Must be at least {min}.", "zh-CN": "不能小于 {min}。"},
    "too_large": {"en": "Must be at most {max}.", "zh-CN": "不能大于 {max}。"},
    "decimals": {"en": "Use at most {places} decimal places.", "zh-CN": "最多 {places} 位小数。"},
    "not_choice": {"en": "Choose one of the listed options.", "zh-CN": "请从列表中选择。"},
    "not_choices": {"en": "Choose from the listed options.", "zh-CN": "请从列表中选择。"},
    "not_date": {"en": "Enter a date as YYYY-MM-DD.", "zh-CN": "请按 YYYY-MM-DD 输入日期。"},
    "not_datetime": {"en": "Enter a date and time as YYYY-MM-DD HH:MM.", "zh-CN": "请按 YYYY-MM-DD HH:MM 输入日期时间。"},
    "not_boolean": {"en": "Choose yes or no.", "zh-CN": "请选择是或否。"},
    "not_phone": {"en": "Enter a valid phone number.", "zh-CN": "请输入有效的电话号码。"},
    "not_email": {"en": "Enter a valid e-mail address.", "zh-CN": "请输入有效的电子邮箱。"},
    "not_unique": {"en": "This value is already used by another record.", "zh-CN": "该值已被其他记录使用。"},
    "unknown_field": {"en": "This field does not exist on the form.", "zh-CN": "表单中没有此字段。"},
    "readonly": {"en": "This field cannot be changed here.", "zh-CN": "此处不能修改该字段。"},
    "too_many": {"en": "Choose at most {max}.", "zh-CN": "最多选择 {max} 项。"},
    "future": {"en": "The date cannot be in the future.", "zh-CN": "日期不能晚于当前时间。"},
}


def message(key: str, locale: str = "en", **params: Any) -> str:
    """The message for `key` in `locale` (falling back to English), with params filled in."""
    table = MESSAGES.get(key)
    if table is None:
        return key
    text = table.get(locale) or table.get(locale.split("-")[0]) or table["en"]
    return text.format(**params)


class FieldInvalid(Exception):
    """A value broke a field's rule; `key` and `params` name the message."""

    def __init__(self, key: str, **params: Any):
        self.key = key
        self.params = params
        super().__init__(key)

    def text(self, locale: str = "en") -> str:
        return message(self.key, locale, **self.params)
