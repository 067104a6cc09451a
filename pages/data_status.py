"""数据概况: what the warehouse holds and where it came from."""

import streamlit as st

from analytics.cache import cached_query, warehouse_version
from analytics.queries import load_history, table_counts

st.title("数据概况")
version = warehouse_version()
if version is None:
    st.info(
        "还没有数据。请运行 `govdash demo` 生成演示数据，或 `govdash load 文件夹` 加载您的表格。"
    )
    st.stop()

counts = cached_query(table_counts)
history = cached_query(load_history)
st.caption(f"数据仓库版本：{version.name}")
labels = {
    "compounds": "小区台账",
    "tickets": "工单",
    "survey_responses": "问卷答卷",
    "survey_answers": "问卷评分",
    "evaluation_scores": "考评评分",
    "evaluation_adjustments": "考评加扣分",
    "load_batches": "加载批次",
    "rejected_rows": "拒收记录",
}
if counts is not None:
    columns = st.columns(4)
    for index, row in enumerate(counts.itertuples()):
        columns[index % 4].metric(labels.get(str(row.table), str(row.table)), f"{row.rows:,}")
st.subheader("加载历史")
if history is None or history.empty:
    st.info("还没有加载记录。")
else:
    st.dataframe(
        history.rename(
            columns={
                "batch_id": "批次",
                "loaded_at": "加载时间",
                "file_name": "文件",
                "kinds": "类型",
                "rows_loaded": "加载行数",
                "rows_rejected": "拒收行数",
                "rows_inserted": "新增",
                "rows_updated": "更新",
                "rows_unchanged": "未变",
                "rows_skipped": "跳过",
                "sheets_used": "使用的工作表",
                "sheets_skipped": "跳过的工作表",
            }
        ),
        hide_index=True,
        use_container_width=True,
    )
