"""Tests of the form engine. The field-type tests share `GALLERY`: a small bundle with one field
of every built-in type, booted on SQLite with a ManualClock by `boot_gallery`."""

from __future__ import annotations

import struct
import zlib
from base64 import b64encode
from datetime import datetime, timezone
from pathlib import Path

from engine.clock import ManualClock
from tests.engine.bundle_kit import write_bundle
from web.system import System, boot, build_registry

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)

GALLERY: dict[str, str] = {
    "bundle.yaml": """\
        bundle: gallery
        version: "1"
        label: {zh-CN: 字段样例, en: Field gallery}
        timezone: Asia/Shanghai
        roles:
          agent: {label: {zh-CN: 客服, en: Agent}}
          supervisor: {label: {zh-CN: 主管, en: Supervisor}}
        departments:
          service: {label: {zh-CN: 客服中心, en: Service centre}}
          hotline: {label: {zh-CN: 热线组, en: Hotline team}, parent: service}
          operations: {label: {zh-CN: 运营部, en: Operations}}
        demo_users:
          - {username: zhao.li, roles: [agent], department: service}
        """,
    "lists/region.yaml": """\
        list: region
        items:
          - value: east
            label: {zh-CN: 华东, en: East China}
            children:
              - value: shanghai
                label: {zh-CN: 上海, en: Shanghai}
                children:
                  - {value: pudong, label: {zh-CN: 浦东, en: Pudong}}
          - {value: north, label: {zh-CN: 华北, en: North China}}
        """,
    "forms/customer.yaml": """\
        form: customer
        title: name
        fields:
          name: {type: text, required: true}
        """,
    "forms/gallery.yaml": """\
        form: gallery
        label: {zh-CN: 样例, en: Gallery}
        numbering: G{seq:4}
        fields:
          section: {type: section, label: {zh-CN: 第一部分, en: Part one}}
          help_text: {type: help_text, text: {zh-CN: 说明, en: Guidance}}
          divider: {type: divider}
          text: {type: text, max_length: 20}
          coded: {type: text, pattern: '[A-Z]{2}\\d{3}', pattern_message: {zh-CN: 如 AB123, en: Like AB123}}
          textarea: {type: textarea}
          rich_text: {type: rich_text, max_length: 500}
          hidden: {type: hidden}
          phone: {type: phone}
          email: {type: email}
          url: {type: url, max_length: 100}
          id_number: {type: id_number, kind: cn_resident_id, mask: true}
          credit_code: {type: id_number, kind: cn_uscc}
          waybill: {type: id_number, kind: waybill}
          contract: {type: id_number, pattern: 'HT-\\d{4}'}
          number: {type: number, min: 0}
          integer: {type: integer}
          money: {type: money, currency: CNY}
          percent: {type: percent, places: 2}
          rating: {type: rating}
          select: {type: select, options: urgency}
          radio: {type: radio, options: [phone, email, web]}
          multiselect: {type: multiselect, options: [late, damaged, lost]}
          checkboxes:
            type: checkboxes
            options:
              - {value: morning, label: {zh-CN: 上午, en: Morning}}
              - {value: evening, label: {zh-CN: 晚上, en: Evening}}
          cascade: {type: cascade, options: region}
          region: {type: region, options: region}
          boolean: {type: boolean}
          date: {type: date}
          datetime: {type: datetime}
          time: {type: time, min: "08:00", max: "20:00"}
          duration: {type: duration, max: 30d}
          owner: {type: user, role: agent}
          role: {type: role}
          department: {type: department}
          reference: {type: reference, form: customer, show: name}
          location: {type: location}
          signature: {type: signature, max_kb: 1}
          subtable:
            type: subtable
            max_rows: 3
            columns:
              number: {type: id_number, kind: waybill, required: true, label: {zh-CN: 运单号, en: Waybill}}
              note: {type: text, max_length: 20}
              fee: {type: money}
              shipped: {type: date}
          auto_number: {type: auto_number, pattern: "CP{seq:6}"}
          computed: {type: computed, expression: "coalesce(money, 0) * 2", result: money}
        """,
}
"""MINI (tests/engine/bundle_kit.py) plus a customer form and the gallery form."""


def tiny_png(width: int = 1, height: int = 1) -> bytes:
    """A valid PNG of one white pixel (or a white rectangle)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{b64encode(data).decode()}"


def boot_gallery(root: Path, files: dict[str, str] | None = None) -> System:
    """The gallery bundle (with `files` overriding) booted on a SQLite file under `root`."""
    bundle = write_bundle(root / "bundle", {**GALLERY, **(files or {})})
    return boot(bundle, db_url=f"sqlite:///{root / 'docket.db'}", clock=ManualClock(NOW),
                registry=build_registry(plugins=False))
