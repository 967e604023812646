"""The dashboard over HTTP: pages, paging at scale, live events, and its safety rules."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from maestro_lite.errors import UserError
from maestro_lite.runs import RunQuery, SQLiteRunStore, open_run_store
from maestro_lite.settings import Settings
from maestro_lite.ui import address
from maestro_lite.ui.app import DashboardConfig
from maestro_lite.ui.security import Redactor, check_bind

from ..services.stores import settings_on
from .conftest import HOSTILE, live_server, record_sync, spec

TOKEN = "a-long-random-token-for-tests"


def add_runs(settings: Settings, count: int) -> None:
    with open_run_store(settings) as store:
        for i in range(count):
            task = f"question number {i}" + (" about 100%_notice" if i % 10 == 0 else "")
            store.create(spec(f"bulk{i:05d}", task))


def test_pages_of_runs_are_read_with_sql_filters_and_offsets(db: str, tmp_path: Path) -> None:
    settings = settings_on(db, tmp_path / "home")  # SQLite, then PostgreSQL
    add_runs(settings, 120)
    query = RunQuery.open(settings)
    try:
        first = query.page(limit=50)
        assert first.total == 120 and len(first.rows) == 50
        assert first.rows[0].summary.run_id == "bulk00119"  # newest first
        last = query.page(offset=100, limit=50)
        assert [r.summary.run_id for r in last.rows][-1] == "bulk00000"
        # LIKE wildcards in the search are taken literally.
        found = query.page(search="100%_notice")
        assert found.total == 12
        assert query.page(search="100x_notice").total == 0
        assert query.page(status="passed").total == 0
        assert query.page(corpus="contracts", status="running").total == 120
    finally:
        query.close()


def test_runs_list_pages_filters_and_refuses_bad_input(settings: Settings, dashboard: str) -> None:
    add_runs(settings, 60)
    with httpx.Client(base_url=dashboard) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.text.count('class="run-row"') == 50
        assert 'rel="next"' in page.text
        second = client.get("/", params={"page": 2})
        assert second.text.count('class="run-row"') == 10
        searched = client.get("/", params={"q": "question number 7"})
        assert searched.text.count('class="run-row"') == 1
        assert client.get("/", params={"status": "bogus"}).status_code == 400
        assert client.get("/", params={"page": "x"}).status_code == 400
        missing = client.get("/runs/nope")
        assert missing.status_code == 404 and "no run" in missing.text


def test_document_text_renders_as_text_and_secrets_never_render(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-live-abcdefghijklmnopqrstuvwxyz"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    record_sync(settings, "r1")
    with SQLiteRunStore(settings.runs_db) as store:
        store.create(spec("leaky", f"call with {secret} and Bearer abcdefghijklmnopqrstuvwx"))
    config = DashboardConfig(settings=settings, corpora=False)
    with live_server(config) as url, httpx.Client(base_url=url) as client:
        run = client.get("/runs/r1").text
        step = client.get("/runs/r1/steps/1/s1")
        assert client.get("/runs/r1/steps/9/s1").status_code == 404
        assert client.get("/runs/r1/steps/x/s1").status_code == 404
        for page in (run, step.text):
            assert HOSTILE not in page
            assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
        assert 'onerror="window' not in step.text
        assert "&lt;img src=x onerror=&#34;window.pwned=2&#34;&gt;.txt" in step.text
        assert "<mark>" in step.text
        for path in ("/", "/runs/leaky"):
            text = client.get(path).text
            assert secret not in text and "abcdefghijklmnopqrstuvwx" not in text
            assert "[redacted]" in text
        headers = client.get("/").headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"


def test_redactor_masks_secret_variables_and_key_shapes() -> None:
    redact = Redactor({"MY_API_KEY": "hunter2hunter2", "HOME": "/root"}, extra=("tok3n",))
    assert redact("key hunter2hunter2 in /root") == "key [redacted] in /root"
    assert redact("use tok3n or sk-proj-0123456789abcdef") == "use [redacted] or [redacted]"


def test_the_live_stream_sends_a_runs_events_then_its_end(
    settings: Settings, dashboard: str
) -> None:
    record_sync(settings, "r1")
    with httpx.Client(base_url=dashboard) as client:
        body = client.get("/runs/r1/stream").text
        later = client.get("/runs/r1/stream", headers={"Last-Event-ID": "20"}).text
        assert client.get("/runs/none/stream").status_code == 404
    assert body.startswith("id: 1\nevent: run\n")
    assert body.rstrip().endswith('event: end\ndata: {"status": "passed"}')
    assert "id: 20\n" not in later and "id: 21\n" in later


@pytest.fixture
def client(dashboard: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard) as client:
        yield client


def _csrf(client: httpx.Client) -> str:
    page = client.get("/operations").text
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_actions_refuse_cross_site_requests_and_forms_without_the_csrf_token(
    client: httpx.Client,
) -> None:
    csrf = _csrf(client)
    form = {"name": "adhoc", "job": 'run "What changed?"'}
    assert client.post("/jobs", data=form).status_code == 403  # no CSRF token
    assert client.post("/jobs", data={**form, "csrf": "forged"}).status_code == 403
    origin = str(client.base_url).rstrip("/")
    evil = {"Origin": "https://evil.example"}
    assert client.post("/jobs", data={**form, "csrf": csrf}, headers=evil).status_code == 403
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": origin}
    assert client.post("/jobs", data={**form, "csrf": csrf}, headers=cross).status_code == 403
    done = client.post("/jobs", data={**form, "csrf": csrf}, headers={"Origin": origin})
    assert done.status_code == 200 and "queued job" in done.text
    bad = client.post("/jobs", data={"name": "x", "job": "frobnicate", "csrf": csrf})
    assert bad.status_code == 400 and "cannot be scheduled" in bad.text
    unknown = client.post("/schedules/none/pause", data={"csrf": csrf})
    assert unknown.status_code == 400 and "no schedule named" in unknown.text


def test_a_page_asked_for_under_another_host_name_is_refused(client: httpx.Client) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not read the dashboard."""
    assert client.get("/", headers={"Host": "evil.example:8765"}).status_code == 421
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200


def test_with_a_token_every_request_needs_it(settings: Settings) -> None:
    config = DashboardConfig(settings=settings, token=TOKEN, corpora=False)
    with live_server(config) as url, httpx.Client(base_url=url) as client:
        assert client.get("/").status_code == 401
        assert client.get("/", params={"token": "wrong"}).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/performance", headers=bearer).status_code == 200
        traded = client.get("/", params={"token": TOKEN, "q": "x"}, follow_redirects=True)
        assert traded.status_code == 200  # redirected to /?q=x with the cookie set
        assert traded.url.params.get("token") is None and traded.url.params["q"] == "x"
        assert TOKEN not in traded.text
        assert client.get("/operations").status_code == 200  # the cookie carries it


def test_serving_beyond_loopback_needs_a_token() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(UserError, match="without a token"):
        check_bind("0.0.0.0", None)
    assert address("127.0.0.1", 8765, "a b") == "http://127.0.0.1:8765/?token=a%20b"


def test_maestro_ui_on_a_public_address_without_a_token_exits_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "maestro_lite", "ui", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "refusing to serve the dashboard on 0.0.0.0" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_maestro_ui_prints_an_address_that_shows_the_recorded_runs(settings: Settings) -> None:
    record_sync(settings, "cli-run")
    process = subprocess.Popen(
        [sys.executable, "-m", "maestro_lite", "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "maestro-lite dashboard: http://127.0.0.1:" in line, line
        url = line.split("dashboard: ", 1)[1].split()[0]
        page = httpx.get(url)
        assert page.status_code == 200 and "cli-run" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


def test_the_runs_stream_reports_changes_since_the_state_the_page_showed(
    settings: Settings, dashboard: str
) -> None:
    """A run recorded between rendering the list and opening its stream is not missed."""
    with httpx.Client(base_url=dashboard) as client:
        page = client.get("/").text
        since = page.split('data-live="/stream/runs?since=', 1)[1].split('"', 1)[0]
        assert since == "0%7C"  # no runs yet
        record_sync(settings, "r1")
        with client.stream("GET", f"/stream/runs?since={since}") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "event: changed"
            assert next(lines) == 'data: {"runs": 1}'
