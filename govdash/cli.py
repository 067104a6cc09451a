"""The `govdash` command: load, demo, rebuild, serve, status, rank, report, users, profiles,
effect, bulletin, round, backup, restore, fixup, migrate, warm."""

from __future__ import annotations

import argparse
import getpass
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from govdash.core.access import ROLES, AccessError, Scope
from govdash.core.accounts import AccountError, AccountStore, accounts_path, check_username
from govdash.core.audit import AuditLog, audit_path, os_user
from govdash.core.config import Config, ConfigError, load_config
from govdash.core.lake import LakeError
from govdash.core.warehouse import (
    DB_ENV,
    LegacyWarehouseError,
    SnapshotNotFoundError,
    current_snapshot,
    data_dir,
    default_db_path,
    warehouse_location,
)

if TYPE_CHECKING:  # the read side is imported only by the commands that use it
    import pandas as pd

    from govdash.analytics.metrics.evaluation import EvaluationResult, YearRanking
    from govdash.etl.settle import Settled


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help=f"数据仓库路径（默认 ${DB_ENV} 或 data/warehouse.duckdb）/ warehouse path",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="配置文件（默认 $GOVDASH_CONFIG 或内置默认值）/ config file",
    )


def _actor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="actor",
        metavar="NAME",
        default=None,
        help="记入加载记录和审计日志的操作人（默认当前系统用户）/ actor recorded (default: OS user)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govdash", description="红色物业治理效能看板 / Red property management dashboard"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    load = commands.add_parser("load", help="加载工作簿或 CSV（文件或文件夹）/ load spreadsheets")
    load.add_argument("paths", nargs="+", type=Path, help="文件或文件夹 / files or folders")
    load.add_argument(
        "--timings",
        action="store_true",
        help="每条进度信息前标出已用秒数（分析耗时用）/ prefix progress with elapsed seconds",
    )
    load.add_argument(
        "--columns",
        metavar="对照",
        default=None,
        help="列对照：源表头=模板字段名，逗号分隔，如 '受理编号=工单编号,登记时间=受理时间'；"
        "按此加载并保存为对照方案 / column mapping: source header=template field, …",
    )
    load.add_argument(
        "--profile",
        metavar="NAME",
        default=None,
        help="对照方案名称：已有则按它读取，没有则把本次的对照保存为该名称 / "
        "apply the named mapping profile, or save this load's mapping under the name",
    )
    load.add_argument(
        "--values",
        metavar="对照",
        default=None,
        help="取值对照：字段:原值=规范值，逗号分隔，如 '诉求类型:物业服务=求助'；保存到文件的对照方案 / "
        "value mapping saved in the file's profile",
    )
    load.add_argument(
        "--apply-to-loaded",
        action="store_true",
        help="把对照方案中的取值对照也用于已加载的数据 / also map the words in rows already loaded",
    )
    _no_local_copies(load)
    _actor(load)
    _common(load)

    profiles = commands.add_parser(
        "profiles", help="管理对照方案（列与取值对照）/ manage mapping profiles"
    )
    profile_actions = profiles.add_subparsers(dest="profiles_command", required=True)
    _common(profile_actions.add_parser("list", help="列出对照方案 / list profiles"))
    show = profile_actions.add_parser("show", help="显示一个对照方案 / show a profile")
    show.add_argument("name")
    _common(show)
    rename = profile_actions.add_parser("rename", help="改名 / rename a profile")
    rename.add_argument("name")
    rename.add_argument("new_name")
    _actor(rename)
    _common(rename)
    delete = profile_actions.add_parser("delete", help="删除 / delete a profile")
    delete.add_argument("name")
    _actor(delete)
    _common(delete)
    export = profile_actions.add_parser(
        "export", help="导出为文件（JSON），可交给其他街道导入 / export profiles as a JSON file"
    )
    export.add_argument("names", nargs="*", help="方案名称（不写则全部）/ names (default: all)")
    export.add_argument("--out", type=Path, default=None, help="输出文件（默认标准输出）")
    _common(export)
    imported = profile_actions.add_parser("import", help="从导出的文件导入 / import a file")
    imported.add_argument("file", type=Path)
    imported.add_argument(
        "--overwrite", action="store_true", help="覆盖同名方案 / replace same names"
    )
    _actor(imported)
    _common(imported)

    demo = commands.add_parser("demo", help="生成并加载演示数据 / write and load the demo data")
    demo.add_argument("--seed", type=int, default=2026, help="随机种子 / random seed")
    demo.add_argument(
        "--tickets", type=int, default=None, help="工单总数（基准测试用）/ ticket count"
    )
    demo.add_argument("--out", type=Path, default=Path("data") / "demo", help="演示文件目录")
    demo.add_argument("--if-missing", action="store_true", help="仓库已存在时不做任何事")
    _actor(demo)
    _common(demo)

    rebuild = commands.add_parser("rebuild", help="从 data/raw 中的原始文件重建仓库 / rebuild")
    _actor(rebuild)
    _common(rebuild)

    serve = commands.add_parser("serve", help="启动看板 / start the dashboard")
    serve.add_argument("--port", type=int, default=8501, help="端口 / port (default 8501)")
    serve.add_argument(
        "--host", default="localhost", help="监听地址 / address to listen on (default localhost)"
    )
    serve.add_argument(
        "--base-path",
        default=None,
        metavar="PATH",
        help="网址子路径，如 /dashboard（默认取配置 server.base_path）/ URL sub-path behind a proxy",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="信任的反向代理地址，逗号分隔（默认取配置 server.forwarded_allow_ips）"
        " / trusted proxy addresses",
    )
    serve.add_argument(
        "--workers",
        type=_workers_argument,
        default=None,
        metavar="N|auto",
        help="服务进程数，大于 1 时由 nginx 在同一地址分发；auto 为每个 CPU 核一个"
        "（默认取配置 server.workers，出厂为 auto） / server processes behind nginx on one "
        "address; auto: one per core (default: config server.workers, shipped as auto)",
    )
    _common(serve)

    status = commands.add_parser(
        "status", help="安装概况与健康检查 / the installation's summary and health check"
    )
    status.add_argument(
        "--check",
        action="store_true",
        help="发现问题（缺少或无法读取所需文件、磁盘将满）时以非零状态退出，供监控使用"
        " / exit non-zero when something the app needs is missing or unreadable",
    )
    status.add_argument(
        "--format", choices=("text", "json"), default="text", help="输出格式 / output format"
    )
    _common(status)

    rank = commands.add_parser(
        "rank", help="年度考评排名，CSV 输出到标准输出或文件 / the evaluation ranking as CSV"
    )
    _evaluation_arguments(rank)
    rank.add_argument(
        "--out",
        type=Path,
        default=None,
        help="写入 CSV 文件（UTF-8 带 BOM，Excel 直接打开）/ write the CSV to this file",
    )
    rank.add_argument(
        "--lang",
        choices=("zh", "en"),
        default="zh",
        help="表头语言（默认 zh）/ header language",
    )
    _common(rank)

    report = commands.add_parser(
        "report", help="生成年度考评报告（.xlsx 或 .pdf）/ write the evaluation report"
    )
    _evaluation_arguments(report)
    report.add_argument(
        "--out",
        type=Path,
        required=True,
        help="输出文件，按扩展名生成 .xlsx 或 .pdf / output file, .xlsx or .pdf by its suffix",
    )
    _common(report)

    _effect_arguments(commands)
    _bulletin_arguments(commands)
    _round_arguments(commands)
    _backup_arguments(commands)
    _fixup_arguments(commands)

    migrate = commands.add_parser(
        "migrate",
        help="把旧版单文件数据仓库迁移为 DuckLake；已是 DuckLake 时，把旧版本存下的汇总按本版本重算 / "
        "move an old single-file warehouse to the lake; on a lake, rebuild an older release's "
        "stored figures",
    )
    migrate.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="旧仓库文件（默认 --db 所指的旧版本文件）/ the old warehouse file",
    )
    migrate.add_argument(
        "--rebuild",
        action="store_true",
        help="不读旧文件，直接用 data/raw 中的原始文件重建 / replay data/raw instead",
    )
    _no_local_copies(migrate)
    _actor(migrate)
    _common(migrate)

    warm = commands.add_parser(
        "warm",
        help="预先计算各页面首屏，加载后第一位访问者也能很快打开（govdash load 完成后自动运行）/ "
        "compute the pages' first views ahead (run by govdash load after it publishes)",
    )
    warm.add_argument(
        "--again",
        action="store_true",
        help="本快照已预热过也重新计算（如新增了账号的数据范围）/ warm even if this snapshot was",
    )
    _common(warm)

    users = commands.add_parser("users", help="管理本地账号 / manage local accounts")
    actions = users.add_subparsers(dest="users_command", required=True)
    add = actions.add_parser("add", help="新增账号（提示输入密码）/ add an account")
    add.add_argument("username", help="用户名 / user name")
    add.add_argument("--role", choices=ROLES, required=True, help="角色 / role")
    place = add.add_mutually_exclusive_group()
    place.add_argument("--street", metavar="NAME", help="数据范围：一个街道 / scope: one street")
    place.add_argument(
        "--community", metavar="NAME", help="数据范围：一个社区 / scope: one community"
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="从标准输入读取密码（第一行）/ read the password from stdin (first line)",
    )
    _common(add)
    remove = actions.add_parser("remove", help="删除账号 / remove an account")
    remove.add_argument("username")
    _common(remove)
    listing = actions.add_parser("list", help="列出账号（不含密码）/ list accounts")
    _common(listing)
    password = actions.add_parser("password", help="重设密码 / set a new password")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true")
    _common(password)
    return parser


def _evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--year", type=int, required=True, help="考评年度 / evaluation year")
    parser.add_argument(
        "--level",
        choices=("compound", "community", "property_company"),
        default="compound",
        help="考评层级：compound 小区、community 社区、property_company 物业企业（默认 compound）",
    )
    parser.add_argument(
        "--snapshot",
        type=int,
        default=None,
        metavar="N",
        help="按数据快照 #N 重现（导出文件的来源行注明其快照号；默认当前快照）"
        " / reproduce from warehouse snapshot N (default: the current one)",
    )


def _no_local_copies(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-local-copies",
        action="store_true",
        help="完成后不为本机生成新快照的本地副本（由服务器首次打开时生成）/ "
        "do not build this machine's local copies of the new snapshot",
    )
    parser.add_argument(
        "--no-warm",
        action="store_true",
        help="完成后不预先计算各页面的首屏（由第一位访问者计算）/ "
        "do not compute the pages' first views ahead (govdash warm)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # One notion of where the installation lives, for every command (never a version file).
        db_path = warehouse_location(args.db) if args.db else default_db_path()
    except OSError as error:
        print(f"✗ {error}", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"配置错误：{error}", file=sys.stderr)
        return 2
    handler = {
        "load": _cmd_load,
        "demo": _cmd_demo,
        "rebuild": _cmd_rebuild,
        "serve": _cmd_serve,
        "status": _cmd_status,
        "rank": _cmd_rank,
        "report": _cmd_report,
        "users": _cmd_users,
        "effect": _cmd_effect,
        "profiles": _cmd_profiles,
        "bulletin": _cmd_bulletin,
        "round": _cmd_round,
        "backup": _cmd_backup,
        "restore": _cmd_restore,
        "fixup": _cmd_fixup,
        "migrate": _cmd_migrate,
        "warm": _cmd_warm,
    }[args.command]
    try:
        return handler(args, db_path, config)
    except (LegacyWarehouseError, SnapshotNotFoundError, LakeError) as error:
        message = error.args[0] if error.args else str(error)
        print(f"✗ {message}", file=sys.stderr)
        return 1


def _cmd_load(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    from govdash.core.profiles import ProfileError
    from govdash.etl.load import format_report, load_paths, remap_loaded
    from govdash.etl.mapping import MappingError
    from govdash.etl.prepare import Prepared, mapping_suggestions, prepare_load

    missing = [p for p in args.paths if not p.exists()]
    if missing:
        for path in missing:
            print(f"✗ 找不到文件或文件夹：{path}", file=sys.stderr)
        return 1
    if args.apply_to_loaded and not args.values and not args.profile:
        print(
            "✗ --apply-to-loaded 需要 --values 或 --profile（要用哪些取值对照）。", file=sys.stderr
        )
        return 2
    progress = _progress
    if args.timings:
        started = time.perf_counter()

        def progress(message: str) -> None:
            _progress(f"[{time.perf_counter() - started:7.2f} s] {message}")

    prepared = Prepared()
    if args.columns or args.profile or args.values:
        try:
            prepared = prepare_load(
                args.paths, db_path, config, args.columns, args.profile, args.values, args.actor
            )
        except (MappingError, ProfileError) as error:
            print(f"✗ {error}", file=sys.stderr)
            return 2
        for message in prepared.messages:
            print(message)
    report = load_paths(
        args.paths,
        db_path,
        config,
        progress=progress,
        actor=args.actor,
        mappings=prepared.mappings,
    )
    print(format_report(report))
    for line in mapping_suggestions(report, db_path, config):
        print(line)
    if args.apply_to_loaded:
        for profile in {p.name: p for p in prepared.mappings.values()}.values():
            if profile.values:
                changed = remap_loaded(
                    db_path, config, profile.kind, profile.values, args.actor, progress
                )
                print(f"已按对照方案“{profile.name}”的取值对照更新已加载的数据：{changed:,} 行。")
    if report.snapshot is not None:
        _settle(args, db_path, config, progress)
    if not report.files:  # the summary names every file it skipped and why
        return 1
    return 0 if report.ok else 1


def _settle(
    args: argparse.Namespace, db_path: Path, config: Config, progress: Callable[[str], None]
) -> None:
    """After a published load: the periods it left stale, as a second snapshot, small files
    merged when a table has gathered many, this machine's local copies (govdash.etl.settle),
    and the pages' first views computed ahead (`govdash warm`). A failure costs only speed,
    and says so."""
    from govdash.etl.settle import settle
    from govdash.web.warm import warm_command

    started = time.perf_counter()
    done = settle(db_path, config, progress, args.actor, local_copies=not args.no_local_copies)
    _print_settled(done)
    print(f"加载后的整理用时 {time.perf_counter() - started:.1f} 秒。")
    # In a process of its own: the pages run in Streamlit's runtime, and whatever happens
    # there leaves the published load and this command's outcome alone.
    command = None if args.no_warm else warm_command(db_path, config)
    if command is not None and subprocess.run(command, check=False).returncode != 0:
        print("⚠ 页面未能预热（不影响数据；页面首次打开时计算）。", file=sys.stderr)


def _print_settled(done: Settled) -> None:
    """What a settle did (stdout) and the steps that failed (stderr)."""
    for line in done.lines:
        print(line)
    for warning in done.warnings:
        print(warning, file=sys.stderr)


def _cmd_warm(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Compute every page's first view of the current snapshot into this machine's stored
    results (govdash.web.warm), so that the first visitor after a load gets a quick page."""
    from govdash.web.warm import warm

    if current_snapshot(db_path) is None:
        print(
            f"数据仓库不存在：{db_path}（请先运行 govdash load 或 govdash demo）。", file=sys.stderr
        )
        return 1
    if not config.warming:
        print("未预热：配置中 server.warm_scopes 或 server.results_cache_mb 为 0。")
        return 0
    done = warm(db_path, config, _progress, again=args.again)
    for warning in done.warnings:
        print(warning, file=sys.stderr)
    if done.already:
        print(f"快照 #{done.snapshot} 已在本机预热过（--again 重新计算）。")
        return 0
    further = (
        f"，及年度考评的 {done.further} 个其他视图（其他层级、上一年度）" if done.further else ""
    )
    print(
        f"已预热 {len(done.scopes)} 个数据范围的 {done.pages} 个页面首屏"
        f"（{'、'.join(done.scopes) or '无'}）{further}，用时 {done.seconds:.1f} 秒。"
    )
    return 1 if done.warnings else 0


def _cmd_profiles(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Mapping profiles beside the warehouse: list, show, rename, delete, export, import."""
    from govdash.core.profiles import ProfileError
    from govdash.etl.fields import KIND_LABELS
    from govdash.etl.prepare import (
        delete_profile,
        field_labels,
        import_profiles,
        rename_profile,
        store_of,
    )

    store = store_of(db_path)
    try:
        if args.profiles_command == "list":
            found = store.profiles()
            if not found:
                print(f"还没有对照方案（{store.path}）。")
            for each in found:
                mapped = sum(len(m) for m in each.values.values())
                print(
                    f"{each.name}\t{KIND_LABELS.get(each.kind, each.kind)}\t"
                    f"{len(each.columns)} 列\t{mapped} 个取值对照\t"
                    f"{each.updated_by}\t{each.updated_at}"
                )
            return 0
        if args.profiles_command == "show":
            profile = store.get(args.name)
            if profile is None:
                raise ProfileError(f"没有这个对照方案：{args.name}")
            print(f"对照方案：{profile.name}（{KIND_LABELS.get(profile.kind, profile.kind)}）")
            print(f"表头：{'、'.join(h for h in profile.headers if h)}")
            labels = field_labels(profile.kind, config)
            for header, name in profile.columns.items():
                print(f"  {header} → {labels.get(name, name)}（{name}）")
            for name, words in profile.values.items():
                for raw, known in words.items():
                    print(f"  {labels.get(name, name)}：{raw} → {known}")
            print(
                f"保存：{profile.created_by} {profile.created_at}；"
                f"更新：{profile.updated_by} {profile.updated_at}"
            )
            return 0
        if args.profiles_command == "rename":
            renamed = rename_profile(db_path, args.name, args.new_name, args.actor)
            print(f"已改名：{args.name} → {renamed.name}")
            return 0
        if args.profiles_command == "delete":
            delete_profile(db_path, args.name, args.actor)
            print(f"已删除对照方案：{args.name}")
            return 0
        if args.profiles_command == "export":
            data = store.export(args.names or None)
            if args.out is None:
                sys.stdout.buffer.write(data + b"\n")
                sys.stdout.flush()
            else:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_bytes(data)
                print(args.out)
            return 0
        imported = import_profiles(
            db_path, args.file.read_bytes(), config, args.actor, overwrite=args.overwrite
        )
        print("已导入对照方案：" + "、".join(p.name for p in imported))
        return 0
    except (ProfileError, OSError) as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1


def _cmd_demo(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    from govdash.core.warehouse import legacy_message, legacy_warehouse
    from govdash.etl.demo import write_demo
    from govdash.etl.load import format_report, load_paths

    if args.if_missing and current_snapshot(db_path) is not None:
        print(f"数据仓库已存在：{db_path}")
        return 0
    legacy = legacy_warehouse(db_path)
    if legacy is not None:  # never cover an installation's own data with the demo
        print(f"✗ {legacy_message(db_path, legacy)}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    files = write_demo(args.out, seed=args.seed, tickets=args.tickets)
    _progress(
        f"已生成 {len(files)} 个演示文件（{time.perf_counter() - started:.1f} 秒）：{args.out}"
    )
    report = load_paths(files, db_path, config, progress=_progress, fresh=True, actor=args.actor)
    print(format_report(report))
    if report.snapshot is not None:
        # A big demo's quarters and years wait for the settle, as any load's do: stored here
        # (this machine's local copies and first views are made by the first reader).
        from govdash.etl.settle import settle

        _print_settled(settle(db_path, config, _progress, args.actor, local_copies=False))
    return 0 if report.ok else 1


def _cmd_rebuild(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Replay every original in data/raw, in the order first loaded, into a fresh warehouse."""
    from govdash.etl.load import format_report
    from govdash.etl.rebuild import RebuildError, rebuild

    try:
        report = rebuild(db_path, config, progress=_progress, actor=args.actor)
    except RebuildError as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0 if report.ok else 1


def _workers_argument(value: str) -> int | str:
    """--workers: a number, or "auto" (one per usable core, see govdash.web.workers)."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"应为 1–64 的整数或 auto，实际为 {value!r} / a number 1–64, or auto"
        ) from None


def _cmd_serve(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Check that sign-in can work, then run the Streamlit server in this process: the service
    manager's signals reach the server itself, and stopping it leaves nothing behind."""
    from govdash.core.config import normalise_base_path
    from govdash.core.signin import SignInUnavailable, local_accounts

    if not db_path.parent.is_dir():
        print(
            f"✗ 数据目录不存在：{db_path.parent}（--db {db_path}）。请检查路径，"
            "或先运行 govdash demo / govdash load。",
            file=sys.stderr,
        )
        return 1
    try:
        local_accounts(db_path, config.require_sign_in, _oidc_configured())
        base_path = (
            normalise_base_path(args.base_path) if args.base_path is not None else config.base_path
        )
    except (SignInUnavailable, ConfigError) as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    workers = args.workers if args.workers is not None else config.workers
    if workers in (None, "auto"):
        from govdash.web.workers import auto_workers

        workers, how = auto_workers()
        print(f"govdash serve: {how}", file=sys.stderr, flush=True)
    assert isinstance(workers, int)
    if not 1 <= workers <= 64:
        print(
            f"✗ --workers 应在 1 到 64 之间，实际为 {workers} / --workers must be 1–64",
            file=sys.stderr,
        )
        return 1
    forwarded_allow_ips = args.forwarded_allow_ips or config.forwarded_allow_ips
    from govdash.web.warm import watch_and_warm

    # Each snapshot's first views computed on this machine (after a load here or on another
    # machine sharing the catalog), so its first visitor does not wait for them.
    watch_and_warm(db_path, config)
    if workers > 1:
        from govdash.web.workers import WorkersError, run_workers

        worker_args = ["--db", str(db_path.absolute()), "--base-path", base_path or "/"]
        if args.config:
            worker_args += ["--config", str(args.config.resolve())]
        try:
            return run_workers(
                workers=workers,
                host=args.host,
                port=args.port,
                base_path=base_path,
                forwarded_allow_ips=forwarded_allow_ips,
                max_body_mb=max(1, math.ceil(config.max_upload_mb)),
                run_dir=data_dir(db_path)
                / "run"
                / str(args.port),  # two servers on one folder: two ports
                worker_args=worker_args,
            )
        except WorkersError as error:
            print(f"✗ {error}", file=sys.stderr)
            return 1
    os.environ[DB_ENV] = str(db_path)
    os.environ["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    if args.config:
        os.environ["GOVDASH_CONFIG"] = str(args.config.resolve())
    from govdash.web.serve import run_server

    return run_server(
        {
            "server.port": str(args.port),
            "server.address": args.host,
            "server.baseUrlPath": base_path,
            "server.maxUploadSize": str(max(1, math.ceil(config.max_upload_mb))),
            "server.headless": "true",
            "browser.gatherUsageStats": "false",
        }
    )


def _oidc_configured() -> bool:
    """Whether a secrets.toml Streamlit will read has an [auth] section (the CLI's view, used
    only to decide whether `require_sign_in` can be met)."""
    import tomllib

    for folder in (Path.cwd(), Path.home()):
        path = folder / ".streamlit" / "secrets.toml"
        try:
            with path.open("rb") as handle:
                if "auth" in tomllib.load(handle):
                    return True
        except (OSError, tomllib.TOMLDecodeError):
            continue
    return False


def _cmd_status(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Versions, warehouse, last load, accounts, free disk and what is wrong (stdout). With
    --check the exit status is 1 when anything the app needs is missing or unreadable;
    without it, 1 only when there is no warehouse."""
    import json

    from govdash.core.health import format_text, inspect

    health = inspect(db_path, config, _oidc_configured())
    if args.format == "json":
        print(json.dumps(health.to_json(), ensure_ascii=False, indent=2, default=str))
    else:
        print(format_text(health))
    if args.check:
        return 0 if health.ok else 1
    return 0 if health.warehouse is not None else 1


REPORT_SUFFIXES = (".xlsx", ".pdf")


def _evaluation(
    args: argparse.Namespace, db_path: Path, config: Config
) -> tuple[EvaluationResult, YearRanking | None, pd.DataFrame] | int:
    """(result, previous, load history) of --year at --level, or an exit code after a message."""
    from govdash.analytics.queries.evaluation import (
        available_years,
        evaluation_result,
        ranking_result,
    )
    from govdash.analytics.queries.loads import load_history
    from govdash.core.warehouse import connect_readonly
    from govdash.i18n import t

    if current_snapshot(db_path) is None:
        print(
            f"数据仓库不存在：{db_path}（请先运行 govdash load 或 govdash demo）。", file=sys.stderr
        )
        return 1
    con = connect_readonly(db_path, args.snapshot)
    try:
        years = available_years(con, args.level)
        if args.year not in years:
            known = "、".join(str(year) for year in years) or "无"
            print(
                f"{args.year} 年没有{t(f'level.{args.level}')}层级的考评评分数据"
                f"（已有年度：{known}）。",
                file=sys.stderr,
            )
            return 1
        result = evaluation_result(con, config, args.year, args.level)
        previous = (  # what year over year reads of it: its ranking, as the page has it
            ranking_result(con, config, args.year - 1, args.level)
            if args.year - 1 in years
            else None
        )
        history = load_history(con)
        history.attrs["snapshot"] = _snapshot_line(db_path, args.snapshot)
        return result, previous, history
    finally:
        con.close()


def _snapshot_line(db_path: Path, snapshot: int | None) -> str:
    """数据快照 #n（yyyy-mm-dd hh:mm）: which state of the warehouse an export was made from."""
    from govdash.core.warehouse import lake_of

    lake = lake_of(db_path)
    chosen = snapshot if snapshot is not None else lake.current_snapshot()
    found = lake.snapshot(chosen) if chosen is not None else None
    if found is None:
        return ""
    return f"数据快照 #{found.snapshot_id}（{found.time:%Y-%m-%d %H:%M}）"


def _cmd_rank(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """The ranking as CSV with headers in --lang. A file (--out, or stdout redirected to a
    file) starts with a UTF-8 BOM so Excel opens its Chinese right; a pipe or a terminal gets
    plain UTF-8, since a BOM there only breaks the first field for the program reading it."""
    import stat

    from govdash.analytics.reports.evaluation_report import ranking_csv

    found = _evaluation(args, db_path, config)
    if isinstance(found, int):
        return found
    result, _, _ = found
    text = ranking_csv(result, args.lang)
    name = f"evaluation_ranking_{args.year}_{args.level}"
    if args.out is not None:
        out: Path = args.out
        data = text.encode("utf-8-sig")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        except OSError as error:
            print(f"✗ 无法写入 {out}：{error.strerror or error}", file=sys.stderr)
            return 1
        print(out)
        _record_export(db_path, name, "csv", str(out), data, result)
        return 0
    try:
        to_file = stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):  # no real descriptor (e.g. captured output)
        to_file = False
    data = text.encode("utf-8-sig" if to_file else "utf-8")
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    _record_export(db_path, name, "csv", "stdout", data, result)
    return 0


def _record_export(
    db_path: Path, name: str, file_format: str, target: str, data: bytes, result: EvaluationResult
) -> None:
    """Who exported what from the command line (the OS user), as the dashboard records it."""
    AuditLog(audit_path(db_path)).record(
        os_user(),
        "export",
        target=target,
        detail={
            "name": name,
            "format": file_format,
            "filters": f"{result.year}年度 · {result.level}",
            "rows": len(result.table),
            "bytes": len(data),
            "scope": "district",
        },
        method="cli",
    )


def _cmd_report(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    from datetime import datetime

    from govdash.analytics.reports.evaluation_report import report_pdf, report_workbook
    from govdash.analytics.reports.export import PersonalDataError, Provenance
    from govdash.analytics.reports.pdf import PdfExportError
    from govdash.i18n import t

    out: Path = args.out
    suffix = out.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        print(
            f"✗ 不支持的输出格式“{out.suffix or '（无扩展名）'}”：--out 应以 .xlsx 或 .pdf 结尾。",
            file=sys.stderr,
        )
        return 2
    found = _evaluation(args, db_path, config)
    if isinstance(found, int):
        return found
    result, previous, history = found
    snapshot_line = history.attrs.get("snapshot") or ""
    provenance = Provenance(
        filters_text=f"{args.year}年度 · {t(f'level.{args.level}')}",
        sources=[snapshot_line] * bool(snapshot_line)
        + [
            f"批次 {row.batch_id}：{row.file_name}（{row.loaded_at:%Y-%m-%d %H:%M}）"
            for row in history.itertuples()
        ],
        generated_at=datetime.now().replace(microsecond=0),
        config_fingerprint=config.fingerprint,
    )
    build = report_workbook if suffix == ".xlsx" else report_pdf
    try:
        data = build(result, config, provenance, "zh", previous, batches=history)
    except (PdfExportError, PersonalDataError) as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_file(out, data)
    _record_export(
        db_path,
        f"evaluation_report_{args.year}_{args.level}",
        suffix.lstrip("."),
        str(out.resolve()),
        data,
        result,
    )
    print(out)
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 / password: ")
    if getpass.getpass("再输一次 / again: ") != first:
        raise AccountError("两次输入的密码不一致")
    return first


def _cmd_users(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    store = AccountStore(accounts_path(db_path))
    log = AuditLog(audit_path(db_path))
    try:
        if args.users_command == "list":
            accounts = store.accounts()
            if not accounts:
                print(f"没有本地账号（{store.path}）：看板以本地单用户模式运行。")
            for account in accounts:
                print(
                    f"{account.username}\t{account.role}\t{account.scope.to_text()}"
                    f"\t{account.updated_at}"
                )
            return 0
        if args.users_command == "remove":
            store.remove(args.username)
            _end_sessions(db_path, config, args.username)
            log.record(os_user(), "account_removed", target=args.username, method="cli")
            print(f"已删除账号：{args.username}")
            if not store.has_accounts():
                print(
                    "⚠ 已没有任何本地账号：未配置统一身份认证时，看板回到本地单用户模式"
                    "（无需登录，所有功能可用）。",
                    file=sys.stderr,
                )
            return 0
        if args.users_command == "password":
            if store.get(args.username) is None:
                raise AccountError(f"没有这个账号：{args.username}")
            store.set_password(args.username, _read_password(args.password_stdin))
            ended = _end_sessions(db_path, config, args.username)
            log.record(
                os_user(),
                "password_changed",
                target=args.username,
                detail={"sessions_ended": ended},
                method="cli",
            )
            print(f"已重设密码：{args.username}")
            return 0
        scope = (
            Scope("street", args.street)
            if args.street
            else Scope("community", args.community)
            if args.community
            else Scope.district()
        )
        check_username(args.username)
        if store.get(args.username) is not None:
            raise AccountError(f"账号已存在：{args.username}")
        _warn_unknown_place(db_path, scope)
        account = store.add(args.username, _read_password(args.password_stdin), args.role, scope)
    except (AccountError, AccessError) as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    log.record(
        os_user(),
        "account_added",
        target=account.username,
        detail={"role": account.role, "scope": account.scope.to_text()},
        method="cli",
    )
    print(
        f"已新增账号：{account.username}（{account.role}，{account.scope.label()}）→ {store.path}"
    )
    return 0


def _end_sessions(db_path: Path, config: Config, username: str) -> int:
    """Sign the account out everywhere (its lasting sign-ins end at once)."""
    from govdash.core.sessions import SessionStore, sessions_path

    return SessionStore(sessions_path(db_path), config.session_hours).end_all(username)


def _warn_unknown_place(db_path: Path, scope: Scope) -> None:
    """A scope naming a street or community the warehouse does not know is allowed (data may
    come later) but said, since a typo would show the account nothing."""
    if not scope.is_restricted or current_snapshot(db_path) is None:
        return
    from govdash.core.warehouse import connect_readonly

    con = connect_readonly(db_path)
    try:
        found = con.execute(
            f"SELECT count(*) FROM compounds WHERE {scope.level} = $name",
            {"name": scope.name},
        ).fetchone()
    finally:
        con.close()
    if not found or not found[0]:
        print(
            f"⚠ 数据仓库的小区台账中没有“{scope.name}”，该账号目前看不到任何数据。",
            file=sys.stderr,
        )


# --- govdash effect: the 治理成效 before/after figure from the shell ------------------------------

EFFECT_FIELDS = ("estimate", "low", "high", "n_treated", "n_control", "n_observations")
EVENT_FIELDS = ("relative", "estimate", "low", "high", "n_treated", "is_reference")


def _effect_arguments(commands: argparse._SubParsersAction) -> None:
    effect = commands.add_parser(
        "effect",
        help="治理成效：签约前后对比（稳健估计）/ the before/after effect estimate",
    )
    effect.add_argument(
        "--outcome",
        required=True,
        help="指标名，与治理成效页一致，如 response_median_minutes、resolution_on_time_rate"
        "（全部见 README）/ the page's figure name",
    )
    effect.add_argument(
        "--treatment",
        choices=("agreement", "red_pm"),
        required=True,
        help="agreement 签订党建联建协议；red_pm 认定为红色物业",
    )
    effect.add_argument(
        "--method",
        choices=("robust", "twfe"),
        default="robust",
        help="robust 异质性稳健估计（默认，页面主结果）；twfe 传统双向固定效应（仅作对照）",
    )
    effect.add_argument(
        "--control",
        choices=("never", "not_yet"),
        default="never",
        help="robust 的对照：never 从未签约的小区（默认）；not_yet 另加尚未签约小区的签约前月份",
    )
    effect.add_argument(
        "--window",
        type=int,
        default=None,
        help="签约前后各取的月数（默认配置项 effect.window_months）/ months each side",
    )
    effect.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="输出格式 / output format"
    )
    _common(effect)


def _cmd_effect(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Print one metric's before/after estimate and its event-time path (stdout), or say on
    stderr why there is none (exit 1) or what was asked wrongly (exit 2)."""
    import csv
    import json
    import math
    from datetime import date

    from govdash.analytics.metrics.effect import ESTIMATED, METRICS_BY_NAME
    from govdash.analytics.queries.effect import before_after, register_coverage
    from govdash.analytics.queries.filters import Filters
    from govdash.core.warehouse import connect_readonly

    if args.outcome not in METRICS_BY_NAME:
        print(
            f"✗ 没有这个指标：{args.outcome}。可用的指标：{'、'.join(METRICS_BY_NAME)}",
            file=sys.stderr,
        )
        return 2
    if args.window is not None and not 1 <= args.window <= 60:
        print(f"✗ --window 应在 1 到 60 之间，实际为 {args.window}", file=sys.stderr)
        return 2
    if current_snapshot(db_path) is None:
        print(
            f"数据仓库不存在：{db_path}（请先运行 govdash load 或 govdash demo）。", file=sys.stderr
        )
        return 1
    everything = Filters.for_range(date(1900, 1, 1), date(2999, 12, 31))
    con = connect_readonly(db_path)
    try:
        _, _, dates = register_coverage(con, args.treatment)
        result = before_after(
            con,
            everything,
            config,
            args.treatment,
            args.outcome,
            args.method,
            args.window,
            args.control,
        )
    finally:
        con.close()
    estimate = result.estimate
    if result.status != ESTIMATED:
        reason = (
            "小区台账中没有任何小区填写签约（认定）日期"
            if dates == 0
            else f"签约一方 {estimate.n_treated} 个小区、从未签约的对照 {estimate.n_control} 个小区，"
            f"每组至少需要 {config.effect_min_compounds} 个（配置项 effect.min_compounds）"
        )
        print(f"✗ 无法估计 {args.outcome}：{reason}。", file=sys.stderr)
        return 1

    def number(value: object) -> object:
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    events = [
        {field: number(_plain(row[field])) for field in EVENT_FIELDS}
        for _, row in result.events.table.iterrows()
    ]
    overall = {field: _plain(getattr(estimate, field)) for field in EFFECT_FIELDS}
    if args.format == "json":
        document = {
            "outcome": args.outcome,
            "treatment": args.treatment,
            "method": args.method,
            "control": args.control if args.method == "robust" else None,
            "window": result.window,
            **overall,
            "pre_trend_p": number(float(result.events.pre_trend_p)),
            "event_time": events,
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return 0
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["part", "relative", *EFFECT_FIELDS, "is_reference", "method"])
    writer.writerow(["overall", "", *overall.values(), "", args.method])
    for row in events:
        writer.writerow(
            [
                "event_time",
                row["relative"],
                row["estimate"],
                row["low"],
                row["high"],
                row["n_treated"],
                "",
                "",
                str(row["is_reference"]).lower(),
                args.method,
            ]
        )
    return 0


def _plain(value: object) -> object:
    """numpy scalars as Python numbers, for json and csv."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


# --- govdash bulletin: the monthly 通报 as Word or PDF ------------------------------------------

BULLETIN_SUFFIXES = (".docx", ".pdf")


def _bulletin_arguments(commands: argparse._SubParsersAction) -> None:
    bulletin = commands.add_parser(
        "bulletin", help="生成月度通报（.docx 或 .pdf）/ write the monthly bulletin"
    )
    bulletin.add_argument(
        "--month", required=True, metavar="YYYY-MM", help="通报月份，如 2025-03 / the month"
    )
    bulletin.add_argument(
        "--level",
        choices=("community", "compound", "property_company"),
        default="community",
        help="排名层级：community 社区（默认）、compound 小区、property_company 物业企业",
    )
    place = bulletin.add_mutually_exclusive_group()
    place.add_argument("--street", metavar="NAME", help="只通报一个街道 / one street only")
    place.add_argument("--community", metavar="NAME", help="只通报一个社区 / one community only")
    bulletin.add_argument(
        "--out",
        type=Path,
        default=None,
        help="输出文件 .docx 或 .pdf（默认当前目录下“2025年3月通报.docx”）/ output file",
    )
    _common(bulletin)


def _parse_month(text: str) -> tuple[int, int] | None:
    import re

    match = re.fullmatch(r"\s*(\d{4})[-/.年](\d{1,2})月?\s*", text)
    if match is None:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return (year, month) if 1 <= month <= 12 and 1900 <= year <= 2999 else None


def _cmd_bulletin(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Write one month's bulletin; exit 2 for a wrong month or suffix, 1 when there is no data."""
    from govdash.analytics.queries.bulletin import bulletin_data, month_filters
    from govdash.analytics.queries.tickets import ticket_date_range
    from govdash.analytics.reports.bulletin import (
        BulletinError,
        bulletin_content,
        bulletin_docx,
        bulletin_file_name,
        bulletin_pdf,
        template_path,
    )
    from govdash.analytics.reports.pdf import PdfExportError
    from govdash.core.warehouse import connect_readonly

    month = _parse_month(args.month)
    if month is None:
        print(f"✗ --month 应写成 YYYY-MM，如 2025-03，实际为“{args.month}”。", file=sys.stderr)
        return 2
    if args.out is not None and args.out.suffix.lower() not in BULLETIN_SUFFIXES:
        print(
            f"✗ 不支持的输出格式“{args.out.suffix or '（无扩展名）'}”：--out 应以 .docx 或 .pdf 结尾。",
            file=sys.stderr,
        )
        return 2
    if current_snapshot(db_path) is None:
        print(
            f"数据仓库不存在：{db_path}（请先运行 govdash load 或 govdash demo）。", file=sys.stderr
        )
        return 1
    scope = (
        Scope("street", args.street)
        if args.street
        else Scope("community", args.community)
        if args.community
        else Scope.district()
    )
    filters = month_filters(*month, scope)
    con = connect_readonly(db_path)
    try:
        data = bulletin_data(con, filters, config, args.level)
        first, last = ticket_date_range(con) or (None, None)
    finally:
        con.close()
    # A month outside the data would read as a month without requests (and carry the last
    # month's open tickets as its backlog): refused, naming the months there are.
    outside = first is None or last is None or filters.start > last or filters.end < first
    if outside or (data.kpis.tickets == 0 and data.kpis.backlog == 0):
        known = f"{first:%Y-%m} 至 {last:%Y-%m}" if first and last else "无"
        print(
            f"✗ {filters.label()}在{scope.label()}没有工单数据（工单覆盖：{known}），未生成通报。",
            file=sys.stderr,
        )
        return 1
    out: Path = args.out or Path(bulletin_file_name(data.filters, "docx"))
    try:
        content = bulletin_content(data, config)
        document = (
            bulletin_docx(content, template_path(config))
            if out.suffix.lower() == ".docx"
            else bulletin_pdf(content)
        )
    except (BulletinError, PdfExportError) as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_file(out, document)
    AuditLog(audit_path(db_path)).record(
        os_user(),
        "export",
        target=str(out.resolve()),
        detail={
            "name": f"bulletin_{filters.start:%Y-%m}_{args.level}",
            "format": out.suffix.lower().lstrip("."),
            "filters": f"{filters.label()} · {scope.label()}",
            "rows": len(content.units),
            "bytes": len(document),
            "scope": scope.to_text(),
        },
        method="cli",
    )
    print(out)
    return 0


# --- govdash round: online scoring rounds for the admin's scripts ---------------------------------


def _round_arguments(commands: argparse._SubParsersAction) -> None:
    round_parser = commands.add_parser(
        "round", help="评委在线打分的评分轮次 / online scoring rounds"
    )
    actions = round_parser.add_subparsers(dest="round_command", required=True)
    opening = actions.add_parser("open", help="开启评分轮次 / open a round")
    _evaluation_arguments(opening)
    opening.add_argument(
        "--deadline", required=True, metavar="YYYY-MM-DD", help="截止日期 / deadline"
    )
    opening.add_argument("--title", default="", help="轮次名称（默认“2025年度小区评优评先”）")
    opening.add_argument(
        "--evaluator",
        action="append",
        default=[],
        metavar="NAME[@社区]",
        help="指派评委（可重复）；@社区 为其所属社区，该社区的单位自动回避 / assign an evaluator",
    )
    _common(opening)
    status = actions.add_parser("status", help="轮次列表或一轮的进度 / rounds or one's progress")
    status.add_argument("--round", type=int, default=None, dest="round_id", help="轮次编号")
    _common(status)
    lock = actions.add_parser("lock", help="锁定：已提交的评分成为最终结果 / lock a round")
    lock.add_argument("--round", type=int, required=True, dest="round_id", help="轮次编号")
    _common(lock)
    reopen = actions.add_parser("reopen", help="重新开放已锁定的轮次 / reopen a locked round")
    reopen.add_argument("--round", type=int, required=True, dest="round_id", help="轮次编号")
    reopen.add_argument("--reason", required=True, help="重新开放的理由 / why")
    _common(reopen)
    export = actions.add_parser("export", help="导出已锁定轮次的评分 / export a locked round")
    export.add_argument("--round", type=int, required=True, dest="round_id", help="轮次编号")
    export.add_argument(
        "--out",
        type=Path,
        default=None,
        help="输出 .csv 或 .xlsx（默认 CSV 输出到标准输出）/ output file",
    )
    _common(export)


def _cmd_round(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Rounds from the shell, acting as an admin of the whole district (the OS user)."""
    from datetime import datetime

    from govdash.core.access import Principal
    from govdash.core.rounds import RoundError, RoundStore, evaluator_pseudonym, rounds_path
    from govdash.core.warehouse import hash_key

    actor = Principal(os_user(), "admin", Scope.district(), method="cli")
    store = RoundStore(rounds_path(db_path), AuditLog(audit_path(db_path)))
    try:
        if args.round_command == "open":
            return _round_open(args, db_path, config, store, actor)
        if args.round_command == "status":
            return _round_status(args, config, store, actor)
        if args.round_command == "lock":
            key = hash_key(db_path)
            count = store.lock(actor, args.round_id, lambda name: evaluator_pseudonym(name, key))
            print(f"已锁定第{args.round_id}轮：{count} 个评分成为最终结果，计入年度考评。")
            return 0
        if args.round_command == "reopen":
            store.reopen(actor, args.round_id, args.reason)
            print(f"已重新开放第{args.round_id}轮：其评分在再次锁定前不计入年度考评。")
            return 0
        round_ = store.get(actor, args.round_id)
        if not round_.is_locked:
            raise RoundError(f"第{args.round_id}轮尚未锁定，评分还不是最终结果，不能导出")
        from govdash.analytics.reports.round_export import round_csv, round_workbook

        scores = store.final_scores(round_.year, round_.level)
        scores = scores[scores["round_id"] == round_.round_id]
        out: Path | None = args.out
        if out is not None and out.suffix.lower() == ".xlsx":
            key = hash_key(db_path)
            comments = store.final_comments(
                actor, round_.round_id, lambda name: evaluator_pseudonym(name, key)
            )
            data = round_workbook(round_, scores, comments, datetime.now())
        elif out is None or out.suffix.lower() == ".csv":
            data = round_csv(scores)
        else:
            print("✗ --out 应以 .csv 或 .xlsx 结尾。", file=sys.stderr)
            return 2
        if out is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            _write_file(out, data)
            print(out)
        AuditLog(audit_path(db_path)).record(
            actor.name,
            "export",
            target=str(out.resolve()) if out else "stdout",
            detail={
                "name": f"round_{round_.round_id}",
                "format": out.suffix.lower().lstrip(".") if out else "csv",
                "filters": round_.label(),
                "rows": len(scores),
                "bytes": len(data),
                "scope": round_.scope.to_text(),
            },
            method="cli",
        )
        return 0
    except (RoundError, PermissionError) as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1


def _round_open(
    args: argparse.Namespace, db_path: Path, config: Config, store: Any, actor: Any
) -> int:
    from datetime import date

    from govdash.analytics.queries.evaluation import evaluation_units
    from govdash.core.rounds import RoundIndicator, evaluator_scope
    from govdash.core.warehouse import connect_readonly

    try:
        deadline = date.fromisoformat(args.deadline)
    except ValueError:
        print(f"✗ --deadline 应写成 YYYY-MM-DD，实际为“{args.deadline}”。", file=sys.stderr)
        return 2
    if current_snapshot(db_path) is None:
        print(
            f"数据仓库不存在：{db_path}（请先运行 govdash load 或 govdash demo）。", file=sys.stderr
        )
        return 1
    accounts = AccountStore(accounts_path(db_path))
    chosen = []
    for entry in args.evaluator:
        name, _, community = entry.partition("@")
        evaluator_scope(accounts, name.strip(), _oidc_configured())  # refuses the wrong names
        chosen.append((name.strip(), community.strip() or None))
    con = connect_readonly(db_path)
    try:
        units = evaluation_units(con, config, args.year, args.level)
    finally:
        con.close()
    indicators = [
        RoundIndicator(i.name, i.block, i.points, i.help)
        for i in config.indicators
        if i.source == "evaluator"
    ]
    round_ = store.open_round(
        actor,
        args.year,
        args.level,
        indicators,
        units,
        deadline,
        config.round_score_step,
        args.title,
    )
    print(
        f"已开启{round_.label()}：{len(units)} 个单位，{len(indicators)} 项评委打分指标，截止 {deadline}。"
    )
    for name, community in chosen:
        recused = store.assign(actor, round_.round_id, name, community)
        note = f"，回避 {'、'.join(recused)}（所属社区：{community}）" if recused else ""
        print(f"  指派评委 {name}{note}")
    if not chosen:
        print("  尚未指派评委：在“评分轮次”页指派，或用 --evaluator 重新开启前先删除本轮。")
    return 0


def _round_status(args: argparse.Namespace, config: Config, store: Any, actor: Any) -> int:
    if args.round_id is None:
        rounds = store.rounds(actor)
        if not rounds:
            print("还没有评分轮次。用 govdash round open 开启。")
        for round_ in rounds:
            state = (
                f"已锁定 {round_.locked_at}"
                if round_.is_locked
                else f"进行中，截止 {round_.deadline}"
            )
            print(f"{round_.round_id}\t{round_.year}\t{round_.level}\t{round_.title}\t{state}")
        return 0
    round_ = store.get(actor, args.round_id)
    evaluators, units = store.progress(actor, round_.round_id, config.trim_from_evaluators)
    state = f"已锁定 {round_.locked_at}" if round_.is_locked else f"进行中，截止 {round_.deadline}"
    print(f"{round_.label()}（{round_.year}年 · {round_.level}）{state}")
    print("评委\t应评\t已提交\t草稿\t未开始\t提醒次数\t逾期")
    for row in evaluators.itertuples(index=False):
        print(
            f"{row.evaluator}\t{row.units}\t{row.submitted}\t{row.drafts}\t{row.not_started}"
            f"\t{row.reminders}\t{'是' if row.is_late else '否'}"
        )
    short = units[units["is_short"]]
    if not short.empty:
        print(
            f"已提交评分少于 {config.trim_from_evaluators} 位评委的单位（将按平均分计，"
            f"不去掉最高最低分）："
            + "、".join(f"{r.unit}（{r.submitted}）" for r in short.itertuples())
        )
    return 0


def _backup_arguments(commands: argparse._SubParsersAction) -> None:
    backup = commands.add_parser(
        "backup", help="把整套安装备份为一个（加密的）文件 / back up the installation"
    )
    backup.add_argument("--out", type=Path, required=True, help="备份文件 / the archive to write")
    secret = backup.add_mutually_exclusive_group()
    secret.add_argument(
        "--passphrase-stdin",
        action="store_true",
        help="从标准输入第一行读取口令并加密备份 / encrypt with a passphrase read from stdin",
    )
    secret.add_argument(
        "--no-encrypt",
        action="store_true",
        help="不加密（备份含哈希密钥和账号，只在写入已加密的介质时使用）/ write it unencrypted",
    )
    _common(backup)
    restore = commands.add_parser(
        "restore", help="把备份恢复为一套新的安装 / restore a backup as a new installation"
    )
    restore.add_argument("archive", type=Path, help="备份文件 / the archive")
    restore.add_argument(
        "--passphrase-stdin",
        action="store_true",
        help="从标准输入第一行读取备份口令 / the passphrase, first line of stdin",
    )
    _common(restore)


def _read_passphrase() -> str:
    return sys.stdin.readline().rstrip("\r\n")


def _cmd_backup(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """One archive of everything the installation needs; refuses to write the secrets in the
    clear unless told so (--no-encrypt)."""
    from govdash.core.backup import BackupError, backup

    if not args.passphrase_stdin and not args.no_encrypt:
        print(
            "✗ 备份含手机号哈希密钥和账号（口令哈希），应加密：请加 --passphrase-stdin 并从标准输入"
            "提供口令；只有备份写到本身已加密的介质时，才明确写 --no-encrypt。",
            file=sys.stderr,
        )
        return 2
    passphrase = _read_passphrase() if args.passphrase_stdin else None
    try:
        result = backup(db_path, args.out, passphrase, config, progress=_progress, actor=os_user())
    except BackupError as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"⚠ {warning}", file=sys.stderr)
    warehouse = result.manifest.get("warehouse") or {}
    print(
        f"已备份到 {result.path}（{result.size / 1e6:.1f} MB，"
        f"{len(result.manifest['members'])} 个文件，"
        f"{'已加密' if result.encrypted else '未加密'}，"
        f"数据仓库：{_held_snapshot(warehouse)}）"
    )
    return 0


def _held_snapshot(warehouse: dict[str, Any]) -> str:
    if warehouse.get("snapshot") is not None:
        return f"数据快照 #{warehouse['snapshot']}"
    return f"旧版仓库文件 {warehouse['version_file']}" if warehouse.get("version_file") else "无"


def _cmd_restore(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """Unpack, verify and put in place a backup at a location that holds no installation."""
    from govdash.core.backup import BackupError, restore

    passphrase = _read_passphrase() if args.passphrase_stdin else None
    try:
        result = restore(args.archive, db_path, passphrase, progress=_progress, actor=os_user())
    except BackupError as error:
        print(f"✗ {error}", file=sys.stderr)
        return 1
    warehouse = result.manifest.get("warehouse") or {}
    print(
        f"已恢复到 {result.data_dir}：数据仓库 {result.db_path}"
        f"（{_held_snapshot(warehouse)}，备份于 {result.manifest['created_at']}，"
        f"govdash {result.manifest['product_version']}）"
    )
    for note in result.notes:
        print(f"⚠ {note}")
    print(f"请检查：govdash status --check --db {result.db_path}")
    return 0


def _write_file(out: Path, data: bytes) -> None:
    """Write `out` whole or not at all: a private file beside it, renamed over it."""
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, out)


def _fixup_arguments(commands: argparse._SubParsersAction) -> None:
    fixup = commands.add_parser(
        "fixup",
        help="把拒收的行按来源文件写回待改正工作簿 / write rejected rows back as workbooks to fix",
    )
    fixup.add_argument(
        "--batch",
        type=int,
        default=None,
        help="只写这一批次（默认：每个有拒收行的批次）/ one batch",
    )
    fixup.add_argument(
        "--out", type=Path, default=Path("."), help="写入的文件夹（默认当前文件夹）/ folder"
    )
    _actor(fixup)
    _common(fixup)


def _cmd_fixup(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """One workbook of rows to fix per batch with rejections (the page's download, for scripts
    that mail them back); exit 1 when there is nothing to write."""
    from govdash.core.warehouse import connect_readonly
    from govdash.etl.fixup import fixup_available
    from govdash.etl.load import fixup_for_batch

    if current_snapshot(db_path) is None:
        print(f"数据仓库不存在：{db_path}（请先运行 govdash load）。", file=sys.stderr)
        return 1
    con = connect_readonly(db_path)
    try:
        batches = con.execute(
            "SELECT batch_id, any_value(file_name), count(DISTINCT (sheet, row_number)) "
            "FROM rejected_rows WHERE $batch IS NULL OR batch_id = $batch "
            "GROUP BY batch_id ORDER BY batch_id",
            {"batch": args.batch},
        ).fetchall()
    finally:
        con.close()
    if not batches:
        which = f"批次 {args.batch} " if args.batch is not None else ""
        print(f"{which}没有拒收的行，无需改正。", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    actor = args.actor or os_user()
    written = 0
    used: set[str] = set()
    for batch_id, file_name, rows in batches:
        if not fixup_available(db_path, int(batch_id)):
            print(
                f"✗ 批次 {batch_id}（{file_name}）：原始文件已不在 raw/ 中，无法生成待改正工作簿；"
                "请报送人按拒收记录改正后重新报送。",
                file=sys.stderr,
            )
            continue
        name, data = fixup_for_batch(db_path, config, int(batch_id), actor, method="cli")
        if name in used:  # two batches of files with the same name
            name = f"批次{batch_id}_{name}"
        used.add(name)
        target = args.out / name
        _write_file(target, data)
        written += 1
        print(f"✓ 批次 {batch_id}（{file_name}）：{rows} 行待改正 → {target}")
    return 0 if written else 1


def _cmd_migrate(args: argparse.Namespace, db_path: Path, config: Config) -> int:
    """An old release's single-file warehouse into the lake: copied table by table in one
    transaction when this DuckDB can read the file, otherwise rebuilt from data/raw."""
    from govdash.core.warehouse import legacy_warehouse
    from govdash.etl.migrate import MigrationError, migrate

    snapshot = current_snapshot(db_path)
    if snapshot is not None:
        print(f"数据仓库已是 DuckLake（快照 #{snapshot}），无需迁移。")
        # After an upgrade: figures stored by another release's definition are built anew.
        _settle(args, db_path, config, _progress)
        return 0
    source = args.source or legacy_warehouse(db_path)
    if source is not None and not args.rebuild:
        try:
            snapshot = migrate(Path(source), db_path, config, actor=args.actor)
        except MigrationError as error:
            print(f"⚠ {error}", file=sys.stderr)
        else:
            print(f"已迁移：{source} → 数据快照 #{snapshot}（旧文件保留，确认无误后可自行删除）。")
            return 0
    return _cmd_rebuild(args, db_path, config)
