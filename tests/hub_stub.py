"""A loopback Hugging Face Hub for the contract test: the endpoints `huggingface_hub` and
`datasets` use to push, tag and load a dataset, with repos kept in memory.

Implemented: whoami-v2, agent-harnesses (the client's best-effort registry fetch), repos/create, validate-yaml (the card's metadata), preupload (every file "regular": no LFS), commit (ndjson),
tag/branch create, dataset info (+ /revision/<rev>), tree, paths-info, and resolve (GET/HEAD).
With `HF_HUB_DISABLE_XET=1` nothing else is needed. Requests are recorded in `requests`;
unknown routes answer 404 and are recorded in `unknown`, so a client change shows up as a failure
naming the route. A contract test only: it checks our use of the client, not the real Hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import yaml

TOKEN = "hf_stub_token"
USER = "tester"


class Repo:
    def __init__(self, private: bool):
        self.private = private
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[str, str] = {}  # branch or tag -> commit oid
        self.tags: set[str] = set()

    def files(self, rev: str) -> dict[str, bytes] | None:
        oid = self.refs.get(rev, rev)
        return self.commits.get(oid)

    def oid(self, rev: str) -> str:
        return self.refs.get(rev, rev)


class HubStub:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[tuple[str, str]] = []
        self.auth_headers: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stub._route(self, "GET")

            def do_HEAD(self):
                stub._route(self, "HEAD")

            def do_POST(self):
                stub._route(self, "POST")

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # clients closing kept-alive connections is not an error here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _route(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        path, query = unquote(url.path), parse_qs(url.query)
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else b""
        self.requests.append((method, path))
        self.auth_headers.append(h.headers.get("Authorization", ""))
        routes = [
            ("GET", r"/api/whoami-v2", self._whoami),
            ("GET", r"/api/agent-harnesses", lambda h, **_: _send(h, 200, {"standardEnvVars": [], "harnesses": {}})),
            ("POST", r"/api/repos/create", self._create),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>.+)", self._preupload),
            ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>.+)", self._commit),
            ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/(?P<kind>tag|branch)/(?P<rev>.+)", self._ref),
            ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", self._tree),
            ("POST", r"/api/datasets/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>.+)", self._paths_info),
            ("GET", r"/api/datasets/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>.+))?", self._info),
            ("GET|HEAD", r"/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
        ]
        for methods, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if method in methods.split("|") and match:
                args = match.groupdict()
                if "repo" in args and args["repo"] not in self.repos and handler != self._create:
                    return _send(h, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                return handler(h, method=method, body=body, query=query, **args)
        self.unknown.append((method, h.path))
        _send(h, 404, {"error": f"stub: no route for {method} {h.path}"})

    def _whoami(self, h, **_):
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _send(h, 401, {"error": "Invalid credentials"})
        _send(h, 200, {"type": "user", "name": USER, "orgs": [], "auth": {"type": "access_token"}})

    def _create(self, h, body, **_):
        data = json.loads(body)
        repo_id = f"{data.get('organization') or USER}/{data['name']}"
        if repo_id in self.repos:
            return _send(h, 409, {"error": "You already created this dataset repo", "url": repo_id})
        repo = self.repos[repo_id] = Repo(data.get("visibility", "private" if data.get("private") else "public") != "public")
        repo.commits["0" * 40] = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
        repo.refs["main"] = "0" * 40  # a new Hub repo starts with one commit on main
        _send(h, 200, {"url": f"{self.url}/datasets/{repo_id}", "name": repo_id})

    def _validate_yaml(self, h, body, **_):
        text = json.loads(body)["content"]
        meta = yaml.safe_load(text.split("---")[1]) if text.startswith("---") else {}
        if not isinstance(meta, dict):
            return _send(h, 400, {"errors": [{"message": "metadata is not a mapping"}]})
        _send(h, 200, {"warnings": []})

    def _preupload(self, h, body, **_):
        files = json.loads(body)["files"]
        _send(h, 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                 for f in files]})

    def _commit(self, h, repo, rev, body, **_):
        r = self.repos[repo]
        files = dict(r.files(rev) or {})
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] in ("deletedFile", "deletedFolder"):
                gone = item["value"]["path"]
                files = {p: c for p, c in files.items() if p != gone and not p.startswith(f"{gone}/")}
        oid = hashlib.sha1(json.dumps(sorted((p, c.hex()) for p, c in files.items())).encode()
                           + str(len(r.commits)).encode()).hexdigest()
        r.commits[oid] = files
        r.refs[rev] = oid
        _send(h, 200, {"success": True, "commitOid": oid, "commitUrl": f"{self.url}/datasets/{repo}/commit/{oid}"})

    def _ref(self, h, repo, kind, rev, body, **_):
        r, name = self.repos[repo], json.loads(body or b"{}").get("tag")
        if kind == "branch":  # POST /branch/<name> {startingPoint}
            name, start = rev, json.loads(body or b"{}").get("startingPoint", "main")
            rev = start
        if name in r.refs:
            return _send(h, 409, {"error": f"{kind} {name} already exists"})
        r.refs[name] = r.oid(rev)
        if kind == "tag":
            r.tags.add(name)
        _send(h, 200, {})

    def _entries(self, files: dict[str, bytes], sub: str = "", recursive: bool = True) -> list[dict]:
        prefix = sub.strip("/")
        out, dirs = [], set()
        for p in sorted(files):
            if prefix and not p.startswith(f"{prefix}/"):
                continue
            rest = p[len(prefix) + 1:] if prefix else p
            if "/" in rest and not recursive:
                dirs.add(f"{prefix}/{rest.split('/')[0]}".strip("/"))
                continue
            out.append({"type": "file", "path": p, "size": len(files[p]), "oid": _oid(files[p])})
        return [{"type": "directory", "path": d, "oid": _oid(d.encode()), "size": 0} for d in sorted(dirs)] + out

    def _tree(self, h, repo, rev, sub=None, query=None, **_):
        files = self.repos[repo].files(rev)
        if files is None:
            return _send(h, 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
        recursive = (query or {}).get("recursive", ["false"])[0].lower() == "true"
        _send(h, 200, self._entries(files, sub or "", recursive))

    def _paths_info(self, h, repo, rev, body, **_):
        files = self.repos[repo].files(rev) or {}
        form = parse_qs(body.decode())
        wanted = form.get("paths") or json.loads(body or b"{}").get("paths", [])
        out = [e for e in self._entries(files) if e["path"] in wanted]
        dirs = {w for w in wanted if any(p.startswith(f"{w}/") for p in files)}
        out += [{"type": "directory", "path": d, "oid": _oid(d.encode()), "size": 0} for d in sorted(dirs)]
        _send(h, 200, out)

    def _info(self, h, repo, rev=None, **_):
        r = self.repos[repo]
        files = r.files(rev or "main")
        if files is None:
            return _send(h, 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
        _send(h, 200, {"id": repo, "_id": repo, "sha": r.oid(rev or "main"), "private": r.private,
                       "siblings": [{"rfilename": p} for p in sorted(files)], "tags": [],
                       "lastModified": "2026-01-01T00:00:00.000Z", "disabled": False, "gated": False})

    def _resolve(self, h, repo, rev, file, method, **_):
        r = self.repos[repo]
        files = r.files(rev)
        if files is None:
            return _send(h, 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
        if file not in files:
            return _send(h, 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        data = files[file]
        headers = {"ETag": f'"{_oid(data)}"', "X-Repo-Commit": r.oid(rev), "Content-Type": "application/octet-stream"}
        _send(h, 200, data, headers)


def _oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _send(h, status: int, payload, headers: dict[str, str] | None = None) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    h.send_response(status)
    if not isinstance(payload, bytes):
        h.send_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if h.command != "HEAD":  # a HEAD answer with a body corrupts the kept-alive connection
        h.wfile.write(data)
