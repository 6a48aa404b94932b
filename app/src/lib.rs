//! The console (placeholder until the Leptos app lands).
