"""`releasekit ci comment FILE`: one pull-request (or merge-request) comment per review,
updated in place on every run.

The comment is found by the marker the check's Markdown report starts with (any other body
gets it put in front): list the comments (every page), replace the first one that starts
with the marker, else create one.

    GitHub Actions (GITHUB_ACTIONS set): GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL
      (default https://api.github.com), the number from PR_NUMBER or the event's
      pull_request.number (GITHUB_EVENT_PATH); the issue-comments API.
    GitLab CI (GITLAB_CI set): RELEASEKIT_GITLAB_TOKEN (sent as PRIVATE-TOKEN; CI_JOB_TOKEN
      may not write notes), CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID; the
      merge-request notes API.

The token goes in a header and nowhere else: never into a message, and never to another
host than the API's (pagination links and redirects elsewhere are refused).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPMessage
from pathlib import Path
from typing import Any

from releasekit.errors import CommentError, ConfigError

MARKER = "<!-- releasekit-check -->"  # the check's Markdown report opens with it
GITHUB_API = "https://api.github.com"
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_TIMEOUT = 30.0


@dataclass(frozen=True)
class CommentResult:
    where: str  # "GitHub pull request #7"
    action: str  # created | updated
    comment_id: int
    url: str | None  # the comment's page, when the forge says


@dataclass(frozen=True)
class _Forge:
    """One forge's comment endpoints for one review, and how to authenticate."""

    name: str
    where: str
    comments_url: str  # list (GET) and create (POST)
    item_url: str  # replace: item_url.format(id=...)
    update_method: str  # PATCH on GitHub, PUT on GitLab
    headers: Mapping[str, str]
    skip: str | None = None  # a field marking entries that are not comments (GitLab's system notes)


def post_comment(body: str, environ: Mapping[str, str], *, timeout: float = _TIMEOUT) -> CommentResult:
    """Create or replace the review's releasekit comment with `body`."""
    forge = _forge(environ)
    text = body if body.lstrip().startswith(MARKER) else f"{MARKER}\n{body}"
    client = _Client(forge, timeout)
    found = next((entry for entry in client.pages(forge.comments_url) if _is_ours(entry, forge)), None)
    if found is None:
        made = client.call("POST", forge.comments_url, {"body": text})
        return CommentResult(forge.where, "created", int(made["id"]), made.get("html_url"))
    url = forge.item_url.format(id=int(found["id"]))
    changed = client.call(forge.update_method, url, {"body": text})
    return CommentResult(forge.where, "updated", int(changed["id"]), changed.get("html_url"))


def read_body(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc}",
            hint="write it first: releasekit check --markdown FILE",
        ) from None


def _is_ours(entry: Any, forge: _Forge) -> bool:
    if not isinstance(entry, Mapping) or (forge.skip and entry.get(forge.skip)):
        return False
    return str(entry.get("body") or "").lstrip().startswith(MARKER)


# --- the forges -----------------------------------------------------------------------------


def _forge(environ: Mapping[str, str]) -> _Forge:
    if environ.get("GITHUB_ACTIONS"):
        return _github(environ)
    if environ.get("GITLAB_CI"):
        return _gitlab(environ)
    raise ConfigError(
        "`releasekit ci comment` posts to a pull request from its CI job, but neither "
        "GITHUB_ACTIONS nor GITLAB_CI is set",
        hint="run it in a GitHub Actions or GitLab CI job (both set their variable)",
    )


def _github(environ: Mapping[str, str]) -> _Forge:
    token = _required(environ, "GITHUB_TOKEN", "give the step `env: GITHUB_TOKEN: ${{ github.token }}`")
    repository = _required(environ, "GITHUB_REPOSITORY", "GitHub Actions sets it: run it in a workflow")
    if not _REPOSITORY.fullmatch(repository):
        raise ConfigError(f"GITHUB_REPOSITORY {repository!r} is not OWNER/NAME")
    number = _github_number(environ)
    api = (environ.get("GITHUB_API_URL") or GITHUB_API).rstrip("/")
    issue = f"{api}/repos/{repository}/issues"
    return _Forge(
        name="GitHub",
        where=f"GitHub pull request #{number}",
        comments_url=f"{issue}/{number}/comments?per_page=100",
        item_url=f"{issue}/comments/{{id}}",
        update_method="PATCH",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )


def _github_number(environ: Mapping[str, str]) -> int:
    if environ.get("PR_NUMBER"):
        return _number("PR_NUMBER", environ["PR_NUMBER"])
    path = environ.get("GITHUB_EVENT_PATH")
    event: Any = {}
    if path:
        try:
            event = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the event GITHUB_EVENT_PATH names ({path}): {exc}") from None
    number = (event.get("pull_request") or {}).get("number") if isinstance(event, Mapping) else None
    if number is None:
        raise ConfigError(
            "no pull request to comment on: PR_NUMBER is not set and the workflow's event "
            "(GITHUB_EVENT_PATH) has no pull_request.number",
            hint="run it in a `pull_request` workflow, "
            "or set PR_NUMBER: ${{ github.event.pull_request.number }}",
        )
    return _number("pull_request.number", str(number))


def _gitlab(environ: Mapping[str, str]) -> _Forge:
    token = _required(
        environ,
        "RELEASEKIT_GITLAB_TOKEN",
        "add a project access token with the `api` scope as a masked CI/CD variable of that name "
        "(the job token may not write merge-request notes)",
    )
    api = _required(environ, "CI_API_V4_URL", "GitLab CI sets it: run it in a pipeline job").rstrip("/")
    project = _number("CI_PROJECT_ID", _required(environ, "CI_PROJECT_ID", "GitLab CI sets it"))
    iid = _number(
        "CI_MERGE_REQUEST_IID",
        _required(
            environ,
            "CI_MERGE_REQUEST_IID",
            "run the job in merge request pipelines: "
            'rules: - if: $CI_PIPELINE_SOURCE == "merge_request_event"',
        ),
    )
    notes = f"{api}/projects/{project}/merge_requests/{iid}/notes"
    return _Forge(
        name="GitLab",
        where=f"GitLab merge request !{iid}",
        comments_url=f"{notes}?per_page=100&sort=asc",
        item_url=f"{notes}/{{id}}",
        update_method="PUT",
        headers={"PRIVATE-TOKEN": token},
        skip="system",
    )


def _required(environ: Mapping[str, str], name: str, hint: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; `releasekit ci comment` needs it", hint=hint)
    return value


def _number(name: str, text: str) -> int:
    if not text.strip().isdigit():
        raise ConfigError(f"{name} is {text!r}, not a number")
    return int(text)


# --- HTTP -----------------------------------------------------------------------------------


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the API's own scheme and host: the token travels with it."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: HTTPMessage, newurl: str
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            raise CommentError(
                f"the API redirected {req.full_url} to another host ({_origin(newurl)}); refused"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Client:
    def __init__(self, forge: _Forge, timeout: float) -> None:
        self.forge = forge
        self.timeout = timeout
        self.origin = _origin(forge.comments_url)
        self.opener = urllib.request.build_opener(_SameHostRedirects())

    def pages(self, url: str) -> Iterator[Any]:
        """Every entry of a listing, page after page (the Link header's `next`)."""
        next_url: str | None = url
        while next_url is not None:
            if _origin(next_url) != self.origin:
                raise CommentError(
                    f"{self.forge.name} sent a next-page link to another host ({next_url}); refused"
                )
            entries, headers = self._send("GET", next_url, None)
            yield from entries if isinstance(entries, list) else []
            found = _NEXT_LINK.search(headers.get("Link", ""))
            next_url = found.group(1) if found else None

    def call(self, method: str, url: str, payload: Mapping[str, Any]) -> Any:
        return self._send(method, url, payload)[0]

    def _send(self, method: str, url: str, payload: Mapping[str, Any] | None) -> tuple[Any, Message]:
        headers = {**self.forge.headers, "User-Agent": "releasekit"}
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
                return (json.loads(raw) if raw else None), response.headers
        except urllib.error.HTTPError as exc:
            raise CommentError(
                f"{self.forge.name} answered {exc.code} {exc.reason} to {method} {url}: {_message(exc)}",
                hint=_hint(self.forge.name, exc.code),
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CommentError(f"cannot reach {self.forge.name} at {url}: {reason}") from None
        except ValueError as exc:
            raise CommentError(
                f"{self.forge.name} answered {method} {url} with something not JSON: {exc}"
            ) from None


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _message(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return "(no details)"
    message = body.get("message") if isinstance(body, Mapping) else None
    return str(message or body or "(no details)")[:300]


def _hint(forge: str, code: int) -> str | None:
    if code not in (401, 403, 404):
        return None
    if forge == "GitHub":
        return "the job needs `permissions: pull-requests: write` and GITHUB_TOKEN: ${{ github.token }}"
    return "RELEASEKIT_GITLAB_TOKEN needs the `api` scope and at least the Reporter role on the project"
