//! Curator-style recipes (see issue 6).
