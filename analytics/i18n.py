"""Every user-facing string of the dashboard, in Simplified Chinese first and English."""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

# key -> {"zh": ..., "en": ...}. Placeholders use str.format names and must match across
# languages (a test holds that line). Keys are grouped by where the string appears.
CATALOG: dict[str, dict[str, str]] = {
    # --- app and pages -----------------------------------------------------------------
    "app.title": {
        "zh": "红色物业治理效能看板",
        "en": "Red Property Management Governance Dashboard",
    },
    "page.overview": {"zh": "总览", "en": "Overview"},
    "page.response": {"zh": "响应时效", "en": "Response times"},
    "page.satisfaction": {"zh": "满意度", "en": "Satisfaction"},
    "page.evaluation": {"zh": "年度考评", "en": "Evaluation"},
    "page.data": {"zh": "数据管理", "en": "Data"},
    "page.governance_effect": {"zh": "治理成效", "en": "Governance effect"},
    # --- sidebar filters ---------------------------------------------------------------
    "filter.heading": {"zh": "筛选条件", "en": "Filters"},
    "filter.period_kind": {"zh": "统计周期", "en": "Period"},
    "filter.period.year": {"zh": "年", "en": "Year"},
    "filter.period.quarter": {"zh": "季度", "en": "Quarter"},
    "filter.period.month": {"zh": "月", "en": "Month"},
    "filter.period.date_range": {"zh": "日期范围", "en": "Date range"},
    "filter.year": {"zh": "年份", "en": "Year"},
    "filter.quarter_value": {"zh": "{year}年第{quarter}季度", "en": "Q{quarter} {year}"},
    "filter.month_value": {"zh": "{year}年{month}月", "en": "{year}-{month:02d}"},
    "filter.date_range_value": {"zh": "{start} 至 {end}", "en": "{start} to {end}"},
    "filter.street": {"zh": "街道", "en": "Street"},
    "filter.community": {"zh": "社区", "en": "Community"},
    "filter.compound": {"zh": "小区", "en": "Compound"},
    "filter.property_company": {"zh": "物业企业", "en": "Property company"},
    "filter.category": {"zh": "问题类别", "en": "Category"},
    "filter.priority": {"zh": "紧急程度", "en": "Priority"},
    "filter.channel": {"zh": "来源渠道", "en": "Channel"},
    "filter.level": {"zh": "比较层级", "en": "Compare by"},
    "filter.all": {"zh": "全部", "en": "All"},
    "filter.none": {"zh": "未筛选", "en": "No filters"},
    "filter.reset": {"zh": "重置筛选", "en": "Reset filters"},
    "filter.language": {"zh": "语言 / Language", "en": "Language / 语言"},
    "language.zh": {"zh": "中文", "en": "中文 (Chinese)"},
    "language.en": {"zh": "English（英文）", "en": "English"},
    # --- evaluation levels -------------------------------------------------------------
    "level.compound": {"zh": "小区", "en": "Compound"},
    "level.community": {"zh": "社区", "en": "Community"},
    "level.property_company": {"zh": "物业企业", "en": "Property company"},
    "level.street": {"zh": "街道", "en": "Street"},
    # --- KPIs --------------------------------------------------------------------------
    "kpi.ticket_count": {"zh": "工单量", "en": "Tickets"},
    "kpi.tickets_per_100_households": {"zh": "每百户工单量", "en": "Tickets per 100 households"},
    "kpi.response_p50": {"zh": "首次响应中位数", "en": "Median first response"},
    "kpi.response_p90": {"zh": "首次响应P90", "en": "First response P90"},
    "kpi.on_time_response_rate": {"zh": "及时响应率", "en": "On-time response rate"},
    "kpi.on_time_resolution_rate": {"zh": "按时办结率", "en": "On-time resolution rate"},
    "kpi.contact_rate": {"zh": "响应率", "en": "Response rate"},
    "kpi.resolution_rate": {"zh": "解决率", "en": "Resolution rate"},
    "kpi.satisfaction_rate": {"zh": "满意率", "en": "Satisfaction rate"},
    "kpi.three_rate_composite": {"zh": "三率综合", "en": "Three-rate composite"},
    "kpi.survey_satisfaction_rate": {"zh": "问卷满意率", "en": "Survey satisfaction rate"},
    "kpi.backlog": {"zh": "积压工单", "en": "Backlog"},
    "kpi.overdue": {"zh": "超期工单", "en": "Overdue tickets"},
    # --- units -------------------------------------------------------------------------
    "unit.minutes": {"zh": "分钟", "en": "min"},
    "unit.hours": {"zh": "小时", "en": "h"},
    "unit.days": {"zh": "天", "en": "days"},
    "unit.tickets": {"zh": "件", "en": "tickets"},
    "unit.households": {"zh": "户", "en": "households"},
    "unit.percent": {"zh": "%", "en": "%"},
    "unit.points": {"zh": "分", "en": "points"},
    "unit.percentage_points": {"zh": "个百分点", "en": "percentage points"},
    # --- common chart words ------------------------------------------------------------
    "label.n": {"zh": "n = {n}", "en": "n = {n}"},
    "label.period": {"zh": "统计期：{period}", "en": "Period: {period}"},
    "label.subtitle_separator": {"zh": " · ", "en": " · "},
    "label.small_sample": {"zh": "样本不足", "en": "Sample too small"},
    "label.small_sample_legend": {
        "zh": "样本不足（n < {min_sample}）",
        "en": "Sample too small (n < {min_sample})",
    },
    "label.sufficient_sample": {"zh": "样本充足", "en": "Sufficient sample"},
    "label.interval_95": {"zh": "95% 置信区间", "en": "95% interval"},
    "label.box_legend": {"zh": "箱体 P25–P75，须 P10–P90", "en": "Box P25–P75, whiskers P10–P90"},
    "label.red_list": {"zh": "红榜", "en": "Red list (best)"},
    "label.black_list": {"zh": "黑榜", "en": "Black list (worst)"},
    "label.other_units": {"zh": "其他单位", "en": "Other units"},
    "label.this_unit": {"zh": "本单位", "en": "This unit"},
    "label.street_average": {"zh": "街道平均", "en": "Street average"},
    "label.before": {"zh": "之前", "en": "Before"},
    "label.after": {"zh": "之后", "en": "After"},
    "label.previous_wave": {"zh": "上一批次", "en": "Previous wave"},
    "label.current_wave": {"zh": "本批次", "en": "Current wave"},
    "label.p50": {"zh": "中位数（P50）", "en": "Median (P50)"},
    "label.p90": {"zh": "P90", "en": "P90"},
    "label.share": {"zh": "占比", "en": "Share"},
    # --- chart titles ------------------------------------------------------------------
    "chart.monthly_trend": {"zh": "月度工单量趋势", "en": "Monthly ticket volume"},
    "chart.red_black_list": {"zh": "红黑榜", "en": "Red and black list"},
    "chart.response_distribution": {
        "zh": "首次响应时长分布（按{group}）",
        "en": "First-response time by {group}",
    },
    "chart.response_percentile_trend": {
        "zh": "首次响应时长 P50 / P90 趋势",
        "en": "First-response time, P50 and P90 by month",
    },
    "chart.backlog_aging": {"zh": "积压工单账龄", "en": "Backlog aging"},
    "chart.weekday_hour": {
        "zh": "工单受理时间分布（星期 × 时段）",
        "en": "Tickets by weekday and hour",
    },
    "chart.repeat_requests": {
        "zh": "重复诉求（{days} 天内同一居民同类问题）",
        "en": "Repeat requests (same resident and category within {days} days)",
    },
    "chart.longest_open": {"zh": "未办结时间最长的工单", "en": "Longest open tickets"},
    "chart.survey_item_rates": {"zh": "问卷各项满意率", "en": "Survey satisfaction by item"},
    "chart.profile_vs_average": {
        "zh": "{unit}与街道平均对比",
        "en": "{unit} compared with the street average",
    },
    "chart.wave_change": {"zh": "两次调查的变化", "en": "Change between survey waves"},
    "chart.response_rate": {"zh": "问卷参与率", "en": "Survey response rate"},
    "chart.callback_satisfaction": {
        "zh": "回访满意率趋势",
        "en": "Callback satisfaction over time",
    },
    "chart.comment_words": {"zh": "意见建议高频词", "en": "Most frequent words in comments"},
    "chart.before_after": {
        "zh": "加入红色物业前后对比",
        "en": "Before and after joining red property management",
    },
    # --- axis titles -------------------------------------------------------------------
    "axis.month": {"zh": "月份", "en": "Month"},
    "axis.date": {"zh": "日期", "en": "Date"},
    "axis.unit": {"zh": "单位", "en": "Unit"},
    "axis.ticket_count": {"zh": "工单量（件）", "en": "Tickets"},
    "axis.tickets_per_100_households": {
        "zh": "每百户工单量（件）",
        "en": "Tickets per 100 households",
    },
    "axis.response_minutes": {"zh": "首次响应时长（分钟）", "en": "First response (minutes)"},
    "axis.resolution_hours": {"zh": "办结时长（小时）", "en": "Time to close (hours)"},
    "axis.open_days": {"zh": "已开时长（天）", "en": "Open for (days)"},
    "axis.aging_bucket": {"zh": "账龄", "en": "Age"},
    "axis.weekday": {"zh": "星期", "en": "Weekday"},
    "axis.hour": {"zh": "时段（时）", "en": "Hour of day"},
    "axis.repeat_share": {"zh": "重复诉求占比", "en": "Share of repeat requests"},
    "axis.item": {"zh": "评价项目", "en": "Item"},
    "axis.rate": {"zh": "比率", "en": "Rate"},
    "axis.satisfaction_rate": {"zh": "满意率", "en": "Satisfaction rate"},
    "axis.response_rate": {"zh": "参与率（答卷户数 ÷ 总户数）", "en": "Responses ÷ households"},
    "axis.change_points": {"zh": "变化（百分点）", "en": "Change (percentage points)"},
    "axis.word": {"zh": "词语", "en": "Word"},
    "axis.word_count": {"zh": "出现次数", "en": "Occurrences"},
    "axis.score": {"zh": "得分", "en": "Score"},
    "axis.share": {"zh": "占比", "en": "Share"},
    "aging.0_1": {"zh": "0–1 天", "en": "0–1 days"},
    "aging.1_3": {"zh": "1–3 天", "en": "1–3 days"},
    "aging.3_7": {"zh": "3–7 天", "en": "3–7 days"},
    "aging.over_7": {"zh": "7 天以上", "en": "Over 7 days"},
    "weekday.1": {"zh": "周一", "en": "Mon"},
    "weekday.2": {"zh": "周二", "en": "Tue"},
    "weekday.3": {"zh": "周三", "en": "Wed"},
    "weekday.4": {"zh": "周四", "en": "Thu"},
    "weekday.5": {"zh": "周五", "en": "Fri"},
    "weekday.6": {"zh": "周六", "en": "Sat"},
    "weekday.7": {"zh": "周日", "en": "Sun"},
    # --- states ------------------------------------------------------------------------
    "state.empty": {
        "zh": "当前筛选条件下没有数据。请放宽筛选条件。",
        "en": "No data for the current filters. Please widen the filters.",
    },
    "state.small_sample": {"zh": "样本不足", "en": "Sample too small"},
    "state.no_warehouse": {
        "zh": "还没有数据。请运行 `govdash demo` 生成演示数据，或在“数据管理”页上传您的表格（也可运行 `govdash load 文件夹`）。",
        "en": "No data yet. Run `govdash demo` for the demo data, or upload your spreadsheets on the Data page (or run `govdash load FOLDER`).",
    },
    "data.upload": {"zh": "上传数据", "en": "Upload"},
    "data.history": {"zh": "加载历史", "en": "Load history"},
    "data.rejected": {"zh": "拒收记录", "en": "Rejected rows"},
    "data.templates": {"zh": "空白模板", "en": "Templates"},
    "data.config": {"zh": "当前配置", "en": "Active config"},
    "data.upload_help": {
        "zh": "可一次上传多个工作簿或 CSV（工单、满意度问卷、年度考评评分、小区台账）。表头、标题行、合计行无需改动，系统自动识别；有问题的行会被拒收并注明原因，不会丢失。",
        "en": "Upload several workbooks or CSVs at once (tickets, surveys, evaluation scores, the compound register). Headers, title rows and totals need no editing; problem rows are rejected with a reason, never lost.",
    },
    "data.choose_files": {"zh": "选择文件", "en": "Choose files"},
    "data.load_button": {"zh": "加载到数据仓库", "en": "Load into the warehouse"},
    "data.loading": {"zh": "正在加载…", "en": "Loading…"},
    "data.loaded": {"zh": "加载完成", "en": "Loaded"},
    "data.load_failed": {
        "zh": "部分文件未能加载，见下方说明",
        "en": "Some files could not be loaded; see below",
    },
    "data.batch": {"zh": "加载批次", "en": "Load batch"},
    "data.no_rejections": {"zh": "没有拒收的行。", "en": "No rejected rows."},
    "data.rejected_caption": {
        "zh": "共 {n} 处问题。下载后按“工作表、行号、列名”在原文件中修改，再重新上传即可（已加载的行不会重复）。",
        "en": "{n} problems. Download, fix each at its sheet, row and column in the original file, and upload it again (loaded rows are not duplicated).",
    },
    "data.templates_help": {
        "zh": "下载空白模板：表头正确，枚举字段带下拉选项。",
        "en": "Blank templates with the right headers and drop-down lists for enumerations.",
    },
    "data.config_source": {
        "zh": "配置文件：{path}（指纹 {fingerprint}）",
        "en": "Config file: {path} (fingerprint {fingerprint})",
    },
    "config.block": {"zh": "板块", "en": "Block"},
    "config.indicator": {"zh": "指标", "en": "Indicator"},
    "config.points": {"zh": "分值", "en": "Points"},
    "config.source": {"zh": "来源", "en": "Source"},
    "config.floor": {"zh": "下限", "en": "Floor"},
    "config.target": {"zh": "目标", "en": "Target"},
    "table.compounds": {"zh": "小区台账", "en": "Compounds"},
    "table.tickets": {"zh": "工单", "en": "Tickets"},
    "table.survey_responses": {"zh": "问卷答卷", "en": "Survey responses"},
    "table.survey_answers": {"zh": "问卷评分", "en": "Survey answers"},
    "table.evaluation_scores": {"zh": "考评评分", "en": "Evaluation scores"},
    "table.evaluation_adjustments": {"zh": "考评加扣分", "en": "Evaluation adjustments"},
    "table.load_batches": {"zh": "加载批次", "en": "Load batches"},
    "table.rejected_rows": {"zh": "拒收记录", "en": "Rejected rows"},
    "history.batch_id": {"zh": "批次", "en": "Batch"},
    "history.loaded_at": {"zh": "加载时间", "en": "Loaded at"},
    "history.file_name": {"zh": "文件", "en": "File"},
    "history.kinds": {"zh": "类型", "en": "Kinds"},
    "history.rows_loaded": {"zh": "加载行数", "en": "Rows loaded"},
    "history.rows_rejected": {"zh": "拒收行数", "en": "Rows rejected"},
    "history.rows_inserted": {"zh": "新增", "en": "Inserted"},
    "history.rows_updated": {"zh": "更新", "en": "Updated"},
    "history.rows_unchanged": {"zh": "未变", "en": "Unchanged"},
    "history.rows_skipped": {"zh": "跳过", "en": "Skipped"},
    "history.sheets_used": {"zh": "使用的工作表", "en": "Sheets used"},
    "history.sheets_skipped": {"zh": "跳过的工作表", "en": "Sheets skipped"},
    "rejected.batch_id": {"zh": "批次", "en": "Batch"},
    "rejected.file_name": {"zh": "文件", "en": "File"},
    "rejected.sheet": {"zh": "工作表", "en": "Sheet"},
    "rejected.row_number": {"zh": "行号", "en": "Row"},
    "rejected.column_name": {"zh": "列名", "en": "Column"},
    "rejected.raw_value": {"zh": "原值", "en": "Value"},
    "rejected.reason": {"zh": "原因", "en": "Reason"},
    "overview.cards_caption": {
        "zh": "统计期：{period}；变化为与上期（{previous}）相比。",
        "en": "Period: {period}; changes against the previous period ({previous}).",
    },
    "overview.rates_trend": {
        "zh": "及时率与三率综合月度趋势",
        "en": "Monthly on-time rates and three-rate composite",
    },
    "overview.too_few": {
        "zh": "各单位记录均少于 {n} 条，红黑榜不公布。",
        "en": "No unit has {n} or more records; the red and black list is not published.",
    },
    "overview.composite": {"zh": "综合得分（0–100）", "en": "Composite score (0–100)"},
    "overview.units": {
        "zh": "单位一览（可排序，选中一行可下钻）",
        "en": "Units (sortable; select a row to drill down)",
    },
    "overview.drill": {"zh": "下钻单位", "en": "Drill into"},
    "overview.drill_compound": {"zh": "下钻到小区工单", "en": "Drill into a compound's tickets"},
    "overview.choose_unit": {"zh": "请选择…", "en": "Choose…"},
    "response.group_by": {"zh": "分组", "en": "Group by"},
    "response.first_response_by": {
        "zh": "首次响应时长分布（按{group}）",
        "en": "First response time by {group}",
    },
    "response.resolution_by": {
        "zh": "办结时长分布（按{group}）",
        "en": "Resolution time by {group}",
    },
    "response.on_time_trend": {
        "zh": "及时响应率与按时办结率",
        "en": "On-time response and resolution rates",
    },
    "response.on_time_note": {
        "zh": "及时率 = 按时 ÷（按时 + 超时）；超过时限仍未响应或未办结的工单计为超时。",
        "en": "On-time rate = on time ÷ (on time + late); tickets still open past their limit count as late.",
    },
    "response.repeat_note": {
        "zh": "重复诉求：同一来电号码、同一问题类别在 {days} 天内再次报事（号码仅以不可逆方式比对）。",
        "en": "Repeat request: the same caller and category within {days} days (numbers compared only as keyed hashes).",
    },
    "satisfaction.period_rule": {
        "zh": "问卷按整批次计入：与统计期有重叠的调查批次全部计入；按月查看时多数月份没有问卷。",
        "en": "Surveys count by whole wave: every wave overlapping the period; most single months hold no survey.",
    },
    "satisfaction.item_title": {
        "zh": "“{item}”满意率（95% 区间）",
        "en": "“{item}” satisfaction rate (95% interval)",
    },
    "satisfaction.small_note": {
        "zh": "{n} 个单位答卷少于 {minimum} 份，标为“样本不足”，不参与评优。",
        "en": "{n} units have fewer than {minimum} respondents: marked “sample too small”, not eligible for awards.",
    },
    "satisfaction.profile_title": {
        "zh": "{unit} 各项满意率与街道平均",
        "en": "{unit}: item rates against the street average",
    },
    "satisfaction.wave_title": {
        "zh": "“{item}”满意率：两次调查对比",
        "en": "“{item}” satisfaction: wave against wave",
    },
    "label.crosses_tier": {
        "zh": "奖项不稳（区间跨越奖项分界）",
        "en": "Award not robust (band crosses a tier)",
    },
    "label.rank_band": {"zh": "名次（5–95% 区间）", "en": "Rank (5–95% band)"},
    "axis.rank": {"zh": "名次", "en": "Rank"},
    "evaluation.year": {"zh": "考评年度", "en": "Year"},
    "evaluation.level": {"zh": "考评层级", "en": "Level"},
    "evaluation.no_scores": {
        "zh": "该年度该层级没有评委评分数据。请在“数据管理”页上传年度考评评分表。",
        "en": "No evaluator scores for this year and level. Upload the evaluation scores on the Data page.",
    },
    "evaluation.ranking": {"zh": "考评排名", "en": "Ranking"},
    "evaluation.ranking_caption": {
        "zh": "{year}年 · {level} · 参评单位 {n} 个，其中符合评优条件 {eligible} 个；配置指纹 {fingerprint}",
        "en": "{year} · {level} · {n} units, {eligible} eligible for awards; config {fingerprint}",
    },
    "evaluation.ranking_chart": {"zh": "总分排名", "en": "Totals"},
    "evaluation.breakdown": {"zh": "单位得分构成", "en": "Where a unit's score comes from"},
    "evaluation.choose_unit": {"zh": "选择单位", "en": "Unit"},
    "evaluation.evaluators": {
        "zh": "评委评分（括号内为去掉的最高、最低分）",
        "en": "Evaluator scores (trimmed scores in brackets)",
    },
    "evaluation.methods": {
        "zh": "三种方法对比（专家权重、熵权法、TOPSIS）",
        "en": "Three methods side by side (expert weights, entropy, TOPSIS)",
    },
    "evaluation.robustness": {
        "zh": "排名稳健性（权重各自在 ±{spread}% 内随机扰动 {draws} 次）",
        "en": "Robustness ({draws} draws, each weight within ±{spread}%)",
    },
    "evaluation.robust_note": {
        "zh": "{n} 个单位的奖项在扰动下可能变化（图中空心菱形）。",
        "en": "{n} units' awards could change under the perturbations (hollow diamonds).",
    },
    "evaluation.whatif": {
        "zh": "权重试算（自动折算为合计 100 分）",
        "en": "What-if weights (scaled to a total of 100)",
    },
    "evaluation.whatif_moved": {
        "zh": "与默认权重相比名次变化的单位",
        "en": "Units whose rank moves against the default weights",
    },
    "evaluation.whatif_none": {"zh": "名次没有变化。", "en": "No rank changes."},
    "evaluation.red_black": {"zh": "年度红黑榜", "en": "Red and black list of the year"},
    "evaluation.rules": {"zh": "计分规则", "en": "Scoring rules"},
    "evaluation.yoy": {"zh": "较上年", "en": "vs last year"},
    "column.rank": {"zh": "名次", "en": "Rank"},
    "column.unit": {"zh": "单位", "en": "Unit"},
    "column.total": {"zh": "总分", "en": "Total"},
    "column.grade": {"zh": "等次", "en": "Grade"},
    "column.award": {"zh": "奖项", "en": "Award"},
    "column.eligible": {"zh": "可参评", "en": "Eligible"},
    "column.reason": {"zh": "不可参评原因", "en": "Why not eligible"},
    "column.rank_change": {"zh": "名次变化", "en": "Rank change"},
    "column.total_change": {"zh": "总分变化", "en": "Total change"},
    "label.numbers": {"zh": "查看数据表", "en": "Show the numbers"},
    # --- downloads and provenance ------------------------------------------------------
    "download.png": {"zh": "下载 PNG", "en": "Download PNG"},
    "download.svg": {"zh": "下载 SVG", "en": "Download SVG"},
    "download.csv": {"zh": "下载 CSV", "en": "Download CSV"},
    "download.xlsx": {"zh": "下载 XLSX", "en": "Download XLSX"},
    "provenance.filters": {"zh": "筛选条件", "en": "Filters"},
    "provenance.sources": {"zh": "数据来源", "en": "Data sources"},
    "provenance.generated_at": {"zh": "生成时间", "en": "Generated at"},
    "provenance.config": {"zh": "配置指纹", "en": "Config fingerprint"},
    "provenance.line": {"zh": "{label}：{value}", "en": "{label}: {value}"},
    "provenance.not_recorded": {"zh": "未记录", "en": "not recorded"},
    "export.about_sheet": {"zh": "说明", "en": "About"},
    "export.about_heading": {"zh": "导出说明", "en": "About this export"},
    "export.data_sheet": {"zh": "数据", "en": "Data"},
    "export.personal_column": {
        "zh": "导出内容含个人信息列“{column}”，已阻止导出。请去掉该列后再导出。",
        "en": "The export contains the personal-data column “{column}” and was blocked. Remove the column and export again.",
    },
    "export.personal_value": {
        "zh": "导出内容第 {row} 行“{column}”列含疑似{kind}，已阻止导出。",
        "en": "Row {row}, column “{column}” of the export looks like it holds a {kind}; the export was blocked.",
    },
    "export.too_many_rows": {
        "zh": "共 {rows} 行，超过 Excel 单表上限 {limit} 行。请下载 CSV，或缩小筛选范围。",
        "en": "{rows} rows exceed Excel's limit of {limit} rows per sheet. Download CSV or narrow the filters.",
    },
    "export.kind_phone": {"zh": "手机号", "en": "mobile phone number"},
    "export.kind_id_number": {"zh": "身份证号", "en": "ID card number"},
    "export.browser_missing": {
        "zh": "导出图片需要服务器上安装 Chromium 浏览器（apt-get install chromium fonts-noto-cjk）。",
        "en": "Image export needs Chromium on the server (apt-get install chromium fonts-noto-cjk).",
    },
    "export.image_failed": {
        "zh": "图片导出失败：{reason}。请稍后重试，或下载 CSV / XLSX。",
        "en": "Image export failed: {reason}. Try again later, or download CSV / XLSX.",
    },
}


class _KeepMissing(dict[str, object]):
    """format_map helper: a placeholder without a value stays visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def t(key: str, lang: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The text for `key` in `lang`, with placeholders filled; an unknown key returns the key."""
    entry = CATALOG.get(key)
    if entry is None:
        return key
    template = entry.get(lang) or entry.get(DEFAULT_LANGUAGE) or key
    if not values:
        return template
    try:
        return template.format_map(_KeepMissing(values))
    except (ValueError, TypeError, IndexError, AttributeError):
        # A value that does not fit its format spec: show the text rather than fail the page.
        return template
