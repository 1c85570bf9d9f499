"""`releasekit ci comment`: one comment per pull (merge) request, created once, then updated
in place, found across pages. Against a small forge on loopback that implements GitHub's
issue-comments and GitLab's merge-request-notes endpoints and keeps the comments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from releasekit import api
from releasekit.ci.comment import MARKER
from releasekit.errors import CommentError, ConfigError
from tests.support.ci import FORGE_REPOSITORY, FORGE_TOKEN, Forge, serve_forge
from tests.support.cli_runs import RELEASEKIT, cli_env

TOKEN = FORGE_TOKEN


@pytest.fixture
def forge() -> Iterator[Forge]:
    with serve_forge() as served:
        yield served


def github_env(forge: Forge, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": FORGE_REPOSITORY,
        "GITHUB_API_URL": forge.url,
        "PR_NUMBER": "7",
        **extra,
    }


def gitlab_env(forge: Forge) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "RELEASEKIT_GITLAB_TOKEN": TOKEN,
        "CI_API_V4_URL": f"{forge.url}/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "3",
    }


def report(tmp_path: Path, verdict: str) -> Path:
    path = tmp_path / f"{verdict}.md"
    path.write_text(f"{MARKER}\n## releasekit check: {verdict}\n")
    return path


def test_github_creates_the_comment_then_updates_it_in_place_past_other_pages(
    forge: Forge, tmp_path: Path
) -> None:
    forge.seed("LGTM", "please rename", "ok", "one more", "also this")  # three pages of others
    environ = github_env(forge)
    first = api.ci_comment(report(tmp_path, "failed"), environ=environ)
    assert (first.action, first.where) == ("created", "GitHub pull request #7")
    assert [method for method, _ in forge.requests] == ["GET", "GET", "GET", "POST"]  # every page first
    forge.seed("a later remark")  # the releasekit comment is now on page 3 of 4
    second = api.ci_comment(report(tmp_path, "passed"), environ=environ)
    assert (second.action, second.comment_id) == ("updated", first.comment_id)
    ours = [c for c in forge.comments if MARKER in c["body"]]
    assert len(ours) == 1 and "passed" in ours[0]["body"] and len(forge.comments) == 7
    # Read page by page up to the one holding it, the third: the fourth is never asked for.
    pages = [path for method, path in forge.requests[-4:] if method == "GET"]
    assert [parse_qs(urlsplit(p).query).get("page", ["1"])[0] for p in pages] == ["1", "2", "3"]
    assert forge.requests[-1] == ("PATCH", f"/repos/acme/shop/issues/comments/{first.comment_id}")


def test_github_takes_the_number_from_the_event_and_marks_a_body_without_marker(
    forge: Forge, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": 12}}))
    notes = tmp_path / "notes.md"
    notes.write_text("plain text\n")
    environ = github_env(forge, PR_NUMBER="", GITHUB_EVENT_PATH=str(event))
    assert api.ci_comment(notes, environ=environ).where == "GitHub pull request #12"
    assert api.ci_comment(notes, environ=environ).action == "updated"
    assert forge.comments[-1]["body"] == f"{MARKER}\nplain text\n"
    assert ("POST", "/repos/acme/shop/issues/12/comments?per_page=100") in forge.requests


def test_gitlab_creates_then_updates_its_note_skipping_system_notes(forge: Forge, tmp_path: Path) -> None:
    forge.seed(f"{MARKER} quoted by a system note", system=True)
    forge.seed("first review", "second review")
    environ = gitlab_env(forge)
    first = api.ci_comment(report(tmp_path, "failed"), environ=environ)
    assert (first.action, first.where) == ("created", "GitLab merge request !3")
    second = api.ci_comment(report(tmp_path, "passed"), environ=environ)
    assert (second.action, second.comment_id) == ("updated", first.comment_id)
    assert forge.comments[0]["body"] == f"{MARKER} quoted by a system note"
    assert forge.requests[-1] == ("PUT", f"/api/v4/projects/42/merge_requests/3/notes/{first.comment_id}")


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "neither GITHUB_ACTIONS nor GITLAB_CI is set"),
        ({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop"}, "GITHUB_TOKEN is not set"),
        ({"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "acme/shop"}, "PR_NUMBER"),
        ({"GITLAB_CI": "true", "CI_API_V4_URL": "http://x"}, "RELEASEKIT_GITLAB_TOKEN is not set"),
        (
            {
                "GITLAB_CI": "true",
                "RELEASEKIT_GITLAB_TOKEN": TOKEN,
                "CI_API_V4_URL": "http://x",
                "CI_PROJECT_ID": "4",
            },
            "CI_MERGE_REQUEST_IID is not set",
        ),
    ],
)
def test_a_missing_setting_is_named(tmp_path: Path, environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as raised:
        api.ci_comment(report(tmp_path, "passed"), environ=environ)
    assert TOKEN not in str(raised.value)


def test_the_cli_exits_2_on_a_refusal_and_never_prints_the_token(forge: Forge, tmp_path: Path) -> None:
    import subprocess

    forge.refuse = 403
    environ = {**cli_env(), **github_env(forge)}
    run = subprocess.run(
        [RELEASEKIT, "ci", "comment", str(report(tmp_path, "passed"))],
        capture_output=True,
        text=True,
        env=environ,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "GitHub answered 403" in run.stderr and "pull-requests: write" in run.stderr
    assert TOKEN not in run.stdout + run.stderr
    forge.refuse = None
    ok = subprocess.run(
        [RELEASEKIT, "ci", "comment", str(report(tmp_path, "passed"))],
        capture_output=True,
        text=True,
        env=environ,
    )
    assert ok.returncode == 0 and "created the releasekit comment on GitHub pull request #7" in ok.stdout
    assert TOKEN not in ok.stdout + ok.stderr


def test_a_next_page_on_another_host_is_refused(forge: Forge, tmp_path: Path) -> None:
    forge.seed("a", "b", "c")
    forge.next_host = "elsewhere.example:8080"
    with pytest.raises(CommentError, match="another host"):
        api.ci_comment(report(tmp_path, "passed"), environ=github_env(forge))
    assert [method for method, _ in forge.requests] == ["GET"]
