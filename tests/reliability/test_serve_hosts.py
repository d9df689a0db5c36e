"""``attribkit serve --host`` (issue 26): the warning and the Host check agree."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.reliability._cases import case
from tests.serve.synthetic import write_store

from attribkit.cli import main


def _serve(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> Any:
    import uvicorn

    store = tmp_path / "store"
    write_store(store, n_items=3)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    assert main(["serve", str(store), *flags]) == 0
    return seen["app"]


def _status(app: Any, host: str) -> int:
    return TestClient(app, base_url=f"http://{host}:8765").get("/api/summary").status_code


@case("serve", "attribkit serve --host 0.0.0.0 (it warned that anyone could read the store, "
      "then answered 403 to every real address: the Host check knew only 0.0.0.0 and localhost)",
      "the warning says what is answered: only localhost until --allow-host NAME names the "
      "addresses others type; with --allow-host 192.168.1.5 that address is answered, others "
      "still get 403; '*' answers any Host, with a warning that the DNS-rebinding check is off")
def test_host_warning_and_check_agree(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    app = _serve(tmp_path / "a", monkeypatch, "--host", "0.0.0.0")
    out = capsys.readouterr().out
    assert "only requests addressed to localhost are answered" in out and "--allow-host" in out
    assert (_status(app, "localhost"), _status(app, "192.168.1.5")) == (200, 403)

    app = _serve(tmp_path / "b", monkeypatch, "--host", "0.0.0.0", "--allow-host",
                 "192.168.1.5", "--allow-host", "box.lan")
    out = capsys.readouterr().out
    assert "anyone who can reach 192.168.1.5, box.lan can read the store" in out
    assert [_status(app, h) for h in ("192.168.1.5", "box.lan", "localhost", "evil.example")] \
        == [200, 200, 200, 403]

    app = _serve(tmp_path / "c", monkeypatch, "--host", "10.0.0.7")
    assert "anyone who can reach 10.0.0.7 can read the store" in capsys.readouterr().out
    assert (_status(app, "10.0.0.7"), _status(app, "10.0.0.8")) == (200, 403)

    app = _serve(tmp_path / "d", monkeypatch, "--host", "0.0.0.0", "--allow-host", "*")
    assert "no DNS-rebinding check" in capsys.readouterr().out
    assert _status(app, "anything.example") == 200
