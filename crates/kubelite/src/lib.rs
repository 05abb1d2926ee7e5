//! kubelite
