"""The words of the web pages themselves (bundle labels come from the bundle), zh-CN and en."""

from __future__ import annotations

from engine.types import translate

UI: dict[str, dict[str, str]] = {
    "language": {"en": "Language", "zh-CN": "语言"},
    "submit": {"en": "Submit", "zh-CN": "提交"},
    "lookup_title": {"en": "Look up progress", "zh-CN": "查询处理进度"},
    "verify_digits": {"en": "Last {n} digits of the contact phone", "zh-CN": "联系电话后 {n} 位"},
    "look_up": {"en": "Look up", "zh-CN": "查询"},
    "lookup_failed": {"en": "No complaint matches this query number and these digits. Check both and try again.",
                      "zh-CN": "查询编号与电话号码不匹配或不存在，请核对后重试。"},
    "back": {"en": "Back", "zh-CN": "上一步"},
    "next": {"en": "Next", "zh-CN": "下一步"},
    "step": {"en": "Step {n} of {total}", "zh-CN": "第 {n} 步，共 {total} 步"},
    "required": {"en": "required", "zh-CN": "必填"},
    "optional_when": {"en": "needed in some cases", "zh-CN": "视情况填写"},
    "fix_errors": {"en": "Please correct the fields marked below.", "zh-CN": "请修改下面标出的内容。"},
    "submitted_title": {"en": "Thank you, we have received it", "zh-CN": "提交成功，我们已受理"},
    "query_no": {"en": "Query number", "zh-CN": "查询编号"},
    "keep_query_no": {"en": "Keep this number to look up the progress.", "zh-CN": "请保存此编号，用于查询处理进度。"},
    "submit_another": {"en": "Submit another", "zh-CN": "再提交一份"},
    "choose": {"en": "Choose…", "zh-CN": "请选择…"},
    "yes": {"en": "Yes", "zh-CN": "是"},
    "no_records": {"en": "No records yet.", "zh-CN": "暂无记录。"},
    "status": {"en": "Status", "zh-CN": "状态"},
    "created": {"en": "Created", "zh-CN": "创建时间"},
    "too_many": {"en": "Too many requests; please wait a moment and try again.",
                 "zh-CN": "请求过于频繁，请稍后再试。"},
    "honeypot": {"en": "Leave this empty", "zh-CN": "请勿填写"},
    "not_public": {"en": "This form is not open to the public.", "zh-CN": "此表单不对外开放。"},
    "sign_here": {"en": "Sign in the box with a finger, pen or mouse", "zh-CN": "请用手指、触控笔或鼠标在框内签名"},
    "sign_by_typing": {"en": "Or type your name to sign", "zh-CN": "或输入姓名作为签名"},
    "clear_signature": {"en": "Clear signature", "zh-CN": "清除签名"},
}


def ui(key: str, locale: str) -> str:
    """The page text `key` in `locale` (English when missing)."""
    return translate(UI, key, locale)
