"""The monthly bulletin, read back: the .docx with python-docx, the PDFs with pdftotext.

The warehouse is the real loader's, from the generated tickets of warehouse_data (a quiet 2024
before December 2024 – March 2025, so March has a last month and a same month last year).
Every figure the bulletin prints is computed again here with pandas from the generated rows
(expected_tickets), formatted by this test's own code, and looked for in the document.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import docx
import pandas as pd
import pytest

from govdash.analytics.queries.bulletin import bulletin_data, month_filters
from govdash.analytics.reports.bulletin import (
    SHIPPED_TEMPLATE,
    BulletinContent,
    BulletinError,
    bulletin_content,
    bulletin_docx,
    bulletin_pdf,
    template_path,
    three_rate_ranking,
)
from govdash.analytics.reports.bulletin_template import build_template
from govdash.core.access import Scope
from govdash.core.audit import AuditLog
from govdash.core.config import ConfigError, load_config
from govdash.core.warehouse import current_snapshot
from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    build,
    expected_tickets,
    generate_tickets,
    history_tickets,
    open_db,
    shipped_config,
    survey_rows,
)
from tests.conftest import write_csv, write_xlsx

CONFIG = shipped_config()
MARCH = date(2025, 3, 1)
GENERATED = datetime(2025, 4, 2, 9, 30)
PARENT = {"community": "street", "compound": "community"}
HOUSEHOLDS = sum(row[3] for row in REGISTER)


# --- the warehouse and the expected figures -------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("bulletin")
    tickets = history_tickets() + generate_tickets()
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}),
        write_csv(folder / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8-sig"),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    return build(folder, files), expected_tickets(tickets)


def month_rows(frame: pd.DataFrame, first: date) -> pd.DataFrame:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return frame[
        (frame.accepted_at >= datetime.combine(first, datetime.min.time()))
        & (frame.accepted_at < datetime.combine(following, datetime.min.time()))
    ]


def pct(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value * 100:.1f}%"


def three_rates(rows: pd.DataFrame) -> dict[str, float]:
    base = rows[rows.valid_callback == "是"]
    n = len(base)
    if n == 0:
        nan = float("nan")
        return {"n": 0, "response": nan, "resolution": nan, "satisfaction": nan, "composite": nan}
    response = (base.contacted == "是").sum() / n
    resolution = (base.resolved == "是").sum() / n
    satisfaction = (
        (base.satisfaction == "满意").sum() + 0.9 * (base.satisfaction == "基本满意").sum()
    ) / n
    return {
        "n": n,
        "response": response,
        "resolution": resolution,
        "satisfaction": satisfaction,
        "composite": 0.2 * response + 0.4 * resolution + 0.4 * satisfaction,
    }


def on_time_rate(rows: pd.DataFrame, column: str) -> float:
    judged = rows[rows[column].isin(["on_time", "late"])]
    return (judged[column] == "on_time").mean() if len(judged) else float("nan")


def backlog_at(frame: pd.DataFrame, first: date) -> tuple[pd.DataFrame, datetime]:
    """Tickets open at the end of the month starting `first`, and the reference moment."""
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    end = datetime.combine(following, datetime.min.time())
    reference = min(end, frame.attrs["as_of"])
    open_rows = frame[
        (frame.accepted_at < end)
        & ((frame.closed_at >= end) | (frame.closed_at.isna() & frame.is_open))
    ].copy()
    due = open_rows.accepted_at + pd.to_timedelta(open_rows.close_limit, unit="h")
    open_rows["is_overdue"] = due < reference
    open_rows["overdue_days"] = (reference - due).dt.total_seconds() / 86400
    return open_rows, reference


def unit_frame(frame: pd.DataFrame, first: date, level: str) -> pd.DataFrame:
    """Per unit of `level` in the month: tickets, the 三率 and a competition rank."""
    rows = month_rows(frame, first)
    found = []
    for unit, group in rows.groupby(level):
        rates = three_rates(group)
        found.append({"unit": unit, "tickets": len(group), **rates})
    table = pd.DataFrame(found)
    table["shown"] = (table["composite"] * 100).round(1)
    ranked = table["n"] >= CONFIG.min_group_size
    table["rank"] = table["shown"].where(ranked).rank(method="min", ascending=False)
    return table.set_index("unit")


def change_words(now: float, before: float, against: str) -> str:
    moved = round((now - before) * 100, 1)
    if moved == 0:
        return f"{against}持平"
    return f"{against}{'上升' if moved > 0 else '下降'}{abs(moved):.1f}个百分点"


# --- the documents ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def march(warehouse: tuple[Path, pd.DataFrame]) -> dict[str, Any]:
    """The March bulletin's data at both levels, and its contents (charts drawn once)."""
    db, _ = warehouse
    con = open_db(db)
    try:
        data = {
            level: bulletin_data(con, month_filters(2025, 3), CONFIG, level)
            for level in ("community", "compound")
        }
    finally:
        con.close()
    return {
        "db": db,
        "data": data,
        "content": {
            level: bulletin_content(data[level], CONFIG, generated_at=GENERATED, charts=False)
            for level in data
        },
        "with_charts": bulletin_content(data["community"], CONFIG, generated_at=GENERATED),
    }


def read_docx(data: bytes) -> docx.document.Document:
    return docx.Document(io.BytesIO(data))


def body_text(document: docx.document.Document) -> str:
    return "\n".join(paragraph.text for paragraph in document.paragraphs)


def table_with(document: docx.document.Document, first_header: str, second: str) -> list[list[str]]:
    for table in document.tables:
        header = [cell.text for cell in table.rows[0].cells]
        if header[0] == first_header and header[1] == second:
            return [[cell.text for cell in row.cells] for row in table.rows]
    raise AssertionError(f"no table headed {first_header}, {second}")


@pytest.mark.parametrize("level", ["community", "compound"])
def test_the_three_rate_table_is_every_unit_with_independent_figures(
    warehouse: tuple[Path, pd.DataFrame], march: dict[str, Any], level: str
) -> None:
    _, frame = warehouse
    document = read_docx(bulletin_docx(march["content"][level]))
    name = {"community": "社区", "compound": "小区"}[level]
    rows = table_with(document, "排名", name)
    header, body = rows[0], rows[1:]
    assert header == [
        "排名",
        name,
        "所属街道" if level == "community" else "所属社区",
        "工单量（件）",
        "有效回访（件）",
        "响应率",
        "解决率",
        "满意率",
        "三率综合",
        "排名变化",
    ]
    expected = unit_frame(frame, MARCH, level)
    before = unit_frame(frame, date(2025, 2, 1), level)
    units = sorted({row[2] if level == "compound" else row[1] for row in REGISTER})
    assert sorted(row[1] for row in body) == units  # every unit, once
    parent_of = {
        (row[2] if level == "compound" else row[1]): (row[1] if level == "compound" else row[0])
        for row in REGISTER
    }
    for row in body:
        unit = row[1]
        figures = expected.loc[unit]
        assert row[2] == parent_of[unit]
        assert row[3] == str(int(figures["tickets"]))
        assert row[4] == str(int(figures["n"]))
        if figures["n"] >= CONFIG.min_group_size:
            assert row[0] == str(int(figures["rank"]))
            assert row[5:9] == [
                pct(figures["response"]),
                pct(figures["resolution"]),
                pct(figures["satisfaction"]),
                pct(figures["composite"]),
            ]
            if unit not in before.index or math.isnan(before.loc[unit, "rank"]):
                assert row[9] == "上月未排名"
            else:
                moved = int(before.loc[unit, "rank"]) - int(figures["rank"])
                assert row[9] == (
                    "持平" if moved == 0 else f"上升{moved}位" if moved > 0 else f"下降{-moved}位"
                )
        else:  # too few callbacks to publish a rate (DOMAIN.md §6)
            assert row[0] == "—" and row[5:10] == ["—"] * 5
    ranks = [int(row[0]) for row in body if row[0] != "—"]
    assert ranks == sorted(ranks)  # printed best first


def test_the_overview_paragraphs_say_the_months_figures(
    warehouse: tuple[Path, pd.DataFrame], march: dict[str, Any]
) -> None:
    _, frame = warehouse
    text = body_text(read_docx(bulletin_docx(march["content"]["community"])))
    now = month_rows(frame, MARCH)
    before = month_rows(frame, date(2025, 2, 1))
    year_ago = month_rows(frame, date(2024, 3, 1))
    assert len(year_ago) > 0 and len(before) > 0
    difference = len(now) - len(before)
    words = ("增加", "增长") if difference > 0 else ("减少", "下降")
    relative = abs(difference) / len(before) * 100
    assert (
        f"共受理群众诉求工单{len(now)}件，环比{words[0]}{abs(difference)}件（{words[1]}{relative:.1f}%）"
        in text
    )
    yearly = len(now) - len(year_ago)
    words = ("增加", "增长") if yearly > 0 else ("减少", "下降")
    assert (
        f"同比{words[0]}{abs(yearly)}件（{words[1]}{abs(yearly) / len(year_ago) * 100:.1f}%）"
        in text
    )
    assert f"每百户{len(now) * 100 / HOUSEHOLDS:.1f}件" in text

    minutes = now.response_minutes.dropna()
    assert f"首次响应时间中位数{minutes.quantile(0.5):.1f}分钟" in text
    assert f"P90为{minutes.quantile(0.9):.1f}分钟" in text
    for column, label in (
        ("response_status", "及时响应率"),
        ("resolution_status", "按时办结率"),
    ):
        rate = on_time_rate(now, column)
        assert (
            f"{label}{pct(rate)}（{change_words(rate, on_time_rate(before, column), '环比')}，"
            f"{change_words(rate, on_time_rate(year_ago, column), '同比')}）"
        ) in text
    rates, last, yearly_rates = three_rates(now), three_rates(before), three_rates(year_ago)
    assert (
        f"本月有效回访{rates['n']}件，响应率{pct(rates['response'])}、解决率{pct(rates['resolution'])}、"
        f"满意率{pct(rates['satisfaction'])}，三率综合{pct(rates['composite'])}，"
        f"{change_words(rates['composite'], last['composite'], '环比')}，"
        f"{change_words(rates['composite'], yearly_rates['composite'], '同比')}"
    ) in text
    open_now, _ = backlog_at(frame, MARCH)
    open_before, _ = backlog_at(frame, date(2025, 2, 1))
    assert (
        f"在办积压工单{len(open_now)}件，其中超期{int(open_now.is_overdue.sum())}件"
        f"（上月末{len(open_before)}件、超期{int(open_before.is_overdue.sum())}件）"
    ) in text
    assert f"本月重复诉求{int(now.is_repeat.sum())}件" in text
    assert f"统计期内受理的工单{len(now)}件" in text


def test_red_black_overdue_and_hot_spots(
    warehouse: tuple[Path, pd.DataFrame], march: dict[str, Any]
) -> None:
    _, frame = warehouse
    document = read_docx(bulletin_docx(march["content"]["community"]))
    expected = unit_frame(frame, MARCH, "community").sort_values("shown")
    red, black = (
        [[cell.text for cell in row.cells] for row in table.rows]
        for table in document.tables
        if table.rows[0].cells[0].text == "名次"
    )
    assert red[1][1] == expected.index[-1] and red[1][3] == pct(expected["composite"].iloc[-1])
    assert black[1][1] == expected.index[0] and black[1][3] == pct(expected["composite"].iloc[0])
    assert "红榜1个社区" in body_text(document)  # three communities: one on each list

    open_rows, _ = backlog_at(frame, MARCH)
    overdue = table_with(document, "社区", "所属街道")
    by_unit = open_rows.groupby("community").agg(
        backlog=("ticket_id", "size"),
        overdue=("is_overdue", "sum"),
        longest=("overdue_days", lambda days: days[days > 0].max()),
    )
    listed = {row[0]: row[2:] for row in overdue[1:]}
    assert set(listed) == set(by_unit[by_unit.overdue > 0].index)
    for unit, cells in listed.items():
        figures = by_unit.loc[unit]
        assert cells == [
            str(int(figures.backlog)),
            str(int(figures.overdue)),
            f"{figures.longest:.1f}",
        ]
    assert f"合计{int(open_rows.is_overdue.sum())}件" in body_text(document)

    now = month_rows(frame, MARCH)
    compounds = now.groupby(["community", "compound"]).agg(
        tickets=("ticket_id", "size"),
        with_caller=("phone", lambda p: (p != "").sum()),
        repeats=("is_repeat", "sum"),
    )
    compounds = compounds[compounds.tickets >= CONFIG.min_group_size].reset_index()
    compounds["share"] = compounds.repeats / compounds.with_caller
    compounds = compounds.sort_values(
        ["repeats", "share", "compound"], ascending=[False, False, True]
    ).head(CONFIG.bulletin_hot_spots)
    hot = table_with(document, "社区", "小区")
    assert [row for row in hot[1:]] == [
        [r.community, r.compound, str(r.tickets), str(int(r.repeats)), pct(r.share)]
        for r in compounds.itertuples()
    ]


def test_method_note_and_sources_name_the_warehouse_version(march: dict[str, Any]) -> None:
    content: BulletinContent = march["content"]["community"]
    data = march["data"]["community"]
    text = body_text(read_docx(bulletin_docx(content)))
    # the snapshot the module's warehouse is at (its last load)
    assert data.version == f"数据快照 #{current_snapshot(march['db'])}"
    assert f"数据仓库版本：{data.version}（数据截至2025-03-31 23:00）" in text
    assert f"配置指纹 {CONFIG.fingerprint}" in text
    for file_name in ("台账.xlsx", "工单.csv", "问卷.xlsx"):
        assert file_name in text
    assert "统计期：2025年3月1日至2025年3月31日" in text
    assert "本通报只含汇总数字，不含任何居民个人信息。" in text
    assert "2025年4月2日" in text  # the date it was generated


def test_charts_are_images_in_the_word_file(march: dict[str, Any]) -> None:
    content: BulletinContent = march["with_charts"]
    assert all(chart.png and chart.png.startswith(b"\x89PNG") for chart in content.charts.values())
    document = read_docx(bulletin_docx(content))
    assert len(document.inline_shapes) == 3
    text = body_text(document)
    for caption in ("图1 近12个月工单量走势", "图2 各社区三率综合", "图3 近12个月"):
        assert caption in text


def _soffice() -> str:
    found = shutil.which("soffice")
    if found is None:
        pytest.fail(
            "LibreOffice Writer is required to open the bulletin: bash scripts/install-office.sh",
            pytrace=False,
        )
    return found


def _pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_libreoffice_opens_the_word_file_and_the_pdf_has_every_unit(
    march: dict[str, Any], tmp_path: Path
) -> None:
    document = tmp_path / "2025年3月通报.docx"
    document.write_bytes(bulletin_docx(march["with_charts"]))
    profile = tmp_path / "lo-profile"
    converted = subprocess.run(
        [
            _soffice(),
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path / "out"),
            str(document),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert converted.returncode == 0, converted.stderr
    pdf = tmp_path / "out" / "2025年3月通报.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    text = _pdf_text(pdf).replace(" ", "")
    assert "2025年3月物业服务诉求办理情况通报" in text
    for community in {row[1] for row in REGISTER}:
        assert community in text


def test_the_chromium_pdf_says_what_the_word_file_says(
    march: dict[str, Any], tmp_path: Path
) -> None:
    content: BulletinContent = march["content"]["compound"]
    path = tmp_path / "b.pdf"
    path.write_bytes(bulletin_pdf(content))
    text = _pdf_text(path).replace(" ", "")
    for compound in {row[2] for row in REGISTER}:
        assert compound in text
    for row in content.fields["three_rates"]:
        if row["rank"] != "—":
            assert row["composite"] in text
    assert content.fields["title"] in text


# --- the template -----------------------------------------------------------------------------


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {
            name: archive.read(name)
            for name in ("word/document.xml", "word/header1.xml", "word/footer1.xml")
        }


def test_the_shipped_template_is_what_its_builder_writes(tmp_path: Path) -> None:
    assert _parts(build_template(tmp_path / "t.docx")) == _parts(SHIPPED_TEMPLATE)


def _street_template(path: Path, body: list[str], header: str) -> Path:
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = header
    for line in body:
        document.add_paragraph(line)
    table = document.add_table(rows=3, cols=2)
    table.rows[0].cells[0].text = "{%tr for row in three_rates %}"
    table.rows[1].cells[0].text = "{{ row.unit }}"
    table.rows[1].cells[1].text = "{{ row.composite }}"
    table.rows[2].cells[0].text = "{%tr endfor %}"
    document.save(str(path))
    return path


def test_a_street_points_the_config_at_its_own_template(
    march: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _street_template(
        tmp_path / "甲街道模板.docx",
        ["{{ title }}", "{{ overview[0] }}", "甲街道党工委（盖章）", "{{ date_text }}"],
        "中共甲街道工作委员会",
    )
    settings = tmp_path / "govdash.toml"
    settings.write_text('[bulletin]\ntemplate = "甲街道模板.docx"\nissuer = "甲街道党工委"\n')
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    config = load_config(settings)
    assert template_path(config) == tmp_path / "甲街道模板.docx"
    content = bulletin_content(
        march["data"]["community"], config, generated_at=GENERATED, charts=False
    )
    document = read_docx(bulletin_docx(content, template_path(config)))
    assert document.sections[0].header.paragraphs[0].text == "中共甲街道工作委员会"
    lines = [paragraph.text for paragraph in document.paragraphs]
    assert lines[0] == "2025年3月物业服务诉求办理情况通报"
    assert lines[1] == content.fields["overview"][0]
    assert lines[2:4] == ["甲街道党工委（盖章）", "2025年4月2日"]
    table = [[cell.text for cell in row.cells] for row in document.tables[0].rows]
    assert table == [[row["unit"], row["composite"]] for row in content.fields["three_rates"]]


def test_a_missing_or_broken_template_is_refused_with_its_name(
    march: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    settings = tmp_path / "govdash.toml"
    settings.write_text('[bulletin]\ntemplate = "没有这个文件.docx"\n')
    with pytest.raises(ConfigError, match=r"bulletin\.template"):
        load_config(settings)
    content = march["content"]["community"]
    broken = _street_template(tmp_path / "broken.docx", ["{{ title "], "")
    with pytest.raises(BulletinError, match=r"broken\.docx"):
        bulletin_docx(content, broken)
    renamed = tmp_path / "picture.docx"
    renamed.write_bytes(b"\x89PNG not a word file")
    with pytest.raises(BulletinError, match=r"picture\.docx"):
        bulletin_docx(content, renamed)


def test_text_is_escaped_as_it_is_filled_in(march: dict[str, Any]) -> None:
    content: BulletinContent = march["content"]["community"]
    fields = dict(content.fields)
    fields["title"] = "A&B <社区> “通报”"
    fields["three_rates"] = [{**fields["three_rates"][0], "unit": "<东&社区>"}]
    document = read_docx(bulletin_docx(BulletinContent(fields)))
    assert document.paragraphs[0].text == "A&B <社区> “通报”"
    assert table_with(document, "排名", "社区")[1][1] == "<东&社区>"


# --- the ranking rule, by hand --------------------------------------------------------------------


def test_ranking_shares_printed_ties_and_leaves_small_units_unranked() -> None:
    def table(values: dict[str, tuple[float, int]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "unit": list(values),
                "parent": ["甲街道"] * len(values),
                "tickets": [n for _, n in values.values()],
                "callback_n": [n for _, n in values.values()],
                "response_rate": 1.0,
                "resolution_rate": 1.0,
                "satisfaction_rate": 1.0,
                "three_rate_composite": [v for v, _ in values.values()],
            }
        )

    now = table(
        {
            "甲": (0.90, 10),
            "乙": (0.8504, 10),
            "丙": (0.8496, 10),
            "丁": (0.70, 10),
            "戊": (0.99, 4),
        }
    )
    before = table({"甲": (0.50, 10), "乙": (0.95, 10), "丁": (0.60, 10)})
    ranking = three_rate_ranking(now, before, min_records=5).set_index("unit")
    # 乙 and 丙 both print 85.0%: they share rank 2; 丁 is fourth; 戊 has 4 callbacks.
    assert ranking["rank"].astype("Float64").fillna(-1).to_dict() == {
        "甲": 1, "乙": 2, "丙": 2, "丁": 4, "戊": -1
    }  # fmt: skip
    assert not ranking.loc["戊", "is_ranked"]
    assert ranking.loc["甲", "rank_change"] == 2  # third last month, first now
    assert ranking.loc["乙", "rank_change"] == -1
    assert pd.isna(ranking.loc["丙", "rank_change"])  # not ranked last month
    assert ranking.loc["丁", "rank_change"] == -2
    assert list(ranking.index) == ["甲", "丙", "乙", "丁", "戊"]  # a tie in name order


# --- the command ------------------------------------------------------------------------------


def _govdash(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govdash", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("GOVDASH_")},
    )


def test_the_command_writes_the_bulletin_and_records_it(
    warehouse: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    db, frame = warehouse
    out = tmp_path / "2025年3月通报.docx"
    done = _govdash(
        "bulletin", "--month", "2025-03", "--level", "compound", "--db", str(db), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    document = read_docx(out.read_bytes())
    assert f"共受理群众诉求工单{len(month_rows(frame, MARCH))}件" in body_text(document)
    events = AuditLog(db.parent / "audit.sqlite3").events(action="export")
    assert str(out.resolve()) in events["target"].tolist()

    community = _govdash("bulletin", "--month", "2025-03", "--community", "东社区", "--db", str(db),
                         "--out", str(tmp_path / "东.docx"))  # fmt: skip
    assert community.returncode == 0, community.stderr
    text = body_text(read_docx((tmp_path / "东.docx").read_bytes()))
    east = month_rows(frame, MARCH)
    assert f"东社区共受理群众诉求工单{(east.community == '东社区').sum()}件" in text
    assert "南社区" not in text


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (("--month", "2025-13"), 2, "YYYY-MM"),
        (("--month", "2025-03", "--out", "x.txt"), 2, ".docx 或 .pdf"),
        (("--month", "2027-01"), 1, "工单覆盖：2024-01 至 2025-03"),
    ],
)
def test_the_command_refuses_what_it_cannot_do(
    warehouse: tuple[Path, pd.DataFrame], arguments: tuple[str, ...], code: int, message: str
) -> None:
    db, _ = warehouse
    done = _govdash("bulletin", *arguments, "--db", str(db))
    assert done.returncode == code
    assert message in done.stderr


def test_scope_is_part_of_the_month_filters() -> None:
    month = month_filters(2025, 3, Scope("community", "东社区"))
    assert (month.start, month.end) == (MARCH, MARCH + timedelta(days=30))
    assert month.scope == Scope("community", "东社区")
    with pytest.raises(ValueError):
        month_filters(2025, 13)
