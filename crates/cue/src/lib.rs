//! cue
