//! Placement: which members run which units (pure, deterministic).
