//! evaluation (skeleton; filled by its issue).
