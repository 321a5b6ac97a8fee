"""``hw4grade collect`` on real git repositories with chosen commit dates: each case of
issue #22, the hostile repository's tricks, resuming and the command line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from grader.collect import choose
from grader.collect.collect import Settings, collect_class
from grader.collect.git import Commit, Limits
from grader.collect.manifest import MANIFEST, Status, read_manifest
from grader.collect.roster import RosterRow, parse_deadline, read_roster
from grader.exceptions import RosterError
from tests.fixtures.git_repos import DEADLINE, ROOT, when

BROKEN = b'{"cells": [ this is not JSON any more'


def settings(out: Path, **changes) -> Settings:
    return Settings(deadline=DEADLINE, out=out, jobs=4, **changes)


def collect(rows: list[RosterRow], out: Path, **changes) -> dict:
    seen = []
    manifest = collect_class(rows, settings(out, **changes),
                             lambda entry, reused: seen.append((entry.student, reused)))
    assert sorted(name for name, _ in seen) == sorted(row.student for row in rows)
    assert list(manifest.entries) == [row.student for row in rows]  # roster order, all rows
    return manifest.entries


def row(student: str, repository: Path | str) -> RosterRow:
    return RosterRow(student, str(repository))


def test_each_case_of_the_issue_ends_with_its_status(make_repo, notebook_bytes, tmp_path):
    alice = make_repo("alice")  # a good commit before the deadline, a broken one after
    alice.write("HW4.ipynb", notebook_bytes("alice")).write("README.md", "hw4")
    good = alice.commit("done", when(days=-2))
    alice.write("HW4.ipynb", BROKEN).commit("oops", when(hours=3))
    bob = make_repo("bob")  # only late commits
    bob.write("HW4.ipynb", notebook_bytes("bob")).commit("late", when(hours=1))
    bob.write("x.txt", "more").commit("later", when(days=1))
    carol = make_repo("carol")  # no notebook
    carol.write("README.md", "I forgot").write("hw4.py", "x = 1\n").commit("c", when(hours=-1))
    dave = make_repo("dave")  # two notebooks that could each be the homework
    dave.write("HW4.ipynb", notebook_bytes("dave"))
    dave.write("old/HW4-draft.ipynb", notebook_bytes("bob"))
    dave.commit("two", when(hours=-1))
    fay = make_repo("fay")  # the homework and a notebook that is not: the homework is taken
    fay.write("HW4.ipynb", notebook_bytes("alice")).write("scratch.ipynb", b"{}")
    fay.commit("two", when(hours=-1))
    rows = [row("alice", alice.path), row("bob", bob.path), row("carol", carol.path),
            row("dave", dave.path), row("eve", "https://127.0.0.1:9/eve/hw4.git"),
            row("zed", tmp_path / "no-such-repository"), row("fay", fay.path)]
    out = tmp_path / "submissions"
    entries = collect(rows, out)

    assert {name: entry.status for name, entry in entries.items()} == {
        "alice": Status.COLLECTED, "bob": Status.NO_COMMIT, "carol": Status.NO_NOTEBOOK,
        "dave": Status.SEVERAL_NOTEBOOKS, "eve": Status.UNREACHABLE, "zed": Status.UNREACHABLE,
        "fay": Status.COLLECTED}
    assert entries["fay"].notebook == "HW4.ipynb"
    assert "the GAN homework among the 2 notebooks" in entries["fay"].reason
    assert entries["fay"].files == ["fay/HW4.ipynb"]
    first = entries["alice"]
    assert first.commit == good and first.notebook == "HW4.ipynb"
    assert (out / "alice" / "HW4.ipynb").read_bytes() == notebook_bytes("alice")
    assert first.files == ["alice/HW4.ipynb"]
    assert datetime.fromisoformat(first.commit_date) == when(days=-2)
    assert "1 later commit(s) after the deadline ignored" in first.flags
    assert "2 commit(s), all after the deadline" in entries["bob"].reason
    assert entries["dave"].candidates == ["HW4.ipynb", "old/HW4-draft.ipynb"]
    assert "HW4.ipynb" in entries["dave"].reason and "old/HW4-draft.ipynb" in entries["dave"].reason
    for name in ("eve", "zed"):  # git's one-line reason, no waiting
        reason = entries[name].reason
        assert reason and "\n" not in reason and len(reason) < 400
    assert "127.0.0.1" in entries["eve"].reason or "connect" in entries["eve"].reason.lower()
    # only the collected student has a folder; nothing else is graded by mistake
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == \
        ["alice", MANIFEST, "fay"]
    on_disk = json.loads((out / MANIFEST).read_text())
    assert on_disk["deadline"] == DEADLINE.isoformat()
    assert on_disk["students"]["alice"]["commit"] == good
    assert on_disk["students"]["bob"]["status"] == "no_commit_before_deadline"


def test_notebook_patterns_choose_among_several(make_repo, notebook_bytes, tmp_path):
    dave = make_repo("dave")
    dave.write("HW4.ipynb", notebook_bytes("dave")).write("scratch.ipynb", b"{}")
    dave.write(".ipynb_checkpoints/HW4-checkpoint.ipynb", b"{}")  # never a candidate
    dave.commit("two", when(hours=-1))
    entries = collect([row("dave", dave.path)], tmp_path / "out", patterns=("HW4*.ipynb",))
    assert entries["dave"].status is Status.COLLECTED
    assert entries["dave"].notebook == "HW4.ipynb"


def test_hooks_and_submodules_never_run(make_repo, notebook_bytes, tmp_path):
    """A repository whose submodule URL would run a command, whose clone has hooks for
    every step and config that names commands: none of them runs, in a clone or in
    --from-clones, and the notebook is still collected."""
    marker = tmp_path / "pwned"
    frank = make_repo("frank")
    inner = make_repo("inner")
    inner.write("secret.txt", "submodule content").commit("inner", when(days=-3))
    frank.write("HW4.ipynb", notebook_bytes("alice")).git("add", "HW4.ipynb")
    frank.write(".gitmodules", f'[submodule "evil"]\n\tpath = evil\n'
                               f"\turl = ext::sh -c touch% {marker}\n"
                               f'[submodule "inner"]\n\tpath = inner\n\turl = {inner.path}\n')
    frank.git("update-index", "--add", "--cacheinfo",
              f"160000,{inner.git('rev-parse', 'HEAD')},inner")
    frank.git("update-index", "--add", "--cacheinfo",
              f"160000,{inner.git('rev-parse', 'HEAD')},evil")
    frank.git("add", ".gitmodules")
    frank.commit("with submodules", when(days=-1), stage=False)
    hooks = frank.path / ".git" / "hooks"
    for hook in ("post-checkout", "post-merge", "pre-commit", "reference-transaction",
                 "post-index-change", "pre-auto-gc", "fsmonitor-watchman", "post-rewrite",
                 "push-to-checkout", "update", "pre-receive", "post-update"):
        (hooks / hook).write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
        (hooks / hook).chmod(0o755)
    frank.git("config", "core.fsmonitor", f"echo fsmonitor >> {marker}")
    frank.git("config", "uploadpack.packObjectsHook", f"sh -c 'echo pack >> {marker}'")
    frank.git("config", "core.pager", f"sh -c 'echo pager >> {marker}'")

    cloned = collect([row("frank", frank.path)], tmp_path / "cloned")
    from_clones = collect([RosterRow("frank", "")], tmp_path / "read",
                          from_clones=frank.path.parent)
    for entries, out in ((cloned, tmp_path / "cloned"), (from_clones, tmp_path / "read")):
        entry = entries["frank"]
        assert entry.status is Status.COLLECTED, entry.reason
        assert {"submodule evil: not fetched", "submodule inner: not fetched"} <= set(entry.flags)
        assert entry.files == ["frank/HW4.ipynb"]
        assert not any("submodule content" in path.read_text(errors="replace")
                       for path in out.rglob("*") if path.is_file())
    assert not marker.exists(), marker.read_text()
    assert not (tmp_path / "cloned" / ".collect-cache" / "frank.git" / "modules").exists()


def test_symlinks_never_lead_out_of_the_repository(make_repo, notebook_bytes, tmp_path):
    secret = tmp_path / "secret.ipynb"
    secret.write_text('{"the instructor": "solution"}')
    secret_module = tmp_path / "secret.py"
    secret_module.write_text("SECRET_7F3A = 42\n")
    grace = make_repo("grace")  # the only notebook is a link out of the repository
    grace.link("HW4.ipynb", str(secret)).link("also.ipynb", "../../secret.ipynb")
    grace.commit("links", when(hours=-1))
    henry = make_repo("henry")  # a real notebook; a module linked out, one linked inside
    henry.write("Generative_Adversarial_Networks_PyTorch.ipynb", notebook_bytes("alice"))
    henry.write("cs231n/__init__.py", "").write("cs231n/gan_pytorch.py", "def sample_noise(): 0\n")
    henry.link("cs231n/solver.py", str(secret_module))
    henry.link("cs231n/alias.py", "gan_pytorch.py")
    henry.link("HW4.ipynb", "Generative_Adversarial_Networks_PyTorch.ipynb")  # same notebook
    henry.commit("pytorch", when(hours=-1))
    out = tmp_path / "out"
    entries = collect([row("grace", grace.path), row("henry", henry.path)], out)

    assert entries["grace"].status is Status.NO_NOTEBOOK
    assert sum("not followed" in flag for flag in entries["grace"].flags) == 2
    henry_entry = entries["henry"]
    assert henry_entry.status is Status.COLLECTED, henry_entry.reason
    assert henry_entry.notebook == "Generative_Adversarial_Networks_PyTorch.ipynb"
    assert henry_entry.files == ["henry/Generative_Adversarial_Networks_PyTorch.ipynb",
                                 "henry/cs231n/__init__.py", "henry/cs231n/alias.py",
                                 "henry/cs231n/gan_pytorch.py"]
    assert (out / "henry" / "cs231n" / "alias.py").read_text() == "def sample_noise(): 0\n"
    assert any("cs231n/solver.py" in flag for flag in henry_entry.flags)
    for path in out.rglob("*"):
        assert not path.is_symlink()
        if path.is_file():
            assert b"SECRET_7F3A" not in path.read_bytes()
            assert b"the instructor" not in path.read_bytes()


def test_dates_in_the_future_or_going_backwards_are_flagged(make_repo, notebook_bytes,
                                                            tmp_path):
    judy = make_repo("judy")
    judy.write("HW4.ipynb", notebook_bytes("alice")).commit("first", when(days=-1))
    backdated = judy.write("HW4.ipynb", notebook_bytes("dave")).commit("back", when(days=-3))
    judy.write("notes.md", "x").commit("future", datetime(2099, 1, 1, tzinfo=timezone.utc))
    entry = collect([row("judy", judy.path)], tmp_path / "out")["judy"]
    assert entry.status is Status.COLLECTED and entry.commit == backdated
    assert any("dated in the future" in flag and "2099" in flag for flag in entry.flags)
    assert any(flag.startswith(f"commit {backdated[:12]}") and "go backwards" in flag
               for flag in entry.flags)


def test_a_branch_other_than_the_default(make_repo, notebook_bytes, tmp_path):
    lena = make_repo("lena")
    lena.write("HW4.ipynb", BROKEN).commit("main is broken", when(days=-2))
    lena.git("checkout", "--quiet", "-b", "submission")
    lena.write("HW4.ipynb", notebook_bytes("alice"))
    good = lena.commit("the submission", when(days=-1))
    lena.git("checkout", "--quiet", "main")
    entries = collect([row("lena", lena.path)], tmp_path / "out", branch="submission")
    assert (entries["lena"].status, entries["lena"].commit) == (Status.COLLECTED, good)
    assert entries["lena"].branch == "submission"
    missing = collect([row("lena", lena.path)], tmp_path / "other", branch="final")["lena"]
    assert missing.status is Status.NO_COMMIT and "no branch 'final'" in missing.reason


def test_pick_commit_is_the_last_at_or_before_the_deadline():
    chain = [Commit("c" * 40, 300, 300), Commit("b" * 40, 200, 200), Commit("a" * 40, 100, 100)]
    assert choose.pick_commit(chain, 200, 10_000).commit.sha == "b" * 40  # at counts
    assert choose.pick_commit(chain, 199, 10_000).commit.sha == "a" * 40
    choice = choose.pick_commit(chain, 99, 10_000)
    assert choice.commit is None and choice.late == 3
    assert choose.pick_commit(chain, 300, 10_000).flags == []
    # committed "before" the deadline, but written after it: only the committer date was set
    amended = [Commit("d" * 40, 250, 400), *chain[1:]]
    [flag] = choose.pick_commit(amended, 260, 10_000).flags
    assert flag.startswith("commit dddddddddddd was authored after the deadline")


def test_a_rerun_keeps_what_was_collected_and_retries_the_rest(make_repo, notebook_bytes,
                                                               tmp_path):
    alice = make_repo("alice")
    alice.write("HW4.ipynb", notebook_bytes("alice")).commit("done", when(days=-2))
    out = tmp_path / "out"
    missing = tmp_path / "repos" / "bob"
    rows = [row("alice", alice.path), row("bob", missing)]
    first = collect(rows, out)
    assert first["bob"].status is Status.UNREACHABLE
    # alice pushes a back-dated commit after the collection: the rerun keeps what it had
    alice.write("HW4.ipynb", BROKEN).commit("backdated", when(hours=-1))
    bob = make_repo("bob")  # bob's repository appears
    bob.write("HW4.ipynb", notebook_bytes("bob")).commit("done", when(hours=-5))
    seen = []
    manifest = collect_class(rows, settings(out), lambda e, reused: seen.append((e.student,
                                                                                 reused)))
    assert sorted(seen) == [("alice", True), ("bob", False)]
    assert manifest.entries["alice"].commit == first["alice"].commit
    assert (out / "alice" / "HW4.ipynb").read_bytes() == notebook_bytes("alice")
    assert manifest.entries["bob"].status is Status.COLLECTED
    # an edited notebook on disk is not trusted: it is collected again
    (out / "alice" / "HW4.ipynb").write_bytes(b"tampered")
    again = collect(rows, out)["alice"]
    assert again.notebook_sha256 == hashlib.sha256(BROKEN).hexdigest()  # fetched anew


def test_limits_end_the_row_as_too_large(make_repo, notebook_bytes, tmp_path):
    kim = make_repo("kim")
    kim.write("HW4.ipynb", notebook_bytes("alice"))
    for number in range(12):
        kim.write(f"data/{number}.txt", str(number))
    kim.commit("many files", when(hours=-1))
    entries = collect([row("kim", kim.path)], tmp_path / "files", limits=Limits(files=10))
    assert entries["kim"].status is Status.TOO_LARGE and "10 files" in entries["kim"].reason
    entries = collect([row("kim", kim.path)], tmp_path / "bytes",
                      limits=Limits(repository_bytes=1000))
    assert entries["kim"].status is Status.TOO_LARGE and "larger than" in entries["kim"].reason
    assert not (tmp_path / "bytes" / "kim").exists()


def test_a_forbidden_transport_is_refused(tmp_path):
    marker = tmp_path / "ran"
    entries = collect([row("mallory", f"ext::sh -c touch% {marker}"),
                       row("oscar", "http://127.0.0.1:9/x.git")], tmp_path / "out")
    assert entries["mallory"].status is Status.UNREACHABLE
    assert entries["oscar"].status is Status.UNREACHABLE
    assert "not allowed" in entries["mallory"].reason
    assert not marker.exists()


# --------------------------------------------------------------------------- roster


def test_roster_rows_and_their_problems(tmp_path):
    good = tmp_path / "roster.csv"
    good.write_text("\ufeffstudent,repository,name,sis_login_id,section\n"
                    "alice,https://github.com/org/hw4-alice,Alice A,aa1,001\n"
                    "bob,git@github.com:org/hw4-bob.git,,,\n\n", encoding="utf-8")
    rows = read_roster(good)
    assert rows[0] == RosterRow("alice", "https://github.com/org/hw4-alice", "Alice A", "aa1",
                                "001")
    assert rows[1].repository == "git@github.com:org/hw4-bob.git"
    bad = tmp_path / "bad.csv"
    bad.write_text("student,repository\n../etc,x\nAlice,\nalice,y\ncollect.json,z\n")
    with pytest.raises(RosterError) as error:
        read_roster(bad)
    problems = str(error.value).splitlines()
    assert problems == [
        f"{bad}: row 2, column 'student': '../etc' is not a plain id (letters, digits and "
        ". _ @ + -, at most 100)",
        f"{bad}: row 3, column 'repository': empty",
        f"{bad}: row 4, column 'student': 'alice' is also on row 3",
        f"{bad}: row 5, column 'student': 'collect.json' is not a plain id (letters, digits "
        "and . _ @ + -, at most 100)"]
    (tmp_path / "cols.csv").write_text("login,url\na,b\n")
    with pytest.raises(RosterError, match="no column 'student', 'repository'"):
        read_roster(tmp_path / "cols.csv")


def test_a_deadline_needs_a_zone():
    assert parse_deadline("2026-03-01T23:59:00-05:00") == DEADLINE
    assert parse_deadline("2026-03-02T04:59:00Z") == DEADLINE
    with pytest.raises(RosterError, match="no time zone"):
        parse_deadline("2026-03-01T23:59:00")
    with pytest.raises(RosterError, match="not an ISO 8601 time"):
        parse_deadline("next friday")


def hw4grade(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=cwd, text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=300)


def test_the_command_line(make_repo, notebook_bytes, tmp_path):
    alice = make_repo("alice")
    alice.write("HW4.ipynb", notebook_bytes("alice")).commit("done", when(days=-2))
    (tmp_path / "roster.csv").write_text(f"student,repository\nalice,{alice.path}\n"
                                         "bob,repos/nothing-here\n")
    done = hw4grade("collect", "roster.csv", "--deadline", DEADLINE.isoformat(), "--out",
                    "submissions", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 collected, 1 repository unreachable" in done.stdout
    assert "1/2" in done.stderr and "2/2" in done.stderr
    assert read_manifest(tmp_path / "submissions").entries["alice"].status is Status.COLLECTED
    no_zone = hw4grade("collect", "roster.csv", "--deadline", "2026-03-01T23:59", "--out",
                       "s", cwd=tmp_path)
    assert no_zone.returncode == 2 and "Traceback" not in no_zone.stderr
    assert no_zone.stderr.strip().splitlines() == [
        "hw4grade: --deadline '2026-03-01T23:59': no time zone; add one "
        "(e.g. 2026-03-01T23:59:00-05:00 or ...Z for UTC)"]


def test_a_repository_asking_for_credentials_fails_at_once():
    """git's own credential step, as a clone needing a password reaches it: with the
    collection's environment it fails in well under a second instead of prompting."""
    from grader.collect.git import command, environment

    started = time.monotonic()
    asked = subprocess.run(command("-c", "credential.helper=", "credential", "fill"),
                           env=environment(), input="protocol=https\nhost=example.invalid\n\n",
                           capture_output=True, text=True, timeout=20)
    assert asked.returncode != 0 and "Username" in asked.stderr
    assert time.monotonic() - started < 10
