"""Business calendars: working hours, weekends, public holidays and swapped working days (调休).

`BusinessCalendar` lives in `business`, the YAML reader in `definition`, China's official days in
`china`; import them all from here.
"""

from engine.calendar.business import BusinessCalendar
from engine.calendar.china import CHINA_OFFICIAL_DAYS, china_holidays_yaml
from engine.calendar.definition import WEEKDAY_NAMES, CalendarError

__all__ = ["BusinessCalendar", "CalendarError", "CHINA_OFFICIAL_DAYS", "WEEKDAY_NAMES",
           "china_holidays_yaml"]
