"""A browserless Streamlit client: opens dashboard pages over the websocket as a browser does.

The protocol (Streamlit 1.67, ../shared/STACK.md): connect to `<base>/_stcore/stream` with the
`streamlit` subprotocol; frames are protobuf, `BackMsg` up and `ForwardMsg` down. Nothing comes
until the client asks for a run with `BackMsg.rerun_script` (a `ClientState` holding the page's
query string and URL path); a run is `new_session` (its run id), deltas, then `script_finished`
for that run id. Opening another page in the same session is another rerun with another page
name, as a click in the sidebar is.

What a page shows is read from the deltas: each delta names its place in the page
(`metadata.delta_path`); a later delta at the same place replaces the earlier one (a spinner, an
`st.empty`), and a new block drops what was below its place. The client sends no cached message
hashes, so every element arrives whole (a browser that has cached some gets `ref_hash`
stand-ins for them instead: less to send, the same work for the server).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect

FINISHED = ForwardMsg.ScriptFinishedStatus
# The element kinds the benchmark reports, by their protobuf names (Element.type).
CHART = "plotly_chart"
METRIC = "metric"
DOWNLOAD = "download_button"
EXCEPTION = "exception"


@dataclass
class PageLoad:
    """One page run as the client saw it."""

    page: str
    seconds: float = 0.0
    elements: Counter[str] = field(default_factory=Counter)
    headings: list[str] = field(default_factory=list)
    error: str | None = None
    worker: str = ""  # X-Govdash-Worker of the websocket's handshake (with --workers N > 1)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.elements[EXCEPTION]

    def counts(self) -> tuple[int, int, int]:
        """(charts, metrics, download buttons)."""
        return self.elements[CHART], self.elements[METRIC], self.elements[DOWNLOAD]


def stream_url(base: str) -> str:
    """`http://host:port/prefix` → `ws://host:port/prefix/_stcore/stream`."""
    parts = urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream"


def rerun_message(page: str, query: dict[str, str], base: str) -> bytes:
    """The BackMsg a browser sends to run `page` (its URL path, "" for the default page)."""
    message = BackMsg()
    state = message.rerun_script
    state.query_string = urlencode(query)
    state.page_name = page
    state.page_script_hash = ""
    state.context_info.timezone = "Asia/Shanghai"
    state.context_info.timezone_offset = -480
    state.context_info.locale = "zh-CN"
    state.context_info.url = f"{base.rstrip('/')}/{page}" + (
        f"?{urlencode(query)}" if query else ""
    )
    return message.SerializeToString()


class Session:
    """One browser tab: a websocket session that opens pages one after another."""

    def __init__(self, base: str, timeout_s: float = 600.0, cookie: str | None = None) -> None:
        self.base = base
        self.timeout_s = timeout_s
        self.cookie = cookie  # "name=value" sent with the handshake, as a browser sends its own
        self._socket: ClientConnection | None = None

    async def __aenter__(self) -> Session:
        self._socket = await connect(
            stream_url(self.base),
            subprotocols=["streamlit"],  # type: ignore[list-item]
            max_size=None,
            open_timeout=self.timeout_s,
            ping_interval=None,
            additional_headers={"Cookie": self.cookie} if self.cookie else None,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def open(self, page: str, query: dict[str, str]) -> PageLoad:
        """Run `page` and wait for its run to finish; the load's seconds run from the request
        to `script_finished`."""
        assert self._socket is not None, "use `async with Session(...)`"
        load = PageLoad(page)
        if self._socket.response is not None:
            load.worker = self._socket.response.headers.get("X-Govdash-Worker", "")
        started = time.perf_counter()
        try:
            await self._socket.send(rerun_message(page, query, self.base))
            await asyncio.wait_for(self._read_run(load), self.timeout_s)
        except TimeoutError:
            load.error = f"no script_finished within {self.timeout_s:.0f} s"
        except Exception as error:  # a dropped connection, a protocol surprise: count it
            load.error = f"{type(error).__name__}: {error}"
        load.seconds = time.perf_counter() - started
        return load

    async def _read_run(self, load: PageLoad) -> None:
        assert self._socket is not None
        placed: dict[tuple[int, ...], str] = {}
        run_id: str | None = None
        while True:
            frame = await self._socket.recv()
            message = ForwardMsg()
            message.ParseFromString(frame if isinstance(frame, bytes) else frame.encode())
            kind = message.WhichOneof("type")
            if kind == "new_session":
                run_id = message.metadata.run.script_run_id or None
                placed.clear()  # a run that follows one cut short starts the page again
            elif kind == "delta":
                path = tuple(message.metadata.delta_path)
                delta_kind = message.delta.WhichOneof("type")
                if delta_kind == "add_block":
                    for below in [p for p in placed if p[: len(path)] == path]:
                        del placed[below]
                    placed[path] = "block"
                elif delta_kind == "new_element":
                    element = message.delta.new_element
                    element_kind = element.WhichOneof("type") or "unknown"
                    placed[path] = element_kind
                    if element_kind == "heading":
                        load.headings.append(element.heading.body)
            elif kind == "page_not_found":
                load.error = f"page not found: {load.page!r}"
            elif kind == "script_finished":
                ours = run_id is None or message.metadata.run.script_run_id in ("", run_id)
                status = message.script_finished
                if ours and status != FINISHED.FINISHED_EARLY_FOR_RERUN:
                    if status == FINISHED.FINISHED_WITH_COMPILE_ERROR:
                        load.error = "compile error"
                    load.elements = Counter(placed.values())
                    return


async def open_pages(
    base: str,
    pages: list[str],
    query: dict[str, str],
    timeout_s: float = 600.0,
    cookie: str | None = None,
) -> list[PageLoad]:
    """One user: a session that opens `pages` in order; a failed connection fails each page."""
    try:
        async with Session(base, timeout_s, cookie) as session:
            return [await session.open(page, query) for page in pages]
    except Exception as error:
        return [PageLoad(page, error=f"{type(error).__name__}: {error}") for page in pages]
