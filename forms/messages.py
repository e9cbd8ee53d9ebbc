"""End-user messages of the form engine in each supported locale."""

from __future__ import annotations

from typing import Any, Mapping

from engine.types import label_text, translate

MESSAGES: dict[str, dict[str, str]] = {
    "required": {"en": "This field is required.", "zh-CN": "此项为必填项。"},
    "unreadable": {"en": "This value could not be checked; please try again or contact us.",
                   "zh-CN": "此项无法校验，请重试或联系我们。"},
    "not_text": {"en": "Enter text.", "zh-CN": "请输入文本。"},
    "too_long": {"en": "Use at most {max} characters.", "zh-CN": "最多 {max} 个字符。"},
    "invisible_char": {"en": "Remove the invisible control character ({char}) from this text: it was pasted in "
                             "with it, and could make the text read differently from what is stored.",
                       "zh-CN": "请删除文本中的不可见控制字符（{char}）：它可能随粘贴带入，会使显示的内容与保存的不一致。"},
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
    "not_time": {"en": "Enter a time of day as HH:MM.", "zh-CN": "请按 HH:MM 输入时间。"},
    "not_duration": {"en": "Enter a duration such as 30m, 2h or 1.5 hours.",
                     "zh-CN": "请输入时长，例如 30m、2h 或 1.5 小时。"},
    "business_duration": {"en": "Working time (workdays, workhours) cannot be used here; use minutes, hours or days.",
                          "zh-CN": "此处不能使用工作日或工作小时，请用分钟、小时或天。"},
    "not_url": {"en": "Enter a web address starting with http:// or https://.",
                "zh-CN": "请输入以 http:// 或 https:// 开头的网址。"},
    "not_resident_id": {"en": "Enter a valid 18-character resident ID number.",
                        "zh-CN": "请输入有效的18位居民身份证号码。"},
    "not_uscc": {"en": "Enter a valid 18-character unified social credit code.",
                 "zh-CN": "请输入有效的18位统一社会信用代码。"},
    "not_waybill": {"en": "Enter a waybill number of 8 to 30 letters and digits.",
                    "zh-CN": "请输入8至30位字母或数字的运单号。"},
    "not_rating": {"en": "Choose a rating from 1 to {max}.", "zh-CN": "请选择 1 到 {max} 的评分。"},
    "not_signature": {"en": "The signature must be a PNG image.", "zh-CN": "签名必须是 PNG 图片。"},
    "signature_too_large": {"en": "The signature is larger than {max_kb} KB.",
                            "zh-CN": "签名图片不能超过 {max_kb} KB。"},
    "not_location": {"en": "Enter an address, or a latitude and a longitude.",
                     "zh-CN": "请输入地址，或同时输入纬度和经度。"},
    "bad_latitude": {"en": "Latitude must be between -90 and 90.", "zh-CN": "纬度必须在 -90 到 90 之间。"},
    "bad_longitude": {"en": "Longitude must be between -180 and 180.", "zh-CN": "经度必须在 -180 到 180 之间。"},
    "not_reference": {"en": "Enter the number of an existing record.", "zh-CN": "请输入已有记录的编号。"},
    "no_record": {"en": "There is no such record.", "zh-CN": "没有这条记录。"},
    "not_username": {"en": "Enter a valid user name.", "zh-CN": "请输入有效的用户名。"},
    "no_user": {"en": "There is no active user with this name.", "zh-CN": "没有这个有效用户。"},
    "user_without_role": {"en": "This user does not hold the role {role}.", "zh-CN": "该用户不具备 {role} 岗位。"},
    "system_set": {"en": "This value is set by the system and cannot be entered.",
                   "zh-CN": "此项由系统生成，不能填写。"},
    "not_rows": {"en": "Enter the rows as a list of column values.", "zh-CN": "请按行填写各列的值。"},
    "too_few_rows": {"en": "Add at least {min} rows.", "zh-CN": "至少填写 {min} 行。"},
    "too_many_rows": {"en": "Add at most {max} rows.", "zh-CN": "最多填写 {max} 行。"},
    "rows_invalid": {"en": "Some rows have problems; see each row.", "zh-CN": "部分行有误，请查看各行。"},
}


_TEXTS: dict[tuple[str, str], str] = {}
"""Looked-up message templates by (key, locale); bounded, since a locale may come from a request."""


def message(key: str, locale: str = "en", **params: Any) -> str:
    """The message for `key` in `locale` (falling back to English), with params filled in."""
    text = _TEXTS.get((key, locale))
    if text is None:
        text = translate(MESSAGES, key, locale)
        if len(_TEXTS) < 4096:
            _TEXTS[key, locale] = text
    return text.format(**params) if params else text


class FieldInvalid(Exception):
    """A value broke a field's rule; `key` and `params` name the message.

    `parts` holds the problems inside a composite value (the rows of a sub-table), by the suffix
    that completes the field's name: {"[2].number": FieldInvalid("not_waybill")}.
    `custom` is the analyst's own message (a label, e.g. a field's `pattern_message`), shown
    instead of the built-in text of `key`.
    """

    def __init__(self, key: str, *, parts: Mapping[str, "FieldInvalid"] | None = None,
                 custom: Any = None, **params: Any):
        self.key = key
        self.params = params
        self.parts: dict[str, FieldInvalid] = dict(parts or {})
        self.custom = custom
        super().__init__(key)

    def text(self, locale: str = "en") -> str:
        if self.custom:
            return label_text(self.custom, locale, message(self.key, locale, **self.params))
        return message(self.key, locale, **self.params)

    def messages(self, name: str, locale: str = "en") -> dict[str, str]:
        """Every message of this problem keyed by field name: `name`, and `name[2].number`..."""
        out = {name: self.text(locale)}
        for suffix, part in self.parts.items():
            out.update(part.messages(name + suffix, locale))
        return out
