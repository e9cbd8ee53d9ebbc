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


# Sign-in, account menu and admin pages (web/auth.py, web/admin.py).
UI.update({
    "sign_in": {"en": "Sign in", "zh-CN": "登录"},
    "sign_out": {"en": "Sign out", "zh-CN": "退出登录"},
    "signin_title": {"en": "Sign in to Docket", "zh-CN": "登录系统"},
    "username": {"en": "Username", "zh-CN": "用户名"},
    "password": {"en": "Password", "zh-CN": "密码"},
    "signin_failed": {"en": "The username or password is not right.", "zh-CN": "用户名或密码不正确。"},
    "signin_missing": {"en": "Enter your username and password.", "zh-CN": "请输入用户名和密码。"},
    "signin_throttled": {"en": "Too many failed sign-ins; wait a few minutes and try again.",
                         "zh-CN": "登录失败次数过多，请几分钟后再试。"},
    "signout_confirm": {"en": "Sign out of Docket?", "zh-CN": "确定退出登录吗？"},
    "signed_in_as": {"en": "Signed in as", "zh-CN": "当前用户"},
    "account_menu": {"en": "Account", "zh-CN": "账户"},
    "main_nav": {"en": "Main", "zh-CN": "主导航"},
    "records_nav": {"en": "Records", "zh-CN": "记录"},
    "admin": {"en": "Administration", "zh-CN": "系统管理"},
    "password_too_short": {"en": "The password must have at least {n} characters.", "zh-CN": "密码至少需要 {n} 个字符。"},
    "password_too_long": {"en": "The password may have at most {n} characters.", "zh-CN": "密码最多 {n} 个字符。"},
    "users": {"en": "Users", "zh-CN": "用户"},
    "roles": {"en": "Roles", "zh-CN": "角色"},
    "departments": {"en": "Departments", "zh-CN": "部门"},
    "reload": {"en": "Reload definitions", "zh-CN": "重新加载定义"},
    "incidents": {"en": "Incidents and outbox", "zh-CN": "故障与待发消息"},
    "audit_log": {"en": "Audit log", "zh-CN": "审计日志"},
    "display_name": {"en": "Name", "zh-CN": "姓名"},
    "department": {"en": "Department", "zh-CN": "部门"},
    "email": {"en": "E-mail", "zh-CN": "电子邮箱"},
    "phone": {"en": "Phone", "zh-CN": "电话"},
    "active": {"en": "Active", "zh-CN": "启用"},
    "inactive": {"en": "Deactivated", "zh-CN": "已停用"},
    "deactivate": {"en": "Deactivate", "zh-CN": "停用"},
    "activate": {"en": "Activate", "zh-CN": "启用"},
    "save": {"en": "Save", "zh-CN": "保存"},
    "create_user": {"en": "Add a user", "zh-CN": "新增用户"},
    "new_password": {"en": "New password", "zh-CN": "新密码"},
    "set_password": {"en": "Set password", "zh-CN": "设置密码"},
    "has_password": {"en": "Password set", "zh-CN": "已设密码"},
    "no_password": {"en": "No password", "zh-CN": "未设密码"},
    "members": {"en": "Members", "zh-CN": "成员"},
    "sees": {"en": "Sees", "zh-CN": "可见范围"},
    "parent": {"en": "Part of", "zh-CN": "上级部门"},
    "none": {"en": "None", "zh-CN": "无"},
    "saved": {"en": "Saved.", "zh-CN": "已保存。"},
    "running_version": {"en": "Running version", "zh-CN": "当前运行版本"},
    "reload_ok": {"en": "The definitions were reloaded; the new version is running.",
                  "zh-CN": "定义已重新加载，新版本已生效。"},
    "reload_failed": {"en": "The definitions have errors; the running version was kept.",
                      "zh-CN": "定义有错误，仍在运行原版本。"},
    "reload_help": {"en": "Checks the definitions folder again and, if it is valid, switches to it without a restart.",
                    "zh-CN": "重新检查定义文件夹；无误时不重启即切换到新版本。"},
    "retry": {"en": "Retry", "zh-CN": "重试"},
    "nothing_here": {"en": "Nothing here.", "zh-CN": "暂无内容。"},
    "outbox_dead": {"en": "Undelivered messages", "zh-CN": "未送达消息"},
    "time": {"en": "Time", "zh-CN": "时间"},
    "actor": {"en": "Who", "zh-CN": "操作人"},
    "action": {"en": "Action", "zh-CN": "操作"},
    "target": {"en": "Target", "zh-CN": "对象"},
    "detail": {"en": "Detail", "zh-CN": "详情"},
    "from_date": {"en": "From", "zh-CN": "开始日期"},
    "to_date": {"en": "To", "zh-CN": "结束日期"},
    "filter": {"en": "Filter", "zh-CN": "筛选"},
    "older": {"en": "Older", "zh-CN": "更早"},
    "error_title": {"en": "Something went wrong", "zh-CN": "出错了"},
})

from web.staff_text import STAFF_UI  # noqa: E402 - the inbox, record and definitions pages' words

UI.update(STAFF_UI)


def ui(key: str, locale: str) -> str:
    """The page text `key` in `locale` (English when missing)."""
    return translate(UI, key, locale)
