"""China's official public holidays and swapped working days (调休), ready to paste into a bundle.

Source: the yearly 国务院办公厅 notices on holiday arrangements. 2025 and 2026 were checked
against the notices as remembered and against the `chinese-calendar` package 1.11.0 (Nov 2025),
which agrees day for day. 2026's notice was the most recent one known when this was written; treat
it as right but re-check against the published notice before a production year starts.
2027 is left out on purpose: its arrangement (announced each November) was not known, and guessing
swapped working days would be worse than none. Add it here when published.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["CHINA_OFFICIAL_DAYS", "china_holidays_yaml"]

# year -> (holidays as (date or range a..b, name), swapped working days as (date, name))
CHINA_OFFICIAL_DAYS: dict[int, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {
    2025: (
        (
            ("2025-01-01", "元旦 New Year's Day"),
            ("2025-01-28..2025-02-04", "春节 Spring Festival"),
            ("2025-04-04..2025-04-06", "清明节 Qingming"),
            ("2025-05-01..2025-05-05", "劳动节 Labour Day"),
            ("2025-05-31..2025-06-02", "端午节 Dragon Boat Festival"),
            ("2025-10-01..2025-10-08", "国庆节、中秋节 National Day and Mid-Autumn"),
        ),
        (
            ("2025-01-26", "春节调休"),
            ("2025-02-08", "春节调休"),
            ("2025-04-27", "劳动节调休"),
            ("2025-09-28", "国庆节调休"),
            ("2025-10-11", "国庆节调休"),
        ),
    ),
    2026: (
        (
            ("2026-01-01..2026-01-03", "元旦 New Year's Day"),
            ("2026-02-15..2026-02-23", "春节 Spring Festival"),
            ("2026-04-04..2026-04-06", "清明节 Qingming"),
            ("2026-05-01..2026-05-05", "劳动节 Labour Day"),
            ("2026-06-19..2026-06-21", "端午节 Dragon Boat Festival"),
            ("2026-09-25..2026-09-27", "中秋节 Mid-Autumn Festival"),
            ("2026-10-01..2026-10-07", "国庆节 National Day"),
        ),
        (
            ("2026-01-04", "元旦调休"),
            ("2026-02-14", "春节调休"),
            ("2026-02-28", "春节调休"),
            ("2026-05-09", "劳动节调休"),
            ("2026-09-20", "国庆节调休"),
            ("2026-10-10", "国庆节调休"),
        ),
    ),
}


def china_holidays_yaml(years: Iterable[int] = (2025, 2026), *, indent: int = 0) -> str:
    """The `holidays:` and `workdays:` YAML of a calendar for the given years.

    Raises ValueError for a year whose official arrangement is not recorded here.
    """
    chosen = sorted(set(years))
    unknown = [y for y in chosen if y not in CHINA_OFFICIAL_DAYS]
    if unknown:
        known = ", ".join(str(y) for y in sorted(CHINA_OFFICIAL_DAYS))
        raise ValueError(f"no official China holiday arrangement recorded for {unknown} "
                         f"(known: {known})")
    pad = " " * indent
    lines = [f"{pad}holidays:"]
    for year in chosen:
        for day, name in CHINA_OFFICIAL_DAYS[year][0]:
            lines.append(f'{pad}  - "{day}"  # {name}')
    lines.append(f"{pad}workdays:")
    for year in chosen:
        for day, name in CHINA_OFFICIAL_DAYS[year][1]:
            lines.append(f'{pad}  - "{day}"  # {name}')
    return "\n".join(lines) + "\n"
