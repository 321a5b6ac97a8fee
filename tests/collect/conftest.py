"""The fixtures of the collection tests: real git repositories (tests/fixtures/git_repos)."""

from tests.fixtures.git_repos import make_repo, needs_git, notebook_bytes  # noqa: F401
