//! End-to-end tests live in `tests/`; each file is one capability.
