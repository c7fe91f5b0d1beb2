//! End-to-end tests live in `tests/e2e/`, one binary; each module is one capability.
