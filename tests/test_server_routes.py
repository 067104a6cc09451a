"""The sign-in routes of govdash/web/server.py: redirects stay inside the app, under its prefix."""

from __future__ import annotations

import pytest
from streamlit import config as streamlit_config

from govdash.web import server


@pytest.mark.parametrize(
    ("base", "target", "expected"),
    [
        ("", "/response?period=year&year=2025", "/response?period=year&year=2025"),
        ("", "/", "/"),
        ("", "//evil.example/x", "/"),
        ("", "https://evil.example/", "/"),
        ("", "/\\evil.example", "/"),
        ("", "response", "/"),
        ("", None, "/"),
        ("dashboard", "/dashboard/response?x=1", "/dashboard/response?x=1"),
        ("dashboard", "/dashboard", "/dashboard"),
        ("dashboard", "/other-app/", "/dashboard/"),
        ("dashboard", "/dashboard2/", "/dashboard/"),
        ("dashboard", "/dashboard/\r\nSet-Cookie: x", "/dashboard/"),
    ],
)
def test_next_targets_stay_inside_the_app(
    base: str, target: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streamlit_config, "get_option", lambda name: base)
    assert server.safe_next(target) == expected


def test_routes_and_cookie_path_carry_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streamlit_config, "get_option", lambda name: "/dashboard/")
    assert [route.path for route in server.routes()] == [
        "/dashboard/_govdash/session",
        "/dashboard/_govdash/sign-out",
    ]
    assert server.cookie_path() == "/dashboard"
    monkeypatch.setattr(streamlit_config, "get_option", lambda name: "")
    assert server.routes()[0].path == "/_govdash/session"
    assert server.cookie_path() == "/"
