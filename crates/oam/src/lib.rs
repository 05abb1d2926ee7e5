//! oam
