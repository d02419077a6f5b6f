"""A local stand-in for Gemini's REST API (v1beta generateContent and streamGenerateContent?alt=sse),
so the chatbot's Gemini metrics carry real values in the live test. A question containing BLOCK_ME
is refused the way Gemini refuses a prompt (promptFeedback.blockReason), a failure the chatbot does
not retry."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOCK_MARKER = "BLOCK_ME"


def _answer(text: str) -> dict:
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 42, "candidatesTokenCount": 7, "totalTokenCount": 49},
        "modelVersion": "fake-gemini",
    }


class _Handler(BaseHTTPRequestHandler):
    server: "FakeGemini"

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode("utf-8", "replace")
        self.server.requests.append((self.path, self.headers.get("x-goog-api-key")))
        if ":generateContent" not in self.path and ":streamGenerateContent" not in self.path:
            self._json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
            return
        if BLOCK_MARKER in body:
            reply = {"promptFeedback": {"blockReason": "SAFETY"}}
        else:
            reply = _answer("Resposta de teste: revise a aula e tente o exercicio de novo.")
        if ":streamGenerateContent" in self.path:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            if "candidates" in reply:
                first = _answer("Resposta de teste: ")
                first["candidates"][0].pop("finishReason")
                first.pop("usageMetadata")
                self.wfile.write(b"data: " + json.dumps(first).encode() + b"\r\n\r\n")
            self.wfile.write(b"data: " + json.dumps(reply).encode() + b"\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        self._json(200, reply)

    def _json(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeGemini(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str | None]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()
