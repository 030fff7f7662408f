# Convenience recipes. Each one is a plain command that README.md also lists,
# so nothing needs `just` installed.

# Pass recipe arguments through as "$@", so URLs with `?` or `&` survive.
set positional-arguments

# PostgreSQL server for `test-pg`, without a database name.
pg := env_var_or_default("PG_URL", "postgres://postgres@127.0.0.1:5432")

# List the recipes.
default:
    @just --list

# Serve on http://127.0.0.1:8080 (SQLite in data/app.db, migrated on start).
run *ARGS:
    cargo run -p server -- "$@"

# Run every test (SQLite in memory, or PostgreSQL when DATABASE_URL=postgres://...).
test:
    cargo test --workspace

# Run every test on PostgreSQL, in a throwaway database dropped afterwards.
test-pg:
    #!/usr/bin/env bash
    set -euo pipefail
    db="test_$(date +%s)_$$"
    psql -v ON_ERROR_STOP=1 -q "{{pg}}/postgres" -c "CREATE DATABASE $db"
    trap 'psql -q "{{pg}}/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
    DATABASE_URL="{{pg}}/$db" cargo test --workspace

# Run what CI runs: SQLite tests, PostgreSQL tests, fmt, clippy.
ci:
    bash .ci/run

# Format the code.
fmt:
    cargo fmt --all

# Lint; warnings are errors, as in CI.
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate docs/schema.graphql from the built schema.
schema:
    cargo run -q -p server -- schema > docs/schema.graphql

# Run the migration CLI, e.g. `just migrate status` or `just migrate -u postgres://... up`.
migrate *ARGS:
    cargo run -q -p migration -- "$@"
