"""The words of the web pages themselves (bundle labels come from the bundle), zh-CN and en."""

from __future__ import annotations

from engine.types import translate

UI: dict[str, dict[str, str]] = {
    "language": {"en": "Language", "zh-CN": "语言"},
    "submit": {"en": "Submit", "zh-CN": "提交"},
    "sending": {"en": "Sending…", "zh-CN": "正在提交…"},
    "lookup_title": {"en": "Look up progress", "zh-CN": "查询处理进度"},
    "verify_digits": {"en": "{field}: last {n} digits", "zh-CN": "{field}后 {n} 位"},
    "verify_field_any": {"en": "Phone or number given", "zh-CN": "所填号码"},
    "look_up": {"en": "Look up", "zh-CN": "查询"},
    "looking_up": {"en": "Looking up…", "zh-CN": "正在查询…"},
    "chars_left": {"en": "{n} characters left", "zh-CN": "还可输入 {n} 字"},
    "chars_cut": {"en": "This box takes at most {max} characters: anything past that was not entered.",
                  "zh-CN": "此栏最多 {max} 字，超出部分未能输入。"},
    "already_sent": {"en": "Already sent one? ", "zh-CN": "已提交过？"},
    "lookup_help": {"en": "The query number is on the page shown after sending, and in the acknowledgement we sent you; "
                          "the digits are the last ones of the “{field}” given with it.",
                    "zh-CN": "查询编号见提交后的确认页面，以及我们发给您的受理通知；数字为提交时所填“{field}”的末几位。"},
    "look_up_another": {"en": "Look up another number", "zh-CN": "查询其他编号"},
    "colon": {"en": ": ", "zh-CN": "："},
    "stars": {"en": "{n} of {max} stars", "zh-CN": "{n} 星（满分 {max} 星）"},
    "lookup_failed": {"en": "Nothing matches this query number and these digits. Check both and try again.",
                      "zh-CN": "查询编号与所填数字不匹配或不存在，请核对后重试。"},
    "progress_path": {"en": "Progress", "zh-CN": "处理进度"},
    "your_answer": {"en": "We need your answer", "zh-CN": "需要您的答复"},
    "send_answer": {"en": "Send my answer", "zh-CN": "提交我的答复"},
    "answer_thanks": {"en": "Thank you: we have your answer.", "zh-CN": "谢谢，我们已收到您的答复。"},
    "answer_by": {"en": "Please answer by {at}.", "zh-CN": "请在 {at} 前答复。"},
    "answer_taken": {"en": "This step has already been answered (perhaps with our staff on the phone); here is where it stands now.",
                     "zh-CN": "此环节已有答复（可能已由工作人员电话回访记录），以下是最新进度。"},
    "answer_expired": {"en": "This page has expired. Look up your complaint again, then answer.",
                       "zh-CN": "页面已过期，请重新查询后再提交答复。"},
    "answer_expired_kept": {"en": "This page has expired. Type the digits again to look up your complaint: what you "
                                  "wrote is kept and shown again, ready to send.",
                            "zh-CN": "页面已过期。请重新输入数字查询，您填写的答复已保留，查询后可直接提交。"},
    "choose_files_again": {"en": " The files you chose were not sent: choose them again.",
                           "zh-CN": "所选文件未能提交，请重新选择。"},
    "customer_actor": {"en": "Customer", "zh-CN": "客户"},
    "customer_may_answer_short": {"en": "customer may answer", "zh-CN": "客户可答复"},
    "customer_may_answer": {"en": "The customer may also answer this step on the progress lookup page; whoever answers first completes it.",
                            "zh-CN": "客户也可在查询进度页面答复此环节，以先提交者为准。"},
    "back": {"en": "Back", "zh-CN": "上一步"},
    "next": {"en": "Next", "zh-CN": "下一步"},
    "step": {"en": "Step {n} of {total}", "zh-CN": "第 {n} 步，共 {total} 步"},
    "required": {"en": "required", "zh-CN": "必填"},
    "title_error": {"en": "Error: ", "zh-CN": "错误："},
    "required_note": {"en": "Fields marked * are required.", "zh-CN": "带 * 的为必填项。"},
    "fill_required": {"en": "Please fill in this field.", "zh-CN": "此项为必填项。"},
    "optional_when": {"en": "needed in some cases", "zh-CN": "视情况填写"},
    "fix_errors": {"en": "Please correct the fields marked below.", "zh-CN": "请修改下面标出的内容。"},
    "fix_these": {"en": "Please correct the following, then send the form again:", "zh-CN": "请修改以下内容后重新提交："},
    "form_too_quick": {"en": "The form was sent a moment too soon. Your entries are kept: check them and send again.",
                       "zh-CN": "提交过快，已保留您填写的内容，请核对后再次提交。"},
    "form_expired": {"en": "This page was open too long and has expired. Your entries are kept: check them and send again.",
                     "zh-CN": "页面打开时间过长已失效，已保留您填写的内容，请核对后再次提交。"},
    "form_stale": {"en": "This page is out of date. Your entries are kept: check them and send again.",
                   "zh-CN": "页面已失效，已保留您填写的内容，请核对后再次提交。"},
    "form_refused": {"en": "The form could not be accepted. Reload the page and fill it in again.",
                     "zh-CN": "表单未能提交，请刷新页面后重新填写。"},
    "submitted_title": {"en": "Thank you, we have received it", "zh-CN": "提交成功，我们已受理"},
    "query_no": {"en": "Query number", "zh-CN": "查询编号"},
    "keep_query_no": {"en": "Keep this number to look up the progress: you will need it and the last {n} digits of the “{field}” you gave.",
                      "zh-CN": "请保存此编号，用于查询处理进度：查询时需输入此编号和{field}后 {n} 位。"},
    "copy_query_no": {"en": "Copy the number", "zh-CN": "复制编号"},
    "copied": {"en": "Copied", "zh-CN": "已复制"},
    "submit_another": {"en": "Submit another", "zh-CN": "再提交一份"},
    "what_next": {"en": "What happens next", "zh-CN": "接下来"},
    "what_next_text": {"en": "We will look into it and contact you if we need anything more. Each step shows on the "
                             "progress page, which is also where you answer when we ask you something and confirm "
                             "the outcome.",
                       "zh-CN": "我们会尽快处理，如需更多信息会与您联系。每一步进展都会显示在处理进度页面；"
                                "需要您补充信息或确认处理结果时，也请在该页面答复。"},
    "choose": {"en": "Choose…", "zh-CN": "请选择…"},
    "yes": {"en": "Yes", "zh-CN": "是"},
    "no_records": {"en": "No records yet.", "zh-CN": "暂无记录。"},
    "status": {"en": "Status", "zh-CN": "状态"},
    "created": {"en": "Created", "zh-CN": "创建时间"},
    "too_many": {"en": "Too many requests: please try again in {wait}.",
                 "zh-CN": "请求过于频繁，请在 {wait}后再试。"},
    "wait_second": {"en": "1 second", "zh-CN": "1 秒"},
    "wait_seconds": {"en": "{n} seconds", "zh-CN": "{n} 秒"},
    "wait_minute": {"en": "1 minute", "zh-CN": "1 分钟"},
    "wait_minutes": {"en": "{n} minutes", "zh-CN": "{n} 分钟"},
    "error_400": {"en": "The request could not be handled", "zh-CN": "请求无法处理"},
    "error_403": {"en": "You may not open this page", "zh-CN": "您无权访问此页面"},
    "error_404": {"en": "Page not found", "zh-CN": "页面不存在"},
    "error_409": {"en": "Someone else changed this first", "zh-CN": "内容已被他人修改"},
    "error_429": {"en": "Too many requests", "zh-CN": "请求过于频繁"},
    "error_500": {"en": "Something went wrong", "zh-CN": "系统出错了"},
    "error_home": {"en": "Back to the start page", "zh-CN": "返回首页"},
    "error_crash": {"en": "something went wrong on our side (reference {ref})",
                    "zh-CN": "系统内部出错（参考编号 {ref}）。请稍后再试；若仍出错，请把参考编号告诉管理员。"},
    "error_refused": {"en": "the service cannot store or read data just now; try again later (reference {ref})",
                      "zh-CN": "系统暂时无法读写数据，请稍后再试（参考编号 {ref}）。"},
    "error_413": {"en": "Too much was sent at once", "zh-CN": "提交的内容过大"},
    "body_too_large": {"en": "The form and its files come to more than {mb} MB, so nothing was sent. "
                             "Go back, attach fewer or smaller files, and send it again.",
                       "zh-CN": "表单及附件合计超过 {mb} MB，未能提交。请返回，减少附件或换用较小的文件后再提交。"},
    "error_back": {"en": "Back to the page", "zh-CN": "返回上一页"},
    "file_too_big": {"en": "{name} is larger than {mb} MB: choose a smaller file.",
                     "zh-CN": "{name} 超过 {mb} MB，请换一个较小的文件。"},
    "files_too_big": {"en": "The files together are larger than {mb} MB: send fewer or smaller files.",
                      "zh-CN": "所选文件合计超过 {mb} MB，请减少文件或换用较小的文件。"},
    "comment_required_to": {"en": "Write a comment: one is needed to choose “{outcome}”.",
                            "zh-CN": "选择“{outcome}”时必须填写意见。"},
    "honeypot": {"en": "Leave this empty", "zh-CN": "请勿填写"},
    "not_public": {"en": "This form is not open to the public.", "zh-CN": "此表单不对外开放。"},
    "form_not_found": {"en": "There is no form at this address, or it is no longer open. Check the link or QR code "
                             "you used, or ask whoever gave it to you for the current one.",
                       "zh-CN": "此地址没有可填写的表单，或该表单已停止使用。请核对您使用的链接或二维码，或向提供方索取最新的链接。"},
    "query_no_not_found": {"en": "This link does not hold a valid query number. Look up your progress with the number "
                                 "in the acknowledgement we sent you.",
                           "zh-CN": "此链接中的查询编号无效。请使用受理通知中的查询编号查询处理进度。"},
    "embed": {"en": "Embed", "zh-CN": "嵌入代码"},
    "address_guessed": {"en": "This is the address your browser used to reach Docket; customers may not be able to "
                              "reach it. Before printing the QR code, ask the administrator to set DOCKET_PUBLIC_URL "
                              "to the address the public uses.",
                        "zh-CN": "此地址为您的浏览器访问本系统所用的地址，客户可能无法访问。打印二维码前，请联系管理员将 "
                                 "DOCKET_PUBLIC_URL 设置为对外公开的地址。"},
    "sign_here": {"en": "Sign in the box with a finger, pen or mouse", "zh-CN": "请用手指、触控笔或鼠标在框内签名"},
    "sign_by_typing": {"en": "Or type your name to sign", "zh-CN": "或输入姓名作为签名"},
    "clear_signature": {"en": "Clear signature", "zh-CN": "清除签名"},
    "kept_files": {"en": "Already uploaded, sent with the form (untick a file to remove it):",
                   "zh-CN": "已上传，将随表单一起提交（取消勾选即可移除）："},
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
    "signin_throttled": {"en": "Too many failed sign-ins: try again in {wait}.",
                         "zh-CN": "登录失败次数过多，请在 {wait}后再试。"},
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
    "reload_help": {"en": "Checks the definitions folder again, its scenario files included (as docket validate does), "
                          "and, if it is valid, switches to it without a restart.",
                    "zh-CN": "重新检查定义文件夹（含测试场景文件，与 docket validate 相同）；无误时不重启即切换到新版本。"},
    "earlier_versions": {"en": "Work under way on earlier versions", "zh-CN": "仍在旧版本上运行的流程"},
    "earlier_versions_help": {
        "en": "They finish on the version they started on. To move them to the running version (each "
              "only where its current step carries over), run on the server:",
        "zh-CN": "它们会在启动时的版本上运行到结束。如需迁移到当前版本（仅当其当前环节在新版本中可延续时迁移），请在服务器上运行："},
    "earlier_versions_row": {"en": "{flow}, version {version}: {count} running",
                             "zh-CN": "{flow}，版本 {version}：{count} 个运行中"},
    "run_scenarios": {"en": "Run the scenarios", "zh-CN": "运行测试场景"},
    "scenarios_help": {"en": "Runs the folder's scenarios (scenarios/*.yaml) on scratch databases before you reload: "
                                "no record of this server is touched.",
                       "zh-CN": "在临时数据库上运行定义文件夹中的测试场景（scenarios/*.yaml），不影响本系统的任何数据；建议在重新加载前运行。"},
    "scenarios_passed": {"en": "{passed} of {total} scenarios passed.", "zh-CN": "{total} 个场景中 {passed} 个通过。"},
    "scenarios_none": {"en": "The definitions folder has no scenarios (scenarios/*.yaml).",
                       "zh-CN": "定义文件夹中没有测试场景（scenarios/*.yaml）。"},
    "scenario_ok": {"en": "passed", "zh-CN": "通过"},
    "scenario_failed": {"en": "failed", "zh-CN": "未通过"},
    "retry": {"en": "Retry", "zh-CN": "重试"},
    "nothing_here": {"en": "Nothing here.", "zh-CN": "暂无内容。"},
    "outbox_dead": {"en": "Undelivered messages", "zh-CN": "未送达消息"},
    "timer_incidents": {"en": "Timers that failed", "zh-CN": "执行失败的定时任务"},
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

# The audit log's actions (web/auth.py audit() callers), by their code with '.' as '_': the log
# keeps the code; the page names it in the reader's language and shows the code on hover.
UI.update({
    "audit_signin": {"en": "Signed in", "zh-CN": "登录"},
    "audit_signin_failed": {"en": "Failed sign-in", "zh-CN": "登录失败"},
    "audit_signout": {"en": "Signed out", "zh-CN": "退出登录"},
    "audit_record_printed": {"en": "Printed a record", "zh-CN": "打印记录"},
    "audit_export": {"en": "Exported records", "zh-CN": "导出记录"},
    "audit_definitions_reload": {"en": "Reloaded the definitions", "zh-CN": "重新加载定义"},
    "audit_records_migrated": {"en": "Migrated records", "zh-CN": "迁移记录"},
    "audit_token_created": {"en": "Created an API token", "zh-CN": "创建 API 令牌"},
    "audit_token_revoked": {"en": "Revoked an API token", "zh-CN": "吊销 API 令牌"},
    "audit_user_created": {"en": "Added a user", "zh-CN": "新增用户"},
    "audit_user_updated": {"en": "Changed a user", "zh-CN": "修改用户信息"},
    "audit_user_permissions": {"en": "Changed a user's roles or department", "zh-CN": "修改用户角色或部门"},
    "audit_user_password": {"en": "Set a password", "zh-CN": "设置密码"},
    "audit_user_activated": {"en": "Activated a user", "zh-CN": "启用用户"},
    "audit_user_deactivated": {"en": "Deactivated a user", "zh-CN": "停用用户"},
    "audit_timer_retry": {"en": "Retried a timer", "zh-CN": "重试定时任务"},
    "audit_outbox_retry": {"en": "Retried a message", "zh-CN": "重发消息"},
})

from web.staff_text import STAFF_UI  # noqa: E402 - the inbox, record and definitions pages' words

UI.update(STAFF_UI)


def ui(key: str, locale: str) -> str:
    """The page text `key` in `locale` (English when missing)."""
    return translate(UI, key, locale)


def wait_text(retry_after: str | int, locale: str) -> str:
    """A Retry-After value (whole seconds, web.ratelimit.retry_after) as people say it in
    `locale`: "45 seconds", "3 minutes" / "45 秒", "3 分钟". Minutes are rounded up, so the
    reader never comes back before the limiter lets them in."""
    seconds = max(1, int(retry_after))
    if seconds < 60:
        return ui("wait_second", locale) if seconds == 1 else ui("wait_seconds", locale).format(n=seconds)
    minutes = -(-seconds // 60)
    return ui("wait_minute", locale) if minutes == 1 else ui("wait_minutes", locale).format(n=minutes)
