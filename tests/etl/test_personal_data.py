"""Personal data (PIPL): names and ID numbers dropped, phones hashed with an outside key, rooms cut."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

import pytest

from govdash.core.warehouse import lake_of
from govdash.etl.load import load_paths
from tests.conftest import only_file, rows, text_hits, write_csv, write_xlsx

NAMES = ["陈静", "李建国", "王秀英", "赵敏"]
PHONES = [
    "138 1234 5678",
    "13812345678",
    "13900001111",
    "13700003333",
    "13600004444",
    "13500005555",
]
ID_NUMBERS = ["510104199003071234", "51010719851122567X", "510105197706060011"]
ROOMS = ["3栋2单元501", "2单元501"]
PHONE_PATTERN = r"1[3-9]\d{9}"
ID_PATTERN = r"\d{17}[\dXx]"
# Hex digests may hold a run of digits by chance; they are checked to be digests instead.
DIGEST_COLUMNS = {("tickets", "caller_hash"), ("load_batches", "file_sha256")}

TICKET_HEADER = [
    "工单编号",
    "问题类别",
    "小区",
    "房号",
    "受理时间",
    "联系人",
    "联系电话",
    "身份证号",
    "问题描述",
]
TICKET_ROWS = [
    ["GD001", "房屋渗漏", "锦绣花园", "3栋2单元501", "2024-03-05 09:00", "陈静", "138 1234 5678", "510104199003071234",
     "业主来电13812345678，身份证510104199003071234，反映3栋2单元501室卫生间漏水"],
    ["GD002", "水电维修", "锦绣花园", "5-1-302", "2024-03-06 09:00", "李建国", "13812345678", None,
     "请回电13900001111或座机028-85551234"],
    ["GD003", "房屋渗漏", "锦绣花园", "3栋2单元501", "2024-03-07 09:00", "陈静", 13812345678, None, None],
    ["GD004", "电梯", "翠竹苑", "12幢3单元1201", "2024-03-08 09:00", "王秀英", "13900001111", "51010719851122567X",
     "证件号51010719851122567X"],
    # Rejected rows must not leak either: a bad date, and a phone inside a bad category.
    ["GD005", "电梯", "翠竹苑", "3栋2单元501", "2025-02-30 09:00", "赵敏", "13700003333", "510105197706060011",
     "联系13700003333"],
    ["GD006", "房屋渗漏", "翠竹苑", None, "漏水找13600004444", None, "13600004444", None, None],
]  # fmt: skip
SURVEY_HEADER = [
    "问卷编号",
    "调查批次",
    "小区",
    "房号",
    "姓名",
    "手机号",
    "身份证号",
    "年龄",
    "总体满意度",
    "意见建议",
]
SURVEY_ROWS = [
    ["WJ1", "2024年度", "锦绣花园", "3栋2单元501", "陈静", "13812345678", "510104199003071234", 36, 4,
     "物业电话13500005555总打不通，身份证510105197706060011已登记"],
    ["WJ2", "2024年度", "锦绣花园", "5-1-302", "李建国", "13900001111", None, 52, "满意", None],
]  # fmt: skip


@pytest.fixture
def loaded(tmp_path, load):
    tickets = write_xlsx(tmp_path / "in" / "工单.xlsx", {"3月": [TICKET_HEADER, *TICKET_ROWS]})
    survey = write_csv(tmp_path / "in" / "问卷.csv", [SURVEY_HEADER, *SURVEY_ROWS], "gb18030")
    report, db = load(tickets, survey)
    assert report.ok
    assert [(f.rows_loaded, f.rows_rejected) for f in report.files] == [(4, 2), (2, 0)]
    return db


def test_no_name_phone_id_or_room_number_is_stored_anywhere(loaded):
    db = loaded
    # The scan does see what is stored: a compound name and a scrubbed description.
    assert text_hits(db, ["锦绣花园", "[电话]", "[证件号]"])
    assert text_hits(db, [*NAMES, *PHONES, *ID_NUMBERS, *ROOMS]) == []
    leaks = [
        hit
        for hit in text_hits(db, patterns=[PHONE_PATTERN, ID_PATTERN])
        if hit[:2] not in DIGEST_COLUMNS
    ]
    assert leaks == []
    for table, column in DIGEST_COLUMNS:
        for (value,) in rows(db, f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
            assert re.fullmatch(r"[0-9a-f]{64}", value)


def test_free_text_keeps_its_meaning_with_personal_data_masked(loaded):
    assert rows(loaded, "SELECT ticket_id, description FROM tickets ORDER BY 1") == [
        ("GD001", "业主来电[电话]，身份证[证件号]，反映3栋2单元[房号]卫生间漏水"),
        ("GD002", "请回电[电话]或座机[电话]"),
        ("GD003", None),
        ("GD004", "证件号[证件号]"),
    ]
    assert rows(loaded, "SELECT comment FROM survey_responses WHERE response_id = 'WJ1'") == [
        ("物业电话[电话]总打不通，身份证[证件号]已登记",)
    ]
    assert rows(loaded, "SELECT raw_value FROM rejected_rows WHERE raw_value LIKE '漏水%'") == [
        ("漏水找[电话]",)
    ]


def test_an_unknown_classification_word_is_kept_scrubbed(tmp_path, load):
    sheet = [
        ["工单编号", "受理时间", "问题类别"],
        ["GD001", "2024-03-05 09:00", "漏水找13600004444"],
    ]
    report, db = load(write_xlsx(tmp_path / "in" / "工单.xlsx", {"Sheet1": sheet}))

    assert rows(db, "SELECT category, unmapped_values FROM tickets") == [
        ("未归类", {"category": "漏水找[电话]"})
    ]
    assert list(report.files[0].notes) == [
        ("问题类别", "漏水找[电话]", "未知的问题类别，计入“未归类”")
    ]


def test_rooms_are_cut_to_the_building(loaded):
    assert rows(loaded, "SELECT ticket_id, building FROM tickets ORDER BY 1") == [
        ("GD001", "3栋"),
        ("GD002", "5栋"),
        ("GD003", "3栋"),
        ("GD004", "12幢"),
    ]
    assert rows(loaded, "SELECT response_id, building FROM survey_responses ORDER BY 1") == [
        ("WJ1", "3栋"),
        ("WJ2", "5栋"),
    ]


def test_the_same_phone_written_differently_has_one_hash(loaded):
    hashes = dict(rows(loaded, "SELECT ticket_id, caller_hash FROM tickets"))
    # GD001 "138 1234 5678", GD002 "13812345678" as text, GD003 13812345678 as a number.
    assert hashes["GD001"] == hashes["GD002"] == hashes["GD003"]
    assert hashes["GD004"] != hashes["GD001"]
    assert None not in hashes.values()
    # An unkeyed hash of the number cannot be matched against the warehouse.
    assert hashes["GD001"] != hashlib.sha256(b"13812345678").hexdigest()
    # Same caller and category two days later (GD001 → GD003, both 房屋渗漏): a repeat.
    assert rows(loaded, "SELECT ticket_id, is_repeat FROM tickets ORDER BY 1") == [
        ("GD001", False),
        ("GD002", False),
        ("GD003", True),
        ("GD004", False),
    ]


def test_the_hash_key_lives_outside_the_database(loaded):
    db = loaded
    key_file = db.parent / "hash.key"
    assert key_file.is_file()
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    lake = lake_of(db)
    assert Path(lake.data_path) not in key_file.parents
    assert text_hits(db, [key]) == []
    for stored in [Path(lake.target), *Path(lake.data_path).rglob("*")]:  # catalog and files
        if stored.is_file():
            assert key.encode() not in stored.read_bytes()


def test_originals_kept_for_rebuild_are_private(loaded):
    raw = loaded.parent / "raw"
    assert stat.S_IMODE(raw.stat().st_mode) == 0o700
    kept = [p for p in raw.iterdir()]
    assert len(kept) == 3  # two originals and the manifest
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept)


def test_a_key_from_the_environment_is_used_and_not_written(tmp_path, config, monkeypatch):
    path = write_xlsx(tmp_path / "in" / "工单.xlsx", {"3月": [TICKET_HEADER, TICKET_ROWS[1]]})
    hashes = []
    for name, key in (("a", "key-one-" + "x" * 32), ("b", "key-two-" + "y" * 32)):
        monkeypatch.setenv("GOVDASH_HASH_KEY", key)
        db = tmp_path / name / "warehouse.duckdb"
        only_file(load_paths([path], db, config))
        assert not (db.parent / "hash.key").exists()
        assert text_hits(db, [key]) == []
        hashes.append(rows(db, "SELECT caller_hash FROM tickets")[0][0])
    assert hashes[0] != hashes[1]


def test_a_country_code_does_not_change_the_caller_hash(tmp_path, load):
    sheet = [
        ["工单编号", "受理时间", "联系电话"],
        ["GD001", "2024-03-05 09:00", "+86 138 1234 5678"],
        ["GD002", "2024-03-06 09:00", "13812345678"],
    ]
    _, db = load(write_xlsx(tmp_path / "in" / "工单.xlsx", {"Sheet1": sheet}))

    hashes = dict(rows(db, "SELECT ticket_id, caller_hash FROM tickets"))
    assert hashes["GD001"] == hashes["GD002"]


@pytest.mark.parametrize(
    ("written", "digits"),
    [("请回电 138 1234 5678", "13812345678"), ("电话：139-0000-1111", "13900001111")],
    ids=["spaces", "dashes"],
)
def test_formatted_phone_numbers_in_free_text_are_masked(tmp_path, load, written, digits):
    sheet = [["工单编号", "受理时间", "问题描述"], ["GD001", "2024-03-05 09:00", written]]
    _, db = load(write_xlsx(tmp_path / "in" / "工单.xlsx", {"Sheet1": sheet}))

    (description,) = rows(db, "SELECT description FROM tickets")[0]
    assert "[电话]" in description
    assert digits not in re.sub(r"\D", "", description)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("请回电１３９１２３４５６７８", "请回电[电话]"),
        ("手机138-1234-5678", "手机[电话]"),
        ("+86 138 1234 5678", "[电话]"),
        ("0086-13812345678", "[电话]"),
        ("(+86)13812345678", "[电话]"),
        ("座机028-85551234", "座机[电话]"),
        ("（028）8555 1234", "[电话]"),
        ("0755-8345123", "[电话]"),
        ("身份证51010719851122567ｘ", "身份证[证件号]"),
        ("身份证 510107 19851122 567X", "身份证 [证件号]"),
        ("联系人：张三，电话", "联系人：[姓名]，电话"),
        ("业主王秀英反映楼道灯坏", "业主[姓名]反映楼道灯坏"),
        ("报修人李建国13812345678", "报修人[姓名][电话]"),
        ("住户王先生来电", "住户[姓名]先生来电"),
        ("联系人陈静女儿来电", "联系人[姓名]女儿来电"),
        ("户主刘德华的房子", "户主[姓名]的房子"),
        # ordinary phrases after the same labels stay as written
        ("业主委员会开会", "业主委员会开会"),
        ("住户家中漏水", "住户家中漏水"),
        ("业主卫生间漏水", "业主卫生间漏水"),
        ("业主和物业协商", "业主和物业协商"),
        ("居民反映噪音", "居民反映噪音"),
        (
            "2024-03-05 14:30 处理，费用120元，面积85.5平方",
            "2024-03-05 14:30 处理，费用120元，面积85.5平方",
        ),
    ],
)
def test_scrub_patterns(written, stored):
    import duckdb

    from govdash.etl.scrub import scrub_sql

    con = duckdb.connect()
    assert con.execute(f"SELECT {scrub_sql('$text')}", {"text": written}).fetchone() == (stored,)
