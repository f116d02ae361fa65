"""A W&B server that never answers, or refuses the key, sends the run offline with one line, never a hang."""

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from genlab.loggers import wandb_logger

UNAUTHORIZED = (
    b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 48\r\nConnection: close\r\n\r\n"
    b'{"errors":[{"message":"user is not logged in"}]}'
)


def serve(answer: bytes | None) -> Iterator[str]:
    """A server on 127.0.0.1 that sends `answer` to every request, or accepts and never answers (None)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def loop() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            accepted.append(connection)
            if answer is not None:
                connection.recv(65536)
                connection.sendall(answer)
                connection.close()

    threading.Thread(target=loop, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for connection in accepted:
        connection.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    yield from serve(None)


@pytest.fixture
def refusing_server() -> Iterator[str]:
    yield from serve(UNAUTHORIZED)


def start_against(url: str, tmp_path, monkeypatch, caplog) -> str:
    """Start a W&B logger against `url` with a key set; returns the mode its run got."""
    import wandb

    wandb.teardown()  # an earlier test's offline run leaves wandb's process-wide settings behind
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "2")  # bounds the test; runs default to 20 s
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with caplog.at_level(logging.WARNING, logger="genlab.loggers"):
        logger = wandb_logger(save_dir=str(tmp_path), project="genlab")
        mode = logger.experiment.settings.mode
    wandb.finish()
    wandb.teardown()  # wandb keeps the server's address for the process otherwise
    return mode


@pytest.mark.slow
def test_a_server_that_never_answers_sends_the_run_offline(silent_server, tmp_path, monkeypatch, caplog):
    assert start_against(silent_server, tmp_path, monkeypatch, caplog) == "offline"
    (warning,) = [r.getMessage() for r in caplog.records if "W&B could not start online" in r.getMessage()]
    assert "deadline exceeded" in warning and "\n" not in warning


@pytest.mark.slow
def test_a_refused_key_sends_the_run_offline(refusing_server, tmp_path, monkeypatch, caplog):
    assert start_against(refusing_server, tmp_path, monkeypatch, caplog) == "offline"
    (warning,) = [r.getMessage() for r in caplog.records if "W&B could not start online" in r.getMessage()]
    assert "\n" not in warning  # wandb's reason varies: "user is not logged in", or a deadline on retries
