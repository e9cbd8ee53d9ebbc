"""Messages of import and export in each supported locale (field messages live in forms.messages)."""

from __future__ import annotations

from typing import Any

from engine.types import translate

MESSAGES: dict[str, dict[str, str]] = {
    "unknown_column": {
        "en": "Unknown column: the form has no field called '{header}'.",
        "zh-CN": "未知列：表单中没有名为“{header}”的字段。"},
    "ambiguous_column": {
        "en": "'{header}' names several fields ({fields}); use the field name as the header.",
        "zh-CN": "“{header}”对应多个字段（{fields}），请改用字段名作为列标题。"},
    "duplicate_column": {
        "en": "This column fills the same field as column '{other}'.",
        "zh-CN": "此列与“{other}”列对应同一个字段。"},
    "missing_column": {
        "en": "The file has no column for the required field '{label}'.",
        "zh-CN": "文件缺少必填字段“{label}”的列。"},
    "no_header": {
        "en": "The file has no header row.", "zh-CN": "文件没有标题行。"},
    "too_many_rows": {
        "en": "The file has more than {max} rows; split it into smaller files.",
        "zh-CN": "文件超过 {max} 行，请拆分为较小的文件。"},
    "too_many_columns": {
        "en": "The file has more than {max} columns.", "zh-CN": "文件超过 {max} 列。"},
    "no_header_value": {
        "en": "This cell has a value but its column has no header.",
        "zh-CN": "此单元格有内容，但所在列没有标题。"},
    "formula_no_value": {
        "en": "The cell holds a formula without a saved result; open the file in Excel, save it and import again.",
        "zh-CN": "单元格中的公式没有计算结果；请在 Excel 中打开并保存文件后再导入。"},
    "cell_error": {
        "en": "The cell holds the error {value}.", "zh-CN": "单元格内容为错误值 {value}。"},
    "ambiguous_choice": {
        "en": "'{text}' matches several options ({options}); write the full path or the option value.",
        "zh-CN": "“{text}”对应多个选项（{options}），请填写完整路径或选项值。"},
    "choice_is_group": {
        "en": "'{text}' is a group of options; write one of them: {options}.",
        "zh-CN": "“{text}”是一组选项，请填写其中之一：{options}。"},
    "unknown_choice_close": {
        "en": "'{text}' is not an option; did you mean {options}?",
        "zh-CN": "“{text}”不是可选项，是否应为：{options}？"},
    "unknown_choice_list": {
        "en": "'{text}' is not an option; write one of: {options}.",
        "zh-CN": "“{text}”不是可选项，请填写以下之一：{options}。"},
    "unknown_choice": {
        "en": "'{text}' is not an option of this field; the form's page or an export lists them.",
        "zh-CN": "“{text}”不是此字段的可选项；可在表单页面或导出文件中查看可选项。"},
    "not_xlsx": {
        "en": "The file is not a valid XLSX workbook.", "zh-CN": "文件不是有效的 XLSX 工作簿。"},
    "no_sheet": {
        "en": "The workbook has no worksheet.", "zh-CN": "工作簿中没有工作表。"},
    "too_large": {
        "en": "The file is larger than {max} MB.", "zh-CN": "文件大于 {max} MB。"},
    "unpacked_too_large": {
        "en": "The workbook unpacks to more than {max} MB.", "zh-CN": "工作簿解压后超过 {max} MB。"},
    "strings_too_large": {
        "en": "The workbook's table of texts unpacks to more than {max} MB.",
        "zh-CN": "工作簿的文本表解压后超过 {max} MB。"},
    "too_compressed": {
        "en": "The workbook is compressed suspiciously well ({ratio}:1); it is refused as a possible zip bomb.",
        "zh-CN": "工作簿压缩比异常（{ratio}:1），疑似压缩炸弹，已拒绝。"},
    "too_many_parts": {
        "en": "The workbook has more than {max} parts.", "zh-CN": "工作簿包含的部件超过 {max} 个。"},
    "xml_dtd": {
        "en": "The workbook contains an XML document type declaration, which is not allowed.",
        "zh-CN": "工作簿包含不允许的 XML 文档类型声明（DTD）。"},
    "encoding": {
        "en": "The file is neither UTF-8 nor GB18030 text.", "zh-CN": "文件既不是 UTF-8 也不是 GB18030 编码的文本。"},
    "csv_malformed": {
        "en": "The CSV file cannot be read at row {row}: {detail}.", "zh-CN": "CSV 文件第 {row} 行无法读取：{detail}。"},
    "row_refused": {
        "en": "The row could not be stored: {detail}.", "zh-CN": "该行无法保存：{detail}。"},
    "not_unique_in_file": {
        "en": "The same value appears in row {row} of this file.", "zh-CN": "该值与本文件第 {row} 行重复。"},
    "at_row": {"en": "row {row}", "zh-CN": "第 {row} 行"},
    "at_file": {"en": "file", "zh-CN": "文件"},
    "summary_all": {
        "en": "{stored} of {rows} row(s) stored.", "zh-CN": "共 {rows} 行，已保存 {stored} 行。"},
    "summary_none": {
        "en": "Nothing stored: {errors} error(s) in {failed} of {rows} row(s). Fix them and import the file again, or store only the valid rows.",
        "zh-CN": "未保存任何记录：{rows} 行中有 {failed} 行共 {errors} 个错误。请修正后重新导入，或选择只保存有效行。"},
    "summary_partial": {
        "en": "{stored} of {rows} row(s) stored; {failed} row(s) with errors were left out.",
        "zh-CN": "共 {rows} 行，已保存 {stored} 行；{failed} 行有错误，未保存。"},
    "summary_refused": {
        "en": "Nothing stored: the file was refused.", "zh-CN": "未保存任何记录：文件被拒绝。"},
    "more_errors": {
        "en": "... and {more} more error(s).", "zh-CN": "……另有 {more} 个错误。"},
}


def text(key: str, locale: str = "en", **params: Any) -> str:
    """The message for `key` in `locale` (falling back to English), with params filled in."""
    return translate(MESSAGES, key, locale, **params)


class FileRefused(Exception):
    """The file as a whole cannot be imported (not a workbook, a zip bomb, too many rows...)."""

    def __init__(self, key: str, **params: Any):
        self.key = key
        self.params = params
        super().__init__(key)

    def text(self, locale: str = "en") -> str:
        return text(self.key, locale, **self.params)
